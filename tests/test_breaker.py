"""Circuit breaker transitions (gateway.retry.breaker): pure, serialisable, shareable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import BreakerSettings, PartnerSettings, Settings
from gateway.metrics import Metrics
from gateway.outcome import OutcomeKind
from gateway.partner_gates import PartnerGates
from gateway.retry.breaker import (
    STATE_GAUGE,
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    allow,
    record,
)

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
OK, FAIL, REFUSED = OutcomeKind.DELIVERED, OutcomeKind.RETRYABLE, OutcomeKind.PERMANENT
CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

POLICY = BreakerPolicy(failure_threshold=3, failure_ratio=0.5, min_calls=10, window=60,
                       cool_down=30, cool_down_multiplier=2, max_cool_down=100, probe_timeout=20)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def tripped(policy: BreakerPolicy = POLICY, t: float = 0) -> CircuitBreaker:
    b = CircuitBreaker(policy)
    for _ in range(policy.failure_threshold):
        b.record(FAIL, at(t))
    assert b.state is OPEN
    return b


# Each step: (seconds, action, expected result of allow or None, state after).
SCENARIOS: dict[str, list[tuple[float, str, bool | None, BreakerState]]] = {
    "consecutive failures open it": [
        (0, "fail", None, CLOSED), (1, "fail", None, CLOSED), (2, "fail", None, OPEN),
        (3, "allow", False, OPEN),
    ],
    "a success resets the consecutive count": [
        (0, "fail", None, CLOSED), (1, "fail", None, CLOSED), (2, "ok", None, CLOSED),
        (3, "fail", None, CLOSED), (4, "fail", None, CLOSED), (5, "allow", True, CLOSED),
    ],
    "permanent outcomes are a partner that answered": [
        (0, "fail", None, CLOSED), (1, "fail", None, CLOSED), (2, "refused", None, CLOSED),
        (3, "fail", None, CLOSED), (4, "allow", True, CLOSED),
    ],
    "after the cool-down exactly one probe": [
        (0, "fail", None, CLOSED), (0, "fail", None, CLOSED), (0, "fail", None, OPEN),
        (29.9, "allow", False, OPEN), (30, "allow", True, HALF), (30, "allow", False, HALF),
        (31, "allow", False, HALF), (45, "allow", False, HALF),
    ],
    "probe success closes": [
        (0, "fail", None, CLOSED), (0, "fail", None, CLOSED), (0, "fail", None, OPEN),
        (30, "allow", True, HALF), (31, "ok", None, CLOSED), (31, "allow", True, CLOSED),
        (31, "allow", True, CLOSED),
    ],
    "probe failure re-opens for longer": [
        (0, "fail", None, CLOSED), (0, "fail", None, CLOSED), (0, "fail", None, OPEN),
        (30, "allow", True, HALF), (31, "fail", None, OPEN),
        (31 + 59, "allow", False, OPEN), (31 + 60, "allow", True, HALF),
        (92, "fail", None, OPEN), (92 + 99, "allow", False, OPEN), (92 + 100, "allow", True, HALF),
    ],
    "a lost probe is replaced after probe_timeout": [
        (0, "fail", None, CLOSED), (0, "fail", None, CLOSED), (0, "fail", None, OPEN),
        (30, "allow", True, HALF), (49, "allow", False, HALF), (50, "allow", True, HALF),
        (51, "allow", False, HALF),
    ],
    "late outcomes while open are ignored": [
        (0, "fail", None, CLOSED), (0, "fail", None, CLOSED), (0, "fail", None, OPEN),
        (1, "ok", None, OPEN), (2, "fail", None, OPEN), (29, "allow", False, OPEN),
        (30, "allow", True, HALF),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    b = CircuitBreaker(POLICY)
    for t, action, expected, state in SCENARIOS[name]:
        if action == "allow":
            assert b.allow(at(t)) is expected, (t, action)
        else:
            b.record({"ok": OK, "fail": FAIL, "refused": REFUSED}[action], at(t))
        assert b.state is state, (t, action)


def test_failure_ratio_in_window_opens_it() -> None:
    b = CircuitBreaker(POLICY)
    # alternate fail/ok: never 3 consecutive failures, but 50% failures once 10 calls are in
    for i in range(9):
        b.record(FAIL if i % 2 == 0 else OK, at(i))
        assert b.state is CLOSED
    b.record(FAIL, at(9))  # 10 calls, 6 failures, only 2 of them in a row
    assert b.state is OPEN
    assert b.snapshot().trips == 1


def test_ratio_below_threshold_stays_closed() -> None:
    b = CircuitBreaker(POLICY)
    for i in range(40):
        b.record(FAIL if i % 3 == 0 else OK, at(i))  # one in three fails
    assert b.state is CLOSED


def test_old_calls_slide_out_of_the_window() -> None:
    b = CircuitBreaker(POLICY)
    for i in range(8):  # 4 failures in 8 calls, never 3 in a row
        b.record(FAIL if i % 2 else OK, at(i))
    # two minutes later those calls are gone: 2 new failures among 2 calls < min_calls
    b.record(FAIL, at(200))
    b.record(OK, at(201))
    assert b.snapshot().window_counts() == (2, 1)
    assert b.state is CLOSED


def test_cool_down_resets_after_closing() -> None:
    b = tripped()
    assert b.allow(at(30))
    b.record(FAIL, at(30))            # cool-down 60
    assert b.allow(at(90))
    b.record(OK, at(90))              # closed
    assert b.state is CLOSED
    for _ in range(3):
        b.record(FAIL, at(100))
    assert b.snapshot().cool_down == 30 and b.snapshot().open_until == at(130)
    assert b.snapshot().trips == 3


def test_retry_at_tells_the_worker_when_to_come_back() -> None:
    b = tripped()
    assert b.retry_at(at(1)) == at(30)
    assert b.allow(at(30))
    assert b.retry_at(at(31)) == at(50)  # a probe is in flight; presumed lost at 30 + 20
    b.record(OK, at(32))
    assert b.retry_at(at(33)) is None


def test_disabled_breaker_always_allows() -> None:
    b = CircuitBreaker(BreakerPolicy(enabled=False, failure_threshold=1))
    for i in range(10):
        b.record(FAIL, at(i))
        assert b.allow(at(i))
    assert b.state is CLOSED and b.retry_at(at(0)) is None


def test_pure_functions_return_same_object_when_nothing_changes() -> None:
    snap = BreakerSnapshot()
    ok, same = allow(POLICY, snap, T0)
    assert ok and same is snap
    opened = CircuitBreaker(POLICY, snap)
    for _ in range(3):
        opened.record(FAIL, T0)
    s = opened.snapshot()
    assert allow(POLICY, s, at(1)) == (False, s)
    assert record(POLICY, s, OK, at(1)) is s


def test_version_moves_on_every_change() -> None:
    b = CircuitBreaker(POLICY)
    versions = [b.snapshot().version]
    for kind in (FAIL, OK, FAIL, FAIL, FAIL):
        b.record(kind, at(0))
        versions.append(b.snapshot().version)
    assert b.allow(at(30))
    versions.append(b.snapshot().version)
    assert versions == sorted(set(versions))


def test_snapshot_round_trips_through_json() -> None:
    b = tripped()
    b.record(FAIL, at(1))
    assert b.allow(at(30))
    snap = b.snapshot()
    row = json.loads(json.dumps(snap.to_dict()))
    assert row["state"] == "half_open" and row["trips"] == 1
    assert BreakerSnapshot.from_dict(row) == snap
    assert BreakerSnapshot.from_dict({}) == BreakerSnapshot()


def test_two_instances_share_one_row() -> None:
    """Instance A trips the breaker and writes the row; instance B reads it and holds back; only
    one of them takes the probe (the other sees the probe already taken in the row)."""
    row: dict[str, object] = BreakerSnapshot().to_dict()

    def load() -> CircuitBreaker:
        return CircuitBreaker(POLICY, BreakerSnapshot.from_dict(row))  # type: ignore[arg-type]

    a = load()
    for _ in range(3):
        a.record(FAIL, at(0), detail="HTTP 503")
    row = a.snapshot().to_dict()
    b = load()
    assert b.state is OPEN and not b.allow(at(10))
    assert b.snapshot().last_failure == "HTTP 503"
    a, b = load(), load()
    assert a.allow(at(30))
    row = a.snapshot().to_dict()  # A wins the compare-and-set and sends the probe
    assert not load().allow(at(31))


def test_gauge_values() -> None:
    assert [STATE_GAUGE[s] for s in (CLOSED, HALF, OPEN)] == [0, 1, 2]


def test_policy_from_settings() -> None:
    s = BreakerSettings(failure_threshold=7, window="2m", cool_down="45s", max_cool_down="1h")
    p = BreakerPolicy.from_settings(s)
    assert (p.failure_threshold, p.window, p.cool_down, p.max_cool_down) == (7, 120, 45, 3600)


@pytest.mark.parametrize("kwargs", [
    {"failure_threshold": 0}, {"failure_ratio": 0}, {"failure_ratio": 1.5}, {"window": 0},
    {"cool_down": 100, "max_cool_down": 10}, {"cool_down_multiplier": 0.5},
])
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.sampled_from(["ok", "fail", "refused", "allow"])),
                max_size=80))
def test_invariants_under_any_sequence(steps: list[tuple[float, str]]) -> None:
    """At most one probe granted per probe_timeout in HALF_OPEN; cool-down within bounds;
    OPEN never lets anything through before open_until."""
    b = CircuitBreaker(POLICY)
    t = 0.0
    granted_in_half: list[float] = []
    for dt, action in steps:
        t += dt
        now = at(t)
        before = b.snapshot()
        if action == "allow":
            ok = b.allow(now)
            if before.state is OPEN and before.open_until is not None and now < before.open_until:
                assert not ok
            if ok and b.state is HALF:
                if granted_in_half:
                    assert t - granted_in_half[-1] >= POLICY.probe_timeout or \
                        before.state is OPEN
                granted_in_half.append(t)
        else:
            b.record({"ok": OK, "fail": FAIL, "refused": REFUSED}[action], now)
            if b.state is not HALF:
                granted_in_half.clear()
        snap = b.snapshot()
        if snap.state is OPEN:
            assert snap.cool_down is not None
            assert POLICY.cool_down <= snap.cool_down <= POLICY.max_cool_down
        assert BreakerSnapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap


# --- PartnerGates: the shared row, the probe one claim, an unrecorded probe not waited for ---------

class _Rows:
    """In-memory stand-in for gateway.store.breakers.BreakerRows (same compare-and-set)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, dict[str, object]]] = {}

    async def load(self) -> dict[str, dict[str, object]]:
        return {p: doc for p, (_, doc) in self.rows.items()}

    async def compare_and_set(self, partner: str, expected: int | None,
                              doc: dict[str, object], version: int) -> bool:
        current = self.rows.get(partner)
        if (current[0] if current else None) != expected:
            return False
        self.rows[partner] = (version, doc)
        return True


