"""Route table: loading, precedence and ties, as tables of cases.

Every case here goes through the public surface only (``RouteTable.build`` / ``plan``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import gateway.routing as routing
from gateway.config import PartnerSettings, load_settings
from gateway.errors import ConfigError, NoRouteError
from gateway.routing import PlannedDelivery, RouteTable, RoutingPlan
from tests.harness import TEST_SECRETS

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "cases"


def partner(mapping: str, per_message: str = "one", version: str | None = None) -> PartnerSettings:
    return PartnerSettings(protocol="rest-json", url="http://127.0.0.1:1/x", mapping=mapping,
                           mapping_version=version, items_per_message=per_message)  # type: ignore[arg-type]


PARTNERS = {
    "national": partner("national/case-submit", "one", "1"),
    "tianjin": partner("tianjin/case", "many"),
    "hebei": partner("hebei/case", "many", "2"),
}


def case(*items: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A minimal schema-shaped case; items given as partial dicts."""
    body: dict[str, Any] = {
        "applicationNo": "BJ2026113000009999", "channel": "WEB",
        "submitTime": "2026-11-30T09:00:00+08:00", "receivingRegion": "110105",
        "crossRegionMode": "PROXY_RECEIVE",
        "applicant": {"type": "NATURAL_PERSON", "name": "测试甲", "certType": "111",
                      "certNo": "110105199003071239"},
        "items": [],
    }
    body.update(top)
    for n, it in enumerate(items, start=1):
        full = {"itemNo": str(n), "basicCode": "000134023000",
                "implementationCode": "11310115MB2C12345X000134023000001",
                "itemName": f"事项{n}", "handlingRegion": "310115"}
        full.update(it)
        body["items"].append(full)
    return body


def table(*rules: dict[str, Any], partners: dict[str, PartnerSettings] | None = None,
          home: str = "110000") -> RouteTable:
    return RouteTable.build(list(rules), partners or PARTNERS, home, source="routes.yaml")


def rule(name: str, target: str, **match: Any) -> dict[str, Any]:
    return {"name": name, "target": target, "match": match}


# -- the public surface ---------------------------------------------------------------------

def test_public_surface() -> None:
    for name in ("RouteTable", "RoutingPlan", "PlannedDelivery", "Explanation", "HOME"):
        assert name in routing.__all__
        assert hasattr(routing, name)


def test_shipped_config_routes_every_sample() -> None:
    s = load_settings(ROOT / "config" / "gateway.yaml", env=dict(TEST_SECRETS))
    t = RouteTable.build(s.routes, s.partners, s.home_region, source=s.source_file)
    for path in sorted(SAMPLES.glob("*.json")):
        plan = t.plan(json.loads(path.read_text(encoding="utf-8")))
        assert isinstance(plan, RoutingPlan)
        for d in plan.deliveries:
            assert isinstance(d, PlannedDelivery)
            assert d.partner in s.partners and len(d.region) == 12


def test_sample_bundle_splits_home_and_national() -> None:
    s = load_settings(ROOT / "config" / "gateway.yaml", env=dict(TEST_SECRETS))
    t = RouteTable.build(s.routes, s.partners, s.home_region)
    plan = t.plan(json.loads((SAMPLES / "02-company-bundle-beijing-guangdong.json").read_text()))
    assert plan.home_items == ["1"]
    assert [(d.partner, d.item_nos, d.region) for d in plan.deliveries] == [
        ("national", ("2",), "440305000000")]


# -- precedence -----------------------------------------------------------------------------

