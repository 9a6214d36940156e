"""Canonical case statuses, the state machine of their transitions, and the bundle's derived status
(all pure).

Statuses are the exchange's semantic codes (DESIGN.md §4), never a vendor's numbers. A partner's
codes are translated where its messages are mapped, by the one set of code tables,
``mappings/codes/status-*.yaml`` (a mapping names one: ``decode: status-vendor-numeric``), so
what reaches this module is already canonical. Three decisions live here:

The state machine: ``decide(current, incoming)`` / ``advance`` / ``settle``
    Partners send duplicates and deliver events out of order, so an event moves a case only as
    the grid below says, one rule per (current, incoming) pair (``TRANSITIONS``); ``decide``
    returns the rule and whether it applied, ``advance`` just the status after it, ``settle``
    the same for a status with its time, result code and e-licences::

    current ↓ incoming →  SUB PRR PRP REC SUP ACC REV SUS FIN NAC WDR VOI
    (none yet)              +   +   +   +   +   +   +   +   +   +   +   +
    SUBMITTED               =   +   +   +   +   +   +   +   +   +   +   +
    PRECHECK_RETURNED       x   =   u   u   u   u   u   u   +   +   +   +
    PRECHECK_PASSED         x   x   =   +   +   +   +   +   +   +   +   +
    RECEIVED                x   x   x   =   +   +   +   +   +   +   +   +
    SUPPLEMENT_REQUIRED     x   x   x   x   =   u   u   u   +   +   +   +
    ACCEPTED                x   x   x   x   r   =   +   +   +   +   +   +
    IN_REVIEW               x   x   x   x   r   x   =   ~   +   +   +   +
    SUSPENDED               x   x   x   x   r   x   ~   =   +   +   +   +
    FINISHED                T   T   T   T   T   T   T   T   =   T   T   T
    NOT_ACCEPTED            T   T   T   T   T   T   T   T   T   =   T   T
    WITHDRAWN               T   T   T   T   T   T   T   T   T   T   =   T
    VOIDED                  T   T   T   T   T   T   T   T   T   T   T   =

    +  applied: the first status heard, a step forward in ``RANK``, or a terminal status
       ending an open case (from anywhere; all terminal statuses share the top rank)
    u  a step forward out of a wait for the applicant (预审退回, 补齐补正): applied unless the
       two events' times prove it older (a stale event must not clear a newer request)
    ~  sideways, IN_REVIEW ⇄ SUSPENDED: applied unless the times prove it older
    r  补正 asked for again after 受理: the one legitimate step back, applied only when the
       times prove the incoming event newer (without times it is taken for a late event)
    =  a duplicate: absorbed
    x  a step back: a late, out-of-order event, absorbed (ACCEPTED never returns to RECEIVED)
    T  the case is terminal: nothing changes it, not even another terminal status (the first
       terminal wins)

    A 办结 carries its result code (APPROVED/DENIED) and e-licence ids; a repeated 办结 may add
    a result or licences the first one lacked, never change a result (``settle``).

``derive_bundle(children, home)``
    A "一件事" bundle shows the applicant one status, derived from nothing but the case's
    deliveries (``child_of``) and its home items. It is FINISHED (or the common terminal status)
    only when every part is terminal, with each part's outcome. While any part is open, a part
    that waits for the applicant (PRECHECK_RETURNED before SUPPLEMENT_REQUIRED: earliest in the
    process first) sets the status; otherwise the bundle is as far along as its slowest open
    part. A part its partner has not accepted yet (pending, in flight, retrying, dead: no receipt
    and no status from the partner) counts as SUBMITTED and is named in ``blocking`` with its
    delivery state and last reason; a dead one is also listed under ``attention`` for an
    operator. An item handled in Beijing is a part
    handed to the home platform: the gateway hears nothing back for it, so it counts as
    SUBMITTED (已申报) and the bundle never claims to be finished past it.

``derive_items(children, home)``
    The same rule per item: a 多地联办 item is done only when every region's part is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
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

def is_terminal(status: CaseStatus) -> bool:
    return status in TERMINAL


# -- the state machine ----------------------------------------------------------------------

class Rule(StrEnum):
    """Why a status event moves a case or not: one rule per (current, incoming) pair, the
    ``TRANSITIONS`` grid, plus the two outcomes of a repeated 办结 (:func:`settle`)."""

    FIRST = "first"            # nothing known yet: the first status is taken
    FORWARD = "forward"        # further along in RANK
    TERMINAL = "terminal"      # a terminal status ends an open case, from anywhere
    UNBLOCK = "unblock"        # forward out of a wait for the applicant: not if proven older
    SIDEWAYS = "sideways"      # IN_REVIEW ⇄ SUSPENDED: not if proven older
    REENTRY = "reentry"        # 补正 asked for again after 受理: only if proven newer
    DUPLICATE = "duplicate"    # the status the case already has
    REGRESSION = "regression"  # a step back: a late, out-of-order event
    FINAL = "final"            # the case is terminal: the first terminal wins
    COMPLETES = "completes"    # a repeated 办结 that brings a result or licences not yet known
    CONFLICT = "conflict"      # a repeated 办结 whose result contradicts the one recorded


class When(StrEnum):
    """Whether a rule applies, given what the two events' times prove."""

    ALWAYS = "always"
    UNLESS_OLDER = "unless_older"  # applied, except when both times are known and it is older
    IF_NEWER = "if_newer"          # applied only when both times are known and it is newer
    NEVER = "never"


