"""Nothing dropped without a record: which source fields a mapping does not carry.

``CompiledMapping.uncarried_fields()`` is computed once, when the mapping compiles: every leaf of
the source schema that no value of the output is read from. ``uncarried_fields(view)`` narrows it
to what one delivery really leaves behind; ``gateway mapping coverage`` prints both.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.intake.accept import normalise
from gateway.mapping import MappingRegistry
from gateway.cli.mapping import mapping
from gateway.routing import delivery_view

ROOT = Path(__file__).resolve().parent.parent
MAP, SCH = ROOT / "mappings", ROOT / "schemas"
SAMPLES = ROOT / "samples" / "cases"


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load(MAP, SCH)


def test_shipped_contracts_carry_every_field_they_have_a_place_for(
        registry: MappingRegistry) -> None:
    # one item per message: a material's item list is implied, so it is the one field left
    assert registry.get("national/case-submit").uncarried_fields() == ("/materials/*/itemNos",)
    assert registry.get("tianjin/case-submit").uncarried_fields() == ("/materials/*/itemNos",)
    assert registry.get("hebei/case-submit").uncarried_fields() == ()
    for name in ("national/case-submit", "tianjin/case-submit", "hebei/case-submit"):
        fields = registry.get(name).source_fields
        assert {"/formData", "/agent/name", "/items/*/jointRegions", "/elicences/*/licenceId",
                "/materials/*/pages", "/applicant/legalRepresentative/certNo",
                "/bundle/themeCode", "/crossRegionMode"} <= set(fields)


def test_inbound_mappings_are_measured_against_their_own_source(
        registry: MappingRegistry) -> None:
    # national push → Beijing case: the push's fields the Beijing format has no place for yet
    left = registry.get("national/case-inbound").uncarried_fields()
    assert "/jointHandling/areas/*/local" in left and "/proStatus" in left
    assert "/localProjectNo" not in left and "/taskCode" not in left


def test_a_mapping_without_a_json_source_schema_reports_nothing(tmp_path: Path) -> None:
    m = load_one(tmp_path, """
        version: "1"
        target: {kind: json}
        fields: {no: applicationNo}
    """).get("x/m")
    assert m.source_fields == () and m.uncarried_fields() == ()
    assert m.uncarried_fields({"applicationNo": "X", "other": 1}) == ()


def load_one(tmp_path: Path, body: str) -> MappingRegistry:
    (tmp_path / "codes").mkdir(exist_ok=True)
    (tmp_path / "codes" / "up.yaml").write_text(
        'map: {NATURAL_PERSON: 1, LEGAL_PERSON: 2, OTHER: 9}\n', encoding="utf-8")
    (tmp_path / "x").mkdir(exist_ok=True)
    (tmp_path / "x" / "m.yaml").write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return MappingRegistry.load(tmp_path, SCH)


def test_what_counts_as_carried(tmp_path: Path) -> None:
    reg = load_one(tmp_path, """
        version: "1"
        source: {schema: beijing/case.schema.json}
        target: {kind: json}
        let:
          item: items[0]
          who: {first: [agent.name, applicant.name]}
        fields:
          no: applicationNo
          code: $item.implementationCode          # a let path extends to the field it names
          person: $who                            # a computed let carries what it read
          kind: {from: applicant.type, code: up}  # through a code table: still carried
          phone: {from: applicant.phone, when: {exists: agent.phone}}   # agent.phone only tested
          regions: {each: "items[0].jointRegions", value: "."}
          mats: {each: materials, where: {exists: sha256}, fields: {c: materialCode}}
          form: formData
    """)
    m = reg.get("x/m")
    left = set(m.uncarried_fields())
    carried = {"/applicationNo", "/items/*/implementationCode", "/agent/name", "/applicant/name",
               "/applicant/type", "/applicant/phone", "/items/*/jointRegions",
               "/materials/*/materialCode", "/formData"}
    assert not carried & left
    # read only by a condition (when / where), or not at all
    assert {"/agent/phone", "/materials/*/sha256", "/items/*/itemName", "/items/*/basicCode",
            "/channel", "/elicences/*/licenceId", "/bundle/scenarioCode"} <= left
    assert set(m.source_fields) - left == carried


def test_a_delivery_lists_only_what_it_really_leaves_behind(tmp_path: Path) -> None:
    reg = load_one(tmp_path, """
        version: "1"
        source: {schema: beijing/case.schema.json}
        target: {kind: json}
        fields:
          no: applicationNo
          item: "items[0].itemName"
    """)
    m = reg.get("x/m")
    case = normalise(json.loads((SAMPLES / "20-bundle-ten-items-jingjinji.json").read_text()))
    view = delivery_view(case, ["10"], "130000000000")
    dropped = m.uncarried_fields(view)
    assert "/formData" in dropped and "/agent/phone" in dropped
    assert "/items/*/jointRegions" in dropped and "/materials/*/pages" in dropped
    assert "/applicant/email" not in dropped          # the case has none: nothing was lost
    assert "/elicences/*/licenceId" not in dropped
    assert "/items/*/itemName" not in dropped and "/applicationNo" not in dropped
    assert set(dropped) <= set(m.uncarried_fields())


def test_shipped_mappings_leave_nothing_of_the_ten_item_bundle_behind(
        registry: MappingRegistry) -> None:
    case = normalise(json.loads((SAMPLES / "20-bundle-ten-items-jingjinji.json").read_text()))
    hebei = delivery_view(case, ["5", "6", "10"], "130000000000")
    assert registry.get("hebei/case-submit").uncarried_fields(hebei) == ()
    tianjin = delivery_view(case, ["10"], "120116000000")      # M903 names its item
    assert registry.get("tianjin/case-submit").uncarried_fields(tianjin) == (
        "/materials/*/itemNos",)
    national = delivery_view(case, ["7"], "310115000000")      # no material names item 7
    assert registry.get("national/case-submit").uncarried_fields(national) == ()


def run(*args: str) -> str:
    r = CliRunner().invoke(mapping, [*args, "--mappings", str(MAP), "--schemas", str(SCH)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_coverage_command_lists_the_fields_not_carried() -> None:
    out = run("coverage", "tianjin/case-submit")
    assert "source fields not carried: 1 of " in out
    assert "not carried  /materials/*/itemNos" in out
    out = run("coverage", "hebei/case-submit")
    assert "source fields not carried: 0 of " in out and "not carried  /" not in out


def test_coverage_command_for_one_delivery_of_a_case() -> None:
    sample = str(SAMPLES / "20-bundle-ten-items-jingjinji.json")
    out = run("coverage", "tianjin/case-submit", "--case", sample, "--item", "10")
    assert "this delivery of 20-bundle-ten-items-jingjinji.json leaves behind: " \
           "/materials/*/itemNos" in out
    out = run("coverage", "national/case-submit", "--case", sample, "--item", "7")
    assert "leaves behind: nothing" in out


def test_render_shows_a_joint_items_part_for_the_region_asked() -> None:
    sample = str(SAMPLES / "20-bundle-ten-items-jingjinji.json")
    out = run("render", "national/case-submit", sample, "--item", "10", "--region", "130100")
    doc = json.loads(out)
    assert doc["areaCode"] == "130100000000" and "deptName" not in doc
    assert doc["jointHandling"]["leadAreaCode"] == "120116000000"
    assert [a["areaCode"] for a in doc["jointHandling"]["areas"] if a["local"]] == [
        "130100000000"]
