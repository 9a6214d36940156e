"""Graceful shutdown: SIGTERM while sends are in flight stops taking work, finishes (or, past the
grace period, hands back) what is in flight, exits 0, and a restarted instance delivers the rest.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any


from gateway.config import load_settings
from tests.harness import (signed_session,
    Gateway,
    GatewayProcess,
    HoldReplies,
    LiveSimulator,
    SendLog,
    db_rows,
    edit_config,
    free_port,
    numbered_case,
    port_closed,
    wait_until,
    write_config,
)

CASES = 10
# The partner commits each submission at once but holds its reply until the test lets it go
# (tests/harness.HoldReplies): a send is in flight exactly as long as a test needs, and no
# assertion depends on how fast two busy cores run the gateway.


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
    holds = HoldReplies().install(sim)
    async with sim:
        try:
            cfg = edit_config(write_config(tmp_path, db_url, {"national": sim.url()},
                                           lease_seconds=30), _one_at_a_time(3))
            port = free_port()
            proc = GatewayProcess(cfg, port, tmp_path / "gateway.log")
            await proc.start()
            async with signed_session() as http:
                for n in range(CASES):
                    async with http.post(f"{proc.base}/api/v1/cases",
                                         data=json.dumps(numbered_case(template, n,
                                                                       prefix="TERM")),
                                         headers={"Content-Type": "application/json"}) as r:
                        assert r.status == 202

            async def three_on_the_wire() -> bool:
                return len(holds.waiting()) == 3
            # three at a time: with their replies held, the worker can take no fourth
            await wait_until(three_on_the_wire, timeout=30, what="3 sends in flight",
                             interval=0.01)
            in_flight = set(holds.waiting())
            assert {e["key"] for e in sends.entries if e["end"] is None} == in_flight
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            # The replies come only once the gateway is shutting down: its API port closes
            # first, then (in the same cleanup, with nothing to wait for between) the worker
            # stops claiming and waits for its sends. A send made after that would stay held
            # here and show below as a send that never ended.
            await wait_until(lambda: port_closed(port), timeout=30,
                             what="the gateway to start shutting down", interval=0.01)
            holds.release(in_flight)
            code = await asyncio.to_thread(proc.proc.wait, 30)
            assert code == 0
            sent_before_restart = len(sends.entries)
            rows = await db_rows(db_url, "SELECT idempotency_key, state FROM deliveries")
            states = {r.idempotency_key: r.state for r in rows}
            # what was on the wire was finished and recorded; nothing is left leased
            assert all(states[k] == "delivered" for k in in_flight), states
            assert "in_flight" not in states.values()
            # it stopped taking work: the rest was not claimed, and nothing new was sent
            assert list(states.values()).count("delivered") == len(in_flight) == 3
            assert list(states.values()).count("pending") == CASES - 3
            assert all(e["end"] is not None for e in sends.entries), holds.waiting()
            assert sent_before_restart == 3

            holds.release_all()
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
        finally:
            holds.release_all()  # nothing left hanging in the simulator's cleanup
    summary = sim.state.summary(False)
    assert summary["unique"] == CASES
    assert summary["duplicates"] == 0  # the shutdown finished its sends: nothing was resent


async def test_sends_outlasting_the_grace_period_are_handed_back_not_left_leased(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    """Past the grace period the in-flight sends are cancelled; their deliveries go back to
    pending at once (not after the lease, which here is far longer), and the next instance
    delivers them; the partner dedupes what the first had already sent."""
    template = samples["01-person-shanghai-social-security"]
    sim = LiveSimulator("national")
    sends = SendLog().install(sim)
    holds = HoldReplies().install(sim)  # the partner commits both, and answers only when told
    async with sim:
        try:
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
                    return len(holds.waiting()) == 2
                await wait_until(both_on_the_wire, timeout=30, what="2 sends in flight",
                                 interval=0.01)
            # the gateway has stopped; the partner never answered: the grace period ran out
            assert len(holds.waiting()) == 2
            assert all(e["end"] is None for e in sends.entries)
            rows = await db_rows(db_url, "SELECT state, lease_owner FROM deliveries")
            assert [tuple(r) for r in rows] == [("pending", None), ("pending", None)]
            holds.release_all()  # the late replies go to connections nobody listens on
            async with Gateway(settings) as gw:
                finals = [await gw.wait_final(i, timeout=30) for i in ids]
        finally:
            holds.release_all()
    assert [f["deliveries"][0]["state"] for f in finals] == ["delivered", "delivered"]
    summary = sim.state.summary(False)
    assert summary["unique"] == 2 and summary["duplicates"] == 2  # resent, deduped