WHEN: Mapping[Rule, When] = MappingProxyType({
    Rule.FIRST: When.ALWAYS, Rule.FORWARD: When.ALWAYS, Rule.TERMINAL: When.ALWAYS,
    Rule.UNBLOCK: When.UNLESS_OLDER, Rule.SIDEWAYS: When.UNLESS_OLDER,
    Rule.REENTRY: When.IF_NEWER,
    Rule.DUPLICATE: When.NEVER, Rule.REGRESSION: When.NEVER, Rule.FINAL: When.NEVER,
    Rule.COMPLETES: When.ALWAYS, Rule.CONFLICT: When.NEVER,
})

#: Steps back that happen for real (补正 requested again during review).
REENTRIES: frozenset[tuple[CaseStatus, CaseStatus]] = frozenset(
    (cur, S.SUPPLEMENT_REQUIRED) for cur in (S.ACCEPTED, S.IN_REVIEW, S.SUSPENDED))


def _rule(current: CaseStatus | None, incoming: CaseStatus) -> Rule:
    if current is None:
        return Rule.FIRST
    if incoming == current:
        return Rule.DUPLICATE
    if current in TERMINAL:
        return Rule.FINAL
    if incoming in TERMINAL:
        return Rule.TERMINAL
    if RANK[incoming] > RANK[current]:
        return Rule.UNBLOCK if current in BLOCKING else Rule.FORWARD
    if RANK[incoming] == RANK[current]:
        return Rule.SIDEWAYS
    if (current, incoming) in REENTRIES:
        return Rule.REENTRY
    return Rule.REGRESSION


#: The legal transitions, one rule for every (current, incoming) pair; ``None`` is a case the
#: partner has said nothing about yet. Rendered for people by :func:`transition_grid`.
TRANSITIONS: Mapping[tuple[CaseStatus | None, CaseStatus], Rule] = MappingProxyType({
    (cur, inc): _rule(cur, inc) for cur in (None, *CaseStatus) for inc in CaseStatus})


@dataclass(frozen=True)
class Verdict:
    """What the machine made of one event: the ``rule`` that decided, whether it was
    ``applied`` (the case moved, or its result was completed) and the ``status`` after it.
    ``flag`` is the word a stored event carries when it changed nothing."""

    rule: Rule
    applied: bool
    status: CaseStatus

    @property
    def flag(self) -> str | None:
        if self.applied:
            return None
        if self.rule is Rule.DUPLICATE:
            return "duplicate"
        return "conflict" if self.rule is Rule.CONFLICT else "regression"


