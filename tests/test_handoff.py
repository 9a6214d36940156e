"""Intake hands a new case's deliveries straight to this instance's worker (issue 12): committed
already leased to it, sent without a poll or a claim transaction — only where the worker has a
free slot, the partner's breaker is closed and its limits allow; everything else is committed
pending and claimed as before. Both engines, real sockets."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from gateway.api.keys import STORE, WORKER
from gateway.retry.breaker import BreakerState
from gateway.config import load_settings
from tests.harness import (Gateway, Simulator, db_rows, edit_config, numbered_case,
                           settings_for, write_config)


def count_claims(gw: Gateway) -> list[int]:
    """Wrap the store's claim so the test sees how many claim transactions ran."""
    store = gw.app[STORE]
    calls = [0]
    original = store.claim_for_partners

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await original(*args, **kwargs)

    store.claim_for_partners = counting
    return calls


async def test_new_deliveries_go_straight_to_the_worker(db_url: str, tmp_path: Path,
                                                        samples: dict[str, Any]) -> None:
    template = samples["01-person-shanghai-social-security"]
    async with Simulator("national") as sim:
        settings = settings_for(tmp_path, db_url, {"national": sim.url()}, concurrency=32)
        async with Gateway(settings) as gw:
            claims = count_claims(gw)
            # in waves within the partner's limits (4 at a time, 20/s with a burst of 5 in the
            # shipped config): beyond them a delivery is committed pending, claimed later
            answers, finals = [], []
            for wave in range(5):
                got = await asyncio.gather(*(gw.post_case(numbered_case(
                    template, wave * 4 + i, prefix="HO")) for i in range(4)))
                assert [s for s, _ in got] == [202] * 4
                # committed in flight, leased to this instance's worker (the 202 says so)
                assert {d["state"] for _, doc in got for d in doc["deliveries"]} <= {
                    "in_flight", "delivered"}
                answers += got
                finals += [await gw.wait_final(doc["id"]) for _, doc in got]
                await asyncio.sleep(0.25)  # the rate limit's tokens come back
            worker_id = gw.app[WORKER].worker_id
            assert gw.app[WORKER]._reserved == 0
    assert all(d["state"] == "delivered" and d["attempts"] == 1
               for f in finals for d in f["deliveries"])
    assert claims == [0]  # not one claim transaction: every delivery was handed over
    summary = sim.state.summary(with_messages=False)
    assert summary["unique"] == 20 and summary["duplicates"] == 0
    rows = await db_rows(db_url, "SELECT worker FROM attempts")
    assert {r[0] for r in rows} == {worker_id} and len(rows) == 20


