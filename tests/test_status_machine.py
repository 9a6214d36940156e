"""The status state machine, pair by pair: every (current, incoming) pair of the 12 canonical
statuses (and a case the partner has said nothing about yet), each with no event times, with
the incoming event proven newer and proven older.

The expected grid below is the specification, written out by hand from DESIGN.md §4 and issue
13; it is deliberately not computed from ``gateway.status``. The module's docstring shows the
same grid to operators, and a test keeps that text equal to the machine.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

import gateway.status as status_module
from gateway.status import (
    RANK,
    TERMINAL,
    TRANSITIONS,
    CaseStatus,
    Progress,
    Result,
    Rule,
    advance,
    decide,
    settle,
    transition_grid,
)

S = CaseStatus
BJ = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=BJ)
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(minutes=10)

ORDER = [S.SUBMITTED, S.PRECHECK_RETURNED, S.PRECHECK_PASSED, S.RECEIVED,
         S.SUPPLEMENT_REQUIRED, S.ACCEPTED, S.IN_REVIEW, S.SUSPENDED, S.FINISHED,
         S.NOT_ACCEPTED, S.WITHDRAWN, S.VOIDED]

# Columns: the incoming status, in ORDER. Rows: the current status ("-": none yet).
SPEC = """
-                    + + + + + + + + + + + +
SUBMITTED            = + + + + + + + + + + +
PRECHECK_RETURNED    x = u u u u u u + + + +
PRECHECK_PASSED      x x = + + + + + + + + +
RECEIVED             x x x = + + + + + + + +
SUPPLEMENT_REQUIRED  x x x x = u u u + + + +
ACCEPTED             x x x x r = + + + + + +
IN_REVIEW            x x x x r x = ~ + + + +
SUSPENDED            x x x x r x ~ = + + + +
FINISHED             T T T T T T T T = T T T
NOT_ACCEPTED         T T T T T T T T T = T T
WITHDRAWN            T T T T T T T T T T = T
VOIDED               T T T T T T T T T T T =
"""

# mark → applied (no times, incoming proven newer, incoming proven older), flag when refused
MEANING: dict[str, tuple[tuple[bool, bool, bool], str | None]] = {
    "+": ((True, True, True), None),             # first, forward, terminal: whatever the times
    "u": ((True, True, False), "regression"),    # leaving a wait for the applicant
    "~": ((True, True, False), "regression"),    # sideways IN_REVIEW ⇄ SUSPENDED
    "r": ((False, True, False), "regression"),   # 补正 again: only when proven newer
    "=": ((False, False, False), "duplicate"),
    "x": ((False, False, False), "regression"),  # a step back
    "T": ((False, False, False), "regression"),  # terminal: the first terminal wins
}

TIMES = {"no times": (None, None), "newer": (T0, T1), "older": (T1, T0)}


def _spec() -> dict[tuple[CaseStatus | None, CaseStatus], str]:
    out: dict[tuple[CaseStatus | None, CaseStatus], str] = {}
    for line in SPEC.strip().splitlines():
        name, *marks = line.split()
        current = None if name == "-" else S(name)
        assert len(marks) == len(ORDER), line
        out.update({(current, incoming): m for incoming, m in zip(ORDER, marks, strict=True)})
    return out


EXPECTED = _spec()
CASES = [pytest.param(cur, inc, mark, label, id=f"{cur}->{inc}:{label}")
         for (cur, inc), mark in EXPECTED.items() for label in TIMES]


def test_the_spec_covers_every_pair() -> None:
    assert len(EXPECTED) == 13 * 12
    assert set(EXPECTED) == set(TRANSITIONS)


@pytest.mark.parametrize(("current", "incoming", "mark", "times"), CASES)
def test_every_pair(current: CaseStatus | None, incoming: CaseStatus, mark: str,
                    times: str) -> None:
    current_at, incoming_at = TIMES[times]
    applied_by_time, flag = MEANING[mark]
    applied = applied_by_time[list(TIMES).index(times)]
    v = decide(current, incoming, current_at=current_at, incoming_at=incoming_at)
    assert v.applied is applied
    after = incoming if applied or current is None else current
    assert v.status is after
    assert v.flag == (None if applied else flag)
    assert advance(current, incoming, current_at=current_at, incoming_at=incoming_at) is after


def test_the_operators_grid_in_the_docstring_is_the_machine() -> None:
    doc = status_module.__doc__ or ""
    assert "\n".join("    " + line for line in transition_grid().splitlines()) in doc


@pytest.mark.parametrize(("current", "incoming"), list(TRANSITIONS))
def test_never_a_regression_outside_the_supplement_loop(current: CaseStatus | None,
                                                        incoming: CaseStatus) -> None:
    """Whatever the times say, a case never ends lower in RANK, except 补正 after 受理; and a
    terminal case never changes."""
    for current_at, incoming_at in TIMES.values():
        after = advance(current, incoming, current_at=current_at, incoming_at=incoming_at)
        if current is None:
            continue
        if current in TERMINAL:
            assert after is current
        elif after is not current and RANK[after] < RANK[current]:
            assert after is S.SUPPLEMENT_REQUIRED
            assert current in (S.ACCEPTED, S.IN_REVIEW, S.SUSPENDED)
            assert (current_at, incoming_at) == (T0, T1)


def test_named_rules() -> None:
    assert decide(S.ACCEPTED, S.RECEIVED).rule is Rule.REGRESSION   # never back to 收件
    assert decide(S.ACCEPTED, S.ACCEPTED).rule is Rule.DUPLICATE
    assert decide(S.FINISHED, S.WITHDRAWN).rule is Rule.FINAL       # the first terminal wins
    assert decide(S.IN_REVIEW, S.SUSPENDED).rule is Rule.SIDEWAYS
    assert decide(S.SUSPENDED, S.IN_REVIEW, current_at=T1, incoming_at=T0).status \
        is S.SUSPENDED
    assert decide(S.IN_REVIEW, S.SUPPLEMENT_REQUIRED).rule is Rule.REENTRY
    assert decide(S.SUPPLEMENT_REQUIRED, S.ACCEPTED).rule is Rule.UNBLOCK


# Events of one real life, with their times: received, accepted, in review, 补正 asked for
# during review, supplemented and back in review, finished. Delivered in any order, the case
# ends where the newest event says.
LIFE = [(S.RECEIVED, 1), (S.ACCEPTED, 2), (S.IN_REVIEW, 3), (S.SUPPLEMENT_REQUIRED, 4)]


@pytest.mark.parametrize("order", list(itertools.permutations(LIFE)),
                         ids=lambda o: "-".join(str(t) for _, t in o))
def test_any_order_of_a_timed_history_ends_in_its_newest_status(
        order: tuple[tuple[CaseStatus, int], ...]) -> None:
    """A stale ACCEPTED or IN_REVIEW arriving after the newer 补正 request must not clear it
    (before the ``u`` rule, review → 补正 → a late ACCEPTED ended ACCEPTED)."""
    state: CaseStatus | None = None
    at: datetime | None = None
    for s, minute in order:
        t = T0 + timedelta(minutes=minute)
        v = decide(state, s, current_at=at, incoming_at=t)
        if v.applied:
            state, at = v.status, t
    assert state is S.SUPPLEMENT_REQUIRED


def test_any_order_with_a_terminal_ends_in_the_first_terminal_received() -> None:
    events = [S.RECEIVED, S.IN_REVIEW, S.WITHDRAWN, S.FINISHED, S.SUSPENDED]
    for order in itertools.permutations(events):
        state = None
        for s in order:
            state = advance(state, s)
        assert state is next(s for s in order if s in TERMINAL)


# -- results and e-licences ----------------------------------------------------------------

LIC1 = "1.2.156.3005.2.11100000000013338W001.0001.001"
LIC2 = "1.2.156.3005.2.11100000000013338W001.0001.002"


def test_finished_carries_its_result_and_licences() -> None:
    done, v = settle(Progress(S.IN_REVIEW, T0),
                     Progress(S.FINISHED, T1, Result.APPROVED, (LIC1,)))
    assert v.applied and v.rule is Rule.TERMINAL
    assert (done.status, done.result, done.elicences, done.at) == (
        S.FINISHED, Result.APPROVED, (LIC1,), T1)


def test_a_result_belongs_to_finished_only() -> None:
    p = Progress(S.NOT_ACCEPTED, T0, Result.DENIED, (LIC1,))
    assert (p.result, p.elicences) == (None, ())


def test_a_repeated_finish_completes_what_the_first_lacked() -> None:
    first = Progress(S.FINISHED, T1)                     # status first, result later
    done, v = settle(first, Progress(S.FINISHED, T2, Result.DENIED))
    assert v.applied and v.rule is Rule.COMPLETES and done.result is Result.DENIED
    assert done.at == T1                                 # still finished when it finished
    more, v = settle(Progress(S.FINISHED, T1, Result.APPROVED, (LIC1,)),
                     Progress(S.FINISHED, T2, Result.APPROVED, (LIC1, LIC2)))
    assert v.rule is Rule.COMPLETES and more.elicences == (LIC1, LIC2)


def test_a_repeated_finish_never_changes_the_result() -> None:
    first = Progress(S.FINISHED, T1, Result.APPROVED, (LIC1,))
    same, v = settle(first, Progress(S.FINISHED, T2, Result.APPROVED, (LIC1,)))
    assert same == first and not v.applied and v.flag == "duplicate"
    kept, v = settle(first, Progress(S.FINISHED, T2, Result.DENIED))
    assert kept == first and v.rule is Rule.CONFLICT and v.flag == "conflict"


def test_another_terminal_after_finished_keeps_the_result() -> None:
    first = Progress(S.FINISHED, T1, Result.APPROVED, (LIC1,))
    kept, v = settle(first, Progress(S.VOIDED, T2))
    assert kept == first and v.rule is Rule.FINAL and v.flag == "regression"


def test_settle_moves_like_decide() -> None:
    for (current, incoming), _ in TRANSITIONS.items():
        for current_at, incoming_at in TIMES.values():
            cur = None if current is None else Progress(current, current_at)
            after, v = settle(cur, Progress(incoming, incoming_at))
            expected = decide(current, incoming, current_at=current_at,
                              incoming_at=incoming_at)
            assert after.status is expected.status
            assert v == expected
