"""Circuit breaker transitions (gateway.retry.breaker): pure, serialisable, shareable."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import BreakerSettings, PartnerSettings, Settings
from gateway.observability.metrics import Metrics
from gateway.outcome import OutcomeKind
from gateway.delivery.gates import PartnerGates
from gateway.retry.breaker import (
    STATE_GAUGE,
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
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


KINDS = {"ok": OK, "fail": FAIL, "refused": REFUSED}


def feed(snap: BreakerSnapshot, t: float, *kinds: OutcomeKind,
         policy: BreakerPolicy = POLICY) -> BreakerSnapshot:
    for kind in kinds:
        snap = record(policy, snap, kind, at(t))
    return snap


def tripped(policy: BreakerPolicy = POLICY, t: float = 0) -> BreakerSnapshot:
    snap = feed(BreakerSnapshot(), t, *[FAIL] * policy.failure_threshold, policy=policy)
    assert snap.state is OPEN
    return snap


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
    snap = BreakerSnapshot()
    for t, action, expected, state in SCENARIOS[name]:
        if action == "allow":
            ok, snap = allow(POLICY, snap, at(t))
            assert ok is expected, (t, action)
        else:
            snap = record(POLICY, snap, KINDS[action], at(t))
        assert snap.state is state, (t, action)


def test_failure_ratio_in_window_opens_it() -> None:
    snap = BreakerSnapshot()
    # alternate fail/ok: never 3 consecutive failures, but 50% failures once 10 calls are in
    for i in range(9):
        snap = feed(snap, i, FAIL if i % 2 == 0 else OK)
        assert snap.state is CLOSED
    snap = feed(snap, 9, FAIL)  # 10 calls, 6 failures, only 2 of them in a row
    assert snap.state is OPEN
    assert snap.trips == 1


def test_ratio_below_threshold_stays_closed() -> None:
    snap = BreakerSnapshot()
    for i in range(40):
        snap = feed(snap, i, FAIL if i % 3 == 0 else OK)  # one in three fails
    assert snap.state is CLOSED


def test_old_calls_slide_out_of_the_window() -> None:
    snap = BreakerSnapshot()
    for i in range(8):  # 4 failures in 8 calls, never 3 in a row
        snap = feed(snap, i, FAIL if i % 2 else OK)
    # two minutes later those calls are gone: 2 new failures among 2 calls < min_calls
    snap = feed(feed(snap, 200, FAIL), 201, OK)
    assert snap.window_counts() == (2, 1)
    assert snap.state is CLOSED


def test_cool_down_resets_after_closing() -> None:
    ok, snap = allow(POLICY, tripped(), at(30))
    assert ok
    snap = feed(snap, 30, FAIL)            # cool-down 60
    ok, snap = allow(POLICY, snap, at(90))
    assert ok
    snap = feed(snap, 90, OK)              # closed
    assert snap.state is CLOSED
    snap = feed(snap, 100, FAIL, FAIL, FAIL)
    assert snap.cool_down == 30 and snap.open_until == at(130)
    assert snap.trips == 3


def test_disabled_breaker_always_allows() -> None:
    policy = BreakerPolicy(enabled=False, failure_threshold=1)
    snap = BreakerSnapshot()
    for i in range(10):
        snap = feed(snap, i, FAIL, policy=policy)
        ok, snap = allow(policy, snap, at(i))
        assert ok
    assert snap.state is CLOSED


def test_pure_functions_return_same_object_when_nothing_changes() -> None:
    snap = BreakerSnapshot()
    ok, same = allow(POLICY, snap, T0)
    assert ok and same is snap
    s = tripped()
    assert allow(POLICY, s, at(1)) == (False, s)
    assert record(POLICY, s, OK, at(1)) is s


def test_version_moves_on_every_change() -> None:
    snap = BreakerSnapshot()
    versions = [snap.version]
    for kind in (FAIL, OK, FAIL, FAIL, FAIL):
        snap = feed(snap, 0, kind)
        versions.append(snap.version)
    ok, snap = allow(POLICY, snap, at(30))
    assert ok
    versions.append(snap.version)
    assert versions == sorted(set(versions))


def test_snapshot_round_trips_through_json() -> None:
    snap = feed(tripped(), 1, FAIL)
    ok, snap = allow(POLICY, snap, at(30))
    assert ok
    row = json.loads(json.dumps(snap.to_dict()))
    assert row["state"] == "half_open" and row["trips"] == 1
    assert BreakerSnapshot.from_dict(row) == snap
    assert BreakerSnapshot.from_dict({}) == BreakerSnapshot()


def test_two_instances_share_one_row() -> None:
    """Instance A trips the breaker and writes the row; instance B reads it and holds back; only
    one of them takes the probe (the other sees the probe already taken in the row)."""
    row: dict[str, object] = BreakerSnapshot().to_dict()

    def load() -> BreakerSnapshot:
        return BreakerSnapshot.from_dict(row)  # type: ignore[arg-type]

    a = load()
    for _ in range(3):
        a = record(POLICY, a, FAIL, at(0), detail="HTTP 503")
    row = a.to_dict()
    b = load()
    assert b.state is OPEN and not allow(POLICY, b, at(10))[0]
    assert b.last_failure == "HTTP 503"
    ok, a = allow(POLICY, load(), at(30))
    assert ok
    row = a.to_dict()  # A wins the compare-and-set and sends the probe
    assert not allow(POLICY, load(), at(31))[0]


def test_gauge_values() -> None:
    assert [STATE_GAUGE[s] for s in (CLOSED, HALF, OPEN)] == [0, 1, 2]


def test_defaults_are_the_settings_defaults() -> None:
    assert BreakerPolicy() == BreakerPolicy.from_settings(BreakerSettings())


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
    snap = BreakerSnapshot()
    t = 0.0
    granted_in_half: list[float] = []
    for dt, action in steps:
        t += dt
        now = at(t)
        before = snap
        if action == "allow":
            ok, snap = allow(POLICY, snap, now)
            if before.state is OPEN and before.open_until is not None and now < before.open_until:
                assert not ok
            if ok and snap.state is HALF:
                if granted_in_half:
                    assert t - granted_in_half[-1] >= POLICY.probe_timeout or \
                        before.state is OPEN
                granted_in_half.append(t)
        else:
            snap = record(POLICY, snap, KINDS[action], now)
            if snap.state is not HALF:
                granted_in_half.clear()
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