def _proves(current_at: datetime | None, incoming_at: datetime | None) -> bool | None:
    """True/False when both times are known and the incoming event is newer/not; else None."""
    return None if current_at is None or incoming_at is None else incoming_at > current_at


def decide(current: CaseStatus | None, incoming: CaseStatus, *,
           current_at: datetime | None = None,
           incoming_at: datetime | None = None) -> Verdict:
    """The verdict on ``incoming`` arriving at a case in ``current``: the pair's rule from
    ``TRANSITIONS``, applied as its ``WHEN`` says given the two events' times."""
    rule = TRANSITIONS[(current, incoming)]
    when, newer = WHEN[rule], _proves(current_at, incoming_at)
    applied = (when is When.ALWAYS or (when is When.UNLESS_OLDER and newer is not False)
               or (when is When.IF_NEWER and newer is True))
    return Verdict(rule, applied, incoming if applied or current is None else current)


def advance(current: CaseStatus | None, incoming: CaseStatus, *,
            current_at: datetime | None = None,
            incoming_at: datetime | None = None) -> CaseStatus:
    """The status after ``incoming`` arrives: ``current`` or ``incoming``, never a regression
    (:func:`decide` says why)."""
    return decide(current, incoming, current_at=current_at, incoming_at=incoming_at).status


@dataclass(frozen=True)
class Progress:
    """A case's (or one delivery's) status as the partner reported it: the status, the
    partner's time of it, and for 办结 its result code and e-licence identifiers
    (``1.2.156.3005.2.…``). A result belongs to FINISHED only: other statuses carry none (a
    code a partner sends with them is dropped here, not carried forward)."""

    status: CaseStatus
    at: datetime | None = None
    result: Result | None = None
    elicences: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status is not S.FINISHED:
            object.__setattr__(self, "result", None)
            object.__setattr__(self, "elicences", ())
        else:
            object.__setattr__(self, "elicences", tuple(dict.fromkeys(self.elicences)))


def settle(current: Progress | None, incoming: Progress) -> tuple[Progress, Verdict]:
    """The progress after ``incoming``, and the verdict. Statuses move by :func:`decide`. A
    repeated 办结 may complete what the first one left out (the result code, more licences:
    partners often send the status before the result) but never changes a result already
    recorded: APPROVED then DENIED is a ``CONFLICT``, kept as it was, for an operator."""
    v = decide(None if current is None else current.status, incoming.status,
               current_at=None if current is None else current.at, incoming_at=incoming.at)
    if current is None or v.applied:
        return incoming, v
    if v.rule is not Rule.DUPLICATE or current.status is not S.FINISHED:
        return current, v
    if current.result and incoming.result and current.result is not incoming.result:
        return current, Verdict(Rule.CONFLICT, False, current.status)
    merged = Progress(current.status, current.at, current.result or incoming.result,
                      (*current.elicences, *incoming.elicences))
    if merged == current:
        return current, v
    return merged, Verdict(Rule.COMPLETES, True, current.status)


#: Short column names for the grid (three letters each).
ABBREV: Mapping[CaseStatus, str] = MappingProxyType({
    S.SUBMITTED: "SUB", S.PRECHECK_RETURNED: "PRR", S.PRECHECK_PASSED: "PRP",
    S.RECEIVED: "REC", S.SUPPLEMENT_REQUIRED: "SUP", S.ACCEPTED: "ACC", S.IN_REVIEW: "REV",
    S.SUSPENDED: "SUS", S.FINISHED: "FIN", S.NOT_ACCEPTED: "NAC", S.WITHDRAWN: "WDR",
    S.VOIDED: "VOI"})

