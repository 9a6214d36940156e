"""Status: never-regress transitions and bundle derivation, each as a table of cases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gateway.mapping.codes import CodeTable, load_tables
from gateway.status import (
    BLOCKING,
    RANK,
    TERMINAL,
    UNACCEPTED,
    BundleView,
    CaseStatus,
    ChildView,
    Delivery,
    Result,
    advance,
    child_of,
    delivery_of,
    derive_bundle,
    derive_items,
    home_part,
)
from tests.conftest import ROOT

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


P, R, F, X = Delivery.PENDING, Delivery.RETRYING, Delivery.IN_FLIGHT, Delivery.DEAD


def c(key: str, status: CaseStatus | None = None, result: Result | None = None,
      items: tuple[str, ...] = ("1",), delivery: Delivery | None = None, **kw: Any) -> ChildView:
    return ChildView(key=key, status=status, result=result, partner=key.split(":")[0],
                     item_nos=items, delivery=delivery, **kw)


# (children, home items, status, result, blocking keys, attention keys, pending keys)
BUNDLE_CASES = [
    ([], [], S.SUBMITTED, None, [], [], []),
    # not yet accepted by the partner, whatever the gateway is doing about it: named
    ([c("t"), c("h")], [], S.SUBMITTED, None, ["t", "h"], [], ["t", "h"]),
    ([c("t", delivery=P), c("h", delivery=R), c("n", delivery=F)], [], S.SUBMITTED, None,
     ["t", "h", "n"], [], ["t", "h", "n"]),
    ([c("t", S.RECEIVED), c("h")], [], S.SUBMITTED, None, ["h"], [], ["h"]),
    ([c("t", S.SUBMITTED), c("h", S.SUBMITTED)], [], S.SUBMITTED, None, [], [], []),
    ([c("t", S.ACCEPTED), c("h", S.IN_REVIEW)], [], S.ACCEPTED, None, [], [], []),
    ([c("t", S.IN_REVIEW), c("h", S.SUSPENDED)], [], S.SUSPENDED, None, [], [], []),
    ([c("t", S.FINISHED, A), c("h", S.IN_REVIEW)], [], S.IN_REVIEW, None, [], [], []),
    ([c("t", S.FINISHED, A), c("h", S.FINISHED, A)], [], S.FINISHED, A, [], [], []),
    ([c("t", S.FINISHED, D), c("h", S.FINISHED, D)], [], S.FINISHED, D, [], [], []),
    ([c("t", S.FINISHED, A), c("h", S.FINISHED, D)], [], S.FINISHED, None, [], [], []),
    ([c("t", S.FINISHED, A), c("h", S.NOT_ACCEPTED)], [], S.FINISHED, None, [], [], []),
    ([c("t", S.WITHDRAWN), c("h", S.WITHDRAWN)], [], S.WITHDRAWN, None, [], [], []),
    ([c("t", S.VOIDED)], [], S.VOIDED, None, [], [], []),
    # discarded by an operator: VOIDED, nothing left to deliver
    ([c("t", S.VOIDED, delivery=Delivery.DISCARDED)], [], S.VOIDED, None, [], [], []),
    # a part waiting for the applicant sets the status and comes first, whatever the others do
    ([c("t", S.IN_REVIEW), c("h", S.SUPPLEMENT_REQUIRED)], [], S.SUPPLEMENT_REQUIRED, None,
     ["h"], [], []),
    ([c("t", S.SUPPLEMENT_REQUIRED), c("h", S.PRECHECK_RETURNED), c("n", S.ACCEPTED)], [],
     S.PRECHECK_RETURNED, None, ["h", "t"], [], []),
    ([c("t", S.FINISHED, A), c("h", S.SUPPLEMENT_REQUIRED)], [], S.SUPPLEMENT_REQUIRED, None,
     ["h"], [], []),
    ([c("t", delivery=R), c("h", S.SUPPLEMENT_REQUIRED)], [], S.SUPPLEMENT_REQUIRED, None,
     ["h", "t"], [], ["t"]),
    # dead-lettered: not delivered, named, and an operator is needed
    ([c("t", S.ACCEPTED), c("h", delivery=X)], [], S.SUBMITTED, None, ["h"], ["h"], ["h"]),
    ([c("t", S.FINISHED, A), c("h", delivery=X)], [], S.SUBMITTED, None, ["h"], ["h"], ["h"]),
    # a dead part the partner reports on holds the case after all: not blocking, still flagged
    ([c("t", S.FINISHED, A), c("h", S.FINISHED, A, delivery=X)], [], S.FINISHED, A, [], ["h"],
     []),
    # home items: handed to the home platform, known only as submitted, never blocking
    ([], ["1", "2"], S.SUBMITTED, None, [], [], []),
    ([c("t", S.ACCEPTED, items=("3",))], ["1"], S.SUBMITTED, None, [], [], []),
    ([c("t", S.FINISHED, A, items=("3",))], ["1"], S.SUBMITTED, None, [], [], []),
    ([c("t", S.FINISHED, A, items=("3",))], [home_part("1", S.FINISHED, A)], S.FINISHED, A,
     [], [], []),
    ([c("t", delivery=R, items=("3",)), c("h", delivery=X, items=("4",)),
      c("n", S.SUBMITTED, items=("5",))], ["1", "2"], S.SUBMITTED, None, ["t", "h"], ["h"],
     ["t", "h"]),
]


@pytest.mark.parametrize(("children", "home", "status", "result", "blocking", "attention",
                          "pending"), BUNDLE_CASES)
def test_derive_bundle(children: list[ChildView], home: list[Any], status: CaseStatus,
                       result: Result | None, blocking: list[str], attention: list[str],
                       pending: list[str]) -> None:
    view = derive_bundle(children, home)
    assert isinstance(view, BundleView)
    assert view.status is status
    assert view.result is result
    assert [b.key for b in view.blocking] == blocking
    assert [a.key for a in view.attention] == attention
    assert view.needs_attention is bool(attention)
    assert list(view.pending) == pending
    assert view.delivered is (not pending)
    assert view.terminal is (status in TERMINAL)
    assert [h.item_nos[0] for h in view.home] == [
        h if isinstance(h, str) else h.item_nos[0] for h in home]
    assert derive_bundle(children, home) == view  # pure: same parts, same view


# (store state, attempts) → the gateway's view of the part
@pytest.mark.parametrize(("state", "attempts", "delivery", "unaccepted"), [
    ("pending", 0, Delivery.PENDING, True),
    ("pending", 3, Delivery.RETRYING, True),
    ("in_flight", 0, Delivery.IN_FLIGHT, True),
    ("in_flight", 2, Delivery.IN_FLIGHT, True),
    ("dead", 6, Delivery.DEAD, True),
    ("delivered", 1, Delivery.DELIVERED, False),
    ("discarded", 6, Delivery.DISCARDED, False),
])
def test_delivery_state_of_a_stored_delivery(state: str, attempts: int, delivery: Delivery,
                                             unaccepted: bool) -> None:
    assert delivery_of(state, attempts) is delivery
    assert (delivery in UNACCEPTED) is unaccepted
    with pytest.raises(ValueError):
        delivery_of("lost")


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
    [part] = doc["blocking"]
    assert part["key"] == "tianjin:120116000000:3+4" and part["partner"] == "tianjin"
    assert part["itemNos"] == ["3", "4"] and part["status"] == "SUPPLEMENT_REQUIRED"
    assert part["waitingFor"] == "applicant" and part["delivery"] == "delivered"


class _Stored:
    """The fields of a stored delivery that the derivation reads (a ``DeliveryRecord``)."""

    def __init__(self, id: str, partner: str, item_nos: list[str], state: str, attempts: int,
                 partner_status: str | None = None, last_outcome: str | None = None,
                 last_code: str | None = None, last_message: str | None = None) -> None:
        self.id, self.partner, self.item_nos, self.region = id, partner, item_nos, "120000"
        self.state, self.attempts, self.partner_status = state, attempts, partner_status
        self.last_outcome, self.last_code, self.last_message = last_outcome, last_code, last_message
        self.next_attempt_at = T1


def test_unaccepted_parts_are_named_with_their_delivery_state_and_last_reason() -> None:
    stored = [
        _Stored("d1", "tianjin", ["3"], "pending", 2, last_outcome="retryable",
                last_message="HTTP 500: simulated internal error"),
        _Stored("d2", "hebei", ["5", "6"], "dead", 6, last_outcome="permanent",
                last_code="E102", last_message="申请人证件号码无效"),
        _Stored("d3", "national", ["7"], "in_flight", 0),
        _Stored("d4", "national", ["8"], "pending", 0),
        _Stored("d5", "national", ["9"], "delivered", 1, partner_status="SUBMITTED",
                last_outcome="delivered"),
    ]
    doc = derive_bundle([child_of(d) for d in stored], ["1", "2"]).as_dict()
    assert doc["status"] == "SUBMITTED" and doc["delivered"] is False
    assert doc["pending"] == ["d1", "d2", "d3", "d4"]
    got = [(b["key"], b["partner"], b["itemNos"], b["delivery"], b["waitingFor"],
            b["attempts"], b["lastOutcome"], b["lastCode"], b["lastMessage"])
           for b in doc["blocking"]]
    assert got == [
        ("d1", "tianjin", ["3"], "retrying", "delivery", 2, "retryable", None,
         "HTTP 500: simulated internal error"),
        ("d2", "hebei", ["5", "6"], "dead", "operator", 6, "permanent", "E102", "申请人证件号码无效"),
        ("d3", "national", ["7"], "in_flight", "delivery", 0, None, None, None),
        ("d4", "national", ["8"], "pending", "delivery", 0, None, None, None),
    ]
    assert doc["blocking"][0]["nextAttemptAt"] == T1.isoformat()
    assert doc["blocking"][2]["nextAttemptAt"] is None  # on the wire now
    assert [a["key"] for a in doc["attention"]] == ["d2"] and doc["needsAttention"]
    assert doc["blocking"][1]["deadLetter"] is True
    assert [(h["key"], h["partner"], h["itemNos"], h["delivery"], h["status"], h["waitingFor"])
            for h in doc["home"]] == [("home:1", "home", ["1"], "handed_to_home", "SUBMITTED", None),
                                      ("home:2", "home", ["2"], "handed_to_home", "SUBMITTED", None)]
    assert [ch["key"] for ch in doc["children"]] == ["d1", "d2", "d3", "d4", "d5"]


def test_items_include_home_items_and_name_their_parts() -> None:
    kids = [c("tianjin:x:3", delivery=R, items=("3",)),
            c("hebei:y:10", S.SUBMITTED, items=("10",)),
            c("tianjin:x:10", delivery=X, items=("10",))]
    items = {no: v.item_dict() for no, v in derive_items(kids, ["2", "1"]).items()}
    assert list(items) == ["1", "2", "3", "10"]  # item-number order
    assert items["1"] == {"status": "SUBMITTED", "terminal": False, "result": None, "home": True,
                          "parts": [{"key": "home:1", "partner": "home", "region": None,
                                     "delivery": "handed_to_home"}],
                          "blocking": []}
    assert items["3"]["blocking"] == ["tianjin:x:3"] and not items["3"]["home"]
    assert [p["delivery"] for p in items["10"]["parts"]] == ["delivered", "dead"]
    assert items["10"]["blocking"] == ["tianjin:x:10"]


def test_joint_item_requires_every_region() -> None:
    kids = [c("tianjin:x:1+2", S.FINISHED, A, items=("1", "2")),
            c("hebei:y:1", S.IN_REVIEW, items=("1",))]
    items = derive_items(kids)
    assert items["2"].status is S.FINISHED and items["2"].result is A
    assert items["1"].status is S.IN_REVIEW
    assert derive_items([*kids[:1], c("hebei:y:1", S.FINISHED, A, items=("1",))])[
        "1"].result is A
    # a 多地联办 item with a Beijing part: the home part keeps it open
    joint = derive_items([c("tianjin:x:1", S.FINISHED, A, items=("1",))], ["1"])["1"]
    assert joint.status is S.SUBMITTED and joint.item_dict()["home"] is True


# -- the partners' status codes: mappings/codes/status-*.yaml, the one set of tables ------------

def _status_tables() -> dict[str, CodeTable]:
    return {name: t for name, t in load_tables(ROOT / "mappings" / "codes").items()
            if name.startswith("status-")}


@pytest.mark.parametrize(("table", "code", "status"), [
    ("status-vendor-numeric", "26", S.RECEIVED),
    ("status-vendor-numeric", "28", S.SUPPLEMENT_REQUIRED),
    ("status-vendor-numeric", "30", S.ACCEPTED), ("status-vendor-numeric", 90, S.FINISHED),
    ("status-vendor-numeric", "97", S.NOT_ACCEPTED), ("status-vendor-numeric", "98", S.WITHDRAWN),
    ("status-vendor-numeric", "99", S.VOIDED),
    ("status-national-satisfaction", "1", S.SUBMITTED),
    ("status-national-satisfaction", "2", S.ACCEPTED),
    ("status-national-satisfaction", 3, S.FINISHED),
])
def test_a_partner_code_is_read_as_a_canonical_status(table: str, code: str | int,
                                                      status: CaseStatus) -> None:
    assert CaseStatus(_status_tables()[table].decode(code)) is status


def test_status_code_tables_speak_only_canonical_statuses() -> None:
    tables = _status_tables()
    assert set(tables) == {"status-exchange", "status-vendor-numeric",
                           "status-national-satisfaction"}
    for name, t in tables.items():
        assert set(t.forward) <= set(CaseStatus), name
        assert t.reverse is not None and {CaseStatus(v) for v in t.reverse.values()}, name
    exchange = tables["status-exchange"]
    assert exchange.forward == {s.value: s.value for s in CaseStatus}
    with pytest.raises(ValueError, match="ALMOST_DONE"):
        exchange.decode("ALMOST_DONE")
    vendor = tables["status-vendor-numeric"]
    for status, code in vendor.forward.items():
        assert vendor.decode(code) == status and vendor.encode(status) == code
    with pytest.raises(ValueError, match="'27'"):
        vendor.decode("27")
    with pytest.raises(ValueError):
        vendor.encode(S.IN_REVIEW)  # the vendor scheme has no code for it


def test_the_national_feed_collapses_as_designed_and_is_read_as_the_least_it_proves() -> None:
    """DESIGN.md §4: "1 pending, 2 accepted, 3 finished". Every status has a code; a code is
    read as the least advanced status it stands for (a case never moves back, so reading "1"
    as RECEIVED would refuse a later PRECHECK_RETURNED)."""
    national = _status_tables()["status-national-satisfaction"]
    assert set(national.forward) == set(CaseStatus)
    assert {s for s, c in national.forward.items() if c == "3"} == TERMINAL
    assert {s for s, c in national.forward.items() if c == "2"} == {
        S.ACCEPTED, S.IN_REVIEW, S.SUSPENDED}
    assert national.reverse is not None
    for code, status in national.reverse.items():
        meaning = [CaseStatus(s) for s, c in national.forward.items() if c == code]
        assert RANK[CaseStatus(status)] == min(RANK[s] for s in meaning), code
    assert national.decode("1") == S.SUBMITTED
    assert advance(CaseStatus(national.decode("1")), S.PRECHECK_RETURNED) is S.PRECHECK_RETURNED
