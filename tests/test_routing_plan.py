"""Fan-out of a case into deliveries: grouping, 多地联办, mapping overrides, stable keys."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_routing import PARTNERS, case, partner, rule, table

FOUR_WAY = [
    rule("home", "home", handling_region="11"),
    rule("tianjin", "tianjin", handling_region="12"),
    rule("hebei", "hebei", handling_region="13"),
    rule("national", "national"),
]


def shape(plan: Any) -> list[tuple[str, tuple[str, ...], str]]:
    return [(d.partner, d.item_nos, d.region) for d in plan.deliveries]


def test_ten_item_bundle_one_delivery_per_partner_message() -> None:
    regions = ["110105", "110108", "120116", "120101", "120116", "130100", "131000",
               "310115", "440305", "330106"]
    c = case(*({"handlingRegion": r} for r in regions),
             bundle={"scenarioCode": "YJS-1", "scenarioName": "十件事"})
    plan = table(*FOUR_WAY).plan(c)
    assert plan.home_items == ["1", "2"]
    assert shape(plan) == [
        ("tianjin", ("3", "4", "5"), "120100000000"),  # many: together, region = smallest area
        ("hebei", ("6", "7"), "130000000000"),
        ("national", ("8",), "310115000000"),          # one: a delivery each
        ("national", ("9",), "440305000000"),
        ("national", ("10",), "330106000000"),
    ]
    assert [d.key for d in plan.deliveries] == [
        "tianjin:120100000000:3+4+5", "hebei:130000000000:6+7", "national:310115000000:8",
        "national:440305000000:9", "national:330106000000:10"]
    assert {d.rule for d in plan.deliveries} == {"tianjin", "hebei", "national"}


def test_keys_do_not_depend_on_item_order() -> None:
    t = table(*FOUR_WAY)
    a = case({"itemNo": "1", "handlingRegion": "120116"}, {"itemNo": "2", "handlingRegion": "120101"})
    b = case({"itemNo": "2", "handlingRegion": "120101"}, {"itemNo": "1", "handlingRegion": "120116"})
    assert [d.key for d in t.plan(a).deliveries] == [d.key for d in t.plan(b).deliveries]


def test_many_never_spans_provinces() -> None:
    t = table(rule("all-to-tianjin", "tianjin"))
    plan = t.plan(case({"handlingRegion": "120116"}, {"handlingRegion": "130100"},
                       {"handlingRegion": "120101"}))
    assert shape(plan) == [("tianjin", ("1", "3"), "120100000000"),
                           ("tianjin", ("2",), "130100000000")]


@pytest.mark.parametrize(("extra", "expected"), [
    ({}, [("hebei/case", "2")]),
    ({"mapping_version": "3"}, [("hebei/case", "3")]),
    ({"mapping": "hebei/case-v2"}, [("hebei/case-v2", None)]),
    ({"mapping": "hebei/case-v2", "mapping_version": "7"}, [("hebei/case-v2", "7")]),
])
def test_mapping_override(extra: dict[str, Any], expected: list[tuple[str, str | None]]) -> None:
    t = table({**rule("hebei", "hebei", handling_region="13"), **extra})
    plan = t.plan(case({"handlingRegion": "130100"}))
    assert [(d.mapping, d.mapping_version) for d in plan.deliveries] == expected


def test_different_mappings_to_one_partner_travel_apart() -> None:
    t = table(rule("hebei", "hebei", handling_region="13"),
              {**rule("hebei-licences", "hebei", handling_region="13", basic_code="LIC*"),
               "mapping": "hebei/licence"})
    plan = t.plan(case({"handlingRegion": "130100"}, {"handlingRegion": "131000",
                                                        "basicCode": "LIC-1"},
                       {"handlingRegion": "130102"}))
    assert [(d.mapping, d.item_nos, d.rule) for d in plan.deliveries] == [
        ("hebei/case", ("1", "3"), "hebei"), ("hebei/licence", ("2",), "hebei-licences")]


def test_items_of_one_partner_message_may_come_from_several_rules() -> None:
    t = table(rule("tianjin", "tianjin", handling_region="12"),
              rule("binhai", "tianjin", handling_region="120116"))
    plan = t.plan(case({"handlingRegion": "120116"}, {"handlingRegion": "120101"}))
    assert [(d.item_nos, d.rule) for d in plan.deliveries] == [(("1", "2"), "binhai+tianjin")]


def test_joint_item_fans_out_to_every_region() -> None:
    t = table(*FOUR_WAY)
    c = case({"handlingRegion": "110105", "jointRegions": ["120116", "130100000000", "110105"]},
             {"handlingRegion": "120101"}, crossRegionMode="JOINT")
    plan = t.plan(c)
    assert plan.home_items == ["1"]
    assert shape(plan) == [("tianjin", ("1", "2"), "120100000000"),
                           ("hebei", ("1",), "130100000000")]
    assert [d.joint for d in plan.deliveries] == [True, True]  # each carries a joint part
    assert [d.partner for d in plan.deliveries_for("1")] == ["tianjin", "hebei"]
    assert [a.pointer for a in plan.assignments if a.item_no == "1"] == [
        "/items/0", "/items/0/jointRegions/0", "/items/0/jointRegions/1"]


def test_two_districts_of_one_province_travel_in_one_delivery_naming_both() -> None:
    t = table(*FOUR_WAY)
    plan = t.plan(case({"handlingRegion": "120116", "jointRegions": ["120101"]},
                       {"handlingRegion": "120116"}))
    # one message to Tianjin; the joint item appears in it once
    assert shape(plan) == [("tianjin", ("1", "2"), "120100000000")]
    assert plan.deliveries[0].key == "tianjin:120100000000:1+2"
    assert [a.region for a in plan.assignments if a.item_no == "1"] == [
        "120116000000", "120101000000"]  # both parts were routed, and both travel together


def test_joint_item_through_one_item_per_message_partner() -> None:
    t = table(rule("national", "national"))
    plan = t.plan(case({"handlingRegion": "310115", "jointRegions": ["440305"]}))
    assert shape(plan) == [("national", ("1",), "310115000000"),
                           ("national", ("1",), "440305000000")]
    assert all(d.joint for d in plan.deliveries)


def test_one_item_per_message_still_merges_a_joint_items_districts() -> None:
    t = table(rule("national", "national"))
    plan = t.plan(case({"handlingRegion": "310115", "jointRegions": ["310104", "440305"]},
                       {"handlingRegion": "310104"}))
    assert shape(plan) == [("national", ("1",), "310100000000"),   # Pudong + Xuhui, one part
                           ("national", ("1",), "440305000000"),
                           ("national", ("2",), "310104000000")]
    assert len({d.key for d in plan.deliveries}) == 3


def test_a_delivery_never_covers_a_joint_region_handled_elsewhere() -> None:
    # Langfang goes to the national channel by a district rule; the Hebei message for the
    # joint item must not be labelled with the whole province (it would claim Langfang)
    t = table(*FOUR_WAY, rule("langfang", "national", handling_region="131000"))
    plan = t.plan(case({"handlingRegion": "130100", "jointRegions": ["131000"]},
                       {"handlingRegion": "130200"}))
    hebei = [(d.item_nos, d.region) for d in plan.deliveries if d.partner == "hebei"]
    national = [(d.item_nos, d.region) for d in plan.deliveries if d.partner == "national"]
    assert national == [(("1",), "131000000000")]
    assert sorted(hebei) == [(("1",), "130100000000"), (("2",), "130200000000")]


def test_without_joint_items_a_delivery_may_span_districts() -> None:
    t = table(*FOUR_WAY, rule("langfang", "national", handling_region="131000"))
    plan = t.plan(case({"handlingRegion": "130100"}, {"handlingRegion": "130200"},
                       {"handlingRegion": "131000"}))
    assert shape(plan) == [("hebei", ("1", "2"), "130000000000"),
                           ("national", ("3",), "131000000000")]


def test_a_joint_part_with_no_route_is_named_by_its_pointer() -> None:
    from gateway.errors import NoRouteError
    t = table(rule("tianjin", "tianjin", handling_region="12"))
    with pytest.raises(NoRouteError) as ei:
        t.plan(case({"handlingRegion": "120116", "jointRegions": ["440305"]}))
    assert [p.path for p in ei.value.problems] == ["/items/0/jointRegions/0"]


def test_all_home_case_has_no_deliveries() -> None:
    plan = table(*FOUR_WAY).plan(case({"handlingRegion": "110105"}, {"handlingRegion": "110108"}))
    assert plan.deliveries == [] and plan.home_items == ["1", "2"]


def test_home_region_given_in_twelve_digits() -> None:
    t = table(rule("national", "national"), home="110000000000")
    assert t.plan(case({"handlingRegion": "110105"})).home_items == ["1"]


def test_partner_with_many_but_one_item() -> None:
    partners = {**PARTNERS, "tianjin": partner("tianjin/case", "many")}
    t = table(rule("t", "tianjin"), partners=partners)
    assert shape(t.plan(case({"handlingRegion": "120116"}))) == [
        ("tianjin", ("1",), "120116000000")]
