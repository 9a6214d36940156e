"""The gateway's side of a reconcile: a partner's deliveries in the export's order, looked up by
idempotency key, and the one write a reconcile makes of its own (a lost case due again).

Reads stream: one ordered query whose rows arrive ``chunk`` at a time (a server-side cursor on
PostgreSQL, SQLite's stepping cursor), so a million deliveries never sit in memory. The order is
the receipt number compared byte by byte (``COLLATE "C"`` on PostgreSQL, SQLite's BINARY), which
is how the export orders its records and how Python compares the strings. There is no index on
``(partner, receipt_no)`` yet: the database sorts once per walk (an external sort, its memory
bounded by the database, not by us); such an index would let it stream without sorting.

Only the columns a comparison needs are read. Every write also goes through ``store.db``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.sql.elements import ColumnElement

from gateway.store import Store, audit
from gateway.store.models import deliveries, operator_actions
from gateway.store.states import DeliveryState
from gateway.store.statuses import KIND_CASE
from gateway.store.types import utcnow

#: ``operator_actions.action`` of a re-delivery the reconciler made (and how it knows a
#: delivery was re-delivered once already).
REDELIVER_ACTION = "reconcile-redeliver"
ACTOR = "reconcile"

_COLUMNS = (deliveries.c.id, deliveries.c.receipt_no, deliveries.c.idempotency_key,
            deliveries.c.state, deliveries.c.partner_status, deliveries.c.result,
            deliveries.c.status_at, deliveries.c.delivered_at, deliveries.c.created_at)


@dataclass(frozen=True)
class RedeliverResult:
    delivery_id: str
    done: bool
    reason: str   # "redelivered", "redelivered before", "changed meanwhile"


def _scope(partner: str, since: datetime | None) -> list[ColumnElement[bool]]:
    cond: list[ColumnElement[bool]] = [deliveries.c.partner == partner, deliveries.c.kind == KIND_CASE]
    if since is not None:
        cond.append(deliveries.c.created_at >= since)
    return cond


class ReconcileRows:
    """Reads and the re-delivery write of one store, for the reconciler."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.postgres = store.db.engine.dialect.name == "postgresql"

    async def in_receipt_order(self, partner: str, since: datetime | None = None, *,
                               chunk: int = 5000) -> AsyncGenerator[Sequence[Any], None]:
        """The partner's case deliveries that hold a receipt, ordered by it, ``chunk`` rows at a
        time (each row has the attributes of ``_COLUMNS``)."""
        receipt = deliveries.c.receipt_no
        order = receipt.collate("C") if self.postgres else receipt
        stmt = (select(*_COLUMNS).where(*_scope(partner, since), receipt.is_not(None))
                .order_by(order).execution_options(yield_per=chunk))
        async for part in self._stream(stmt, "read deliveries in receipt order", chunk):
            yield part

    async def delivered_without_receipt(self, partner: str, since: datetime | None = None, *,
                                        chunk: int = 5000) -> AsyncGenerator[Sequence[Any], None]:
        """Delivered case deliveries with no receipt (a partner that answered none)."""
        stmt = (select(*_COLUMNS).where(*_scope(partner, since), deliveries.c.receipt_no.is_(None),
                                        deliveries.c.state == DeliveryState.DELIVERED)
                .order_by(deliveries.c.id).execution_options(yield_per=chunk))
        async for part in self._stream(stmt, "read delivered deliveries without receipt", chunk):
            yield part

    async def _stream(self, stmt: Any, operation: str,
                      chunk: int) -> AsyncGenerator[Sequence[Any], None]:
        async with self.store.db.read(operation) as conn:
            result = await conn.stream(stmt)
            try:
                async for part in result.partitions(chunk):
                    yield part
            finally:
                await result.close()

    async def by_keys(self, partner: str, keys: Sequence[str]) -> dict[str, Any]:
        """The partner's case deliveries with these idempotency keys (unique index), by key."""
        if not keys:
            return {}
        stmt = select(*_COLUMNS).where(deliveries.c.partner == partner,
                                       deliveries.c.kind == KIND_CASE,
                                       deliveries.c.idempotency_key.in_(list(keys)))
        async with self.store.db.read("find deliveries by idempotency key") as conn:
            return {r.idempotency_key: r for r in (await conn.execute(stmt)).all()}

    async def redeliver(self, ids: Sequence[str], *, run_id: str, reason: str,
                        now: datetime | None = None) -> list[RedeliverResult]:
        """Make each delivered delivery due again, once in its life: pending now with a fresh
        retry budget (as a dead-letter replay does), an ``operator_actions`` row naming the run
        (``reconcile-redeliver``). A delivery re-delivered by a reconcile before is left for an
        operator; one no longer delivered (changed since it was read) is left alone."""
        if not ids:
            return []
        now = now or utcnow()
        out: list[RedeliverResult] = []
        async with self.store.db.write("re-deliver cases a partner lost") as conn:
            before = set((await conn.execute(
                select(operator_actions.c.target).where(
                    operator_actions.c.action == REDELIVER_ACTION,
                    operator_actions.c.target.in_(list(ids))))).scalars())
            rows = (await conn.execute(
                select(deliveries.c.id, deliveries.c.receipt_no, deliveries.c.case_id,
                       deliveries.c.partner).where(
                    deliveries.c.id.in_([i for i in ids if i not in before]),
                    deliveries.c.state == DeliveryState.DELIVERED).with_for_update())).all()
            todo = {r.id: r.receipt_no for r in rows}
            if todo:
                await conn.execute(update(deliveries).where(and_(
                    deliveries.c.id.in_(list(todo)),
                    deliveries.c.state == DeliveryState.DELIVERED)).values(
                    state=DeliveryState.PENDING, next_attempt_at=now, updated_at=now,
                    attempts_base=deliveries.c.attempts, first_attempt_at=None,
                    replays=deliveries.c.replays + 1))
                await conn.execute(operator_actions.insert(), [
                    {"at": now, "actor": ACTOR, "action": REDELIVER_ACTION, "target": i,
                     "detail": {"reason": reason, "run": run_id, "lostReceiptNo": receipt}}
                    for i, receipt in todo.items()])
                await audit.append_async(conn, [audit.Entry(
                    kind="reconcile_redeliver", actor=ACTOR, case_id=r.case_id, delivery_id=r.id,
                    partner=r.partner, detail={"run": run_id}) for r in rows])
        for i in ids:
            out.append(RedeliverResult(i, i in todo, "redelivered" if i in todo else
                                       "redelivered before" if i in before
                                       else "changed meanwhile"))
        return out
