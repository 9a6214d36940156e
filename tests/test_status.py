"""Status: never-regress transitions and bundle derivation, each as a table of cases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.status import (BLOCKING, NATIONAL_SATISFACTION_OUT, RANK, TERMINAL, VENDOR_NUMERIC,
                            BundleView, CaseStatus, ChildView, Result, advance, derive_bundle,
                            derive_items, from_code, to_code)

S = CaseStatus
A, D = Result.APPROVED, Result.DENIED
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone(timedelta(hours=8)))
T1 = T0 + timedelta(minutes=5)


def test_every_status_has_a_rank_and_terminals_are_the_design_table() -> None:
    assert set(RANK) == set(CaseStatus)
    assert TERMINAL == {S.FINISHED, S.NOT_ACCEPTED, S.WITHDRAWN, S.VOIDED}
    assert BLOCKING == (S.PRECHECK_RETURNED, S.SUPPLEMENT_REQUIRED)


@pytest.mark.parametrize(("current", "incoming", "expected"), [
    (None, S.RECEIVED, S.RECEIVED),                     # first event
    (S.SUBMITTED, S.RECEIVED, S.RECEIVED),              # forward
    (S.RECEIVED, S.ACCEPTED, S.ACCEPTED),               # forward, skipping steps
    (S.PRECHECK_RETURNED, S.PRECHECK_PASSED, S.PRECHECK_PASSED),  # resubmitted after return
    (S.SUPPLEMENT_REQUIRED, S.ACCEPTED, S.ACCEPTED),    # supplement done
    (S.ACCEPTED, S.RECEIVED, S.ACCEPTED),               # late, out-of-order event
    (S.IN_REVIEW, S.ACCEPTED, S.IN_REVIEW),
    (S.ACCEPTED, S.ACCEPTED, S.ACCEPTED),               # duplicate
    (S.IN_REVIEW, S.SUSPENDED, S.SUSPENDED),            # sideways: special procedure
    (S.SUSPENDED, S.IN_REVIEW, S.IN_REVIEW),            # and back to review
    (S.ACCEPTED, S.SUPPLEMENT_REQUIRED, S.ACCEPTED),    # step back without times: refused
    (S.RECEIVED, S.FINISHED, S.FINISHED),               # terminal from anywhere
    (S.SUBMITTED, S.NOT_ACCEPTED, S.NOT_ACCEPTED),
    (S.FINISHED, S.IN_REVIEW, S.FINISHED),              # terminal never goes back
    (S.FINISHED, S.WITHDRAWN, S.FINISHED),              # first terminal wins
    (S.VOIDED, S.FINISHED, S.VOIDED),
    (S.WITHDRAWN, S.WITHDRAWN, S.WITHDRAWN),
])
def test_advance(current: CaseStatus | None, incoming: CaseStatus, expected: CaseStatus) -> None:
    assert advance(current, incoming) is expected


@pytest.mark.parametrize(("current", "incoming", "cur_at", "in_at", "expected"), [
    (S.IN_REVIEW, S.SUPPLEMENT_REQUIRED, T0, T1, S.SUPPLEMENT_REQUIRED),  # 补正 during review
    (S.IN_REVIEW, S.SUPPLEMENT_REQUIRED, T1, T0, S.IN_REVIEW),            # an old event
    (S.ACCEPTED, S.SUPPLEMENT_REQUIRED, T0, None, S.ACCEPTED),            # time unknown
    (S.ACCEPTED, S.RECEIVED, T0, T1, S.ACCEPTED),                         # not a re-entry
    (S.IN_REVIEW, S.SUSPENDED, T1, T0, S.IN_REVIEW),                      # older sideways event
    (S.FINISHED, S.SUPPLEMENT_REQUIRED, T0, T1, S.FINISHED),
])
def test_advance_with_event_times(current: CaseStatus, incoming: CaseStatus,
                                  cur_at: datetime | None, in_at: datetime | None,
                                  expected: CaseStatus) -> None:
    assert advance(current, incoming, current_at=cur_at, incoming_at=in_at) is expected


def test_any_order_of_a_history_ends_in_the_same_terminal() -> None:
    import itertools
    history = [S.RECEIVED, S.ACCEPTED, S.IN_REVIEW, S.FINISHED, S.IN_REVIEW]
    for order in itertools.permutations(history):
        state = None
        for s in order:
            state = advance(state, s)
        assert state is S.FINISHED


def c(key: str, status: CaseStatus | None = None, result: Result | None = None,
      items: tuple[str, ...] = ("1",), dead: bool = False) -> ChildView:
    return ChildView(key=key, status=status, result=result, partner=key.split(":")[0],
                     item_nos=items, dead_letter=dead)


# (children, status, result, blocking keys, attention keys, pending keys)
BUNDLE_CASES = [
    ([], S.SUBMITTED, None, [], [], []),
    ([c("t"), c("h")], S.SUBMITTED, None, [], [], ["t", "h"]),
    ([c("t", S.RECEIVED), c("h")], S.SUBMITTED, None, [], [], ["h"]),
    ([c("t", S.ACCEPTED), c("h", S.IN_REVIEW)], S.ACCEPTED, None, [], [], []),
    ([c("t", S.IN_REVIEW), c("h", S.SUSPENDED)], S.SUSPENDED, None, [], [], []),
    ([c("t", S.FINISHED, A), c("h", S.IN_REVIEW)], S.IN_REVIEW, None, [], [], []),
    ([c("t", S.FINISHED, A), c("h", S.FINISHED, A)], S.FINISHED, A, [], [], []),
    ([c("t", S.FINISHED, D), c("h", S.FINISHED, D)], S.FINISHED, D, [], [], []),
    ([c("t", S.FINISHED, A), c("h", S.FINISHED, D)], S.FINISHED, None, [], [], []),
    ([c("t", S.FINISHED, A), c("h", S.NOT_ACCEPTED)], S.FINISHED, None, [], [], []),
    ([c("t", S.WITHDRAWN), c("h", S.WITHDRAWN)], S.WITHDRAWN, None, [], [], []),
    ([c("t", S.VOIDED)], S.VOIDED, None, [], [], []),
    # a blocking child surfaces, with which part needs it, whatever the others do
    ([c("t", S.IN_REVIEW), c("h", S.SUPPLEMENT_REQUIRED)], S.SUPPLEMENT_REQUIRED, None,
     ["h"], [], []),
    ([c("t", S.SUPPLEMENT_REQUIRED), c("h", S.PRECHECK_RETURNED), c("n", S.ACCEPTED)],
     S.PRECHECK_RETURNED, None, ["h", "t"], [], []),
    ([c("t", S.FINISHED, A), c("h", S.SUPPLEMENT_REQUIRED)], S.SUPPLEMENT_REQUIRED, None,
     ["h"], [], []),
    # a dead-lettered child counts as not delivered and needs an operator
    ([c("t", S.ACCEPTED), c("h", dead=True)], S.SUBMITTED, None, [], ["h"], ["h"]),
    ([c("t", S.FINISHED, A), c("h", S.FINISHED, A, dead=True)], S.FINISHED, A, [], ["h"], []),
]


@pytest.mark.parametrize(("children", "status", "result", "blocking", "attention", "pending"),
                         BUNDLE_CASES)
def test_derive_bundle(children: list[ChildView], status: CaseStatus, result: Result | None,
                       blocking: list[str], attention: list[str], pending: list[str]) -> None:
    view = derive_bundle(children)
    assert isinstance(view, BundleView)
    assert view.status is status
    assert view.result is result
    assert [b.key for b in view.blocking] == blocking
    assert [a.key for a in view.attention] == attention
    assert view.needs_attention is bool(attention)
    assert list(view.pending) == pending
    assert view.terminal is (status in TERMINAL)


def test_finished_bundle_carries_the_outcome_of_every_child() -> None:
    view = derive_bundle([c("t", S.FINISHED, A), c("h", S.FINISHED, D), c("n", S.WITHDRAWN)])
    assert view.status is S.FINISHED
    assert view.outcomes == {"t": "APPROVED", "h": "DENIED", "n": "WITHDRAWN"}
    doc = view.as_dict()
    assert doc["status"] == "FINISHED" and doc["terminal"] is True
    assert [ch["key"] for ch in doc["children"]] == ["t", "h", "n"]


def test_blocking_part_names_partner_and_items() -> None:
    view = derive_bundle([c("tianjin:120116000000:3+4", S.SUPPLEMENT_REQUIRED, items=("3", "4")),
                          c("hebei:130100000000:5", S.ACCEPTED, items=("5",))])
    doc = view.as_dict()
    assert doc["status"] == "SUPPLEMENT_REQUIRED"
    assert doc["blocking"] == [{"key": "tianjin:120116000000:3+4", "partner": "tianjin",
                                "itemNos": ["3", "4"], "region": None,
                                "status": "SUPPLEMENT_REQUIRED", "result": None,
                                "deadLetter": False}]


def test_joint_item_requires_every_region() -> None:
    kids = [c("tianjin:x:1+2", S.FINISHED, A, items=("1", "2")),
            c("hebei:y:1", S.IN_REVIEW, items=("1",))]
    items = derive_items(kids)
    assert items["2"].status is S.FINISHED and items["2"].result is A
    assert items["1"].status is S.IN_REVIEW
    assert derive_items([*kids[:1], c("hebei:y:1", S.FINISHED, A, items=("1",))])[
        "1"].result is A


@pytest.mark.parametrize(("table", "code", "status"), [
    ("vendor-numeric", "26", S.RECEIVED), ("vendor-numeric", "28", S.SUPPLEMENT_REQUIRED),
    ("vendor-numeric", "30", S.ACCEPTED), ("vendor-numeric", 90, S.FINISHED),
    ("vendor-numeric", "97", S.NOT_ACCEPTED), ("vendor-numeric", "98", S.WITHDRAWN),
    ("vendor-numeric", "99", S.VOIDED),
    ("national-satisfaction", "1", S.SUBMITTED), ("national-satisfaction", "2", S.ACCEPTED),
    ("national-satisfaction", 3, S.FINISHED),
])
def test_code_tables(table: str, code: str | int, status: CaseStatus) -> None:
    assert from_code(table, code) is status


def test_code_tables_round_trip_and_refuse() -> None:
    for code, status in VENDOR_NUMERIC.items():
        assert to_code("vendor-numeric", status) == code
    assert to_code("vendor-numeric", S.IN_REVIEW) is None
    assert set(NATIONAL_SATISFACTION_OUT) == set(CaseStatus)
    assert to_code("national-satisfaction", S.SUSPENDED) == "2"
    assert to_code("national-satisfaction", S.VOIDED) == "3"
    with pytest.raises(ValueError, match="'27' is not in table 'vendor-numeric'"):
        from_code("vendor-numeric", "27")
    with pytest.raises(ValueError, match="unknown status code table"):
        from_code("tianjin", "1")
