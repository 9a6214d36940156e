"""Overdue items (办理时限 passed, no terminal status): what ``gateway overdue`` lists and the
``gateway_overdue_items`` gauge counts. Read only, through the store's read door.

An item is watched through the parts the gateway carried for it: every delivery of the item
whose partner status is not terminal (none yet counts as SUBMITTED; a dead or still pending
delivery is as late for the applicant as any) is one row, so a 多地联办 item late in two
regions is two rows, one per partner. Items handled in Beijing alone are the home platform's:
the gateway never hears their status, so it does not watch them (see ``gateway.views``).

The deadline is computed, not stored: it depends on the case's submit time, its item codes and
the calendar and promised-time files, which may change (a new year's notice). So the query
streams every open delivery with only what the computation needs (the case's ``submitTime``
and ``items``, never the applicant) and the deadlines are worked out here, with flat memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from gateway.domain.deadlines import Deadlines, beijing, days_over, is_overdue, submit_time
from gateway.status import TERMINAL, CaseStatus
from gateway.store import sealing
from gateway.store.models import cases, deliveries
from gateway.store.repository import Store
from gateway.store.states import DeliveryState


@dataclass(frozen=True)
class OverdueItem:
    """One part of an item past its deadline: the case, the item, who has it and how late."""

    application_no: str
    case_id: str
    item_no: str
    item_code: str | None
    partner: str
    delivery_id: str
    status: CaseStatus
    deadline: datetime
    days_over: int

    def as_dict(self) -> dict[str, Any]:
        return {"applicationNo": self.application_no, "caseId": self.case_id,
                "itemNo": self.item_no, "itemCode": self.item_code, "partner": self.partner,
                "deliveryId": self.delivery_id, "status": self.status.value,
                "deadline": beijing(self.deadline).isoformat(), "daysOver": self.days_over}


def _open_parts(partner: str | None) -> ColumnElement[bool]:
    cond: list[ColumnElement[bool]] = [
        or_(deliveries.c.partner_status.is_(None),
            deliveries.c.partner_status.not_in([s.value for s in TERMINAL])),
        deliveries.c.state != DeliveryState.DISCARDED,
    ]
    if "kind" in deliveries.c:  # status pushes to the city platform are not items' parts
        cond.append(deliveries.c.kind == "case")
    if partner is not None:
        cond.append(deliveries.c.partner == partner)
    return and_(*cond)


class OverdueItems:
    """The overdue parts of ``store``'s cases under ``deadlines``. Raises
    :class:`~gateway.errors.StoreError` when the database fails."""

    def __init__(self, store: Store, deadlines: Deadlines) -> None:
        self.store = store
        self.deadlines = deadlines

    async def scan(self, *, partner: str | None = None,
                   now: datetime | None = None) -> AsyncIterator[OverdueItem]:
        """Every overdue part, in no particular order, streamed from the database."""
        now = now or datetime.now(UTC)
        # a sealed body (gateway.store.sealing) is opened here, not read by path in SQL
        body = ((cases.c.body.label("body"),) if sealing.active() is not None else
                (cases.c.body["submitTime"].as_string().label("submit_time"),
                 cases.c.body["items"].label("items")))
        stmt = (select(deliveries.c.id, deliveries.c.case_id, deliveries.c.partner,
                       deliveries.c.item_nos, deliveries.c.partner_status,
                       cases.c.application_no, cases.c.received_at, *body)
                .join(cases, cases.c.id == deliveries.c.case_id)
                .where(_open_parts(partner)))
        async with self.store.db.read("find overdue items") as conn:
            rows = await conn.stream(stmt)
            async for r in rows:
                doc = r.body if "body" in r._fields else {"submitTime": r.submit_time,
                                                          "items": r.items}
                items: Mapping[str, Mapping[str, Any]] = {
                    str(i.get("itemNo")): i for i in (doc.get("items") or [])
                    if isinstance(i, dict)}
                submitted = submit_time({"submitTime": doc.get("submitTime")}, r.received_at)
                status = CaseStatus(r.partner_status) if r.partner_status \
                    else CaseStatus.SUBMITTED
                for no in r.item_nos:
                    item = items.get(str(no))
                    if item is None:
                        continue
                    due = self.deadlines.for_item(item, submitted).due
                    if is_overdue(due, status, now):
                        code = item.get("implementationCode")
                        yield OverdueItem(r.application_no, r.case_id, str(no),
                                          code if isinstance(code, str) else None, r.partner,
                                          r.id, status, due, days_over(due, now))

    async def find(self, *, partner: str | None = None, now: datetime | None = None,
                   limit: int | None = None) -> list[OverdueItem]:
        """The overdue parts, the latest first (by deadline, then application and item)."""
        found = [o async for o in self.scan(partner=partner, now=now)]
        found.sort(key=lambda o: (o.deadline, o.application_no, o.item_no, o.partner))
        return found if limit is None else found[:limit]

    async def counts(self, *, now: datetime | None = None) -> dict[str, int]:
        """partner → overdue parts (for the ``gateway_overdue_items`` gauge)."""
        c: Counter[str] = Counter()
        async for o in self.scan(now=now):
            c[o.partner] += 1
        return dict(c)
