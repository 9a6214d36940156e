"""Explain output (structure and text) and a property: a table that loads never has a tie."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import ConfigError
from gateway.routing import RouteTable
from tests.test_routing import PARTNERS, case, rule, table


def test_explain_lists_every_rule_most_specific_first() -> None:
    t = table(rule("tianjin", "tianjin", handling_region="12"),
              rule("binhai", "hebei", handling_region="120116"),
              rule("national", "national"))
    e = t.explain(case({"handlingRegion": "120116"}))
    (u,) = e.units
    assert [v.rule for v in u.verdicts] == ["binhai", "tianjin", "builtin:home-region",
                                            "national"]
    assert [v.matched for v in u.verdicts] == [True, True, False, True]
    assert u.chosen == "binhai" and u.target == "hebei" and u.mapping == ("hebei/case", "2")
    assert "beats 'tianjin' (handling_region=province) on handling_region" in u.why
    assert e.routable


def test_explain_joint_item_per_region() -> None:
    t = table(rule("tianjin", "tianjin", handling_region="12"), rule("national", "national"))
    e = t.explain(case({"handlingRegion": "110105", "jointRegions": ["120116"]}))
    assert [(u.region, u.chosen, u.joint) for u in e.units] == [
        ("110105000000", "builtin:home-region", True), ("120116000000", "tianjin", True)]
    text = e.render()
    assert "item 1 (多地联办 part) at /items/0/jointRegions/0: handling region 120116000000" in text
    assert "chosen: tianjin -> tianjin, mapping tianjin/case" in text


def test_explain_without_route_does_not_raise() -> None:
    t = table(rule("tianjin", "tianjin", handling_region="12"))
    e = t.explain(case({"handlingRegion": "440305"}))
    assert not e.routable
    doc = e.as_dict()
    assert doc["items"][0]["chosen"] is None
    assert "matches no route rule" in doc["items"][0]["why"]
    assert "NO ROUTE" in e.render()


# -- property: ties are found at load, so a loaded table never meets one at run time ----------

REGIONS = ["11", "12", "1201", "120116", "13", "1301"]
CODES = ["A1", "A2", "A*", "B1", "AB*"]
region_values = st.sampled_from(REGIONS) | st.lists(st.sampled_from(REGIONS), min_size=1,
                                                    max_size=2)
code_values = st.sampled_from(CODES) | st.lists(st.sampled_from(CODES), min_size=1, max_size=2)
match_st = st.fixed_dictionaries({}, optional={
    "handling_region": region_values,
    "basic_code": code_values,
    "applicant_type": st.sampled_from(["NATURAL_PERSON", "LEGAL_PERSON"]),
    "cross_region_mode": st.sampled_from(["JOINT", "PROXY_RECEIVE", "NONE"]),
})
rules_st = st.lists(match_st, min_size=1, max_size=6)
item_st = st.tuples(st.sampled_from(["110105", "120116", "120101", "130100", "310115"]),
                    st.sampled_from(["A1", "A2", "AB9", "B1", "C"]),
                    st.sampled_from(["NATURAL_PERSON", "LEGAL_PERSON"]),
                    st.sampled_from(["JOINT", "PROXY_RECEIVE", None]))


@settings(max_examples=300, deadline=None)
@given(rules_st, st.lists(item_st, min_size=1, max_size=5))
def test_loaded_table_never_has_two_equally_specific_matches(
        matches: list[dict[str, Any]], items: list[tuple[str, str, str, str | None]]) -> None:
    raw = [{"name": f"r{i}", "target": "national", "match": m} for i, m in enumerate(matches)]
    try:
        t = RouteTable.build(raw, PARTNERS, "110000")
    except ConfigError as e:
        assert "ties with" in e.reason
        return
    for region, code, applicant, mode in items:
        c = case({"handlingRegion": region, "basicCode": code},
                 applicant={"type": applicant, "name": "n", "certType": "111",
                            "certNo": "110105199003071239"})
        if mode is None:
            c.pop("crossRegionMode")
        else:
            c["crossRegionMode"] = mode
        (u,) = t.explain(c).units
        matched = [r for r in t.rules if not r.builtin and r.evaluate(u.facts)[0]]
        specs = [r.specificity for r in matched]
        assert len(specs) == len(set(specs))
        if matched:
            best = max(matched, key=lambda r: r.rank)
            chosen = t.choose(u.facts)
            assert chosen is not None
            assert chosen.rank >= best.rank
