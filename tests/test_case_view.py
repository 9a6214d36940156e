"""The case view lists, per delivery, the case's fields its partner was not sent (issue 10 §4).

Against the real gateway and simulators: what the shipped mappings leave behind is named with
its JSON pointer, and a mapping that carries less (a config pointing a partner at a thinner
mapping version) shows exactly what that version drops.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from tests.harness import ROOT, Gateway, Simulator, default_partner_path, settings_for


async def test_each_delivery_names_what_it_does_not_carry(tmp_path: Path,
                                                          samples: dict[str, Any]) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Simulator("hebei") as hb, Simulator("tianjin") as tj:
        settings = settings_for(tmp_path, db_url, {
            "hebei": hb.url(default_partner_path("hebei")),
            "tianjin": tj.url(default_partner_path("tianjin"))})
        async with Gateway(settings) as gw:
            status, accepted = await gw.post_case(samples["11-company-hebei-branch-filing"])
            assert status == 202
            assert accepted["deliveries"][0]["notCarried"] == []  # Hebei carries the whole case
            status, accepted = await gw.post_case(samples["10-person-tianjin-social-security"])
            assert status == 202
            final = await gw.wait_final(accepted["id"])
    [d] = final["deliveries"]
    # one item per message: which item a material serves is implied, not carried
    assert d["partner"] == "tianjin" and d["notCarried"] == ["/materials/*/itemNos"]


async def test_a_thinner_mapping_is_named_field_by_field(tmp_path: Path,
                                                         samples: dict[str, Any]) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    text = (mappings / "hebei" / "case-submit.yaml").read_text(encoding="utf-8")
    assert "themeCode" in text, "the Hebei mapping carries the bundle's theme"
    # drop the theme from the message: the schema has it optional, so the mapping still loads
    thin = "\n".join(line for line in text.splitlines() if "themeCode" not in line)
    (mappings / "hebei" / "case-submit.yaml").write_text(thin + "\n", encoding="utf-8")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Simulator("hebei") as hb, Simulator("tianjin") as tj:
        settings = settings_for(tmp_path, db_url, {
            "hebei": hb.url(default_partner_path("hebei")),
            "tianjin": tj.url(default_partner_path("tianjin"))})
        settings = settings.model_copy(update={"mappings_dir": str(mappings)})
        async with Gateway(settings) as gw:
            case = samples["13-bundle-tianjin-hebei-enterprise"]
            assert case["bundle"]["themeCode"]
            status, accepted = await gw.post_case(case)
            assert status == 202, accepted
            hebei = [d for d in accepted["deliveries"] if d["partner"] == "hebei"]
    assert hebei and all(d["notCarried"] == ["/bundle/themeCode"] for d in hebei)
