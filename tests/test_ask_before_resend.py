"""Ask before resending (issue 13): kill -9 with sends in flight to a partner that does NOT
dedupe, and the partner still holds every case exactly once.

The national simulator's dedupe is switched off (``POST /__sim/config {"dedupe": false}``): a
resent submission becomes a second case there, as with a partner that trusts its callers. The
partner is slow (it takes each submission, then answers a second later) and the gateway, a
``gateway serve`` child process, is killed with SIGKILL while its sends are on the wire, several
times. After the restarts every case must be delivered with the receipt the partner gave it, and
the partner must hold no duplicate: each send whose outcome the killed instance never learnt was
resolved by a status query ("found at partner, not resent"), not by sending again. Without the
query (the same run with the partner's ``status_query`` removed) the partner gets duplicates:
the test shows the difference is the query, not luck.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.harness import (signed_session, GatewayProcess, LiveSimulator, SendLog, db_rows, edit_config,
                           free_port, numbered_case, wait_until, write_config)

CYCLES = 3
CASES_PER_CYCLE = 4
LEASE = 3.0
PARTNER_DELAY = 1.2  # the partner commits the case this long after it arrived, then answers


async def run(tmp_path: Path, db_url: str, template: dict[str, Any], *,
              ask: bool) -> tuple[dict[str, Any], dict[str, str], list[Any], list[Any]]:
    sim = LiveSimulator("national")
    sends = SendLog().install(sim)
    await sim.__aenter__()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(sim.url("/__sim/config"), json={"dedupe": False}) as r:
                assert r.status == 200, await r.text()
        cfg = write_config(tmp_path, db_url, {"national": sim.url()}, lease_seconds=LEASE)

        def tune(raw: dict[str, Any]) -> None:
            p = raw["partners"]["national"]
            p["timeout"] = LEASE * 0.8
            p["retry"].update({"max_attempts": 1000, "max_age": "1d"})
            p["breaker"] = {"failure_threshold": 1000, "min_calls": 1000}
            p["poll"] = {"enabled": False}
            if not ask:
                del p["status_query"]
        edit_config(cfg, tune)
        port = free_port()
        log = tmp_path / "gateway.log"
        proc = GatewayProcess(cfg, port, log)
        await proc.start(timeout=60)
        n = 0
        try:
            async with signed_session() as http:
                for _ in range(CYCLES):
                    sim.state.behaviours.clear()
                    sim.misbehave("slow_accept", count=-1, delay=PARTNER_DELAY)
                    started = len(sends.entries)
                    for _ in range(CASES_PER_CYCLE):
                        n += 1
                        body = json.dumps(numbered_case(template, n, prefix="ASK"),
                                          ensure_ascii=False).encode()
                        async with http.post(f"{proc.base}/api/v1/cases", data=body,
                                             headers={"Content-Type": "application/json"}) as r:
                            assert r.status == 202, await r.text()

                    async def on_the_wire(started: int = started) -> bool:
                        return sum(1 for e in sends.entries[started:] if e["end"] is None) \
                            >= CASES_PER_CYCLE

                    await wait_until(on_the_wire, 10, "every send of the cycle on the wire",
                                     interval=0.02)
                    proc.kill()  # SIGKILL: the sends' outcomes die with the process
                    sim.state.behaviours.clear()  # the partner answers quickly from now on
                    proc = GatewayProcess(cfg, port, log)
                    await proc.start(timeout=60)

            async def all_delivered() -> bool:
                rows = await db_rows(db_url, "SELECT count(*) FROM deliveries "
                                             "WHERE state <> 'delivered'")
                return rows[0][0] == 0
            await wait_until(all_delivered, 60, "every delivery delivered")
        finally:
            proc.stop()
        dels = await db_rows(db_url, "SELECT id, idempotency_key, receipt_no FROM deliveries")
        attempts = await db_rows(db_url, "SELECT delivery_id, outcome, message FROM attempts")
        return sim.state.summary(False), dict(sim.state.receipts), dels, attempts
    finally:
        await sim.__aexit__(None, None, None)


async def test_kill_9_mid_send_to_a_partner_without_dedupe_leaves_no_duplicate(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    template = samples["01-person-shanghai-social-security"]
    state, receipts, dels, attempts = await run(tmp_path, db_url, template, ask=True)
    assert state["dedupe"] is False
    assert len(dels) == CYCLES * CASES_PER_CYCLE
    assert state["duplicates"] == 0, state
    assert state["cases"] == state["unique"] == len(dels), state
    # every case delivered with the receipt the partner gave it
    assert {d.idempotency_key: d.receipt_no for d in dels} == receipts
    found = [a for a in attempts if "found at partner, not resent" in (a.message or "")]
    # the sends cut by each kill were resolved by asking, not by sending again
    assert len(found) >= CYCLES * CASES_PER_CYCLE - 1, attempts
    assert all(a.outcome == "delivered" for a in found)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_without_the_query_the_same_kills_make_duplicates(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    state, _, dels, _ = await run(tmp_path, db_url, samples["01-person-shanghai-social-security"],
                               ask=False)
    assert state["duplicates"] > 0 and state["cases"] > len(dels), state


async def test_a_timeout_after_the_request_was_written_is_resolved_by_asking(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    """The partner takes the case but answers after the gateway's timeout: the next attempt
    asks, finds it and records its receipt; the partner (no dedupe) holds it once."""
    from gateway.config import load_settings
    from tests.harness import Gateway

    async with LiveSimulator("national") as sim:
        sim.state.book.config.dedupe = False
        cfg = write_config(tmp_path, db_url, {"national": sim.url()}, partner_timeout=1.0)

        def tune(raw: dict[str, Any]) -> None:
            raw["partners"]["national"]["retry"].update({"initial_wait": 1.0, "jitter": "none",
                                                         "max_wait": 1.0})
        edit_config(cfg, tune)
        async with Gateway(load_settings(cfg)) as gw:
            sim.misbehave("slow_accept", count=1, delay=1.4)
            status, doc = await gw.post_case(numbered_case(
                samples["01-person-shanghai-social-security"], 1, prefix="TMO"))
            assert status == 202, doc
            final = await gw.wait_final(doc["id"], timeout=20)
        [d] = final["deliveries"]
        first, second = d["history"]
        assert first["outcome"] == "retryable" and "timed out" in first["message"]
        assert second["outcome"] == "delivered"
        assert "found at partner, not resent" in second["message"]
        summary = sim.state.summary(False)
        assert (summary["received"], summary["cases"], summary["duplicates"]) == (1, 1, 0)
        assert d["receiptNo"] == sim.state.receipts[d["idempotencyKey"]]
