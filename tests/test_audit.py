"""The hash-chained audit log (gateway.store.audit) on both engines: a record for every message
in and out, written with its change; `gateway audit verify` names the first record edited,
deleted or inserted directly in the database; prune keeps the chain verifiable; two stores on
one database append to one chain."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from sqlalchemy import select, text

from gateway.api.keys import STORE
from gateway.cli import main
from gateway.protocols import transport
from gateway.status import CaseStatus
from gateway.store import DeliveryState, Store, create_engine
from gateway.store.audit import GENESIS, Digest, keep_retention, record_hash, verify
from gateway.store.dlq import DeadLetterFilter, DeadLetters
from gateway.store.models import audit_log
from gateway.store.statuses import Source, StatusEvent, StatusEvents
from gateway.store.types import utcnow
from tests.harness import TEST_CALLER, Gateway, Simulator, settings_for, wait_until
from tests.test_store import new_case


async def _records(store: Store) -> list[dict[str, Any]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(audit_log).order_by(audit_log.c.seq))).all()
    return [dict(r._mapping) for r in rows]


def _cli(*args: str) -> tuple[int, str]:
    """`gateway audit …` as a subprocess would run it (CliRunner, its own event loop)."""
    r = CliRunner().invoke(main, ["audit", *args])
    return r.exit_code, r.output.strip()  # stdout and stderr, as a terminal shows them


async def _verify_cli(url: str) -> tuple[int, str]:
    return await asyncio.to_thread(_cli, "verify", "--database-url", url)


async def _deliver(store: Store, **digests: Digest | None) -> str:
    [claim] = await store.claim_due("worker-1", limit=1, lease_seconds=30)
    assert await store.finish_attempt(claim, worker="worker-1", started_at=utcnow(),
                                      outcome="delivered", state=DeliveryState.DELIVERED,
                                      next_attempt_at=None, receipt_no="R-1", http_status=200,
                                      partner_code="0", **digests)
    return claim.delivery.id


async def test_every_message_in_and_out_gets_a_record_in_one_chain(store: Store,
                                                                   db_url: str) -> None:
    sent, got = Digest.of(b'{"case": 1}'), Digest.of(b'{"code": 0}')
    await store.submit_case(new_case("AUD-1"))
    await store.submit_case(new_case("AUD-1"))  # a duplicate changes nothing: no record
    delivery = await _deliver(store, request=sent, reply=got)
    # a callback moves the case and queues a push; the push's attempt is an attempt
    applied = await StatusEvents(store).apply(StatusEvent(
        partner="national", source=Source.CALLBACK, status=CaseStatus.ACCEPTED,
        partner_code="2", receipt_no="R-1"), push_to="city")
    assert applied.push_id is not None
    [push] = await store.claim_due("worker-2", limit=1, lease_seconds=30)
    assert await store.finish_attempt(push, worker="worker-2", started_at=utcnow(),
                                      outcome="permanent", state=DeliveryState.DEAD,
                                      next_attempt_at=None, http_status=400, partner_code="E1",
                                      message="refused")
    assert await DeadLetters(store).replay(DeadLetterFilter(ids=(applied.push_id,)),
                                           actor="operator-li", reason="fixed the mapping")

    recs = await _records(store)
    assert [(r["seq"], r["kind"], r["actor"]) for r in recs] == [
        (1, "intake", "anonymous"), (2, "attempt", "worker-1"),
        (3, "status_event", "national"), (4, "attempt", "worker-2"),
        (5, "dead_letter_replay", "operator-li")]
    intake, attempt, event, push_attempt, replay = recs
    assert intake["detail"] == {"bodySha256": "h-AUD-1", "deliveries": 1}
    assert (attempt["delivery_id"], attempt["outcome"], attempt["http_status"],
            attempt["partner_code"]) == (delivery, "delivered", 200, "0")
    assert (attempt["request_sha256"], attempt["request_bytes"]) == (sent.sha256, sent.size)
    assert (attempt["reply_sha256"], attempt["reply_bytes"]) == (got.sha256, got.size)
    assert event["detail"]["pushId"] == applied.push_id and event["delivery_id"] == delivery
    assert push_attempt["detail"]["deliveryKind"] == "status_push"
    assert push_attempt["outcome"] == "permanent" and push_attempt["detail"]["state"] == "dead"
    assert replay["delivery_id"] == applied.push_id
    # no message text, no reason, no body in the log
    assert "refused" not in str(recs) and "fixed the mapping" not in str(recs)
    assert [r["prev_hash"] for r in recs[1:]] == [r["hash"] for r in recs[:-1]]

    code, out = await _verify_cli(db_url)
    assert code == 0 and out == f"audit log intact: 5 records (records 1-5), head {recs[-1]['hash']}"


async def test_transport_notes_the_digests_of_the_exact_bytes(aiohttp_server: Any) -> None:
    """The worker's view of an attempt: a real POST, its bytes' digests in the contextvar."""
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=b"reply:" + await request.read())
    app = web.Application()
    app.router.add_post("/x", echo)
    server: TestServer = await aiohttp_server(app)
    seen: list[transport.Exchange] = []
    transport.exchanges.set(seen)
    async with ClientSession() as http:
        reply = await transport.post(http, str(server.make_url("/x")), "办件".encode(),
                                     headers={}, timeout=5, max_bytes=1000)
    assert isinstance(reply, transport.HttpReply)
    body = "办件".encode()
    assert seen == [transport.Exchange(hashlib.sha256(body).hexdigest(), len(body),
                                       hashlib.sha256(reply.body).hexdigest(), len(reply.body))]


async def _fill(store: Store, n: int) -> None:
    for i in range(n):
        await store.submit_case(new_case(f"T-{i}", 0))


async def test_verify_names_an_edited_record(store: Store, db_url: str) -> None:
    await _fill(store, 5)
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3"))
    assert await _verify_cli(db_url) == (
        1, "audit log: record 3 altered: its hash does not match its fields")


async def test_verify_names_an_edit_whose_hash_was_recomputed(store: Store, db_url: str) -> None:
    await _fill(store, 5)
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET hash = :h WHERE seq = 2"), {"h": "f" * 64})
    code, out = await _verify_cli(db_url)
    assert code == 1 and out.startswith("audit log: record 2 altered"), out


async def test_verify_names_a_deleted_record(store: Store, db_url: str) -> None:
    await _fill(store, 5)
    async with store.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    assert await _verify_cli(db_url) == (
        1, "audit log: record 4 deleted: the next record present is 5")
    async with store.engine.begin() as conn:  # the last one too: the head still names it
        await conn.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    assert await _verify_cli(db_url) == (
        1, "audit log: record 4 deleted: the chain head names record 5")


async def test_verify_names_an_inserted_record(store: Store, db_url: str) -> None:
    """A record slipped in between 1 and 2 with a hash that matches its fields (the later
    records renumbered to make room): the link of the record after it names it."""
    await _fill(store, 3)
    [first, *_] = await _records(store)
    forged = {**first, "seq": 2, "actor": "forger", "prev_hash": first["hash"]}
    forged["hash"] = record_hash(forged)
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 2"))
        await conn.execute(text("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 102"))
        await conn.execute(text("UPDATE audit_head SET seq = 4"))
        await conn.execute(audit_log.insert().values(**forged))
    assert await _verify_cli(db_url) == (
        1, "audit log: record 2 inserted: record 3 follows record 1")


async def test_verify_names_a_record_appended_behind_the_head(store: Store, db_url: str) -> None:
    await _fill(store, 1)
    [last] = await _records(store)
    forged = {**last, "seq": 2, "prev_hash": last["hash"], "actor": "forger"}
    forged["hash"] = record_hash(forged)
    async with store.engine.begin() as conn:
        await conn.execute(audit_log.insert().values(**forged))
    assert await _verify_cli(db_url) == (
        1, "audit log: record 2 inserted: beyond the chain head (1)")


async def test_prune_keeps_the_chain_verifiable(store: Store, db_url: str) -> None:
    await _old_chain(store, 5, days=400)
    async with store.engine.connect() as conn:
        prev = (await conn.execute(text("SELECT hash FROM audit_head"))).scalar()
    await _fill(store, 2)  # recent: kept
    code, out = await asyncio.to_thread(_cli, "prune", "--database-url", db_url)
    assert code == 0 and "pruned 5 records through 5" in out and "anchor record 8" in out, out
    recs = await _records(store)
    assert [r["seq"] for r in recs] == [6, 7, 8] and recs[-1]["kind"] == "anchor"
    assert recs[-1]["detail"]["lastHash"] == prev and recs[-1]["detail"]["pruned"] == 5
    code, out = await _verify_cli(db_url)
    assert code == 0 and out.startswith("audit log intact: 3 records (records 6-8)"), out
    await _fill(store, 1)  # the chain goes on after the anchor
    assert (await _verify_cli(db_url))[0] == 0
    # a record deleted right after the anchor's start is still named
    async with store.engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_log WHERE seq = 6"))
    assert await _verify_cli(db_url) == (
        1, "audit log: record 6 deleted: the next record present is 7")


async def _old_chain(store: Store, n: int, days: int) -> None:
    """``n`` records written ``days`` ago, chained as if they had been."""
    old = utcnow() - timedelta(days=days)
    for i in range(n):
        await store.submit_case(new_case(f"OLD-{days}-{i}", 0))
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(audit_log).order_by(audit_log.c.seq))).all()
    prev = GENESIS
    async with store.engine.begin() as conn:
        for r in rows:
            rec = {**r._mapping, "at": old, "prev_hash": prev}
            prev = rec["hash"] = record_hash(rec)
            await conn.execute(audit_log.update().where(audit_log.c.seq == r.seq)
                               .values(at=old, prev_hash=rec["prev_hash"], hash=rec["hash"]))
        await conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


async def test_the_gateway_keeps_the_log_to_its_retention_by_itself(store: Store) -> None:
    await _old_chain(store, 3, days=40)
    task = asyncio.create_task(keep_retention(store.db, 30, first_delay=0, interval=3600))
    try:
        await wait_until(lambda: _anchored(store), 10, "the retention job's prune")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    async with store.engine.connect() as conn:
        v = await verify(conn)
    assert v.ok and v.count == 1 and v.first_seq == 4, v


async def _anchored(store: Store) -> bool:
    recs = await _records(store)
    return [r["kind"] for r in recs] == ["anchor"]


async def test_two_stores_on_one_database_keep_one_chain(db_url: str) -> None:
    """Two instances appending at once (PostgreSQL: the head row's lock orders them)."""
    from gateway.store.migrate import upgrade
    engine_a, engine_b = create_engine(db_url), create_engine(db_url)
    await upgrade(engine_a)
    a, b = Store(engine_a), Store(engine_b)
    try:
        async def verify_meanwhile() -> list[Any]:
            """Verifying while both append: each walk is one consistent snapshot."""
            out = []
            for _ in range(5):
                async with a.db.read("verify") as conn:
                    out.append(await verify(conn))
            return out
        *_, during = await asyncio.gather(*[s.submit_case(new_case(f"C-{s is a}-{i}", 1))
                                            for i in range(40) for s in (a, b)],
                                          verify_meanwhile())
        assert all(v.ok for v in during), during
        async with engine_a.connect() as conn:
            v = await verify(conn)
        assert v.ok and v.count == 80 and v.head_seq == 80, v
    finally:
        await a.close()
        await b.close()


async def test_a_gateway_audits_the_bytes_it_sent_and_the_signed_operator(
        tmp_path: Path, db_url: str, samples: dict[str, Any]) -> None:
    """End to end: each attempt's record carries the digests of the exact bytes the simulator
    received and answered; a dead-letter replay by a signed caller names it (and the person its
    X-Operator header names)."""
    wire: list[tuple[bytes, bytes]] = []

    @web.middleware
    async def tap(request: web.Request, handler: Any) -> web.StreamResponse:
        sent = await request.read()
        resp = await handler(request)
        if request.method == "POST":
            wire.append((sent, bytes(resp.body)))
        return resp  # type: ignore[no-any-return]

    sim = Simulator("national")
    sim.app.middlewares.append(tap)
    async with sim:
        settings = settings_for(tmp_path, db_url, {"national": sim.url()})
        async with Gateway(settings) as gw:
            sim.misbehave("business_error", code="40003")
            _, doc = await gw.post_case(samples["01-person-shanghai-social-security"])
            assert (await gw.wait_final(doc["id"]))["deliveries"][0]["state"] == "dead"
            [d] = (await gw.get(f"/api/v1/cases/{doc['id']}"))[1]["deliveries"]
            assert gw.http is not None
            async with gw.http.post("/api/v1/admin/dead-letters/replay",
                                    json={"ids": [d["id"]], "reason": "partner fixed it"},
                                    headers={"X-Operator": "ops-anna"}) as r:
                assert r.status == 200, await r.text()
            await gw.wait_final(doc["id"])
            recs = await _records(gw.app[STORE])
    assert [(r["kind"], r["actor"]) for r in recs][0] == ("intake", TEST_CALLER)
    attempts = [r for r in recs if r["kind"] == "attempt"]
    assert [a["outcome"] for a in attempts] == ["permanent", "delivered"]
    assert [(a["request_sha256"], a["request_bytes"], a["reply_sha256"], a["reply_bytes"])
            for a in attempts] == [(hashlib.sha256(q).hexdigest(), len(q),
                                    hashlib.sha256(a).hexdigest(), len(a)) for q, a in wire]
    [replay] = [r for r in recs if r["kind"] == "dead_letter_replay"]
    assert replay["actor"] == f"{TEST_CALLER}/ops-anna" and replay["delivery_id"] == d["id"]
    code, out = await _verify_cli(db_url)
    assert code == 0, out
