"""Inbound cases in the store: a case a partner submitted to Beijing, its receipt, and the outbox
row that carries it to the city platform — one transaction.

:meth:`InboundCases.submit` is the whole of an inbound endpoint's durability:

1. the case is inserted under its (partner, partner case number), unique: a resend (the same
   number, on any instance, even concurrently) inserts nothing and answers the FIRST receipt;
2. a new case gets a receipt the gateway issues (``BJSL`` + 28 hex digits, 32 characters) and,
   when a push partner is configured, a ``deliveries`` row of kind ``inbound_case`` (the unified
   document in ``payload``, the receipt as the idempotency key the city platform dedupes on), so
   the worker sends it with its retries, breaker, dead letters and replay. An inbound case is a
   case FOR Beijing: it is never routed to partners;
3. an ``inbound`` record joins the audit chain (no body: its digest, the receipt, the partner).

All of it commits together or not at all. The outbox rows of a partner's inbound cases hang off
one anchor row of ``cases`` (``INBOUND-<PARTNER>``; migration 0007), which also names them in the
dead-letter queue. ``body`` is sealed at rest like case bodies (:mod:`gateway.store.sealing`).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from gateway import jsoncodec
from gateway.store import audit
from gateway.store.models import cases, deliveries, inbound_cases
from gateway.store.repository import Store
from gateway.store.states import DeliveryState
from gateway.store.types import utcnow

KIND_INBOUND = "inbound_case"
#: renders the stored unified document for the city platform's POST /api/v1/inbound-cases
CITY_MAPPING = "city/case-inbound"
REGION = "110000000000"
RECEIPT_PREFIX = "BJSL"
_ANCHOR_NAMESPACE = uuid.UUID("5b1f0e7c-2d4a-4c9e-8f3b-7a6d5c4b3a21")


@dataclass(frozen=True)
class InboundCase:
    """One case a partner submitted, already mapped to Beijing's unified format."""

    partner: str
    partner_case_no: str
    document: dict[str, Any]
    submitted_by: str
    #: the exact request bytes' digest, for the audit record
    request: audit.Digest | None = None


@dataclass(frozen=True)
class Receipt:
    """What the partner is answered: the receipt, and whether it was the first submission."""

    receipt_no: str
    duplicate: bool
    id: str
    delivery_id: str | None


def anchor_id(partner: str) -> str:
    """The id of the anchor case row of ``partner``'s inbound deliveries (stable)."""
    return str(uuid.uuid5(_ANCHOR_NAMESPACE, partner))


def new_receipt_no() -> str:
    return RECEIPT_PREFIX + uuid.uuid4().hex[:28].upper()


def body_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha256(jsoncodec.canonical(doc)).hexdigest()


class InboundCases:
    """The inbound cases of ``store``; ``push_to`` is the partner that carries them to the city
    platform (None: stored and answered, not pushed). Every method raises
    :class:`~gateway.errors.StoreError` when the database fails."""

    def __init__(self, store: Store, *, push_to: str | None) -> None:
        self.store = store
        self.push_to = push_to
        self._insert = store._insert  # noqa: SLF001 - the dialect's INSERT … ON CONFLICT

    async def submit(self, case: InboundCase, *, now: datetime | None = None) -> Receipt:
        """Store ``case`` and queue its push (module docstring); a resend gets the first receipt."""
        now = now or utcnow()
        return await self.store.db.write_sync("store inbound case",
                                              lambda conn: self._submit(conn, case, now))

    def _submit(self, conn: Connection, case: InboundCase, now: datetime) -> Receipt:
        ic = inbound_cases.c
        row_id, receipt_no = str(uuid.uuid4()), new_receipt_no()
        delivery_id = str(uuid.uuid4()) if self.push_to else None
        digest = body_hash(case.document)
        inserted = conn.execute(self._insert(inbound_cases).values(
            id=row_id, partner=case.partner, partner_case_no=case.partner_case_no,
            receipt_no=receipt_no, application_no=str(case.document.get("applicationNo", ""))[:64],
            body=case.document, body_hash=digest, delivery_id=delivery_id,
            submitted_by=case.submitted_by[:128], received_at=now,
        ).on_conflict_do_nothing(index_elements=[ic.partner, ic.partner_case_no])).rowcount
        if not inserted:
            first = conn.execute(select(ic.id, ic.receipt_no, ic.delivery_id).where(
                ic.partner == case.partner, ic.partner_case_no == case.partner_case_no)).one()
            return Receipt(first.receipt_no, True, first.id, first.delivery_id)
        if self.push_to and delivery_id:
            conn.execute(self._insert(cases).values(
                id=anchor_id(case.partner), application_no=f"INBOUND-{case.partner.upper()}",
                body={"inbound": case.partner}, body_hash="",
                correlation_id=f"inbound-{case.partner}", home_items=[], received_at=now,
            ).on_conflict_do_nothing(index_elements=[cases.c.id]))
            conn.execute(deliveries.insert().values(
                id=delivery_id, case_id=anchor_id(case.partner), partner=self.push_to,
                item_nos=[], region=REGION, route_rule=f"inbound {case.partner}",
                mapping=CITY_MAPPING, mapping_version=None, idempotency_key=receipt_no,
                state=DeliveryState.PENDING, attempts=0, next_attempt_at=now, created_at=now,
                updated_at=now, attempts_base=0, replays=0, kind=KIND_INBOUND,
                payload=case.document))
        audit.append(conn, [audit.Entry(
            kind="inbound", actor=case.submitted_by, delivery_id=delivery_id,
            partner=case.partner, request=case.request,
            detail={"inboundId": row_id, "receiptNo": receipt_no, "bodySha256": digest,
                    "pushTo": self.push_to})], now=now)
        return Receipt(receipt_no, False, row_id, delivery_id)

    async def get(self, partner: str, partner_case_no: str) -> dict[str, Any] | None:
        """The stored row (body opened) of ``partner``'s case number, or None."""
        ic = inbound_cases.c
        async with self.store.db.read("read inbound case") as conn:
            row = (await conn.execute(select(inbound_cases).where(
                ic.partner == partner, ic.partner_case_no == partner_case_no))).first()
        return dict(row._mapping) if row is not None else None


__all__ = ["CITY_MAPPING", "KIND_INBOUND", "InboundCase", "InboundCases", "Receipt", "anchor_id"]