PRECEDENCE_RULES = [
    rule("catch-all", "national"),
    rule("tianjin", "tianjin", handling_region="12"),
    rule("binhai", "hebei", handling_region="120116"),
    rule("tianjin-city-1201", "national", handling_region="1201"),
    rule("social-security-basic", "national", basic_code="000134*"),
    rule("social-security-exact", "hebei", basic_code="000134023000"),
    rule("impl-exact", "tianjin", implementation_code="X-IMPL-1"),
    rule("scenario", "hebei", scenario_code="YJS-QYKB-003"),
    rule("theme", "tianjin", theme_code="QYKB"),
    rule("received-in-haidian", "hebei", receiving_region="110108"),
    rule("joint-mode", "tianjin", cross_region_mode="JOINT"),
    rule("legal-person", "hebei", applicant_type="LEGAL_PERSON"),
]


@pytest.mark.parametrize(("item", "top", "expected_rule"), [
    # region: longer prefix wins; home region goes home through the built-in rule
    ({"handlingRegion": "310115", "basicCode": "X"}, {}, "catch-all"),
    ({"handlingRegion": "120101", "basicCode": "X"}, {}, "tianjin-city-1201"),
    ({"handlingRegion": "120116", "basicCode": "X"}, {}, "binhai"),
    ({"handlingRegion": "120116000000", "basicCode": "X"}, {}, "binhai"),
    ({"handlingRegion": "120225", "basicCode": "X"}, {}, "tianjin"),
    ({"handlingRegion": "110105", "basicCode": "X"}, {}, "builtin:home-region"),
    # item codes outrank regions; exact outranks prefix; implementation outranks basic
    ({"handlingRegion": "120116", "basicCode": "000134999000"}, {}, "social-security-basic"),
    ({"handlingRegion": "120116", "basicCode": "000134023000"}, {}, "social-security-exact"),
    ({"handlingRegion": "110105", "basicCode": "000134023000"}, {}, "social-security-exact"),
    ({"basicCode": "000134023000", "implementationCode": "X-IMPL-1"}, {}, "impl-exact"),
    # region outranks bundle, bundle scenario outranks theme, ... applicant type is weakest
    ({"handlingRegion": "120116", "basicCode": "X"},
     {"bundle": {"scenarioCode": "YJS-QYKB-003", "scenarioName": "n", "themeCode": "QYKB"}},
     "binhai"),
    ({"basicCode": "X"},
     {"bundle": {"scenarioCode": "YJS-QYKB-003", "scenarioName": "n", "themeCode": "QYKB"}},
     "scenario"),
    ({"basicCode": "X"},
     {"bundle": {"scenarioCode": "OTHER", "scenarioName": "n", "themeCode": "QYKB"}}, "theme"),
    ({"basicCode": "X"}, {"receivingRegion": "110108000000", "crossRegionMode": "JOINT"},
     "received-in-haidian"),
    ({"basicCode": "X"}, {"crossRegionMode": "JOINT",
                          "applicant": {"type": "LEGAL_PERSON", "name": "n", "certType": "001",
                                        "certNo": "91110105MA01AB125M"}}, "joint-mode"),
    ({"basicCode": "X"}, {"applicant": {"type": "LEGAL_PERSON", "name": "n", "certType": "001",
                                        "certNo": "91110105MA01AB125M"}}, "legal-person"),
])
def test_most_specific_rule_wins(item: dict[str, Any], top: dict[str, Any],
                                 expected_rule: str) -> None:
    t = table(*PRECEDENCE_RULES)
    plan = t.plan(case(item, **top))
    assert [a.rule for a in plan.assignments] == [expected_rule]


