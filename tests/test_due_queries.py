"""The worker's two questions of the outbox, "which partners have due work" and "lease me up to n
of partner p's due deliveries": right on both engines, and at a cost that does not grow with the
backlog of other partners or with the history (issue 12: under a backlog the first one read
every due row of every partner on each claim round, and a claim read and sorted every delivery
the partner ever had).

The cost is counted in SQLite virtual-machine instructions (``set_progress_handler``), so it
does not depend on how fast this machine is today."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from gateway.store import DeliveryState, NewCase, NewDelivery, Store, create_engine
from gateway.store.migrate import upgrade
from gateway.store.models import deliveries
from gateway.store.repository import _DUE_PARTNERS, _claim_statement
from gateway.store.types import utcnow

S = DeliveryState


def case_for(no: str, partners: list[str]) -> NewCase:
    return NewCase(
        application_no=no, body={"applicationNo": no}, body_hash=f"h-{no}",
        correlation_id=f"c-{no}", home_items=(),
        deliveries=tuple(NewDelivery(partner=p, item_nos=(str(i),), region="310115000000",
                                     route_rule="r", mapping="national/case-submit",
                                     mapping_version=None, idempotency_key=f"k-{no}-{i}")
                         for i, p in enumerate(partners)))


async def set_rows(store: Store, partner: str, **values: Any) -> None:
    async with store.db.write("test") as conn:
        await conn.execute(sa.update(deliveries).where(deliveries.c.partner == partner)
                           .values(**values))


async def test_due_partners_names_exactly_the_partners_with_due_work(store: Store) -> None:
    layout = {"due": 2, "later": 2, "expired": 1, "leased": 1, "done": 3, "mixed": 3}
    n = 0
    for partner, count in layout.items():
        for _ in range(count):
            n += 1
            await store.submit_case(case_for(f"DQ{n:04d}", [partner]))
    now = utcnow()  # every pending row is due by now
    await set_rows(store, "later", next_attempt_at=now + timedelta(minutes=5))
    await set_rows(store, "expired", state=S.IN_FLIGHT, lease_owner="gone",
                   lease_expires_at=now - timedelta(seconds=1))
    await set_rows(store, "leased", state=S.IN_FLIGHT, lease_owner="alive",
                   lease_expires_at=now + timedelta(seconds=30))
    await set_rows(store, "done", state=S.DELIVERED)
    async with store.db.write("test") as conn:  # one of three due, the rest delivered
        ids = [r.id for r in (await conn.execute(
            sa.select(deliveries.c.id).where(deliveries.c.partner == "mixed")
            .order_by(deliveries.c.id))).all()]
        await conn.execute(sa.update(deliveries).where(deliveries.c.id.in_(ids[1:]))
                           .values(state=S.DELIVERED))
    assert await store.due_partners(now) == {"due", "expired", "mixed"}
    # a minute later the backed-off ones are due, the live lease has expired as well
    assert await store.due_partners(now + timedelta(minutes=6)) == {
        "due", "later", "expired", "leased", "mixed"}
    assert await store.due_partners(now - timedelta(hours=1)) == set()


async def test_empty_outbox_has_no_due_partner(store: Store) -> None:
    assert await store.due_partners() == set()


async def test_a_claim_takes_expired_leases_first_then_pending_in_due_order(store: Store) -> None:
    for n in range(6):
        await store.submit_case(case_for(f"DO{n:04d}", ["p"]))
    now = utcnow()
    async with store.db.write("test") as conn:
        ids = [r.id for r in (await conn.execute(
            sa.select(deliveries.c.id).order_by(deliveries.c.id))).all()]
        # ids[0]: in flight, lease expired; ids[1]: in flight, lease alive; the rest pending,
        # due in the reverse of id order, ids[5] not yet due
        await conn.execute(sa.update(deliveries).where(deliveries.c.id == ids[0]).values(
            state=S.IN_FLIGHT, lease_owner="gone", lease_expires_at=now - timedelta(seconds=1)))
        await conn.execute(sa.update(deliveries).where(deliveries.c.id == ids[1]).values(
            state=S.IN_FLIGHT, lease_owner="alive", lease_expires_at=now + timedelta(seconds=30)))
        for i, due_in in ((2, -1), (3, -2), (4, -3), (5, 60)):
            await conn.execute(sa.update(deliveries).where(deliveries.c.id == ids[i]).values(
                next_attempt_at=now + timedelta(seconds=due_in)))
    first = (await store.claim_for_partners("w1", {"p": 3}, lease_seconds=30, now=now))["p"]
    # the returned rows come in no particular order; which rows were taken is the point
    assert {c.delivery.id for c in first} == {ids[0], ids[4], ids[3]}
    assert {c.delivery.id for c in first if c.outcome_unknown} == {ids[0]}
    second = (await store.claim_for_partners("w2", {"p": 3}, lease_seconds=30, now=now))["p"]
    assert {c.delivery.id for c in second} == {ids[2]}  # the live lease and ids[5] stay
    assert (await store.claim_for_partners("w3", {"p": 3}, lease_seconds=30, now=now))["p"] == []


def _vm_steps(conn: sa.Connection, stmt: Any, params: dict[str, Any] | None = None) -> int:
    """SQLite virtual-machine instructions (in hundreds) to run ``stmt``, rolled back."""
    raw = conn.connection.dbapi_connection
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0
    raw.set_progress_handler(tick, 100)
    try:
        with conn.begin_nested() as sp:
            conn.execute(stmt, params or {}).all()
            sp.rollback()
    finally:
        raw.set_progress_handler(None, 100)
    return steps[0]


def _fill(conn: sa.Connection, start: int, count: int, partner: str, state: str,
          now: Any) -> None:
    conn.execute(sa.insert(deliveries), [dict(
        id=f"d{start + i:08d}", case_id="c", partner=partner, item_nos=["1"],
        region="310115000000", route_rule="r", mapping="m", mapping_version=None,
        idempotency_key=f"k{start + i:08d}", state=state, attempts=0,
        next_attempt_at=now - timedelta(seconds=count - i), created_at=now, updated_at=now,
        attempts_base=0, replays=0, kind="case") for i in range(count)])


async def test_due_work_queries_cost_the_same_under_backlog_and_history(tmp_path: Any) -> None:
    """Partner ``p`` has two due deliveries throughout. Then 3,000 delivered rows of its own
    history and 3,000 due rows of another partner arrive: asking which partners are due, and
    claiming ``p``'s two, must cost about what they cost before (the former queries took 30×
    as many instructions here)."""
    migrated = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'due.db'}")
    await upgrade(migrated)
    await migrated.dispose()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'due.db'}")
    now = utcnow()
    claim = _claim_statement(8, "one")
    claim_params = Store._claim_params("w", "t", now, 30.0, c_partner="p")
    try:
        with engine.connect() as conn:
            conn.execute(sa.insert(sa.table("cases", sa.column("id"), sa.column("application_no"),
                                            sa.column("body"), sa.column("body_hash"),
                                            sa.column("correlation_id"),
                                            sa.column("home_items"), sa.column("received_at"))),
                         [{"id": "c", "application_no": "A", "body": "{}", "body_hash": "h",
                           "correlation_id": "c", "home_items": "[]",
                           "received_at": now.strftime("%Y-%m-%d %H:%M:%S.%f")}])
            _fill(conn, 0, 2, "p", S.PENDING, now)
            conn.commit()
            small = (_vm_steps(conn, _DUE_PARTNERS, {"now": now}),
                     _vm_steps(conn, claim, claim_params))
            _fill(conn, 10, 3000, "p", S.DELIVERED, now)
            _fill(conn, 5000, 3000, "q", S.PENDING, now)
            conn.commit()
            large = (_vm_steps(conn, _DUE_PARTNERS, {"now": now}),
                     _vm_steps(conn, claim, claim_params))
            assert conn.execute(_DUE_PARTNERS, {"now": now}).scalars().all() == ["p", "q"]
            for stmt in (_DUE_PARTNERS, claim):  # no value changes SQLite's plan
                sql = str(stmt.compile(dialect=sqlite.dialect()))
                plan = [r[3] for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + sql, (None,) * sql.count("?")).all()]
                # every read of the table is an index search; nothing is sorted
                assert not [p for p in plan if p.split()[:2] in (
                    ["SCAN", "deliveries"], ["SCAN", "due"], ["SCAN", "step"])], plan
                assert not [p for p in plan if "TEMP B-TREE" in p], plan
    finally:
        engine.dispose()
    # the history and the other partner's backlog add a few index steps, not 6,000 rows
    assert large[0] <= small[0] + 5, (small, large)
    assert large[1] <= small[1] + 5, (small, large)
