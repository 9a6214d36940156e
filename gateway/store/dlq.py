"""The dead-letter queue: deliveries in state ``dead``, parked with their full history.

Operators list them, replay them (one, a filter, or all; optionally with the current mapping
version) or discard them. Nothing is deleted: a discarded delivery stays, marked ``discarded``
with partner status VOIDED, and every action is written to ``operator_actions`` and, once
committed, logged as the case's ``delivery.replayed`` / ``delivery.discarded`` event
(:mod:`gateway.observability.case_log`; the operator and the reason stay in the audit table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.sql.elements import ColumnElement

from gateway.observability.case_log import CaseEvent, case_event
from gateway.status import CaseStatus
from gateway.store import audit
from gateway.store.models import cases, deliveries, operator_actions
from gateway.store.repository import (
    DELIVERY_COLUMNS,
    DeliveryRecord,
    Store,
    delivery_from_row,
)
from gateway.store.states import DeliveryState
from gateway.store.types import utcnow


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operator means. Empty filter with ``everything`` = all of them."""

    ids: tuple[str, ...] = ()
    partner: str | None = None
    code: str | None = None
    application_no: str | None = None
    everything: bool = False

    def is_empty(self) -> bool:
        return not (self.ids or self.partner or self.code or self.application_no or self.everything)

    def where(self) -> ColumnElement[bool]:
        cond: list[ColumnElement[bool]] = [deliveries.c.state == DeliveryState.DEAD]
        if self.ids:
            cond.append(deliveries.c.id.in_(self.ids))
        if self.partner:
            cond.append(deliveries.c.partner == self.partner)
        if self.code:
            cond.append(deliveries.c.last_code == self.code)
        if self.application_no:
            cond.append(deliveries.c.case_id.in_(
                select(cases.c.id).where(cases.c.application_no == self.application_no)))
        return and_(*cond)


@dataclass(frozen=True)
class DeadLetter:
    delivery: DeliveryRecord
    application_no: str


class DeadLetters:
    """The dead-letter queue of ``store``, read and written through its one door (``store.db``).
    Every method raises :class:`~gateway.errors.StoreError` when the database fails."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def find(self, f: DeadLetterFilter = DeadLetterFilter(everything=True), *,
                   limit: int = 100) -> list[DeadLetter]:
        stmt = (select(*DELIVERY_COLUMNS, cases.c.application_no)
                .join(cases, cases.c.id == deliveries.c.case_id)
                .where(f.where()).order_by(deliveries.c.updated_at).limit(limit))
        async with self.store.db.read("list dead letters") as conn:
            rows = (await conn.execute(stmt)).all()
        return [DeadLetter(delivery_from_row(r), r.application_no) for r in rows]

    async def replay(self, f: DeadLetterFilter, *, actor: str, reason: str,
                     current_mapping: bool = False, now: datetime | None = None) -> list[str]:
        """Put matching dead letters back in the queue with a fresh retry budget."""
        return await self._act(f, CaseEvent.REPLAYED, actor, reason, now, {
            "state": DeliveryState.PENDING, "attempts_base": deliveries.c.attempts,
            "first_attempt_at": None, "replays": deliveries.c.replays + 1,
            **({"mapping_version": None} if current_mapping else {}),
        }, {"currentMapping": current_mapping})

    async def discard(self, f: DeadLetterFilter, *, actor: str, reason: str,
                      now: datetime | None = None) -> list[str]:
        """Mark matching dead letters as given up (kept, never deleted)."""
        return await self._act(f, CaseEvent.DISCARDED, actor, reason, now,
                               {"state": DeliveryState.DISCARDED,
                                "partner_status": CaseStatus.VOIDED}, {})

    async def _act(self, f: DeadLetterFilter, event: CaseEvent, actor: str, reason: str,
                   now: datetime | None, values: dict[str, Any],
                   detail: dict[str, Any]) -> list[str]:
        if f.is_empty():
            raise ValueError("name the dead letters: ids, a filter, or everything")
        now = now or utcnow()
        action = "replay" if event is CaseEvent.REPLAYED else "discard"
        async with self.store.db.write(f"{action} dead letters") as conn:
            rows = (await conn.execute(
                select(deliveries.c.id, deliveries.c.case_id, deliveries.c.partner,
                       deliveries.c.attempts, deliveries.c.last_outcome)
                .where(f.where()).with_for_update())).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            await conn.execute(update(deliveries).where(
                deliveries.c.id.in_(ids), deliveries.c.state == DeliveryState.DEAD).values(
                next_attempt_at=now, updated_at=now, **values))
            await conn.execute(operator_actions.insert(), [
                {"at": now, "actor": actor, "action": action, "target": i,
                 "detail": {"reason": reason, **detail}} for i in ids])
            await audit.append_async(conn, [audit.Entry(  # the reason stays in operator_actions
                kind=f"dead_letter_{action}", actor=actor, case_id=r.case_id, delivery_id=r.id,
                partner=r.partner, detail=detail) for r in rows])
            correlation = dict((await conn.execute(
                select(cases.c.id, cases.c.correlation_id)
                .where(cases.c.id.in_({r.case_id for r in rows})))).tuples().all())
        for r in rows:  # committed: the attempt named is the one that parked it
            case_event(event, correlation_id=correlation[r.case_id], delivery_id=r.id,
                       partner=r.partner, attempt=r.attempts, outcome=r.last_outcome)
        return ids

    async def record(self, *, actor: str, action: str, target: str | None,
                     detail: dict[str, Any]) -> None:
        """An operator action that is not about dead letters (e.g. a contract reload)."""
        async with self.store.db.write("record operator action") as conn:
            await conn.execute(operator_actions.insert().values(
                at=utcnow(), actor=actor, action=action, target=target, detail=detail))
            await audit.append_async(conn, [audit.Entry(
                kind="operator_action", actor=actor, detail={"action": action, "target": target})])

    async def actions(self, target: str | None = None) -> list[dict[str, Any]]:
        stmt = select(operator_actions).order_by(operator_actions.c.id)
        if target:
            stmt = stmt.where(operator_actions.c.target == target)
        async with self.store.db.read("list operator actions") as conn:
            return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]