#: One character per rule in the grid.
GRID_MARK: Mapping[Rule, str] = MappingProxyType({
    Rule.FIRST: "+", Rule.FORWARD: "+", Rule.TERMINAL: "+", Rule.UNBLOCK: "u",
    Rule.SIDEWAYS: "~", Rule.REENTRY: "r", Rule.DUPLICATE: "=", Rule.REGRESSION: "x",
    Rule.FINAL: "T"})


def transition_grid() -> str:
    """``TRANSITIONS`` as the grid in this module's docstring (a test keeps the two equal)."""
    lines = ["current ↓ incoming →  " + " ".join(ABBREV[s] for s in CaseStatus)]
    for cur in (None, *CaseStatus):
        name = "(none yet)" if cur is None else cur.value
        lines.append(f"{name:<21}  " + " ".join(f" {GRID_MARK[TRANSITIONS[(cur, inc)]]} "
                                                  for inc in CaseStatus).rstrip())
    return "\n".join(lines)


# -- bundle derivation ----------------------------------------------------------------------

class Delivery(StrEnum):
    """Where a part of the bundle is, seen from the gateway (not the partner's case status).

    Routed parts (one per partner delivery) move pending → in_flight → retrying … → delivered,
    or end dead (parked for an operator) or discarded (an operator gave up: VOIDED). An item
    handled in Beijing is handed to the home platform: the gateway carries it nowhere.
    """

    PENDING = "pending"            # queued, never tried
    IN_FLIGHT = "in_flight"        # an attempt is on the wire
    RETRYING = "retrying"          # tried and failed (or replayed); waits for its next attempt
    DEAD = "dead"                  # dead-lettered: waits for an operator
    DELIVERED = "delivered"        # the partner accepted it (receipt)
    DISCARDED = "discarded"        # an operator gave it up
    HANDED_TO_HOME = "handed_to_home"  # handled in Beijing by the home platform


#: Parts their partner has not accepted yet: each one holds the bundle back.
UNACCEPTED: frozenset[Delivery] = frozenset(
    {Delivery.PENDING, Delivery.IN_FLIGHT, Delivery.RETRYING, Delivery.DEAD})

#: The ``partner`` of a part handled in Beijing (the routing table's ``target: home``).
HOME = "home"


def delivery_of(state: str, attempts: int = 0) -> Delivery:
    """The gateway's view of a stored delivery: its state, with ``pending`` split by whether
    it has been tried before (``retrying``)."""
    if state == Delivery.PENDING:
        return Delivery.RETRYING if attempts > 0 else Delivery.PENDING
    return Delivery(state)


@dataclass(frozen=True)
class ChildView:
    """What the bundle needs to know about one part: a child delivery or a home item.

    ``status`` is the partner's canonical status, None until the partner has acknowledged
    anything (counts as SUBMITTED). ``delivery`` is the gateway's side; when not given it is
    ``delivered`` for a child with a status and ``pending`` for one without. ``attempts`` and
    the ``last_*`` fields say why a part is still not accepted (the last attempt's outcome,
    partner code and message).
    """

    key: str
    status: CaseStatus | None = None
    result: Result | None = None
    partner: str | None = None
    item_nos: tuple[str, ...] = ()
    region: str | None = None
    delivery: Delivery | None = None
    attempts: int = 0
    last_outcome: str | None = None
    last_code: str | None = None
    last_message: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def effective(self) -> CaseStatus:
        return self.status or S.SUBMITTED

    @property
    def transport(self) -> Delivery:
        if self.delivery is not None:
            return self.delivery
        return Delivery.DELIVERED if self.status is not None else Delivery.PENDING

    @property
    def home(self) -> bool:
        return self.transport is Delivery.HANDED_TO_HOME

    @property
    def dead_letter(self) -> bool:
        return self.transport is Delivery.DEAD

    @property
    def unaccepted(self) -> bool:
        """Not yet accepted by its partner: pending, in flight, retrying or dead, and no status
        from the partner (a partner that reports a status for it holds the case)."""
        return self.transport in UNACCEPTED and self.status is None

    @property
    def waiting_for(self) -> str | None:
        """Who must act before this part moves: ``applicant`` (预审退回 / 补齐补正),
        ``operator`` (dead-lettered), ``delivery`` (the gateway is still delivering it), else
        None."""
        if self.effective in BLOCKING:
            return "applicant"
        if self.transport is Delivery.DEAD:
            return "operator"
        if self.unaccepted:
            return "delivery"
        return None

    @property
    def outcome(self) -> str | None:
        """APPROVED/DENIED for a finished child, the terminal status for others, else None."""
        if self.effective is S.FINISHED:
            return self.result.value if self.result else S.FINISHED.value
        return self.effective.value if self.effective in TERMINAL else None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "partner": self.partner, "itemNos": list(self.item_nos),
                "region": self.region, "status": self.effective.value,
                "result": self.result.value if self.result else None,
                "delivery": self.transport.value, "waitingFor": self.waiting_for,
                "attempts": self.attempts, "lastOutcome": self.last_outcome,
                "lastCode": self.last_code, "lastMessage": self.last_message,
                "nextAttemptAt": (self.next_attempt_at.isoformat()
                                  if self.next_attempt_at is not None
                                  and self.transport in (Delivery.PENDING, Delivery.RETRYING)
                                  else None),
                "deadLetter": self.dead_letter}


