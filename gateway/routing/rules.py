"""Route rules: parsed from configuration once, then matched against routing facts (pure).

A rule is a set of *conditions*, one per dimension it constrains. Every condition knows three
things, which is all the table needs:

* ``matches(value)`` — does one item's fact satisfy it (explain also asks ``why_not``);
* ``precision`` — how narrow it is, the number specificity is built from;
* ``overlaps(other)`` — could some value satisfy both; used at load to find ties.

Dimensions are listed in ``DIMENSIONS`` in their order of weight (see README.md in this package
for the specificity order and the reasons for it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.domain.regions import level_name, region_pattern

HOME = "home"

CROSS_REGION_MODES = ("FULL_ONLINE", "PROXY_RECEIVE", "JOINT", "NONE")
APPLICANT_TYPES = ("NATURAL_PERSON", "LEGAL_PERSON", "OTHER")

#: precision of an exact code: above any prefix (codes are at most 64 characters)
EXACT_CODE = 100
MAX_CODE_LEN = 64


class RuleSyntaxError(ValueError):
    """A rule that cannot be read; ``key`` is the dotted path inside the rule."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class RegionCondition:
    """Region inside any of ``prefixes`` (significant prefixes: province 2 … village 12)."""

    key: str
    prefixes: tuple[str, ...]

    @property
    def precision(self) -> int:
        # a list is only as specific as its widest member
        return min(len(p) for p in self.prefixes)

    def matches(self, value: str | None) -> bool:
        return value is not None and any(value.startswith(p) for p in self.prefixes)

    def overlaps(self, other: Condition) -> bool:
        assert isinstance(other, RegionCondition)
        return any(a.startswith(b) or b.startswith(a)
                   for a in self.prefixes for b in other.prefixes)

    def describe(self) -> str:
        return " | ".join(f"{p} ({level_name(p)})" for p in self.prefixes)


@dataclass(frozen=True)
class CodeCondition:
    """Code equal to one of ``exact`` or starting with one of ``prefixes`` (written ``ABC*``)."""

    key: str
    exact: frozenset[str]
    prefixes: tuple[str, ...]

    @property
    def precision(self) -> int:
        widths = [EXACT_CODE] * bool(self.exact) + [len(p) for p in self.prefixes]
        return min(widths)

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        return value in self.exact or any(value.startswith(p) for p in self.prefixes)

    def overlaps(self, other: Condition) -> bool:
        assert isinstance(other, CodeCondition)
        if self.exact & other.exact:
            return True
        if any(other.matches(v) for v in self.exact) or any(self.matches(v) for v in other.exact):
            return True
        return any(a.startswith(b) or b.startswith(a)
                   for a in self.prefixes for b in other.prefixes)

    def describe(self) -> str:
        return " | ".join(sorted(self.exact) + [p + "*" for p in self.prefixes])


@dataclass(frozen=True)
class ChoiceCondition:
    """Value is one of a closed set (cross-region mode, applicant type)."""

    key: str
    values: frozenset[str]

    @property
    def precision(self) -> int:
        return 1

    def matches(self, value: str | None) -> bool:
        return value in self.values

    def overlaps(self, other: Condition) -> bool:
        assert isinstance(other, ChoiceCondition)
        return bool(self.values & other.values)

    def describe(self) -> str:
        return " | ".join(sorted(self.values))


Condition = RegionCondition | CodeCondition | ChoiceCondition


@dataclass(frozen=True)
class Dimension:
    key: str
    kind: str  # "region" | "code" | "choice"
    choices: tuple[str, ...] = ()


#: Order of weight: an earlier dimension outranks every later one (lexicographic specificity).
DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("implementation_code", "code"),
    Dimension("basic_code", "code"),
    Dimension("handling_region", "region"),
    Dimension("scenario_code", "code"),
    Dimension("theme_code", "code"),
    Dimension("receiving_region", "region"),
    Dimension("cross_region_mode", "choice", CROSS_REGION_MODES),
    Dimension("applicant_type", "choice", APPLICANT_TYPES),
)
DIMENSION_KEYS = tuple(d.key for d in DIMENSIONS)
RULE_KEYS = ("name", "match", "target", "mapping", "mapping_version", "priority", "description")


@dataclass(frozen=True)
class Rule:
    """One route rule. ``index`` is its position in the ``routes:`` list (-1 for built-ins)."""

    index: int
    name: str
    target: str
    conditions: Mapping[str, Condition]
    priority: int = 0
    mapping: str | None = None
    mapping_version: str | None = None
    description: str | None = None
    builtin: bool = False
    specificity: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        precisions = tuple(self.conditions[k].precision if k in self.conditions else 0
                           for k in DIMENSION_KEYS)
        object.__setattr__(self, "specificity", (*precisions, self.priority))

    @property
    def rank(self) -> tuple[int, ...]:
        """Sort key, highest first; a built-in loses to a configured rule of equal specificity."""
        return (*self.specificity, 0 if self.builtin else 1)

    @property
    def label(self) -> str:
        return f"routes[{self.index}] '{self.name}'" if not self.builtin else f"'{self.name}'"

    def matches(self, facts: Mapping[str, str | None]) -> bool:
        """The hot path: every condition holds (no reasons built)."""
        return all(c.matches(facts.get(k)) for k, c in self.conditions.items())

    def evaluate(self, facts: Mapping[str, str | None]) -> tuple[bool, tuple[str, ...]]:
        """(matched, reasons): one line per condition, saying whether and why it held."""
        ok = True
        reasons: list[str] = []
        for key in DIMENSION_KEYS:
            cond = self.conditions.get(key)
            if cond is None:
                continue
            value = facts.get(key)
            if cond.matches(value):
                reasons.append(f"{key} {value} in {cond.describe()}")
            else:
                ok = False
                shown = "absent" if value is None else value
                reasons.append(f"{key} {shown} not in {cond.describe()}")
        if not self.conditions:
            reasons.append("no conditions (matches every item)")
        return ok, tuple(reasons)

    def may_overlap(self, other: Rule) -> bool:
        """True when some item could satisfy both rules (dimensions treated as independent)."""
        for key in DIMENSION_KEYS:
            a, b = self.conditions.get(key), other.conditions.get(key)
            if a is not None and b is not None and not a.overlaps(b):
                return False
        return True


