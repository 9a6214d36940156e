"""Graceful shutdown: SIGTERM while sends are in flight stops taking work, finishes (or, past the
grace period, hands back) what is in flight, exits 0, and a restarted instance delivers the rest.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp

from gateway.config import load_settings
from tests.harness import (
    Gateway,
    GatewayProcess,
    LiveSimulator,
    SendLog,
    db_rows,
    edit_config,
    free_port,
    numbered_case,
    wait_until,
    write_config,
)

CASES = 10
HOLD = 1.5  # the partner holds each submission this long (within the 10 s grace of serve)


def _one_at_a_time(limit: int) -> Any:
    def tune(raw: dict[str, Any]) -> None:
        raw["partners"]["national"]["limits"] = {"max_concurrency": limit}
        raw["partners"]["national"]["timeout"] = 10
    return tune


async def test_sigterm_finishes_in_flight_sends_exits_0_and_a_restart_delivers_the_rest(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    template = samples["01-person-shanghai-social-security"]
    sim = LiveSimulator("national")
    sends = SendLog().install(sim)
    async with sim:
        sim.misbehave("slow_accept", count=-1, delay=HOLD)
        cfg = edit_config(write_config(tmp_path, db_url, {"national": sim.url()},
                                       lease_seconds=30), _one_at_a_time(3))
        port = free_port()
        proc = GatewayProcess(cfg, port, tmp_path / "gateway.log")
        await proc.start()
        async with aiohttp.ClientSession() as http:
            for n in range(CASES):
                async with http.post(f"{proc.base}/api/v1/cases",
                                     data=json.dumps(numbered_case(template, n, prefix="TERM")),
                                     headers={"Content-Type": "application/json"}) as r:
                    assert r.status == 202

            async def three_on_the_wire() -> bool:
                return sum(1 for e in sends.entries if e["end"] is None) == 3
            await wait_until(three_on_the_wire, timeout=30, what="3 sends in flight",
                             interval=0.01)
            in_flight = {e["key"] for e in sends.entries if e["end"] is None}
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.proc.wait, 30)
            assert code == 0
            sent_before_restart = len(sends.entries)
            rows = await db_rows(db_url, "SELECT idempotency_key, state FROM deliveries")
            states = {r.idempotency_key: r.state for r in rows}
            # what was on the wire was finished and recorded; nothing is left leased
            assert all(states[k] == "delivered" for k in in_flight), states
            assert "in_flight" not in states.values()
            # it stopped taking work: the rest was not claimed, and nothing new was sent
            assert list(states.values()).count("pending") == CASES - len(
                [s for s in states.values() if s == "delivered"]) > 0
            assert all(e["end"] is not None for e in sends.entries)

            sim.state.behaviours.clear()
            second = GatewayProcess(cfg, port, tmp_path / "gateway.log")
            await second.start()
            try:
                async def all_delivered() -> bool:
                    r = await db_rows(db_url, "SELECT count(*) FROM deliveries "
                                              "WHERE state = 'delivered'")
                    return r[0][0] == CASES
                await wait_until(all_delivered, timeout=60, what="every delivery delivered")
            finally:
                assert second.stop() == 0
    summary = sim.state.summary(False)
    assert summary["unique"] == CASES
    assert summary["duplicates"] == 0  # the shutdown finished its sends: nothing was resent
    assert sent_before_restart < CASES


async def test_sends_outlasting_the_grace_period_are_handed_back_not_left_leased(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    """Past the grace period the in-flight sends are cancelled; their deliveries go back to
    pending at once (not after the lease, which here is far longer), and the next instance
    delivers them; the partner dedupes what the first had already sent."""
    template = samples["01-person-shanghai-social-security"]
    sim = LiveSimulator("national")
    sends = SendLog().install(sim)
    async with sim:
        sim.misbehave("slow_accept", count=2, delay=4.0)  # longer than the 2 s grace
        cfg = edit_config(write_config(tmp_path, db_url, {"national": sim.url()},
                                       lease_seconds=600), _one_at_a_time(2))
        settings = load_settings(cfg)
        async with Gateway(settings) as gw:  # shutdown_grace=2.0
            ids = []
            for n in range(2):
                status, doc = await gw.post_case(numbered_case(template, n, prefix="GRACE"))
                assert status == 202
                ids.append(doc["id"])

            async def both_on_the_wire() -> bool:
                return sum(1 for e in sends.entries if e["end"] is None) == 2
            await wait_until(both_on_the_wire, timeout=30, what="2 sends in flight",
                             interval=0.01)
        rows = await db_rows(db_url, "SELECT state, lease_owner FROM deliveries")
        assert [tuple(r) for r in rows] == [("pending", None), ("pending", None)]
        async with Gateway(settings) as gw:
            finals = [await gw.wait_final(i, timeout=30) for i in ids]
    assert [f["deliveries"][0]["state"] for f in finals] == ["delivered", "delivered"]
    assert sim.state.summary(False)["unique"] == 2
