"""A stale attempt must not trip the shared breaker (issue 10, section 7), on both engines.

An instance paused past its lease (SIGSTOP, a VM freeze) wakes to sends that "time out": the
partner answered during the pause, but the timer fired first. Those outcomes say nothing about
the partner. Only an attempt whose result was recorded under a lease still valid when the result
came back may feed the partner's breaker, which every instance shares through the database.

The pause is simulated without a signal: the paused instance is a real :class:`Worker` on its
own engine whose partner client sends for real (the partner accepts the case) and then holds the
reply back until the test wakes it, and returns the timeout the woken instance would see. Its
claim loop polls rarely, so, as in a paused process, nothing else of it runs meanwhile.

The breaker under test opens after two failures and then stays open for a minute: a stale
instance that fed it would hold every fresh case back far longer than these tests wait.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from gateway.config import Settings, load_settings
from gateway.contracts import ContractsHolder, load_contracts
from gateway.observability.metrics import Metrics
from gateway.outcome import Outcome
from gateway.delivery.gates import PartnerGates
from gateway.protocols import create_client
from gateway.protocols.base import PartnerClient
from gateway.store import Store, create_engine
from gateway.store.breakers import BreakerRows
from gateway.store.migrate import upgrade
from gateway.delivery.worker import Worker
from tests.harness import (
    Gateway,
    LiveSimulator,
    db_rows,
    edit_config,
    numbered_case,
    wait_until,
    write_config,
)

LEASE = 1.0
CASES = 3
COOL_DOWN = 60.0   # a breaker opened by mistake would hold a fresh case for a minute
# how long a fresh case may take with the breaker closed (it takes ~0.1 s): half the
# cool-down, so a breaker opened by mistake still fails the test, and a busy machine does not
FRESH_WITHIN = COOL_DOWN / 2


class PausedClient:
    """Sends for real, then holds the reply until :attr:`wake` is set and returns the timeout a
    woken instance sees. After the wake it is the real client again."""

    def __init__(self, real: PartnerClient) -> None:
        self.real = real
        self.wake = asyncio.Event()
        self.held = 0      # sends whose reply is held back
        self.returned = 0  # held sends that have returned their (fake) timeout

    async def send(self, payload: Any, *, idempotency_key: str, correlation_id: str) -> Outcome:
        if self.wake.is_set():
            return await self.real.send(payload, idempotency_key=idempotency_key,
                                        correlation_id=correlation_id)
        await self.real.send(payload, idempotency_key=idempotency_key,
                             correlation_id=correlation_id)
        self.held += 1
        await self.wake.wait()
        self.returned += 1
        return Outcome.retryable("timeout: no reply within 0.75s")

    async def close(self) -> None:
        await self.real.close()


def _config(base: Path, db_url: str, sim_url: str, **worker: Any) -> Settings:
    base.mkdir(parents=True, exist_ok=True)
    cfg = write_config(base, db_url, {"national": sim_url}, lease_seconds=LEASE, **worker)

    def tune(raw: dict[str, Any]) -> None:
        raw["partners"]["national"]["breaker"] = {
            "failure_threshold": 2, "min_calls": 100, "cool_down": COOL_DOWN,
            "max_cool_down": COOL_DOWN, "probe_timeout": COOL_DOWN}
    return load_settings(edit_config(cfg, tune))


@asynccontextmanager
async def paused_instance(settings: Settings) -> AsyncIterator[tuple[Worker, PausedClient,
                                                                     PartnerGates]]:
    """A second gateway instance's worker (own engine, own breaker gates, own worker id)."""
    engine = create_engine(settings.database.url)
    await upgrade(engine)
    http = aiohttp.ClientSession()
    client = PausedClient(create_client("national", settings.partners["national"], http))
    metrics = Metrics()
    store = Store(engine)
    gates = PartnerGates(settings, BreakerRows(store), metrics)
    worker = Worker(store=store, contracts=ContractsHolder(load_contracts(settings)),
                    clients={"national": client}, settings=settings, metrics=metrics,
                    gates=gates, worker_id="paused")
    task = asyncio.create_task(worker.run())
    try:
        yield worker, client, gates
    finally:
        client.wake.set()
        await worker.stop(grace=5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.close()
        await http.close()
        await engine.dispose()


async def _breaker_row(db_url: str) -> dict[str, Any] | None:
    rows = await db_rows(db_url, "SELECT snapshot FROM partner_breakers WHERE partner = 'national'")
    if not rows:
        return None
    v = rows[0][0]
    return v if isinstance(v, dict) else json.loads(v)


async def _post(gw: Gateway, template: dict[str, Any], n: int, prefix: str) -> str:
    status, doc = await gw.post_case(numbered_case(template, n, prefix=prefix))
    assert status == 202, doc
    return str(doc["id"])


def _assert_breaker_untouched(row: dict[str, Any] | None, gates: PartnerGates) -> None:
    # the shared row: never written (no transition) or closed with no trip
    assert row is None or (row["state"] == "closed" and row["trips"] == 0), row
    # and the paused instance did not even count the late results locally
    local = gates.snapshot("national")
    assert local is not None
    assert (local["state"], local["consecutive_failures"], local["window_failures"]) == (
        "closed", 0, 0), local


async def _fresh_case_is_delivered_at_once(gw: Gateway, template: dict[str, Any]) -> None:
    t0 = time.monotonic()
    case_id = await _post(gw, template, 99, "FRESH")
    final = await gw.wait_final(case_id, timeout=FRESH_WITHIN)
    assert final["deliveries"][0]["state"] == "delivered"
    assert final["deliveries"][0]["partnerBreaker"] == "closed"
    assert time.monotonic() - t0 < FRESH_WITHIN


async def test_late_results_of_a_paused_instance_whose_claims_were_taken_over(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    """Claims taken over by a healthy instance: the paused one's late timeouts are neither
    recorded nor counted, and a fresh case goes through without waiting for a breaker."""
    template = samples["01-person-shanghai-social-security"]
    async with LiveSimulator("national") as sim:
        intake = _config(tmp_path / "intake", db_url, sim.url(), enabled=False)
        paused = _config(tmp_path / "paused", db_url, sim.url(), poll_interval=60)
        healthy = _config(tmp_path / "healthy", db_url, sim.url())
        async with Gateway(intake) as front:
            ids = [await _post(front, template, n, "STALE") for n in range(CASES)]
            async with paused_instance(paused) as (worker, client, gates):
                async def all_held() -> bool:
                    return client.held == CASES
                await wait_until(all_held, timeout=20, what="the paused instance's sends",
                                 interval=0.02)
                # the healthy instance takes the claims over once their leases expire
                async with Gateway(healthy) as gw:
                    finals = [await gw.wait_final(i, timeout=20) for i in ids]
                    assert all(f["deliveries"][0]["state"] == "delivered" for f in finals)

                    client.wake.set()  # the paused instance wakes: its sends "time out"

                    async def late_results_handled() -> bool:
                        return client.returned == CASES and not worker._tasks
                    await wait_until(late_results_handled, timeout=20,
                                     what="the paused instance to handle its late results")
                    _assert_breaker_untouched(await _breaker_row(db_url), gates)
                    await _fresh_case_is_delivered_at_once(gw, template)

    attempts = await db_rows(db_url, "SELECT worker, outcome FROM attempts")
    assert [a for a in attempts if a.worker == "paused"] == []  # late results not recorded
    assert sorted(a.outcome for a in attempts) == ["delivered"] * (CASES + 1)
    summary = sim.state.summary(False)
    assert summary["unique"] == CASES + 1  # the partner deduped the resends: one application each


async def test_late_results_after_the_lease_expired_are_recorded_but_not_counted(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    """Nobody took the claims over: the late timeouts are history (recorded, retried), but the
    lease had expired when they came back, so the breaker does not hear of them."""
    template = samples["01-person-shanghai-social-security"]
    async with LiveSimulator("national") as sim:
        intake = _config(tmp_path / "intake", db_url, sim.url(), enabled=False)
        paused = _config(tmp_path / "paused", db_url, sim.url(), poll_interval=60)
        healthy = _config(tmp_path / "healthy", db_url, sim.url())
        async with Gateway(intake) as front:
            ids = [await _post(front, template, n, "LATE") for n in range(CASES)]
            async with paused_instance(paused) as (worker, client, gates):
                async def all_held() -> bool:
                    return client.held == CASES
                await wait_until(all_held, timeout=20, what="the paused instance's sends",
                                 interval=0.02)
                leases = await db_rows(db_url, "SELECT lease_expires_at FROM deliveries")

                async def leases_expired() -> bool:
                    from gateway.store.types import utcnow
                    now = utcnow()
                    return all(_aware(r[0]) < now for r in leases)
                await wait_until(leases_expired, timeout=10, what="the leases to expire",
                                 interval=0.05)
                client.wake.set()

                async def late_results_handled() -> bool:
                    return client.returned == CASES and not worker._tasks
                await wait_until(late_results_handled, timeout=20,
                                 what="the paused instance to handle its late results")
                _assert_breaker_untouched(await _breaker_row(db_url), gates)
                # the retries and a fresh case go through at once, on any instance
                async with Gateway(healthy) as gw:
                    finals = [await gw.wait_final(i, timeout=20) for i in ids]
                    assert all(f["deliveries"][0]["state"] == "delivered" for f in finals)
                    await _fresh_case_is_delivered_at_once(gw, template)
                _assert_breaker_untouched(await _breaker_row(db_url), gates)

    attempts = await db_rows(db_url, "SELECT worker, outcome, message FROM attempts "
                                     "ORDER BY started_at")
    late = [a for a in attempts if a.outcome == "retryable"]
    assert len(late) == CASES and all(a.worker == "paused" for a in late)
    assert all(a.message.startswith("timeout: no reply") for a in late)
    assert sum(1 for a in attempts if a.outcome == "delivered") == CASES + 1
    assert sim.state.summary(False)["unique"] == CASES + 1


def _aware(v: Any) -> Any:
    from datetime import UTC, datetime
    if isinstance(v, str):
        v = datetime.fromisoformat(v)
    return v if v.tzinfo is not None else v.replace(tzinfo=UTC)