def describe_specificity(spec: Sequence[int]) -> str:
    """Human form of a specificity tuple, naming only the dimensions that count."""
    parts = []
    for dim, p in zip(DIMENSIONS, spec, strict=False):
        if not p:
            continue
        if dim.kind == "region":
            parts.append(f"{dim.key}={level_name('0' * p)}")
        elif dim.kind == "code":
            parts.append(f"{dim.key}={'exact' if p == EXACT_CODE else f'prefix({p})'}")
        else:
            parts.append(dim.key)
    if spec[-1]:
        parts.append(f"priority={spec[-1]}")
    return ", ".join(parts) or "catch-all"


def _as_list(key: str, raw: Any) -> list[str]:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise RuleSyntaxError(key, "empty list (leave the key out to match everything)")
    for v in values:
        if not isinstance(v, str) or not v:
            raise RuleSyntaxError(key, f"{v!r} is not a non-empty string (quote codes in YAML)")
    return values


def parse_condition(dim: Dimension, raw: Any) -> Condition:
    key = f"match.{dim.key}"
    values = _as_list(key, raw)
    if dim.kind == "region":
        prefixes = []
        for v in values:
            try:
                prefixes.append(region_pattern(v))
            except ValueError as e:
                raise RuleSyntaxError(key, str(e)) from e
        return RegionCondition(dim.key, tuple(dict.fromkeys(prefixes)))
    if dim.kind == "code":
        exact: set[str] = set()
        prefixes = []
        for v in values:
            if len(v) > MAX_CODE_LEN + 1:
                raise RuleSyntaxError(key, f"{v!r} is longer than {MAX_CODE_LEN} characters")
            if "*" in v[:-1]:
                raise RuleSyntaxError(key, f"{v!r}: '*' is only allowed at the end (a prefix)")
            if v.endswith("*"):
                if v == "*":
                    raise RuleSyntaxError(key, "'*' alone matches everything; leave the key out")
                prefixes.append(v[:-1])
            else:
                exact.add(v)
        return CodeCondition(dim.key, frozenset(exact), tuple(dict.fromkeys(prefixes)))
    bad = [v for v in values if v not in dim.choices]
    if bad:
        raise RuleSyntaxError(key, f"{bad[0]!r} is not one of {', '.join(dim.choices)}")
    return ChoiceCondition(dim.key, frozenset(values))


def parse_rule(index: int, raw: Any) -> Rule:
    """Read one ``routes:`` entry; raises ``RuleSyntaxError`` naming the key inside the rule."""
    if not isinstance(raw, dict):
        raise RuleSyntaxError("", "a rule must be a mapping with name, match and target")
    unknown = sorted(set(raw) - set(RULE_KEYS))
    if unknown:
        raise RuleSyntaxError(unknown[0], f"unknown key (allowed: {', '.join(RULE_KEYS)})")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleSyntaxError("name", "every rule needs a non-empty name")
    target = raw.get("target")
    if not isinstance(target, str) or not target:
        raise RuleSyntaxError("target", f"must be a partner name or '{HOME}'")
    match = raw.get("match") or {}
    if not isinstance(match, dict):
        raise RuleSyntaxError("match", "must be a mapping of dimension to value(s)")
    unknown = sorted(set(match) - set(DIMENSION_KEYS))
    if unknown:
        raise RuleSyntaxError(f"match.{unknown[0]}",
                              f"unknown dimension (allowed: {', '.join(DIMENSION_KEYS)})")
    conditions = {d.key: parse_condition(d, match[d.key]) for d in DIMENSIONS if d.key in match}
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise RuleSyntaxError("priority", "must be an integer (tie-breaker, default 0)")
    mapping, version = raw.get("mapping"), raw.get("mapping_version")
    for k, v in (("mapping", mapping), ("mapping_version", version)):
        if v is not None and (not isinstance(v, str) or not v):
            raise RuleSyntaxError(k, "must be a non-empty string (quote versions in YAML)")
    if target == HOME and (mapping or version):
        raise RuleSyntaxError("mapping", f"a '{HOME}' rule delivers nothing; it takes no mapping")
    desc = raw.get("description")
    return Rule(index=index, name=name.strip(), target=target, conditions=conditions,
                priority=priority, mapping=mapping, mapping_version=version,
                description=str(desc) if desc is not None else None)
