"""Canonical case statuses, the never-regress rule, and the bundle's derived status (all pure).

Statuses are the exchange's semantic codes (DESIGN.md §4), never a vendor's numbers; vendor
code tables at the bottom translate both ways. Three decisions live here:

``advance(current, incoming)``
    Partners send duplicates and deliver events out of order, so an incoming status replaces the
    current one only if it moves the case forward in ``RANK``. A terminal status never changes
    (the first terminal wins). Equal rank is a sideways move (IN_REVIEW ⇄ SUSPENDED): the newer
    event wins. The one legitimate step back — 补正 asked for again during review — is accepted
    only when both events carry times and the incoming one is newer.

``derive_bundle(children)``
    A "一件事" bundle shows the applicant one status. It is FINISHED (or the common terminal
    status) only when every child is terminal, with each child's outcome. While any child is
    open, a child that waits for the applicant (PRECHECK_RETURNED before SUPPLEMENT_REQUIRED:
    earliest in the process first) surfaces together with which part needs it; otherwise the
    bundle is as far along as its slowest open child. A child not yet delivered counts as
    SUBMITTED; a dead-lettered child is listed under ``attention`` for an operator.

``derive_items(children)``
    The same rule per item: a 多地联办 item is done only when every region's child is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class CaseStatus(StrEnum):
    SUBMITTED = "SUBMITTED"                      # 已申报
    PRECHECK_RETURNED = "PRECHECK_RETURNED"      # 预审退回
    PRECHECK_PASSED = "PRECHECK_PASSED"          # 预审通过
    RECEIVED = "RECEIVED"                        # 已接件 (收件, 异地代收)
    SUPPLEMENT_REQUIRED = "SUPPLEMENT_REQUIRED"  # 补齐补正
    ACCEPTED = "ACCEPTED"                        # 已受理
    IN_REVIEW = "IN_REVIEW"                      # 审查中
    SUSPENDED = "SUSPENDED"                      # 特别程序 (听证、检验、专家评审…)
    FINISHED = "FINISHED"                        # 办结 (with a Result)
    NOT_ACCEPTED = "NOT_ACCEPTED"                # 不予受理
    WITHDRAWN = "WITHDRAWN"                      # 撤件
    VOIDED = "VOIDED"                            # 作废 / 异常终止


class Result(StrEnum):
    APPROVED = "APPROVED"  # 准予
    DENIED = "DENIED"      # 不予


S = CaseStatus
TERMINAL: frozenset[CaseStatus] = frozenset({S.FINISHED, S.NOT_ACCEPTED, S.WITHDRAWN, S.VOIDED})
#: States that wait for the applicant, earliest in the process first.
BLOCKING: tuple[CaseStatus, ...] = (S.PRECHECK_RETURNED, S.SUPPLEMENT_REQUIRED)

#: Progress order. Equal rank = sideways move; all terminal statuses share the top rank.
RANK: Mapping[CaseStatus, int] = MappingProxyType({
    S.SUBMITTED: 0,
    S.PRECHECK_RETURNED: 10,
    S.PRECHECK_PASSED: 20,
    S.RECEIVED: 30,
    S.SUPPLEMENT_REQUIRED: 40,
    S.ACCEPTED: 50,
    S.IN_REVIEW: 60,
    S.SUSPENDED: 60,
    S.FINISHED: 100,
    S.NOT_ACCEPTED: 100,
    S.WITHDRAWN: 100,
    S.VOIDED: 100,
})

#: Steps back that happen for real (补正 requested again during review), allowed only when
#: event times prove the incoming event is newer.
_REENTRY: frozenset[tuple[CaseStatus, CaseStatus]] = frozenset(
    (cur, S.SUPPLEMENT_REQUIRED) for cur in (S.ACCEPTED, S.IN_REVIEW, S.SUSPENDED))


def is_terminal(status: CaseStatus) -> bool:
    return status in TERMINAL


def advance(current: CaseStatus | None, incoming: CaseStatus, *,
            current_at: datetime | None = None,
            incoming_at: datetime | None = None) -> CaseStatus:
    """The status after ``incoming`` arrives: ``current`` or ``incoming``, never a regression."""
    if current is None:
        return incoming
    if current in TERMINAL or incoming == current:
        return current
    newer = None if current_at is None or incoming_at is None else incoming_at > current_at
    if incoming in TERMINAL or RANK[incoming] > RANK[current]:
        return incoming
    if RANK[incoming] == RANK[current]:
        return current if newer is False else incoming
    if (current, incoming) in _REENTRY and newer:
        return incoming
    return current


# -- bundle derivation ----------------------------------------------------------------------

@dataclass(frozen=True)
class ChildView:
    """What the bundle needs to know about one child delivery.

    ``status`` is None until the partner has acknowledged anything (counts as SUBMITTED).
    """

    key: str
    status: CaseStatus | None = None
    result: Result | None = None
    partner: str | None = None
    item_nos: tuple[str, ...] = ()
    region: str | None = None
    dead_letter: bool = False

    @property
    def effective(self) -> CaseStatus:
        return self.status or S.SUBMITTED

    @property
    def outcome(self) -> str | None:
        """APPROVED/DENIED for a finished child, the terminal status for others, else None."""
        if self.effective is S.FINISHED:
            return self.result.value if self.result else S.FINISHED.value
        return self.effective.value if self.effective in TERMINAL else None


@dataclass(frozen=True)
class BundleView:
    """The one status the applicant sees, and the parts that explain it."""

    status: CaseStatus
    result: Result | None = None
    outcomes: Mapping[str, str] = field(default_factory=dict)
    blocking: tuple[ChildView, ...] = ()
    attention: tuple[ChildView, ...] = ()
    pending: tuple[str, ...] = ()
    children: tuple[ChildView, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def needs_attention(self) -> bool:
        return bool(self.attention)

    def as_dict(self) -> dict[str, Any]:
        def part(c: ChildView) -> dict[str, Any]:
            return {"key": c.key, "partner": c.partner, "itemNos": list(c.item_nos),
                    "region": c.region, "status": c.effective.value,
                    "result": c.result.value if c.result else None,
                    "deadLetter": c.dead_letter}
        return {"status": self.status.value, "terminal": self.terminal,
                "result": self.result.value if self.result else None,
                "outcomes": dict(self.outcomes),
                "blocking": [part(c) for c in self.blocking],
                "needsAttention": self.needs_attention,
                "attention": [part(c) for c in self.attention],
                "pending": list(self.pending),
                "children": [part(c) for c in self.children]}


def _bundle_result(children: Sequence[ChildView]) -> Result | None:
    """APPROVED when every child was approved, DENIED when every child finished denied."""
    if all(c.effective is S.FINISHED and c.result is Result.APPROVED for c in children):
        return Result.APPROVED
    if all(c.effective is S.FINISHED and c.result is Result.DENIED for c in children):
        return Result.DENIED
    return None


def derive_bundle(children: Sequence[ChildView]) -> BundleView:
    """Derive the bundle's status from its children (see the module docstring for the rule)."""
    kids = tuple(children)
    attention = tuple(c for c in kids if c.dead_letter)
    pending = tuple(c.key for c in kids if c.status is None)
    common: dict[str, Any] = {"attention": attention, "pending": pending, "children": kids}
    if not kids:
        return BundleView(S.SUBMITTED, **common)
    open_ = [c for c in kids if c.effective not in TERMINAL]
    if not open_:
        outcomes = {c.key: c.outcome or "" for c in kids}
        statuses = {c.effective for c in kids}
        status = statuses.pop() if len(statuses) == 1 else S.FINISHED
        result = _bundle_result(kids) if status is S.FINISHED else None
        return BundleView(status, result, outcomes, **common)
    outcomes = {c.key: o for c in kids if (o := c.outcome) is not None}
    blocking = tuple(sorted((c for c in open_ if c.effective in BLOCKING),
                            key=lambda c: BLOCKING.index(c.effective)))
    if blocking:
        return BundleView(blocking[0].effective, None, outcomes, blocking, **common)
    # as far along as the slowest open child; a special procedure shows over plain review
    slowest = min(open_, key=lambda c: (RANK[c.effective], c.effective is not S.SUSPENDED))
    return BundleView(slowest.effective, None, outcomes, **common)


