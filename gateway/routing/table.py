"""The route table: built and checked once from configuration, then a pure function of a case.

``RouteTable.build`` does every check that can be done without a case — syntax, unknown
partners, and ties between equally specific rules that could match the same item — so a table
that loads never fails at run time except with ``NoRouteError`` for an item nothing matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.config import PartnerSettings
from gateway.domain.regions import normalise, region_pattern
from gateway.errors import ConfigError, FieldProblem, NoRouteError, ValidationFailed
from gateway.routing.explain import Explanation, RuleVerdict, UnitExplanation
from gateway.routing.plan import Assignment, RoutingPlan, group
from gateway.routing.rules import (DIMENSION_KEYS, HOME, RegionCondition, Rule,
                                   RuleSyntaxError, describe_specificity, parse_rule)

BUILTIN_HOME = "builtin:home-region"


@dataclass(frozen=True)
class Unit:
    """One routing unit: an item, or one region of a 多地联办 item, with its facts."""

    item_no: str
    item_index: int
    region: str
    pointer: str
    joint: bool
    facts: Mapping[str, str | None]


def units_of(case: Mapping[str, Any]) -> list[Unit]:
    """Split a (schema-valid) case into routing units, in case order.

    An item's regions are its ``handlingRegion`` followed by its ``jointRegions`` (the union,
    normalised to 12 digits, duplicates dropped); more than one region makes it 多地联办.
    """
    bundle = case.get("bundle") or {}
    common = {
        "receiving_region": _norm(case.get("receivingRegion"), "/receivingRegion"),
        "cross_region_mode": case.get("crossRegionMode") or "NONE",
        "scenario_code": bundle.get("scenarioCode"),
        "theme_code": bundle.get("themeCode"),
        "applicant_type": (case.get("applicant") or {}).get("type"),
    }
    units: list[Unit] = []
    for i, item in enumerate(case.get("items") or []):
        regions: dict[str, str] = {}
        regions[_norm(item.get("handlingRegion"), f"/items/{i}/handlingRegion")] = f"/items/{i}"
        for j, r in enumerate(item.get("jointRegions") or []):
            regions.setdefault(_norm(r, f"/items/{i}/jointRegions/{j}"),
                               f"/items/{i}/jointRegions/{j}")
        for region, pointer in regions.items():
            facts = {"handling_region": region, "basic_code": item.get("basicCode"),
                     "implementation_code": item.get("implementationCode"), **common}
            units.append(Unit(str(item.get("itemNo")), i, region, pointer, len(regions) > 1,
                              facts))
    return units


def _norm(code: Any, pointer: str) -> str:
    """12-digit region, or ``ValidationFailed`` for a case that skipped schema validation."""
    try:
        if not isinstance(code, str):
            raise ValueError("a region code is required")
        return normalise(code)
    except ValueError as e:
        raise ValidationFailed("region code is not valid",
                               [FieldProblem(pointer, str(e))]) from e


class RouteTable:
    """Immutable, checked rules, ordered most specific first. Build with ``RouteTable.build``."""

    def __init__(self, rules: Sequence[Rule], partners: Mapping[str, PartnerSettings],
                 home_region: str, source: str | None) -> None:
        self.rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: r.rank, reverse=True))
        self.partners = dict(partners)
        self.home_region = home_region
        self.source = source

    @classmethod
    def build(cls, rules: list[dict[str, Any]], partners: Mapping[str, PartnerSettings],
              home_region: str, *, source: str | None = None) -> RouteTable:
        """Parse and check ``rules``; raise ``ConfigError`` naming the rule, key and reason."""
        if not isinstance(rules, list):
            raise ConfigError("must be a list of rules", file=source, key="routes")
        parsed: list[Rule] = []
        names: dict[str, int] = {}
        for i, raw in enumerate(rules):
            label = f"routes[{i}]" + (f" '{raw['name']}'" if isinstance(raw, dict)
                                       and isinstance(raw.get("name"), str) else "")
            try:
                rule = parse_rule(i, raw)
            except RuleSyntaxError as e:
                key = f"{label}.{e.key}" if e.key else label
                raise ConfigError(e.reason, file=source, key=key) from e
            if rule.name in names:
                raise ConfigError(f"name already used by routes[{names[rule.name]}]",
                                  file=source, key=f"{label}.name")
            if rule.name == BUILTIN_HOME:
                raise ConfigError("name is reserved", file=source, key=f"{label}.name")
            names[rule.name] = i
            if rule.target != HOME and rule.target not in partners:
                known = ", ".join(sorted(partners)) or "none configured"
                raise ConfigError(f"unknown partner {rule.target!r} (partners: {known}; "
                                  f"or '{HOME}')", file=source, key=f"{label}.target")
            parsed.append(rule)
        _check_ties(parsed, source)
        try:
            home = region_pattern(home_region)
        except ValueError as e:
            raise ConfigError(str(e), file=source, key="home_region") from e
        parsed.append(Rule(index=-1, name=BUILTIN_HOME, target=HOME, builtin=True,
                           conditions={"handling_region":
                                       RegionCondition("handling_region", (home,))},
                           description="items handled in the home region stay home"))
        return cls(parsed, partners, home_region, source)

    # -- run time ---------------------------------------------------------------------------

    def choose(self, facts: Mapping[str, str | None]) -> Rule | None:
        """The most specific rule matching ``facts`` (unique: ties were refused at build)."""
        for rule in self.rules:
            if rule.matches(facts):
                return rule
        return None

    def plan(self, case: Mapping[str, Any]) -> RoutingPlan:
        """Route every item of a validated case; ``NoRouteError`` lists every unroutable item."""
        assignments: list[Assignment] = []
        problems: list[FieldProblem] = []
        for unit in units_of(case):
            rule = self.choose(unit.facts)
            if rule is None:
                problems.append(FieldProblem(unit.pointer, self._no_route_message(unit)))
                continue
            assignments.append(self._assign(unit, rule))
        if problems:
            items = ", ".join(dict.fromkeys(p.path for p in problems))
            raise NoRouteError(f"no route rule matches {items}", problems)
        return group(assignments, self.partners)

    def explain(self, case: Mapping[str, Any]) -> Explanation:
        """Every rule's verdict for every unit, the choice and the reason for it."""
        units = []
        for unit in units_of(case):
            verdicts = []
            for rule in self.rules:
                matched, reasons = rule.evaluate(unit.facts)
                verdicts.append(RuleVerdict(rule.name, rule.index, rule.target,
                                            describe_specificity(rule.specificity),
                                            matched, reasons))
            matching = [r for r in self.rules if r.matches(unit.facts)]
            chosen = matching[0] if matching else None
            units.append(UnitExplanation(
                item_no=unit.item_no, item_index=unit.item_index, region=unit.region,
                pointer=unit.pointer, joint=unit.joint, facts=dict(unit.facts),
                verdicts=tuple(verdicts), chosen=chosen.name if chosen else None,
                target=chosen.target if chosen else None,
                mapping=self._mapping(chosen) if chosen else (None, None),
                why=_why(matching) if chosen else self._no_route_message(unit)))
        return Explanation(tuple(units))

    def mapping_refs(self) -> list[tuple[str, str, str | None]]:
        """(rule, mapping, version) for every delivering rule: what a reload must find."""
        refs = []
        for rule in self.rules:
            mapping, version = self._mapping(rule)
            if mapping is not None:
                refs.append((rule.name, mapping, version))
        return refs

    # -- helpers ----------------------------------------------------------------------------

    def _mapping(self, rule: Rule) -> tuple[str | None, str | None]:
        """A rule's mapping override; overriding the name without a version means its latest."""
        if rule.target == HOME:
            return None, None
        partner = self.partners[rule.target]
        if rule.mapping is not None:
            return rule.mapping, rule.mapping_version
        return partner.mapping, rule.mapping_version or partner.mapping_version

    def _assign(self, unit: Unit, rule: Rule) -> Assignment:
        mapping, version = self._mapping(rule)
        return Assignment(unit.item_no, unit.item_index, unit.region, unit.pointer, rule.name,
                          rule.target, mapping, version, unit.joint)

    def _no_route_message(self, unit: Unit) -> str:
        tried = "; ".join(f"{r.name}: " + ", ".join(
            x for x in r.evaluate(unit.facts)[1] if " not in " in x) for r in self.rules)
        return (f"item {unit.item_no} (handling region {unit.region}) matches no route rule; "
                f"tried {tried}")


