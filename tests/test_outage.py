"""Retries that outlast a real outage (issue 10, section 6).

With the shipped defaults a partner that is down for an hour — an ordinary outage — must cost
nothing but time: its deliveries wait behind its circuit breaker without spending attempts, the
breaker's probe is one claim charged to one delivery, and once the partner is back every delivery
is delivered exactly once. Only age (a day since the first attempt) ends the retries.

Two tests prove it:

* a pure simulation of the shipped retry policy and breaker (both are pure functions of ``now``)
  over outages of an hour and twenty hours, and past the one-day limit;
* the real gateway on both engines against a real simulator down for ten minutes, in time
  scaled 1/100: every duration of the shipped national retry and breaker settings is divided by
  100 (the configuration is the seam: nothing in the code under test is patched), so ten minutes
  take six seconds.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.outcome import Outcome, OutcomeKind
from gateway.retry.breaker import (
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
    allow,
    record,
)
from gateway.retry.policy import Decision, RetryPolicy, decide
from tests.harness import (
    DEFAULT_CONFIG,
    TEST_SECRETS,
    Gateway,
    LiveSimulator,
    SendLog,
    db_rows,
    edit_config,
    numbered_case,
    wait_until,
    write_config,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))
DOWN = Outcome.retryable("Service Unavailable", http_status=503)


def shipped(partner: str = "national") -> tuple[RetryPolicy, BreakerPolicy]:
    p = load_settings(DEFAULT_CONFIG, env=TEST_SECRETS).partners[partner]
    return RetryPolicy.from_settings(p.retry), BreakerPolicy.from_settings(p.breaker)


@dataclass
class Run:
    delivered: set[int] = field(default_factory=set)
    dead: dict[int, str] = field(default_factory=dict)
    attempts: dict[int, int] = field(default_factory=dict)
    failed_sends: int = 0
    sends_while_open: int = 0  # sends while the breaker was not closed that were not its probe
    trips: int = 0
    recovered_at: datetime | None = None


def probe_due(policy: BreakerPolicy, snap: BreakerSnapshot) -> datetime:
    """When a breaker that holds deliveries back lets the next probe go: the end of its
    cool-down, or when the probe in flight is presumed lost."""
    if snap.state is BreakerState.OPEN:
        assert snap.open_until is not None
        return snap.open_until
    assert snap.probe_started_at is not None
    return snap.probe_started_at + timedelta(seconds=policy.probe_timeout)


def simulate(retry: RetryPolicy, breaker: BreakerPolicy, *, deliveries: int, outage: float,
             arrive_within: float, horizon: float, seed: int = 7, send_time: float = 0.05) -> Run:
    """One worker, one partner, the partner answering 503 for ``outage`` seconds from T0.

    Deliveries arrive spread over ``arrive_within`` seconds. The worker sends due deliveries in
    order while the breaker allows; a held delivery waits (no attempt) until the breaker lets a
    probe through. Each send takes ``send_time``.
    """
    rng = random.Random(seed)
    arrivals = sorted(rng.uniform(0, arrive_within) for _ in range(deliveries))
    due = {i: T0 + timedelta(seconds=a) for i, a in enumerate(arrivals)}
    first: dict[int, datetime] = {}
    brk = BreakerSnapshot()
    run = Run(attempts={i: 0 for i in due})
    end = T0 + timedelta(seconds=horizon)
    back = T0 + timedelta(seconds=outage)
    now = T0
    while due and now < end:
        ready = sorted((at, i) for i, at in due.items() if at <= now)
        if not ready:
            now = min(due.values())
            continue
        for _, i in ready:
            state_before = brk.state
            ok, brk = allow(breaker, brk, now)
            if not ok:
                # held back: no attempt; come back when a probe may go
                now = max(now + timedelta(seconds=send_time), probe_due(breaker, brk))
                break
            if state_before is not BreakerState.CLOSED and brk.state is BreakerState.CLOSED:
                run.sends_while_open += 1  # cannot happen: allow() never closes a breaker
            outcome = Outcome.delivered("R-1", partner_code="0") if now >= back else DOWN
            run.attempts[i] += 1
            first.setdefault(i, now)
            if outcome.kind is OutcomeKind.RETRYABLE:
                run.failed_sends += 1
            brk = record(breaker, brk, outcome.kind, now, detail=outcome.message)
            if outcome.kind is OutcomeKind.DELIVERED and run.recovered_at is None:
                run.recovered_at = now
            d = decide(retry, outcome=outcome, attempts=run.attempts[i],
                       first_attempt_at=first[i], now=now, rng=rng)
            if d.kind is Decision.DELIVERED:
                run.delivered.add(i)
                del due[i]
            elif d.kind is Decision.DEAD:
                run.dead[i] = d.reason
                del due[i]
            else:
                assert d.next_attempt_at is not None
                due[i] = d.next_attempt_at
            now += timedelta(seconds=send_time)
    run.trips = brk.trips
    return run


@pytest.mark.parametrize("outage_hours", [1, 20])
def test_shipped_defaults_outlast_an_outage_of_hours(outage_hours: int) -> None:
    retry, breaker = shipped()
    outage = outage_hours * 3600.0
    run = simulate(retry, breaker, deliveries=40, outage=outage, arrive_within=1800,
                   horizon=outage + 2 * 3600)
    assert run.dead == {}
    assert run.delivered == set(range(40))
    # every failed send was either one of the failures that opened the breaker or one of its
    # probes (one at a time, charged to the one delivery that carried it): the deliveries it
    # held back spent nothing
    assert run.trips >= 2
    assert run.failed_sends == breaker.failure_threshold + (run.trips - 1)
    assert sum(run.attempts.values()) == run.failed_sends + 40
    # the breaker lets the first probe after recovery through within one maximal cool-down
    assert run.recovered_at is not None
    assert run.recovered_at - T0 <= timedelta(seconds=outage + breaker.max_cool_down)


def test_the_old_attempt_count_would_have_dead_lettered_an_hours_outage() -> None:
    """The same hour with the former default of six attempts: the test above can fail."""
    retry, breaker = shipped()
    old = RetryPolicy(**{**retry.__dict__, "max_attempts": 6})
    run = simulate(old, breaker, deliveries=40, outage=3600, arrive_within=1800,
                   horizon=3 * 3600)
    assert run.dead
    assert all(r == "max attempts 6 reached; last: HTTP 503 Service Unavailable"
               for r in run.dead.values())


def test_an_outage_past_the_age_limit_dead_letters_with_the_partners_last_answer() -> None:
    retry, breaker = shipped()
    run = simulate(retry, breaker, deliveries=10, outage=10 * 86400, arrive_within=60,
                   horizon=2 * 86400)
    assert run.delivered == set()
    assert set(run.dead) == set(range(10))
    assert set(run.dead.values()) == {
        "max age 1 day exceeded; last: HTTP 503 Service Unavailable"}


# --- the real gateway, ten minutes down, time scaled 1/100 ---------------------------------------

SCALE = 0.01
OUTAGE = 600 * SCALE   # ten minutes → six seconds
EARLY, LATE = 6, 6     # cases posted as the outage begins, and while the breaker holds the rest
RETRY_DURATIONS = ("initial_wait", "max_wait", "max_age", "retry_after_cap", "throttle_wait")
BREAKER_DURATIONS = ("window", "cool_down", "max_cool_down", "probe_timeout")


def scaled_shipped(partner: str, factor: float) -> dict[str, Any]:
    """The shipped retry and breaker settings of ``partner`` with every duration × ``factor``."""
    p = load_settings(DEFAULT_CONFIG, env=TEST_SECRETS).partners[partner]
    retry = p.retry.model_dump(mode="json")
    breaker = p.breaker.model_dump(mode="json")
    for k in RETRY_DURATIONS:
        retry[k] = retry[k] * factor
    for k in BREAKER_DURATIONS:
        breaker[k] = breaker[k] * factor
    return {"retry": retry, "breaker": breaker}


async def test_partner_down_ten_minutes_scaled_every_delivery_delivered_once_none_dead(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    template = samples["01-person-shanghai-social-security"]
    sim = LiveSimulator("national")
    sends = SendLog().install(sim)
    async with sim:
        cfg = write_config(tmp_path, db_url, {"national": sim.url()})
        scaled = scaled_shipped("national", SCALE)
        assert scaled["retry"]["max_attempts"] is None  # the shipped default under test

        def use_scaled_defaults(raw: dict[str, Any]) -> None:
            raw["partners"]["national"].update(scaled)
        edit_config(cfg, use_scaled_defaults)
        sim.misbehave("http500", count=-1, message="Service Unavailable")
        async with Gateway(load_settings(cfg)) as gw:
            ids: list[str] = []
            for n in range(EARLY):
                status, doc = await gw.post_case(numbered_case(template, n, prefix="OUT"))
                assert status == 202, doc
                ids.append(doc["id"])

            async def breaker_open() -> bool:
                rows = await db_rows(db_url, "SELECT snapshot FROM partner_breakers "
                                             "WHERE partner = 'national'")
                return bool(rows) and _doc(rows[0][0])["state"] != "closed"
            await wait_until(breaker_open, timeout=20, what="the breaker to open", interval=0.02)
            down_since = min(e["start"] for e in sends.entries)

            # cases arriving while the breaker holds the partner back
            for n in range(EARLY, EARLY + LATE):
                status, doc = await gw.post_case(numbered_case(template, n, prefix="OUT"))
                assert status == 202, doc
                ids.append(doc["id"])
            late = set(ids[EARLY:])

            # The partner stays down ten scaled minutes from its first failure, and at least
            # half of that after the late cases arrived: they wait behind the open breaker for a
            # good while however long it took to open on a busy machine (no race with the clock).
            up_at = max(down_since + OUTAGE, time.monotonic() + OUTAGE / 2)

            async def outage_over() -> bool:
                return time.monotonic() >= up_at
            await wait_until(outage_over, timeout=up_at - time.monotonic() + 5,
                             what="ten scaled minutes", interval=0.05)
            during = await _deliveries(db_url)
            assert all(d.state in ("pending", "in_flight") for d in during), during  # none gave up
            sim.state.behaviours.clear()  # the partner is back

            async def all_final() -> bool:
                rows = await db_rows(db_url, "SELECT count(*) FROM deliveries "
                                             "WHERE state IN ('delivered', 'dead')")
                return rows[0][0] == len(ids)
            await wait_until(all_final, timeout=60, what="every delivery final", interval=0.05)
            view = [(await gw.get(f"/api/v1/cases/{i}"))[1] for i in ids]
    summary = sim.state.summary(False)
    deliveries = await _deliveries(db_url)
    attempts = await db_rows(db_url, "SELECT delivery_id, outcome FROM attempts")
    breaker = _doc((await db_rows(db_url, "SELECT snapshot FROM partner_breakers"))[0][0])

    failed = [e for e in sends.entries if e["status"] == 500]
    first_failed: dict[str, float] = {}
    for e in sorted(failed, key=lambda e: e["start"]):
        first_failed.setdefault(e["key"], e["start"])
    success = {e["key"]: e["start"] for e in sends.entries if e["status"] == 200}
    survived = max(success[k] - t for k, t in first_failed.items())
    print(f"\noutage: {len(sends.entries)} sends, {len(failed)} failed, longest wait from a "
          f"first failure to delivery {survived:.2f}s, breaker trips {breaker['trips']}, "
          f"partner {summary}")

    # deliveries really failed for the (scaled) ten minutes and survived; the breaker was in play
    assert survived >= OUTAGE
    assert min(success.values()) - down_since >= OUTAGE
    assert breaker["trips"] >= 2 and breaker["state"] == "closed"
    # every delivery delivered, exactly once at the partner, none dead
    assert {d.state for d in deliveries} == {"delivered"}
    assert all(v["deliveries"][0]["state"] == "delivered" for v in view)
    assert summary["unique"] == len(ids)
    receipts = dict(sim.state.receipts)
    assert all(receipts[d.idempotency_key] == d.receipt_no for d in deliveries)
    per_delivery: dict[str, list[str]] = {}
    for a in attempts:
        per_delivery.setdefault(a.delivery_id, []).append(a.outcome)
    assert all(o.count("delivered") == 1 for o in per_delivery.values())
    # each attempt is one send of that delivery and nothing else: a held delivery spent no
    # attempt, a probe's failure was charged to the probe's own delivery only
    by_key: dict[str, int] = {}
    for e in sends.entries:
        by_key[e["key"]] = by_key.get(e["key"], 0) + 1
    for d in deliveries:
        assert d.attempts == len(per_delivery[d.id]) == by_key[d.idempotency_key], d
    # while the breaker held the partner, cases that arrived then waited without trying
    # (their only failures, if any, were probes): far fewer sends than a retry loop would make
    late_failed = sum(d.attempts - 1 for d in deliveries if d.case_id in late)
    assert late_failed <= breaker["trips"] - 1, (late_failed, breaker)


async def _deliveries(db_url: str) -> list[Any]:
    return await db_rows(db_url, "SELECT id, case_id, state, attempts, idempotency_key, "
                                 "receipt_no, last_message FROM deliveries")


def _doc(v: Any) -> dict[str, Any]:
    import json
    return v if isinstance(v, dict) else json.loads(v)