async def test_with_handoff_off_the_worker_claims_from_the_database(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    template = samples["01-person-shanghai-social-security"]
    async with Simulator("national") as sim:
        settings = settings_for(tmp_path, db_url, {"national": sim.url()}, handoff=False)
        async with Gateway(settings) as gw:
            claims = count_claims(gw)
            status, doc = await gw.post_case(numbered_case(template, 1, prefix="HF"))
            assert status == 202 and doc["deliveries"][0]["state"] == "pending"
            final = await gw.wait_final(doc["id"])
    assert final["deliveries"][0]["state"] == "delivered"
    assert claims[0] >= 1


async def test_an_open_breaker_or_a_full_limit_keeps_deliveries_pending(
        db_url: str, tmp_path: Path) -> None:
    async with Simulator("national") as sim:
        settings = settings_for(tmp_path, db_url, {"national": sim.url()})
        async with Gateway(settings) as gw:
            worker = gw.app[WORKER]
            gate = worker.gates.gates["national"]
            closed = gate.snap
            gate.snap = dataclasses.replace(closed, state=BreakerState.OPEN)
            assert await worker.reserve(["national"]) == [False]
            gate.snap = closed
            # every slot of the partner's concurrency limit taken: nothing more is promised
            held = 0
            while await gate.limits.concurrency.try_acquire():
                held += 1
            assert await worker.reserve(["national"]) == [False]
            for _ in range(held):
                gate.limits.concurrency.release()
            assert await worker.reserve(["national"]) == [True]
            worker.cancel(["national"])
            assert worker._reserved == 0
            assert gate.limits.concurrency.available == held


async def test_a_resubmission_gives_its_reservation_back(db_url: str, tmp_path: Path,
                                                         samples: dict[str, Any]) -> None:
    case = numbered_case(samples["01-person-shanghai-social-security"], 7, prefix="HD")
    async with Simulator("national") as sim:
        settings = settings_for(tmp_path, db_url, {"national": sim.url()})
        async with Gateway(settings) as gw:
            first, again = await asyncio.gather(gw.post_case(case), gw.post_case(case))
            assert sorted([first[0], again[0]]) == [200, 202]
            await gw.wait_final(first[1]["id"])
            worker = gw.app[WORKER]
            gate = worker.gates.gates["national"]
            await asyncio.sleep(0.1)
            assert worker._reserved == 0
            assert gate.limits.concurrency.available == gate.limits.concurrency.limit
    assert sim.state.summary(with_messages=False)["unique"] == 1


def count_due_reads(gw: Gateway) -> list[int]:
    """Count the worker's "which partners have due work" reads (one per claim round)."""
    store = gw.app[STORE]
    calls = [0]
    original = store.due_partners

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await original(*args, **kwargs)

    store.due_partners = counting
    return calls


async def test_a_handed_over_case_costs_the_worker_no_claim_round(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    """Neither the 202 of a case whose deliveries the worker took nor the end of their sends
    wakes the worker for a claim round (a database read each: under load one per case and one
    per send, the largest single cost of the worker's process); the poll still runs."""
    template = samples["01-person-shanghai-social-security"]
    async with Simulator("national") as sim:
        settings = settings_for(tmp_path, db_url, {"national": sim.url()}, concurrency=32,
                                poll_interval=30)
        async with Gateway(settings) as gw:
            await asyncio.sleep(0.2)  # the worker's first round (start-up) is over
            reads = count_due_reads(gw)
            for wave in range(3):
                got = await asyncio.gather(*(gw.post_case(numbered_case(
                    template, wave * 4 + i, prefix="NR")) for i in range(4)))
                assert [s for s, _ in got] == [202] * 4
                for _, doc in got:
                    final = await gw.wait_final(doc["id"])
                    assert final["deliveries"][0]["state"] == "delivered"
                await asyncio.sleep(0.25)  # the rate limit's tokens come back
    assert reads[0] <= 1, reads  # was 24: one per 202 and one per finished send


async def test_work_beyond_the_free_slots_is_claimed_as_sends_finish(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    """With two slots and a long poll, eight cases at once: two handed over, six committed
    pending, and each finished send wakes the worker to claim the next (not the 30 s poll)."""
    template = samples["01-person-shanghai-social-security"]
    async with Simulator("national") as sim:
        settings = settings_for(tmp_path, db_url, {"national": sim.url()}, concurrency=2,
                                poll_interval=30)
        async with Gateway(settings) as gw:
            await asyncio.sleep(0.2)
            got = await asyncio.gather(*(gw.post_case(numbered_case(
                template, i, prefix="BL")) for i in range(8)))
            assert [s for s, _ in got] == [202] * 8
            states = [d["state"] for _, doc in got for d in doc["deliveries"]]
            assert states.count("pending") >= 4, states
            finals = [await gw.wait_final(doc["id"], timeout=10) for _, doc in got]
    assert all(f["deliveries"][0]["state"] == "delivered" for f in finals)
    assert sim.state.summary(with_messages=False)["unique"] == 8


async def test_work_held_back_by_the_rate_limit_is_claimed_when_a_token_is_back(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    """Two sends a second (burst 1), a 30 s poll, three cases at once: the first is handed
    over, the others wait for the rate limit. Every send has finished long before the next
    token; nothing but the worker's own timer can wake it then, or they would wait for the
    poll (a fast machine showed it: work left pending until the 30 s poll)."""
    template = samples["01-person-shanghai-social-security"]
    async with Simulator("national") as sim:
        path = write_config(tmp_path, db_url, {"national": sim.url()}, concurrency=4,
                            poll_interval=30)

        def slow(raw: dict[str, Any]) -> None:
            raw["partners"]["national"]["limits"] = {"max_concurrency": 4, "rate": 2,
                                                     "burst": 1}
        async with Gateway(load_settings(edit_config(path, slow))) as gw:
            await asyncio.sleep(0.2)
            t0 = asyncio.get_running_loop().time()
            got = await asyncio.gather(*(gw.post_case(numbered_case(
                template, i, prefix="RL")) for i in range(3)))
            assert [s for s, _ in got] == [202] * 3
            finals = [await gw.wait_final(doc["id"], timeout=5) for _, doc in got]
            took = asyncio.get_running_loop().time() - t0
    assert all(f["deliveries"][0]["state"] == "delivered" for f in finals)
    assert sim.state.summary(with_messages=False)["unique"] == 3
    assert 0.9 <= took < 4, took  # two waits of ~0.5 s for tokens, not the 30 s poll