def _why(matching: Sequence[Rule]) -> str:
    best = matching[0]
    spec = describe_specificity(best.specificity)
    # the built-in home rule only ever loses ties; it is not worth naming as the runner-up
    others = [r for r in matching[1:] if not (r.builtin and r.specificity == best.specificity)]
    note = ("; the built-in home rule is equally specific and yields to configured rules"
            if len(others) < len(matching) - 1 else "")
    if not others:
        return f"only matching rule ({spec}){note}"
    runner = others[0]
    dim = next(i for i, (a, b) in enumerate(zip(best.specificity, runner.specificity,
                                                strict=True)) if a != b)
    decider = DIMENSION_KEYS[dim] if dim < len(DIMENSION_KEYS) else "priority"
    return (f"most specific of {len(matching)} matching rules ({spec}); beats "
            f"'{runner.name}' ({describe_specificity(runner.specificity)}) on {decider}{note}")


def _check_ties(rules: Sequence[Rule], source: str | None) -> None:
    """Refuse two rules of equal specificity that some item could match both of."""
    by_spec: dict[tuple[int, ...], list[Rule]] = {}
    for r in rules:
        by_spec.setdefault(r.specificity, []).append(r)
    for same in by_spec.values():
        for i, a in enumerate(same):
            for b in same[i + 1:]:
                if a.may_overlap(b):
                    raise ConfigError(
                        f"ties with {a.label}: both are {describe_specificity(a.specificity)} "
                        "and an item can match both; narrow one of them or give one a higher "
                        "'priority'", file=source, key=b.label)
