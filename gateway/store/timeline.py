"""What a case's timeline needs beyond the case record (reads only): its status events with
their pushes (:meth:`StatusEvents.history`) and the push rows themselves.

The pushes are rows of ``deliveries`` of kind ``status_push`` (``get_case`` leaves them out of the
case's deliveries); they are read here with their outbox state, attempts and the city platform's
receipt, never their payload. :func:`gateway.views.timeline_doc` puts it all in time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from gateway.store.models import deliveries
from gateway.store.repository import Store
from gateway.store.states import DeliveryState
from gateway.store.statuses import KIND_STATUS_PUSH, StatusEventRecord, StatusEvents


@dataclass(frozen=True)
class PushRow:
    """One push of a status change to the city platform, as the outbox holds it."""

    id: str
    partner: str
    event_id: str          # the push's idempotency key: the event id the platform dedupes on
    state: DeliveryState
    attempts: int
    receipt_no: str | None
    created_at: datetime
    delivered_at: datetime | None
    last_outcome: str | None
    last_code: str | None


@dataclass(frozen=True)
class TimelineData:
    events: list[StatusEventRecord]
    pushes: list[PushRow]


async def read_timeline(store: Store, case_id: str) -> TimelineData:
    """The case's status events (with their push state) and its push rows, oldest first."""
    events = await StatusEvents(store).history(case_id)
    stmt = (select(deliveries.c.id, deliveries.c.partner, deliveries.c.idempotency_key,
                   deliveries.c.state, deliveries.c.attempts, deliveries.c.receipt_no,
                   deliveries.c.created_at, deliveries.c.delivered_at,
                   deliveries.c.last_outcome, deliveries.c.last_code)
            .where(deliveries.c.case_id == case_id, deliveries.c.kind == KIND_STATUS_PUSH)
            .order_by(deliveries.c.created_at, deliveries.c.id))
    async with store.db.read("read a case's status pushes") as conn:
        rows = (await conn.execute(stmt)).all()
    return TimelineData(events, [
        PushRow(r.id, r.partner, r.idempotency_key, DeliveryState(r.state), r.attempts,
                r.receipt_no, r.created_at, r.delivered_at, r.last_outcome, r.last_code)
        for r in rows])
