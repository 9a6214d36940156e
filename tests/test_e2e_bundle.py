"""A ten-item 京津冀 bundle: items stay home or reach national, Tianjin and Hebei, each once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness import Gateway, Simulator, default_partner_path, settings_for

PARTNERS = ("national", "tianjin", "hebei")


async def test_ten_item_bundle_reaches_each_partner_once(db_url: str, tmp_path: Path,
                                                         samples: dict[str, Any]) -> None:
    case = samples["20-bundle-ten-items-jingjinji"]
    sims = {p: Simulator(p) for p in PARTNERS}
    for s in sims.values():
        await s.__aenter__()
    try:
        urls = {p: s.url(default_partner_path(p)) for p, s in sims.items()}
        async with Gateway(settings_for(tmp_path, db_url, urls)) as gw:
            status, doc = await gw.post_case(case)
            assert status == 202, doc
            final = await gw.wait_final(doc["id"], timeout=30)
            assert (await gw.post_case(case))[0] == 200  # a resubmission changes nothing
    finally:
        for s in sims.values():
            await s.__aexit__()
    assert final["homeItems"] == ["1", "2"]
    by_partner: dict[str, list[list[str]]] = {}
    for d in final["deliveries"]:
        assert d["state"] == "delivered", d
        by_partner.setdefault(d["partner"], []).append(d["items"])
    # national and Tianjin carry one item per message; Hebei's typed contract takes several
    assert sorted(by_partner["national"]) == [["7"], ["8"], ["9"]]
    assert sorted(by_partner["tianjin"]) == [["10"], ["3"], ["4"]]
    assert by_partner["hebei"] == [["5", "6", "10"]]
    for p, s in sims.items():
        summary = s.state.summary(False)
        assert summary["unique"] == len(by_partner[p]), p
        assert summary["duplicates"] == 0 and summary["received"] == summary["unique"], p
    # 多地联办: item 10 went to both Tianjin and Hebei, and its status needs both
    joint = sorted((d["partner"], d["region"]) for d in final["deliveries"] if "10" in d["items"])
    # Hebei's message spans Shijiazhuang and Langfang, so its region is the province
    assert joint == [("hebei", "130000000000"), ("tianjin", "120116000000")]
    # ... and each region was told its own part: Tianjin leads, Hebei handles two districts
    hebei = sims["hebei"].state.messages[0].payload
    item10 = [i for i in hebei["itemDetails"] if i["itemNo"] == "10"]
    assert item10 == [{
        "itemNo": "10", "implementationCode": "11120116MB1A23456X000140001000001",
        "handlingRegion": "130100000000", "department": None,
        "jointHandling": {"leadRegion": "120116000000", "leadDepartment": "天津市滨海新区行政审批局",
                          "regions": [{"region": "120116000000", "local": False},
                                      {"region": "130100000000", "local": True},
                                      {"region": "131000000000", "local": True}]}}]
    tianjin = [r for m in sims["tianjin"].state.messages for r in m.payload["records"]
               if r["SXXH"] == "10"]
    assert [(r["XZQHDM"], r["BLBM"], [(x["DQDM"], x["SFBD"]) for x in r["LBXX"]["LBDQ"]])
            for r in tianjin] == [("120116000000", "天津市滨海新区行政审批局", [
                ("120116000000", "1"), ("130100000000", "0"), ("131000000000", "0")])]
    # the form fields (remarks included) reached every partner
    assert hebei["formData"]["remarks"] == case["formData"]["remarks"]
    assert all(m.payload["extInfo"] == case["formData"] for m in sims["national"].state.messages)
    # every item, the two handled in Beijing too (handed to the home platform)
    assert list(final["items"]) == [str(n) for n in range(1, 11)]
    assert [final["items"][n]["home"] for n in ("1", "2", "3")] == [True, True, False]
    assert final["bundle"]["status"] == "SUBMITTED" and not final["bundle"]["needsAttention"]
    assert final["bundle"]["delivered"] and final["bundle"]["blocking"] == []
    assert len(final["bundle"]["children"]) == 7
