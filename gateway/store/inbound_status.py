"""The statuses of an inbound case, reported by the city platform and carried back to the partner
that submitted it — one transaction per report.

:meth:`InboundStatuses.report`:

1. finds the inbound case by the receipt the gateway issued (``None``: no such case) and locks
   its row (``FOR UPDATE`` on PostgreSQL; SQLite's write lock makes writers take turns);
2. keeps the event once per (case, event id): a repeated event id changes nothing at all;
3. moves the case's progress (``inbound_cases.status``, ``status_at``, ``status_result``)
   through the one state machine (:func:`gateway.status.settle`): a late, older event is kept
   with its ``flag`` (``regression``, ``duplicate``, ``conflict``) and moves nothing;
4. when the progress changed and the submitting partner has a notification partner configured
   (``<partner>-status``: ``tianjin-status``, ``national-status``, ``hebei-status``), queues
   the change as a ``deliveries`` row of kind ``inbound_status`` (the notification document in
   ``payload``, the event row's id as the idempotency key the partner dedupes on: Tianjin's
   TZBH, the national X-Idempotency-Key, Hebei's MessageHeader/messageId), rendered by that
   partner's ``<partner>/status-notify-out`` mapping in its own callback contract. A change the
   partner's contract cannot say (Tianjin has no code for IN_REVIEW) is not queued:
   ``notifies`` says why, and the answer carries it (``notSent``);
5. appends an ``inbound_status`` record to the audit chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from gateway.status import CaseStatus, Progress, Result, settle
from gateway.store import audit
from gateway.store.inbound import REGION, anchor_id
from gateway.store.models import cases, deliveries, inbound_cases, inbound_status_events
from gateway.store.repository import Store
from gateway.store.states import DeliveryState
from gateway.store.types import utcnow

KIND_INBOUND_STATUS = "inbound_status"


def notify_partner(partner: str) -> str:
    """The partner entry that carries ``partner``'s inbound case statuses back to it."""
    return f"{partner}-status"


def notify_mapping(partner: str) -> str:
    return f"{partner}/status-notify-out"


@dataclass(frozen=True)
class StatusReport:
    """One status event of an inbound case, as the city platform reports it (canonical)."""

    receipt_no: str
    event_id: str
    status: CaseStatus
    occurred_at: datetime
    result: Result | None = None
    message: str | None = None
    reported_by: str = ""


@dataclass(frozen=True)
class Reported:
    """What became of a report: ``duplicate`` (its event id was known), ``applied`` (the case
    moved), the case's ``status`` after it, the ``flag`` of an event that changed nothing and
    the notification's delivery id when one was queued."""

    partner: str
    duplicate: bool
    applied: bool
    status: str | None
    flag: str | None
    delivery_id: str | None
    #: why a change was not queued to the partner (no notification partner, or its contract
    #: cannot say it); None when it was queued or nothing changed
    not_sent: str | None = None


def _progress(row: Any) -> Progress | None:
    if row.status is None:
        return None
    return Progress(CaseStatus(row.status), row.status_at,
                    Result(row.status_result) if row.status_result else None)


def notification(row: Any, report: StatusReport, progress: Progress) -> dict[str, Any]:
    """The notification document a partner's ``status-notify-out`` mapping renders: the case as
    the partner knows it (its case number, Beijing's receipt) and its progress after the event."""
    body = row.body if isinstance(row.body, dict) else {}
    items = body.get("items") or [{}]
    return {"receiptNo": row.receipt_no, "partnerCaseNo": row.partner_case_no,
            "applicationNo": row.application_no,
            "implementationCode": items[0].get("implementationCode"),
            "region": items[0].get("handlingRegion"),
            "status": progress.status.value,
            "result": progress.result.value if progress.result else None,
            "occurredAt": (progress.at or report.occurred_at).isoformat(),
            "message": report.message, "eventId": report.event_id}


#: ``notifies(partner, notification)``: None when the notification can go to the partner, else
#: why not (no ``<partner>-status`` configured, or its mapping cannot render it)
Notifies = Callable[[str, dict[str, Any]], str | None]


