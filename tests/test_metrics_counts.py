"""``gateway_deliveries`` without counting the history on every scrape (issue 12: /metrics and the
console's partner page grouped the whole deliveries table each time, ~53 ms per 100,000 rows on
SQLite, growing with every case ever delivered).

The open states (pending, in flight, dead) are counted on every scrape, as a range of
``ix_deliveries_due``; delivered and discarded at most every ``FINAL_COUNTS_REFRESH_SECONDS``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.dialects import sqlite

import gateway.api.ops as ops
from gateway.api.keys import METRICS, STORE
from gateway.observability.metrics import FINAL_COUNTS_REFRESH_SECONDS, Metrics
from gateway.store import DeliveryState, Store, create_engine
from gateway.store.migrate import upgrade
from gateway.store.models import deliveries
from gateway.store.repository import _counts_query
from gateway.store.states import OPEN_STATES
from gateway.store.types import utcnow
from tests.test_due_queries import _fill, _vm_steps, case_for, set_rows

S = DeliveryState


async def test_open_counts_are_the_open_part_of_all_counts(store: Store) -> None:
    for i, partner in enumerate(["a", "a", "b", "c", "c", "c"]):
        await store.submit_case(case_for(f"MC{i:03d}", [partner]))
    await set_rows(store, "b", state=S.DELIVERED)
    async with store.db.write("test") as conn:  # one of c's three dead, one in flight
        ids = [r.id for r in (await conn.execute(
            sa.select(deliveries.c.id).where(deliveries.c.partner == "c")
            .order_by(deliveries.c.id))).all()]
        await conn.execute(sa.update(deliveries).where(deliveries.c.id == ids[0])
                           .values(state=S.DEAD))
        await conn.execute(sa.update(deliveries).where(deliveries.c.id == ids[1])
                           .values(state=S.IN_FLIGHT, lease_owner="w",
                                   lease_expires_at=utcnow() + timedelta(seconds=30)))
    every = await store.delivery_counts()
    assert every == {("a", S.PENDING): 2, ("b", S.DELIVERED): 1, ("c", S.DEAD): 1,
                     ("c", S.IN_FLIGHT): 1, ("c", S.PENDING): 1}
    assert await store.delivery_counts(OPEN_STATES) == {
        k: n for k, n in every.items() if k[1] in OPEN_STATES}


async def test_counting_the_backlog_does_not_grow_with_the_history(tmp_path: Any) -> None:
    """3,000 delivered rows added: the open-state count costs the same SQLite instructions (the
    whole-table count it replaced read every one of them), along the index, unsorted."""
    migrated = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await upgrade(migrated)
    await migrated.dispose()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    now = utcnow()
    query, whole = _counts_query(OPEN_STATES), _counts_query(None)
    try:
        with engine.connect() as conn:
            _fill(conn, 0, 20, "p", S.PENDING, now)
            conn.commit()
            small = (_vm_steps(conn, query), _vm_steps(conn, whole))
            _fill(conn, 100, 3000, "p", S.DELIVERED, now)
            conn.commit()
            large = (_vm_steps(conn, query), _vm_steps(conn, whole))
            sql = str(query.compile(dialect=sqlite.dialect(),
                                    compile_kwargs={"render_postcompile": True}))
            plan = [r[3] for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + sql, tuple(sorted(OPEN_STATES))).all()]
    finally:
        engine.dispose()
    assert plan == ["SEARCH deliveries USING COVERING INDEX ix_deliveries_due (state=?)"], plan
    assert large[0] <= small[0] + 5, (small, large)
    assert large[1] > small[1] + 100, (small, large)  # the whole table does read them all


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    c = _Clock()
    monkeypatch.setattr(ops, "time", c)
    return c


def _gauge(m: Metrics, partner: str, state: str) -> float | None:
    return m.registry.get_sample_value("gateway_deliveries",
                                       {"partner": partner, "state": state})


async def test_delivered_recounted_at_most_every_interval_open_states_every_scrape(
        store: Store, clock: _Clock) -> None:
    app = web.Application()
    app[STORE], app[METRICS] = store, Metrics()
    m = app[METRICS]
    await store.submit_case(case_for("MG001", ["p"]))
    await set_rows(store, "p", state=S.DELIVERED)
    await ops._refresh_deliveries(app)  # the first scrape counts everything
    assert _gauge(m, "p", "delivered") == 1
    await store.submit_case(case_for("MG002", ["q"]))
    await store.submit_case(case_for("MG003", ["p"]))
    await set_rows(store, "q", state=S.DEAD)
    clock.now += FINAL_COUNTS_REFRESH_SECONDS / 2
    await ops._refresh_deliveries(app)
    assert _gauge(m, "p", "pending") == 1          # open states: live
    assert _gauge(m, "q", "dead") == 1
    assert m.registry.get_sample_value("gateway_dead_letters", {"partner": "q"}) == 1
    assert _gauge(m, "p", "delivered") == 1        # kept from the last full count
    await set_rows(store, "p", state=S.DELIVERED)
    await ops._refresh_deliveries(app)
    assert _gauge(m, "p", "pending") is None       # gone from the open states at once
    assert _gauge(m, "p", "delivered") == 1        # not recounted yet
    clock.now += FINAL_COUNTS_REFRESH_SECONDS / 2
    await ops._refresh_deliveries(app)
    assert _gauge(m, "p", "delivered") == 2        # the interval passed: recounted