def in_zone(t: datetime, tz: tzinfo) -> datetime:
    """A stored time in ``tz`` (the store keeps UTC; a naive value is UTC)."""
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(tz)


def child_of(d: Any, tz: tzinfo | None = None) -> ChildView:
    """The part for one stored delivery (any object with a ``DeliveryRecord``'s fields); with
    ``tz``, its next attempt's time in that zone (a view shows it)."""
    due = d.next_attempt_at
    if tz is not None and due is not None:
        due = in_zone(due, tz)
    return ChildView(key=d.id, status=CaseStatus(d.partner_status) if d.partner_status else None,
                     partner=d.partner, item_nos=tuple(d.item_nos), region=d.region,
                     delivery=delivery_of(d.state, d.attempts), attempts=d.attempts,
                     last_outcome=d.last_outcome, last_code=d.last_code,
                     last_message=d.last_message or None, next_attempt_at=due)


def home_part(item_no: str, status: CaseStatus | None = None,
              result: Result | None = None) -> ChildView:
    """An item handled in Beijing: handed to the home platform, which the gateway does not
    hear from, so its status is SUBMITTED (已申报) unless a known one is given."""
    return ChildView(key=f"{HOME}:{item_no}", status=status, result=result, partner=HOME,
                     item_nos=(item_no,), delivery=Delivery.HANDED_TO_HOME)


@dataclass(frozen=True)
class BundleView:
    """The one status the applicant sees, and the parts that explain it.

    ``blocking`` names every part that holds the bundle back: those waiting for the applicant
    first (earliest in the process first; the first of them is the bundle's status), then every
    part its partner has not accepted yet, in delivery order. ``attention`` is the dead-lettered
    parts an operator must act on; ``pending`` the keys of all parts not yet accepted.
    ``children`` are the deliveries, ``home`` the items handed to the home platform.
    """

    status: CaseStatus
    result: Result | None = None
    outcomes: Mapping[str, str] = field(default_factory=dict)
    blocking: tuple[ChildView, ...] = ()
    attention: tuple[ChildView, ...] = ()
    pending: tuple[str, ...] = ()
    children: tuple[ChildView, ...] = ()
    home: tuple[ChildView, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def needs_attention(self) -> bool:
        return bool(self.attention)

    @property
    def delivered(self) -> bool:
        """Every routed part accepted by its partner (or discarded by an operator)."""
        return not self.pending

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "terminal": self.terminal,
                "result": self.result.value if self.result else None,
                "outcomes": dict(self.outcomes),
                "delivered": self.delivered,
                "blocking": [c.as_dict() for c in self.blocking],
                "needsAttention": self.needs_attention,
                "attention": [c.as_dict() for c in self.attention],
                "pending": list(self.pending),
                "children": [c.as_dict() for c in self.children],
                "home": [c.as_dict() for c in self.home]}

    def item_dict(self) -> dict[str, Any]:
        """The compact form the case view shows per item: its status and every part carrying
        it (each region of a 多地联办 item; ``home`` for Beijing's own part)."""
        return {"status": self.status.value, "terminal": self.terminal,
                "result": self.result.value if self.result else None,
                "home": bool(self.home),
                "parts": [{"key": c.key, "partner": c.partner, "region": c.region,
                           "delivery": c.transport.value} for c in (*self.children, *self.home)],
                "blocking": [c.key for c in self.blocking]}


