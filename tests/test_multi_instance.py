"""Three gateway instances on one PostgreSQL database share the work, never send one delivery
twice at the same time, and pick up the claims of an instance that died once its lease expires.

Each instance is a child process with its own worker id and its own partner URL tag
(``?via=<worker id>``), so the partner-side log says who sent what, and the attempt history says
who the gateway thinks sent it; the two must agree. The partner is slow (every submission held
for a while inside its handling window), so two concurrent claims of one delivery would show as
an overlap.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_pg_database, drop_pg_database
from tests.harness import (signed_session,
    GatewayInstance,
    HoldReplies,
    LiveSimulator,
    SendLog,
    db_rows,
    edit_config,
    free_port,
    numbered_case,
    wait_until,
    write_config,
)

CASES = 45
WORKERS = ("gw-a", "gw-b", "gw-c")
LEASE = 3.0
PARTNER_HOLD = 0.6  # seconds the partner holds each submission (well under the lease)


@pytest.fixture
async def pg_url() -> Any:
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


async def test_three_instances_share_work_and_take_over_a_dead_ones_claims(
        pg_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    template = samples["01-person-shanghai-social-security"]
    sim = LiveSimulator("national")
    sends = SendLog().install(sim)
    # gw-c's replies are held until it has been killed: it dies with sends in flight, however
    # slowly two busy cores run it (its partner commits them, as in a real crash)
    c_holds = HoldReplies(only=lambda request: request.query.get("via") == "gw-c").install(sim)
    async with sim:
        sim.misbehave("slow_accept", count=-1, delay=PARTNER_HOLD)
        cfg = write_config(tmp_path, pg_url, {"national": sim.url()}, lease_seconds=LEASE,
                           poll_interval=0.05, batch_size=4)

        def tune(raw: dict[str, Any]) -> None:
            p = raw["partners"]["national"]
            p["timeout"] = 2  # under the lease, well over the partner's hold
            p["limits"] = {"max_concurrency": 4}
        edit_config(cfg, tune)
        gws = {w: GatewayInstance(cfg, free_port(), tmp_path / f"{w}.log", w,
                                  env={"GATEWAY_PARTNER_NATIONAL_URL": f"{sim.url()}?via={w}"})
               for w in WORKERS}
        # one instance migrates the fresh database first; the others start against it
        await gws["gw-a"].start()
        await asyncio.gather(gws["gw-b"].start(), gws["gw-c"].start())
        try:
            async with signed_session() as http:
                async def post(n: int) -> str:
                    gw = gws[WORKERS[n % len(WORKERS)]]
                    case = numbered_case(template, n, prefix="MI")
                    async with http.post(f"{gw.base}/api/v1/cases", data=json.dumps(case),
                                         headers={"Content-Type": "application/json"}) as r:
                        assert r.status == 202, await r.text()
                        return str((await r.json())["id"])
                ids = await asyncio.gather(*(post(n) for n in range(CASES)))
                assert len(set(ids)) == CASES

                async def c_sending() -> bool:
                    return bool(c_holds.waiting())
                await wait_until(c_sending, timeout=30, what="gw-c to have a send in flight",
                                 interval=0.01)
                gws["gw-c"].kill()
                c_holds.release_all()  # its late replies go to connections nobody listens on
                held = await db_rows(pg_url, "SELECT id, idempotency_key, lease_expires_at "
                                             "FROM deliveries WHERE state = 'in_flight' "
                                             "AND lease_owner = 'gw-c'")
                assert held, "gw-c died holding no claim"
                assert len(held) <= 4  # its partner limit: a claim takes no more than asked

                async def all_delivered() -> bool:
                    rows = await db_rows(pg_url, "SELECT count(*) FROM deliveries "
                                                 "WHERE state = 'delivered'")
                    return rows[0][0] == CASES
                await wait_until(all_delivered, timeout=90, what="every delivery delivered")
        finally:
            c_holds.release_all()
            codes = {w: gws[w].stop() for w in ("gw-a", "gw-b")}
        assert codes == {"gw-a": 0, "gw-b": 0}

    summary = sim.state.summary(False)
    attempts = await db_rows(pg_url, """
        SELECT d.idempotency_key, d.id, a.worker, a.outcome, a.started_at, a.message
        FROM attempts a JOIN deliveries d ON d.id = a.delivery_id""")
    by_key: dict[str, list[Any]] = {}
    for a in attempts:
        by_key.setdefault(a.idempotency_key, []).append(a)
    print(f"\nmulti-instance: partner {summary}, gw-c held {len(held)} claims at its death, "
          f"sends by instance: "
          f"{ {w: sum(1 for e in sends.entries if e['via'] == w) for w in WORKERS} }")

    # exactly one worker at a time per delivery: the partner never saw one key twice at once
    assert summary["overlaps"] == 0
    assert sends.concurrent() == []
    # one application per case at the partner; resends of gw-c's claims were deduped
    assert summary["unique"] == CASES
    assert summary["received"] == CASES + summary["duplicates"]
    # every delivery was sent by the worker its attempt history names, except a dead worker's
    # send whose outcome was unknown: the survivor asked the partner first and, finding the case
    # there, recorded its receipt without sending again (issue 13, ask before resending)
    sent_by = {(e["key"], e["via"]) for e in sends.entries}
    held_keys = {h.idempotency_key for h in held}
    for key, hist in by_key.items():
        delivered = [a for a in hist if a.outcome == "delivered"]
        assert len(delivered) == 1, hist
        found_not_resent = "found at partner, not resent" in (delivered[0].message or "")
        assert (key, delivered[0].worker) in sent_by or (found_not_resent and key in held_keys), (
            key, hist)
    for key, via in sent_by:
        recorded = {a.worker for a in by_key.get(key, [])}
        assert via in recorded or (via == "gw-c" and key in held_keys), (key, via, recorded)
    # the work was shared: every instance delivered some
    delivered_by = {a.worker for a in attempts if a.outcome == "delivered"}
    assert delivered_by >= {"gw-a", "gw-b"}
    assert "gw-c" in {e["via"] for e in sends.entries}
    # the dead worker's claims were taken over by the living, only after its lease expired
    for h in held:
        [done] = [a for a in by_key[h.idempotency_key] if a.outcome == "delivered"]
        assert done.worker in ("gw-a", "gw-b")
        assert done.started_at >= h.lease_expires_at, (done, h)


async def test_a_claim_takes_at_most_its_limit_and_concurrent_claims_are_disjoint(
        db_url: str) -> None:
    """The claim statement itself: ``limit`` is a promise on both engines (PostgreSQL used to
    rescan the ``IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)`` and claim every due row), and
    claims racing each other never share a row."""
    from gateway.store import NewCase, NewDelivery, Store, create_engine
    from gateway.store.migrate import upgrade
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        store = Store(engine)
        for i in range(30):
            await store.submit_case(NewCase(
                f"CL{i:010d}", {}, "hash", "corr", (),
                (NewDelivery("national", ("1",), "310115000000", "rule", "national/case-submit",
                             None, f"key-{i}"),)))
        first = await store.claim_due("w0", limit=4, lease_seconds=30, partners=["national"])
        assert len(first) == 4
        racing = await asyncio.gather(*(store.claim_due(f"w{i}", limit=3, lease_seconds=30,
                                                        partners=["national"])
                                        for i in range(1, 9)))
        ids = [c.delivery.id for batch in [first, *racing] for c in batch]
        assert all(len(batch) <= 3 for batch in racing)
        assert len(ids) == len(set(ids)) == 28  # 4 + 8 × 3, each row to one worker only
    finally:
        await engine.dispose()