def derive_items(children: Sequence[ChildView]) -> dict[str, BundleView]:
    """Per item: the derivation over the children carrying it (all regions of a 多地联办 item)."""
    by_item: dict[str, list[ChildView]] = {}
    for c in children:
        for no in c.item_nos:
            by_item.setdefault(no, []).append(c)
    return {no: derive_bundle(kids) for no, kids in by_item.items()}


# -- vendor code tables (data) --------------------------------------------------------------

#: The numeric scheme one vendor family uses (26 received … 99 voided).
VENDOR_NUMERIC: Mapping[str, CaseStatus] = MappingProxyType({
    "26": S.RECEIVED,
    "28": S.SUPPLEMENT_REQUIRED,
    "30": S.ACCEPTED,
    "90": S.FINISHED,
    "97": S.NOT_ACCEPTED,
    "98": S.WITHDRAWN,
    "99": S.VOIDED,
})

#: The national satisfaction feed collapses everything to three codes. Inbound, "1 pending"
#: is read as SUBMITTED: it claims no more progress than the feed proves.
NATIONAL_SATISFACTION: Mapping[str, CaseStatus] = MappingProxyType({
    "1": S.SUBMITTED,
    "2": S.ACCEPTED,
    "3": S.FINISHED,
})

#: Outbound collapse for the national satisfaction feed: every canonical status has a code.
NATIONAL_SATISFACTION_OUT: Mapping[CaseStatus, str] = MappingProxyType({
    **{s: "1" for s in (S.SUBMITTED, S.PRECHECK_RETURNED, S.PRECHECK_PASSED, S.RECEIVED,
                        S.SUPPLEMENT_REQUIRED)},
    **{s: "2" for s in (S.ACCEPTED, S.IN_REVIEW, S.SUSPENDED)},
    **{s: "3" for s in TERMINAL},
})

CODE_TABLES: Mapping[str, Mapping[str, CaseStatus]] = MappingProxyType({
    "vendor-numeric": VENDOR_NUMERIC,
    "national-satisfaction": NATIONAL_SATISFACTION,
})


def from_code(table: str, code: str | int) -> CaseStatus:
    """Canonical status for a partner's code; ``ValueError`` names the table and the code."""
    try:
        codes = CODE_TABLES[table]
    except KeyError:
        raise ValueError(f"unknown status code table {table!r} "
                         f"(known: {', '.join(CODE_TABLES)})") from None
    try:
        return codes[str(code)]
    except KeyError:
        raise ValueError(f"status code {code!r} is not in table {table!r} "
                         f"(known: {', '.join(codes)})") from None


def to_code(table: str, status: CaseStatus) -> str | None:
    """A partner's code for a canonical status, or None where its scheme has none."""
    if table == "national-satisfaction":
        return NATIONAL_SATISFACTION_OUT[status]
    reverse = {s: c for c, s in CODE_TABLES[table].items()}
    return reverse.get(status)
