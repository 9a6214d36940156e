"""What partners say about their cases: every status event kept, applied to its delivery through
the one state machine (:func:`gateway.status.advance`), and the push to the city platform queued
as an outbox row, all in one transaction.

Partners call back twice, out of order, and about cases the gateway never sent them; polls repeat
what callbacks said. So :meth:`StatusEvents.apply`:

1. finds the delivery the event is about (the partner's receipt number, else the idempotency
   key the gateway sent, else the application number and item number) and locks its row
   (``FOR UPDATE`` on PostgreSQL, so two instances applying events for one delivery take turns;
   SQLite's write lock already makes every writer take turns);
2. keeps the event, unless its key is already stored for this partner (a repeated callback, or a
   poll that learned nothing new): then nothing at all changes (``Applied.duplicate``);
3. moves the delivery's status, result and partner time only when ``advance`` says the event
   moves it; an event that does not is kept with a ``flag`` saying why (``regression``,
   ``duplicate``), and so is one whose code no table maps (``unmapped``) or whose case nobody
   knows (``unknown_case``): nothing a partner said is dropped;
4. when the status changed and the caller names the city platform (``push_to``), inserts the push
   as a row of ``deliveries`` (``kind = 'status_push'``, the event document in ``payload``,
   idempotency key = the event id): the worker sends it with the same retries, breaker, dead
   letters and replay as a case, and the city platform dedupes on the event id.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.status import TERMINAL, CaseStatus, Result, advance, child_of, derive_bundle
from gateway.store import audit
from gateway.store.models import cases, deliveries, status_events
from gateway.store.repository import Store
from gateway.store.states import DeliveryState
from gateway.store.types import utcnow

BEIJING = timezone(timedelta(hours=8))

#: ``deliveries.kind`` of a case sent to a partner, and of a status event pushed to the city.
KIND_CASE = "case"
KIND_STATUS_PUSH = "status_push"
#: The mapping that renders a push, and the region a push goes to (the city platform's).
PUSH_MAPPING = "city/status-push"
PUSH_REGION = "110000000000"
#: Event ids are UUID5 of the status event's row id in this namespace: a retried push carries
#: the same id, and two gateways' events never share one.
EVENT_NAMESPACE = uuid.UUID("5b0f3c1e-6a53-4d0c-9a1e-2f6c7d8e9a10")


class Source(StrEnum):
    CALLBACK = "callback"    # the partner called us
    POLL = "poll"            # we asked the partner (status query)
    RECONCILE = "reconcile"  # the reconciler found it comparing both views
    EXPORT = "export"        # a partner's bulk status export


class Flag(StrEnum):
    """Why a kept event did not move its delivery."""

    UNMAPPED = "unmapped"          # no code table maps the partner's code
    UNKNOWN_CASE = "unknown_case"  # no delivery to this partner matches the case references
    REGRESSION = "regression"      # older news: the delivery is further along (or terminal)
    DUPLICATE = "duplicate"        # a new event that says what the delivery already says


#: An e-licence reference as the canonical event carries it (GB/T 36901–36905): ``licenceId``
#: (``1.2.156.3005.2.…``), ``typeCode``, ``name``, optionally ``holderCertNo``.
Elicence = Mapping[str, str]

#: The canonical event's fields kept as they are (``detail``) and passed on to the push.
_DETAIL = {"nationalCaseNo": "national_case_no", "implementationCode": "implementation_code",
           "region": "region", "department": "department"}


@dataclass(frozen=True)
class StatusEvent:
    """One status report of a partner, already mapped (``status`` None: its code maps to no
    canonical status; ``partner_code`` is the raw code either way). Case references, any of
    them: the partner's case number (``receipt_no``, or ``national_case_no``), the idempotency
    key the gateway sent, the application and item number. ``event_id`` is the partner's own id
    of the event, if it has one. :meth:`from_document` reads the canonical event an inbound
    status mapping renders (``mappings/national/status-callback.yaml``)."""

    partner: str
    source: Source
    status: CaseStatus | None
    partner_code: str | None = None
    receipt_no: str | None = None
    idempotency_key: str | None = None
    application_no: str | None = None
    item_no: str | None = None
    national_case_no: str | None = None
    result: Result | None = None
    occurred_at: datetime | None = None
    elicences: tuple[Elicence, ...] = ()
    message: str | None = None
    event_id: str | None = None
    implementation_code: str | None = None
    region: str | None = None
    department: str | None = None

    @classmethod
    def from_document(cls, partner: str, source: Source, doc: Mapping[str, Any], *,
                      partner_code: str | None = None, **refs: Any) -> StatusEvent:
        """The event in the canonical shape (``applicationNo``, ``nationalCaseNo``,
        ``implementationCode``, ``region``, ``status``, ``result``, ``occurredAt`` ISO 8601,
        ``department``, ``message``, ``elicences``); a status or result that is not canonical is
        None (kept and flagged ``unmapped``). ``refs``: further fields (``receipt_no``,
        ``item_no``, ``event_id`` …)."""
        status, result = str(doc.get("status") or ""), str(doc.get("result") or "")
        occurred = doc.get("occurredAt")
        fields: dict[str, Any] = {
            "application_no": doc.get("applicationNo") or None,
            "status": CaseStatus(status) if status in CaseStatus.__members__ else None,
            "result": Result(result) if result in Result.__members__ else None,
            "occurred_at": datetime.fromisoformat(occurred) if occurred else None,
            "message": doc.get("message") or None,
            "elicences": tuple(dict(e) for e in doc.get("elicences") or ()),
            **{attr: doc.get(key) or None for key, attr in _DETAIL.items()},
            **refs}
        return cls(partner=partner, source=source,
                   partner_code=partner_code if partner_code is not None else status or None,
                   **fields)

    @property
    def detail(self) -> dict[str, str]:
        """What the event says beyond its status, kept with it and passed on to the push."""
        return {key: v for key, attr in _DETAIL.items() if (v := getattr(self, attr))}

    @property
    def case_ref(self) -> str:
        """The reference the event names its case by (kept for an event nobody matched)."""
        if self.receipt_no:
            return f"receipt:{self.receipt_no}"[:200]
        if self.idempotency_key:
            return f"key:{self.idempotency_key}"[:200]
        return f"application:{self.application_no or ''}/{self.item_no or ''}"[:200]

    @property
    def key(self) -> str:
        """The partner's event id, else a hash of what identifies the report: a repeated
        callback, or a poll answering what a callback said, has the same key."""
        if self.event_id and len(self.event_id) <= 128:
            return self.event_id
        parts = ([self.event_id] if self.event_id else
                 [self.partner, self.case_ref, self.partner_code or str(self.status or ""),
                  self.occurred_at.astimezone(BEIJING).isoformat() if self.occurred_at else ""])
        return "sha256:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Applied:
    """What :meth:`StatusEvents.apply` did. ``event_id`` is the stored event (the earlier one
    for a duplicate); ``previous``/``status`` the delivery's status before and after;
    ``push_id`` the outbox row queued for the city platform, if any."""

    event_id: str
    duplicate: bool = False
    applied: bool = False
    flag: Flag | None = None
    case_id: str | None = None
    delivery_id: str | None = None
    previous: CaseStatus | None = None
    status: CaseStatus | None = None
    result: Result | None = None
    push_id: str | None = None


@dataclass(frozen=True)
class PushState:
    """Where the push of one event is in the outbox (for the timeline)."""

    id: str
    state: DeliveryState
    attempts: int
    delivered_at: datetime | None
    last_outcome: str | None


@dataclass(frozen=True)
class StatusEventRecord:
    id: str
    case_id: str | None
    delivery_id: str | None
    partner: str
    source: Source
    event_key: str
    case_ref: str | None
    partner_code: str | None
    status: CaseStatus | None
    result: Result | None
    occurred_at: datetime | None
    received_at: datetime
    applied: bool
    flag: Flag | None
    elicences: list[dict[str, str]]
    message: str | None
    detail: dict[str, str]
    push: PushState | None = None

    @property
    def push_event_id(self) -> str:
        return push_event_id(self.id)


@dataclass(frozen=True)
class StaleDelivery:
    """A delivered, unfinished case part nobody heard of lately: what a status query needs."""

    id: str
    case_id: str
    application_no: str
    partner: str
    item_nos: list[str]
    receipt_no: str | None
    idempotency_key: str
    partner_status: CaseStatus | None
    status_checked_at: datetime | None


def push_event_id(status_event_id: str) -> str:
    """The event id (and push idempotency key) of a stored status event: stable across retries."""
    return str(uuid.uuid5(EVENT_NAMESPACE, status_event_id))


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(BEIJING).isoformat() if t is not None else None


def _status(v: str | None) -> CaseStatus | None:
    return CaseStatus(v) if v else None


def _result(v: str | None) -> Result | None:
    return Result(v) if v else None


_LOCKED = (deliveries.c.id, deliveries.c.case_id, deliveries.c.item_nos, deliveries.c.region,
           deliveries.c.receipt_no, deliveries.c.partner_status, deliveries.c.result,
           deliveries.c.status_at)
_OWN = deliveries.c.kind == KIND_CASE


def _record(r: Any, push: PushState | None = None) -> StatusEventRecord:
    return StatusEventRecord(
        id=r.id, case_id=r.case_id, delivery_id=r.delivery_id, partner=r.partner,
        source=Source(r.source), event_key=r.event_key, case_ref=r.case_ref,
        partner_code=r.partner_code, status=_status(r.status), result=_result(r.result),
        occurred_at=r.occurred_at, received_at=r.received_at, applied=bool(r.applied),
        flag=Flag(r.flag) if r.flag else None, elicences=list(r.elicences), message=r.message,
        detail=dict(r.detail or {}), push=push)


def _audited(event: StatusEvent, applied: Applied) -> audit.Entry:
    """The audit record of a kept status event (a repeat changes nothing and has none)."""
    return audit.Entry(
        kind="status_event", actor=event.partner, case_id=applied.case_id,
        delivery_id=applied.delivery_id, partner=event.partner, partner_code=event.partner_code,
        detail={"source": str(event.source), "eventId": applied.event_id,
                "status": None if applied.status is None else str(applied.status),
                "applied": applied.applied, "flag": None if applied.flag is None
                else str(applied.flag), "pushId": applied.push_id})


class StatusEvents:
    """The status events of ``store``, read and written through its one door (``store.db``).
    Every method raises :class:`~gateway.errors.StoreError` when the database fails."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def apply(self, event: StatusEvent, *, push_to: str | None = None,
                    now: datetime | None = None) -> Applied:
        """Keep ``event`` and apply it to its delivery in one transaction (module docstring);
        ``push_to`` names the city platform's partner (None: no push is queued)."""
        key = event.key
        async with self.store.db.write("apply status event") as conn:
            case_id, delivery_id = await self._locate(conn, event)
            row = None
            if delivery_id is not None:
                row = (await conn.execute(select(*_LOCKED).where(deliveries.c.id == delivery_id)
                                          .with_for_update())).one()
            # read once the row is ours: one delivery's events and pushes get times in the
            # order they were applied (the push queue is ordered by them)
            now = now or utcnow()
            earlier = await self._stored(conn, event.partner, key)
            if earlier is not None:
                return Applied(earlier, duplicate=True, case_id=case_id, delivery_id=delivery_id)
            previous = _status(row.partner_status) if row is not None else None
            status, result, flag = self._decide(event, row)
            moved = flag is None and row is not None
            event_id = str(uuid.uuid4())
            try:
                async with conn.begin_nested():
                    await conn.execute(status_events.insert().values(
                        id=event_id, case_id=case_id, delivery_id=delivery_id,
                        partner=event.partner, source=event.source, event_key=key,
                        case_ref=event.case_ref, partner_code=event.partner_code,
                        status=event.status, result=event.result, occurred_at=event.occurred_at,
                        received_at=now, applied=moved, flag=flag,
                        elicences=[dict(e) for e in event.elicences],
                        message=event.message, detail=event.detail or None))
            except IntegrityError:  # the same event, stored meanwhile by another instance
                earlier = await self._stored(conn, event.partner, key)
                if earlier is None:
                    raise
                return Applied(earlier, duplicate=True, case_id=case_id, delivery_id=delivery_id)
            applied = Applied(event_id, applied=moved, flag=flag, case_id=case_id,
                              delivery_id=delivery_id, previous=previous, status=status,
                              result=result)
            if row is None:
                await audit.append_async(conn, [_audited(event, applied)])
                return applied
            values: dict[str, Any] = {"status_checked_at": now}
            if moved:
                values.update(partner_status=status, result=result, updated_at=now,
                              status_at=event.occurred_at if status != previous
                              else row.status_at)
            await conn.execute(update(deliveries).where(deliveries.c.id == row.id)
                               .values(**values))
            if moved and push_to is not None:
                push_id = await self._queue_push(conn, push_to, event, applied, row, now)
                applied = replace(applied, push_id=push_id)
            await audit.append_async(conn, [_audited(event, applied)])
        return applied

    @staticmethod
    def _decide(event: StatusEvent,
                row: Any) -> tuple[CaseStatus | None, Result | None, Flag | None]:
        """The delivery's status and result after ``event``, and the flag if it does not move."""
        if event.status is None:
            flag = Flag.UNMAPPED
        elif row is None:
            flag = Flag.UNKNOWN_CASE
        else:
            current, result = _status(row.partner_status), _result(row.result)
            new = advance(current, event.status, current_at=row.status_at,
                          incoming_at=event.occurred_at)
            if new != current:
                return new, event.result, None
            if new == event.status and result is None and event.result is not None:
                return new, event.result, None  # the result code came after the status
            return current, result, (Flag.DUPLICATE if event.status == current
                                     else Flag.REGRESSION)
        if row is None:
            return None, None, flag
        return _status(row.partner_status), _result(row.result), flag

    @staticmethod
    async def _stored(conn: AsyncConnection, partner: str, key: str) -> str | None:
        return (await conn.execute(select(status_events.c.id).where(
            status_events.c.partner == partner, status_events.c.event_key == key))).scalar()

    @staticmethod
    async def _locate(conn: AsyncConnection,
                      event: StatusEvent) -> tuple[str | None, str | None]:
        """(case id, delivery id) the event names; either may be None (unknown)."""
        mine = and_(deliveries.c.partner == event.partner, _OWN)
        for column, value in ((deliveries.c.receipt_no, event.receipt_no),
                              (deliveries.c.receipt_no, event.national_case_no),
                              (deliveries.c.idempotency_key, event.idempotency_key)):
            if value:
                hit = (await conn.execute(select(deliveries.c.case_id, deliveries.c.id)
                                          .where(mine, column == value).limit(1))).first()
                if hit is not None:
                    return hit.case_id, hit.id
        if not event.application_no:
            return None, None
        case_id = (await conn.execute(select(cases.c.id).where(
            cases.c.application_no == event.application_no))).scalar()
        if case_id is None:
            return None, None
        rows = (await conn.execute(select(deliveries.c.id, deliveries.c.item_nos)
                                   .where(mine, deliveries.c.case_id == case_id)
                                   .order_by(deliveries.c.created_at, deliveries.c.id))).all()
        if event.item_no is not None:
            rows = [r for r in rows if event.item_no in r.item_nos]
        return case_id, (rows[0].id if len(rows) == 1 else None)

    @staticmethod
    async def _queue_push(conn: AsyncConnection, push_to: str, event: StatusEvent,
                          applied: Applied, row: Any, now: datetime) -> str:
        """Insert the outbox row that tells the city platform of this change (same transaction:
        the change and its push commit together or not at all)."""
        case = (await conn.execute(select(cases.c.application_no, cases.c.home_items)
                                   .where(cases.c.id == row.case_id))).one()
        parts = (await conn.execute(select(deliveries).where(
            deliveries.c.case_id == row.case_id, _OWN))).all()
        bundle = derive_bundle([replace(child_of(p), result=_result(p.result)) for p in parts],
                               list(case.home_items))
        event_id = push_event_id(applied.event_id)
        # the canonical event (schemas/city/status-push-source.schema.json): what the partner
        # said, what the gateway knows of the case, and the bundle after the change; a field
        # with no value is left out. A partner that gave no time: the time we heard it.
        payload: dict[str, Any] = {
            "eventId": event_id, "applicationNo": case.application_no,
            "itemNos": list(row.item_nos), "region": row.region, **event.detail,
            "status": applied.status, "previousStatus": applied.previous,
            "result": applied.result, "partner": event.partner, "partnerCaseNo": row.receipt_no,
            "partnerCode": event.partner_code, "source": event.source,
            "occurredAt": _iso(event.occurred_at or now), "receivedAt": _iso(now),
            "message": event.message, "elicences": [dict(e) for e in event.elicences],
            "bundleStatus": {"status": bundle.status, "result": bundle.result,
                             "terminal": bundle.terminal},
        }
        payload = {k: str(v) if isinstance(v, StrEnum) else v
                   for k, v in payload.items() if v is not None}
        payload["bundleStatus"] = {k: str(v) if isinstance(v, StrEnum) else v
                                   for k, v in payload["bundleStatus"].items()}
        push_id = str(uuid.uuid4())
        await conn.execute(deliveries.insert().values(
            id=push_id, case_id=row.case_id, partner=push_to, item_nos=list(row.item_nos),
            region=PUSH_REGION, route_rule=f"status change of delivery {row.id}",
            mapping=PUSH_MAPPING, mapping_version=None, idempotency_key=event_id,
            state=DeliveryState.PENDING, attempts=0, next_attempt_at=now, created_at=now,
            updated_at=now, attempts_base=0, replays=0, kind=KIND_STATUS_PUSH, payload=payload))
        return push_id

    # -- reads -----------------------------------------------------------------------------------
    async def history(self, case_id: str) -> list[StatusEventRecord]:
        """The case's status events in the order they were received, each with its push."""
        async with self.store.db.read("read status history") as conn:
            rows = (await conn.execute(select(status_events)
                                       .where(status_events.c.case_id == case_id)
                                       .order_by(status_events.c.received_at,
                                                 status_events.c.occurred_at))).all()
            keys = {push_event_id(r.id): r.id for r in rows if r.applied}
            pushes = {} if not keys else {
                keys[p.idempotency_key]: PushState(p.id, DeliveryState(p.state), p.attempts,
                                                   p.delivered_at, p.last_outcome)
                for p in (await conn.execute(
                    select(deliveries.c.id, deliveries.c.idempotency_key, deliveries.c.state,
                           deliveries.c.attempts, deliveries.c.delivered_at,
                           deliveries.c.last_outcome)
                    .where(deliveries.c.kind == KIND_STATUS_PUSH,
                           deliveries.c.idempotency_key.in_(list(keys))))).all()}
        return [_record(r, pushes.get(r.id)) for r in rows]

    async def unmatched(self, partner: str | None = None, *,
                        limit: int = 100) -> list[StatusEventRecord]:
        """Events that matched no case part (for an operator or the reconciler), oldest first."""
        stmt = select(status_events).where(status_events.c.delivery_id.is_(None))
        if partner is not None:
            stmt = stmt.where(status_events.c.partner == partner)
        async with self.store.db.read("list unmatched status events") as conn:
            rows = (await conn.execute(stmt.order_by(status_events.c.received_at)
                                       .limit(limit))).all()
        return [_record(r) for r in rows]

    async def stale(self, partner: str, older_than: datetime, *,
                    limit: int = 100) -> list[StaleDelivery]:
        """Delivered, unfinished case parts of ``partner`` that no callback or poll spoke of
        since ``older_than`` (never checked: since they were delivered), least recent first."""
        checked = func.coalesce(deliveries.c.status_checked_at, deliveries.c.delivered_at)
        stmt = (select(deliveries.c.id, deliveries.c.case_id, cases.c.application_no,
                       deliveries.c.partner, deliveries.c.item_nos, deliveries.c.receipt_no,
                       deliveries.c.idempotency_key, deliveries.c.partner_status,
                       deliveries.c.status_checked_at)
                .join(cases, cases.c.id == deliveries.c.case_id)
                .where(deliveries.c.partner == partner, _OWN,
                       deliveries.c.state == DeliveryState.DELIVERED,
                       or_(deliveries.c.partner_status.is_(None),
                           deliveries.c.partner_status.not_in([str(s) for s in TERMINAL])),
                       or_(deliveries.c.status_checked_at < older_than,
                           and_(deliveries.c.status_checked_at.is_(None),
                                deliveries.c.delivered_at < older_than)))
                .order_by(checked, deliveries.c.id).limit(limit))
        async with self.store.db.read("find deliveries to poll") as conn:
            rows = (await conn.execute(stmt)).all()
        return [StaleDelivery(r.id, r.case_id, r.application_no, r.partner, list(r.item_nos),
                              r.receipt_no, r.idempotency_key, _status(r.partner_status),
                              r.status_checked_at) for r in rows]

    async def touch_checked(self, ids: Sequence[str], now: datetime | None = None) -> int:
        """Record that a poll asked about ``ids`` (even if it learned nothing): not due again
        until the poll interval has passed. Returns how many rows were touched."""
        if not ids:
            return 0
        async with self.store.db.write("record status check") as conn:
            res = await conn.execute(update(deliveries).where(deliveries.c.id.in_(list(ids)))
                                     .values(status_checked_at=now or utcnow()))
        return res.rowcount