def _bundle_result(children: Sequence[ChildView]) -> Result | None:
    """APPROVED when every child was approved, DENIED when every child finished denied."""
    if all(c.effective is S.FINISHED and c.result is Result.APPROVED for c in children):
        return Result.APPROVED
    if all(c.effective is S.FINISHED and c.result is Result.DENIED for c in children):
        return Result.DENIED
    return None


def _home_parts(home: Sequence[str | ChildView]) -> tuple[ChildView, ...]:
    return tuple(h if isinstance(h, ChildView) else home_part(h) for h in home)


def derive_bundle(children: Sequence[ChildView],
                  home: Sequence[str | ChildView] = ()) -> BundleView:
    """Derive the bundle's status from its deliveries and its home items (item numbers, or
    parts from :func:`home_part` where a home status is known); see the module docstring."""
    kids, homes = tuple(children), _home_parts(home)
    parts = (*kids, *homes)
    attention = tuple(c for c in kids if c.dead_letter)
    pending = tuple(c.key for c in kids if c.unaccepted)
    waiting = tuple(sorted((c for c in parts if c.effective in BLOCKING),
                           key=lambda c: BLOCKING.index(c.effective)))
    blocking = waiting + tuple(c for c in kids if c.unaccepted and c not in waiting)
    common: dict[str, Any] = {"blocking": blocking, "attention": attention, "pending": pending,
                              "children": kids, "home": homes}
    if not parts:
        return BundleView(S.SUBMITTED, **common)
    open_ = [c for c in parts if c.effective not in TERMINAL]
    if not open_:
        outcomes = {c.key: c.outcome or "" for c in parts}
        statuses = {c.effective for c in parts}
        status = statuses.pop() if len(statuses) == 1 else S.FINISHED
        result = _bundle_result(parts) if status is S.FINISHED else None
        return BundleView(status, result, outcomes, **common)
    outcomes = {c.key: o for c in parts if (o := c.outcome) is not None}
    if waiting:
        return BundleView(waiting[0].effective, None, outcomes, **common)
    # as far along as the slowest open part; a special procedure shows over plain review
    slowest = min(open_, key=lambda c: (RANK[c.effective], c.effective is not S.SUSPENDED))
    return BundleView(slowest.effective, None, outcomes, **common)


def _natural(item_no: str) -> tuple[int, int | str]:
    return (0, int(item_no)) if item_no.isdigit() else (1, item_no)


def derive_items(children: Sequence[ChildView],
                 home: Sequence[str | ChildView] = ()) -> dict[str, BundleView]:
    """Per item, in item-number order: the derivation over the parts carrying it (all regions
    of a 多地联办 item); an item handled in Beijing is its home part."""
    by_item: dict[str, tuple[list[ChildView], list[ChildView]]] = {}
    for c in children:
        for no in c.item_nos:
            by_item.setdefault(no, ([], []))[0].append(c)
    for h in _home_parts(home):
        for no in h.item_nos:
            by_item.setdefault(no, ([], []))[1].append(h)
    return {no: derive_bundle(*by_item[no]) for no in sorted(by_item, key=_natural)}