def _gates(rows: _Rows) -> PartnerGates:
    p = PartnerSettings(protocol="rest-json", url="http://x", mapping="m",
                        breaker=BreakerSettings(failure_threshold=3, cool_down=30,
                                                probe_timeout=20))
    return PartnerGates(Settings(partners={"p": p}), rows, Metrics())  # type: ignore[arg-type]


async def test_gates_probe_is_one_claim_and_an_unrecorded_probe_is_not_waited_for() -> None:
    rows = _Rows()
    a, b = _gates(rows), _gates(rows)  # two instances sharing one row
    for _ in range(3):
        await a.record("p", FAIL, at(0), "HTTP 503")
    await b.sync()
    assert await b.capacity(at(10)) == {"p": 0}
    assert await a.capacity(at(31)) == {"p": 1}  # the probe
    assert await a.capacity(at(31)) == {"p": 0}  # in flight
    await b.sync()
    assert await b.capacity(at(32)) == {"p": 0}
    # the probe's outcome will never be recorded (lease lost, stale, database error): A stops
    # waiting for it, and the probe timeout lets the next one go — not earlier
    a.forget_probe("p")
    assert await a.capacity(at(40)) == {"p": 0}
    assert await a.capacity(at(52)) == {"p": 1}
    await a.record("p", OK, at(52.5), "ok")
    await b.sync()
    assert await b.capacity(at(53)) == {"p": 4}  # closed for all


async def test_gates_forget_probe_without_a_probe_changes_nothing() -> None:
    gates = _gates(_Rows())
    gates.forget_probe("p")
    gates.forget_probe("not-configured")
    assert await gates.capacity(at(0)) == {"p": 4}