@pytest.mark.parametrize(("match", "item", "top", "matches"), [
    ({"basic_code": ["A1", "B2"]}, {"basicCode": "B2"}, {}, True),
    ({"basic_code": ["A1", "B*"]}, {"basicCode": "B77"}, {}, True),
    ({"basic_code": "A*"}, {"basicCode": "B77"}, {}, False),
    ({"implementation_code": "1131*"}, {"implementationCode": "11310115X"}, {}, True),
    ({"handling_region": ["12", "13"]}, {"handlingRegion": "130100"}, {}, True),
    ({"handling_region": "130000"}, {"handlingRegion": "131000000000"}, {}, True),
    ({"handling_region": "130100"}, {"handlingRegion": "131000"}, {}, False),
    ({"receiving_region": "110105"}, {}, {"receivingRegion": "110105000000"}, True),
    ({"cross_region_mode": "NONE"}, {}, {"crossRegionMode": None}, True),
    ({"cross_region_mode": ["FULL_ONLINE", "JOINT"]}, {}, {}, False),
    ({"scenario_code": "S1"}, {}, {}, False),  # no bundle: a bundle condition cannot hold
    ({"theme_code": "T*"}, {},
     {"bundle": {"scenarioCode": "S", "scenarioName": "n", "themeCode": "T9"}}, True),
    ({"applicant_type": ["OTHER", "NATURAL_PERSON"]}, {}, {}, True),
])
def test_condition_kinds(match: dict[str, Any], item: dict[str, Any], top: dict[str, Any],
                         matches: bool) -> None:
    t = table({"name": "r", "target": "tianjin", "match": match})
    c = case(item, **top)
    if top.get("crossRegionMode", "") is None:
        del c["crossRegionMode"]
    if matches:
        assert t.plan(c).deliveries[0].rule == "r"
    else:
        with pytest.raises(NoRouteError):
            t.plan(c)


def test_priority_breaks_a_tie() -> None:
    t = table(rule("a", "tianjin", applicant_type="NATURAL_PERSON"),
              {**rule("b", "hebei", applicant_type=["NATURAL_PERSON", "OTHER"]), "priority": 5})
    assert t.plan(case({})).deliveries[0].partner == "hebei"


def test_configured_home_rule_can_be_overridden_by_a_more_specific_rule() -> None:
    t = table(rule("home", "home", handling_region="11"),
              rule("chaoyang-via-national", "national", handling_region="110105"))
    plan = t.plan(case({"handlingRegion": "110105"}, {"handlingRegion": "110108"}))
    assert plan.home_items == ["2"]
    assert [d.item_nos for d in plan.deliveries] == [("1",)]


def test_no_route_names_the_item_and_rules_tried() -> None:
    t = table(rule("tianjin", "tianjin", handling_region="12"),
              rule("hebei", "hebei", handling_region="13"))
    with pytest.raises(NoRouteError) as ei:
        t.plan(case({"handlingRegion": "120116"}, {"handlingRegion": "440305"},
                    {"handlingRegion": "310115"}))
    err = ei.value
    assert err.status == 422
    assert [p.path for p in err.problems] == ["/items/1", "/items/2"]
    msg = err.problems[0].message
    assert "item 2" in msg and "440305000000" in msg
    assert "tianjin" in msg and "hebei" in msg and "builtin:home-region" in msg
    assert err.problem()["errors"][0]["path"] == "/items/1"


def test_plan_is_pure_and_does_not_touch_the_case() -> None:
    t = table(*PRECEDENCE_RULES)
    c = case({"handlingRegion": "120116"}, {"handlingRegion": "130100"})
    before = copy.deepcopy(c)
    assert t.plan(c) == t.plan(c)
    assert c == before


# -- load-time errors -----------------------------------------------------------------------