class InboundStatuses:
    """The inbound case statuses of ``store``; ``notifies`` says whether a change goes back to
    the partner (:data:`Notifies`). Every method raises :class:`~gateway.errors.StoreError` when
    the database fails."""

    def __init__(self, store: Store, *, notifies: Notifies) -> None:
        self.store = store
        self.notifies = notifies
        self._insert = store._insert  # noqa: SLF001 - the dialect's INSERT … ON CONFLICT

    async def report(self, report: StatusReport, *, now: datetime | None = None) -> Reported | None:
        """Keep, apply and pass on one report (module docstring); None for an unknown receipt."""
        now = now or utcnow()
        return await self.store.db.write_sync("store inbound case status",
                                              lambda conn: self._report(conn, report, now))

    def _report(self, conn: Connection, report: StatusReport, now: datetime) -> Reported | None:
        ic, ev = inbound_cases.c, inbound_status_events.c
        row = conn.execute(select(inbound_cases).where(ic.receipt_no == report.receipt_no)
                           .with_for_update()).first()
        if row is None:
            return None
        known = conn.execute(select(ev.id).where(ev.inbound_id == row.id,
                                                 ev.event_id == report.event_id)).first()
        if known is not None:
            return Reported(row.partner, True, False, row.status, "duplicate", None)
        current = _progress(row)
        after, verdict = settle(current, Progress(report.status, report.occurred_at,
                                                  report.result))
        event_row = str(uuid.uuid4())
        delivery_id = not_sent = None
        if verdict.applied:
            conn.execute(update(inbound_cases).where(ic.id == row.id).values(
                status=after.status.value, status_at=after.at,
                status_result=after.result.value if after.result else None))
            doc = notification(row, report, after)
            not_sent = self.notifies(row.partner, doc)
            if not_sent is None:
                delivery_id = str(uuid.uuid4())
                conn.execute(self._insert(cases).values(
                    id=anchor_id(row.partner), application_no=f"INBOUND-{row.partner.upper()}",
                    body={"inbound": row.partner}, body_hash="",
                    correlation_id=f"inbound-{row.partner}", home_items=[], received_at=now,
                ).on_conflict_do_nothing(index_elements=[cases.c.id]))
                conn.execute(deliveries.insert().values(
                    id=delivery_id, case_id=anchor_id(row.partner),
                    partner=notify_partner(row.partner), item_nos=[], region=REGION,
                    route_rule=f"inbound status {row.partner}",
                    mapping=notify_mapping(row.partner), mapping_version=None,
                    idempotency_key=event_row, state=DeliveryState.PENDING, attempts=0,
                    next_attempt_at=now, created_at=now, updated_at=now, attempts_base=0,
                    replays=0, kind=KIND_INBOUND_STATUS, payload=doc))
        conn.execute(inbound_status_events.insert().values(
            id=event_row, inbound_id=row.id, event_id=report.event_id,
            status=report.status.value, result=report.result.value if report.result else None,
            occurred_at=report.occurred_at, message=report.message, applied=verdict.applied,
            flag=verdict.flag, delivery_id=delivery_id, reported_by=report.reported_by[:128],
            received_at=now))
        audit.append(conn, [audit.Entry(
            kind="inbound_status", actor=report.reported_by, delivery_id=delivery_id,
            partner=row.partner,
            detail={"inboundId": row.id, "receiptNo": row.receipt_no,
                    "eventId": report.event_id, "status": report.status.value,
                    "applied": verdict.applied, "flag": verdict.flag, "notSent": not_sent})],
            now=now)
        return Reported(row.partner, False, verdict.applied, after.status.value, verdict.flag,
                        delivery_id, not_sent)

    async def events(self, receipt_no: str) -> list[dict[str, Any]]:
        """The stored events of the case with ``receipt_no``, oldest first."""
        ic, ev = inbound_cases.c, inbound_status_events.c
        async with self.store.db.read("read inbound case statuses") as conn:
            rows = (await conn.execute(
                select(inbound_status_events).join(inbound_cases, ic.id == ev.inbound_id)
                .where(ic.receipt_no == receipt_no)
                .order_by(ev.received_at, ev.occurred_at))).all()
        return [dict(r._mapping) for r in rows]


__all__ = ["KIND_INBOUND_STATUS", "InboundStatuses", "Notifies", "Reported", "StatusReport",
           "notification", "notify_mapping", "notify_partner"]
