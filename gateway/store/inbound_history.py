"""An inbound case's status history as stored: the case's progress (``inbound_cases``) and each
event the city platform reported (``inbound_status_events``, one per event id, oldest first),
with the state of the notification each change queued to the submitting partner. One read, no
writes: what ``GET /api/v1/inbound-cases/{receiptNo}/statuses`` answers (gateway/inbound/history.py).

Nothing here is personal data: receipts, case numbers, statuses and the city platform's own
messages; the case body (sealed at rest) is not read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gateway.store.models import deliveries, inbound_cases, inbound_status_events
from gateway.store.repository import Store


@dataclass(frozen=True)
class StatusHistory:
    """The case as the partner submitted it, its progress now, and its events (oldest first)."""

    receipt_no: str
    partner: str
    partner_case_no: str
    application_no: str
    received_at: datetime
    status: str | None
    status_at: datetime | None
    result: str | None
    events: list[dict[str, Any]]


async def status_history(store: Store, receipt_no: str) -> StatusHistory | None:
    """The history of the inbound case with ``receipt_no``; None when no case has it.
    :class:`~gateway.errors.StoreError` when the database fails."""
    ic, ev, d = inbound_cases.c, inbound_status_events.c, deliveries.c
    async with store.db.read("read inbound case status history") as conn:
        case = (await conn.execute(select(
            ic.id, ic.receipt_no, ic.partner, ic.partner_case_no, ic.application_no,
            ic.received_at, ic.status, ic.status_at, ic.status_result)
            .where(ic.receipt_no == receipt_no))).first()
        if case is None:
            return None
        rows = (await conn.execute(
            select(ev.event_id, ev.status, ev.result, ev.occurred_at, ev.message, ev.applied,
                   ev.flag, ev.delivery_id, ev.reported_by, ev.received_at,
                   d.state.label("delivery_state"), d.partner.label("delivery_partner"))
            .select_from(inbound_status_events.outerjoin(deliveries, d.id == ev.delivery_id))
            .where(ev.inbound_id == case.id)
            .order_by(ev.received_at, ev.occurred_at, ev.event_id))).all()
    return StatusHistory(
        receipt_no=case.receipt_no, partner=case.partner, partner_case_no=case.partner_case_no,
        application_no=case.application_no, received_at=case.received_at, status=case.status,
        status_at=case.status_at, result=case.status_result,
        events=[dict(r._mapping) for r in rows])


__all__ = ["StatusHistory", "status_history"]