@pytest.mark.parametrize(("rules", "key", "reason"), [
    ([rule("a", "shanghai")], "routes[0] 'a'.target", "unknown partner 'shanghai'"),
    ([rule("a", "home"), rule("a", "national", handling_region="12")], "routes[1] 'a'.name",
     "already used by routes[0]"),
    ([{"target": "home"}], "routes[0].name", "needs a non-empty name"),
    (["x"], "routes[0]", "must be a mapping"),
    ([{"name": "a", "target": "home", "when": {}}], "routes[0] 'a'.when", "unknown key"),
    ([rule("a", "home", region="11")], "routes[0] 'a'.match.region", "unknown dimension"),
    ([rule("a", "home", handling_region="110")], "routes[0] 'a'.match.handling_region",
     "has 3 digits"),
    ([rule("a", "home", handling_region=11)], "routes[0] 'a'.match.handling_region",
     "quote codes"),
    ([rule("a", "home", handling_region=[])], "routes[0] 'a'.match.handling_region",
     "empty list"),
    ([rule("a", "home", basic_code="00*1")], "routes[0] 'a'.match.basic_code",
     "only allowed at the end"),
    ([rule("a", "home", basic_code="*")], "routes[0] 'a'.match.basic_code", "leave the key out"),
    ([rule("a", "home", cross_region_mode="ONLINE")], "routes[0] 'a'.match.cross_region_mode",
     "not one of FULL_ONLINE"),
    ([rule("a", "home", applicant_type="PERSON")], "routes[0] 'a'.match.applicant_type",
     "not one of"),
    ([{**rule("a", "home"), "mapping": "x/y"}], "routes[0] 'a'.mapping", "takes no mapping"),
    ([{**rule("a", "national"), "mapping_version": 2}], "routes[0] 'a'.mapping_version",
     "non-empty string"),
    ([{**rule("a", "national"), "priority": "high"}], "routes[0] 'a'.priority", "integer"),
    ([{"name": "builtin:home-region", "target": "home"}], "routes[0] 'builtin:home-region'.name",
     "reserved"),
])
def test_build_refuses(rules: list[Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as ei:
        table(*rules)
    assert ei.value.key == key
    assert reason in ei.value.reason
    assert ei.value.file == "routes.yaml"


@pytest.mark.parametrize(("a", "b"), [
    (rule("a", "national"), rule("b", "tianjin")),
    (rule("a", "tianjin", handling_region="12"), rule("b", "hebei", handling_region="120000")),
    (rule("a", "tianjin", handling_region=["12", "13"]), rule("b", "hebei", handling_region="13")),
    (rule("a", "tianjin", basic_code="0001*"), rule("b", "hebei", basic_code="0001*")),
    (rule("a", "tianjin", basic_code="0001*"), rule("b", "hebei", basic_code="0002*")
     | {"match": {"basic_code": ["0002*", "0001*"]}}),
    (rule("a", "tianjin", basic_code="A1"), rule("b", "hebei", basic_code=["B1", "A1"])),
    (rule("a", "tianjin", handling_region="12", applicant_type="OTHER"),
     rule("b", "hebei", handling_region="12", applicant_type=["OTHER", "LEGAL_PERSON"])),
    (rule("a", "tianjin", handling_region="12", receiving_region="110105"),
     rule("b", "hebei", handling_region="12", receiving_region="110105000000")),
])
def test_ties_are_refused_at_load(a: dict[str, Any], b: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as ei:
        table(a, b)
    assert ei.value.key == "routes[1] 'b'"
    assert "ties with routes[0] 'a'" in ei.value.reason
    assert "priority" in ei.value.reason


@pytest.mark.parametrize(("a", "b"), [
    (rule("a", "tianjin", handling_region="12"), rule("b", "hebei", handling_region="13")),
    (rule("a", "tianjin", basic_code="00012*"), rule("b", "hebei", basic_code="00013*")),
    (rule("a", "tianjin", basic_code=["A", "B"]), rule("b", "hebei", basic_code=["C"])),
    (rule("a", "tianjin", handling_region="12", applicant_type="OTHER"),
     rule("b", "hebei", handling_region="12", applicant_type="LEGAL_PERSON")),
    ({**rule("a", "tianjin"), "priority": 1}, rule("b", "hebei")),
    # different specificity never ties: the earlier dimension decides (mode over applicant)
    (rule("a", "tianjin", handling_region="12"), rule("b", "hebei", handling_region="1201")),
    (rule("a", "tianjin", cross_region_mode="JOINT"), rule("b", "hebei", applicant_type="OTHER")),
    (rule("a", "tianjin", basic_code="A*"), rule("b", "hebei", basic_code="AB*")),
])
def test_non_ties_load(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert len(table(a, b).rules) == 3  # two configured + the built-in home rule
