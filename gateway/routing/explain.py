"""Why a case routes the way it does: a structured explanation and its text rendering.

The structure is what tests and the HTTP layer use (``as_dict``); ``render`` is for people at a
terminal (``gateway route explain``). Rules are listed most specific first, the order in which
the table tries them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RuleVerdict:
    rule: str
    index: int
    target: str
    specificity: str
    matched: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class UnitExplanation:
    """One item (or one region of a 多地联办 item): the facts, every verdict, the choice."""

    item_no: str
    item_index: int
    region: str
    pointer: str
    joint: bool
    facts: Mapping[str, str | None]
    verdicts: tuple[RuleVerdict, ...]
    chosen: str | None
    target: str | None
    mapping: tuple[str | None, str | None]
    why: str


@dataclass(frozen=True)
class Explanation:
    units: tuple[UnitExplanation, ...]

    @property
    def routable(self) -> bool:
        return all(u.chosen is not None for u in self.units)

    def as_dict(self) -> dict[str, Any]:
        return {"routable": self.routable, "items": [
            {"itemNo": u.item_no, "pointer": u.pointer, "region": u.region, "joint": u.joint,
             "facts": dict(u.facts), "chosen": u.chosen, "target": u.target,
             "mapping": u.mapping[0], "mappingVersion": u.mapping[1], "why": u.why,
             "rules": [{"rule": v.rule, "index": v.index, "target": v.target,
                        "specificity": v.specificity, "matched": v.matched,
                        "reasons": list(v.reasons)} for v in u.verdicts]}
            for u in self.units]}

    def render(self) -> str:
        lines: list[str] = []
        for u in self.units:
            joint = " (多地联办 part)" if u.joint else ""
            lines.append(f"item {u.item_no}{joint} at {u.pointer}: handling region {u.region}")
            facts = ", ".join(f"{k}={v}" for k, v in u.facts.items() if v is not None)
            lines.append(f"  facts: {facts}")
            for v in u.verdicts:
                mark = "MATCH" if v.matched else "no   "
                where = f"routes[{v.index}]" if v.index >= 0 else "built-in"
                lines.append(f"  {mark} {v.rule} [{where}] -> {v.target} ({v.specificity})")
                for r in v.reasons:
                    lines.append(f"        {r}")
            if u.chosen:
                version = f"@{u.mapping[1]}" if u.mapping[1] else ""
                mapping = f", mapping {u.mapping[0]}{version}" if u.mapping[0] else ""
                lines.append(f"  chosen: {u.chosen} -> {u.target}{mapping}")
                lines.append(f"  why: {u.why}")
            else:
                lines.append(f"  NO ROUTE: {u.why}")
            lines.append("")
        return "\n".join(lines)
