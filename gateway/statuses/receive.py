"""From a partner's status message to a stored, applied event: the part every callback endpoint
shares once it has checked the caller and the message against the partner's contract.

The inbound mapping of the partner (``mappings/<partner>/status-callback.yaml``) renders the
canonical event; one whose code no table knows (a :class:`MappingError` after the contract
accepted the message) is still kept, flagged ``unmapped``, with the raw code and the case
references the endpoint read from the message itself (:class:`RawStatus`): a partner that added a
status code before the gateway's table learnt it must not lose the report, and must not be told
to resend it forever. The store decides everything else (duplicate, regression, push) in one
transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from gateway.contracts import ContractsHolder
from gateway.mapping import MappingError
from gateway.observability.metrics import Metrics
from gateway.store import Store
from gateway.store.statuses import Applied, Source, StatusEvent, StatusEvents

log = logging.getLogger("gateway.statuses")
BEIJING = timezone(timedelta(hours=8))
#: the partner that receives status pushes when it is configured (the city platform)
PUSH_PARTNER = "city"


@dataclass(frozen=True)
class RawStatus:
    """What an endpoint reads from the message itself, in the partner's own terms: kept with an
    event the mapping cannot render, so an operator (or a later table) can still place it."""

    code: str | None = None
    receipt_no: str | None = None
    idempotency_key: str | None = None
    application_no: str | None = None
    national_case_no: str | None = None
    occurred_at: str | None = None


def parse_time(text: str | None) -> datetime | None:
    """A partner's time as far as it can be read (ISO 8601, or ``yyyy-MM-dd HH:mm:ss`` Beijing
    time); None when it cannot (the store keeps the time it heard the event)."""
    if not text:
        return None
    t = text.strip()
    try:
        dt = datetime.strptime(t, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        try:
            dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=BEIJING)


def _clip(v: str | None, n: int = 200) -> str | None:
    return v.strip()[:n] or None if isinstance(v, str) else None


class StatusReceiver:
    """Renders and applies the status messages of every partner for one gateway app."""

    def __init__(self, store: Store, contracts: ContractsHolder, *,
                 push_to: str | None, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.events = StatusEvents(store)
        self.contracts = contracts
        self.push_to = push_to

    def event(self, partner: str, source: Any, raw: RawStatus, *,
              event_id: str | None) -> StatusEvent:
        """The canonical event of one message (``source``: what the partner's status-callback
        mapping reads), or the flagged raw event when no table maps its codes."""
        mapping = self.contracts.current.mappings.get(f"{partner}/status-callback")
        try:
            doc = mapping.render(source, {"partner": partner,
                                          "now": datetime.now(BEIJING).isoformat()})
        except MappingError as e:
            # kept, never dropped: the code goes with the event, the reason to the log (it
            # names the table and the code, no personal data)
            log.warning("status callback of %s kept unmapped: %s", partner, e.reason)
            return StatusEvent(partner=partner, source=Source.CALLBACK, status=None,
                               partner_code=_clip(raw.code, 64), event_id=event_id,
                               receipt_no=_clip(raw.receipt_no),
                               idempotency_key=_clip(raw.idempotency_key),
                               application_no=_clip(raw.application_no, 64),
                               national_case_no=_clip(raw.national_case_no),
                               occurred_at=parse_time(raw.occurred_at))
        return StatusEvent.from_document(
            partner, Source.CALLBACK, doc, partner_code=_clip(raw.code, 64), event_id=event_id,
            receipt_no=doc.get("partnerCaseNo") or None,
            idempotency_key=doc.get("idempotencyKey") or None)

    async def _with_item(self, event: StatusEvent) -> StatusEvent:
        """An event naming its case only by application number (the national platform: its
        ``projectNo`` is one per case) names the item by its implementation code: the one item
        of the case's parts at this partner with that code, so a case with several items there
        finds the right part. Ambiguous or unknown: left to the store (``unknown_case``)."""
        if event.item_no or event.receipt_no or event.idempotency_key \
                or not event.application_no or not event.implementation_code:
            return event
        case = await self.store.find_case_by_application_no(event.application_no)
        if case is None:
            return event
        mine = {i for d in case.deliveries if d.partner == event.partner for i in d.item_nos}
        if len(mine) < 2:
            return event
        hits = [str(it.get("itemNo")) for it in case.body.get("items") or ()
                if isinstance(it, dict) and str(it.get("itemNo")) in mine
                and it.get("implementationCode") == event.implementation_code]
        return replace(event, item_no=hits[0]) if len(hits) == 1 else event

    async def apply(self, event: StatusEvent) -> Applied:
        """Keep and apply one event (``StoreError`` when the database fails: the caller answers
        "try again" in the partner's terms)."""
        event = await self._with_item(event)
        applied = await self.events.apply(event, push_to=self.push_to)
        if applied.applied and self.metrics is not None:
            self.metrics.status_changed(event.partner, applied.status, "callback")
        log.info("status callback of %s: %s", event.partner,
                 "duplicate" if applied.duplicate else
                 f"{applied.previous or '-'} -> {applied.status or '-'}"
                 + (f" ({applied.flag})" if applied.flag else "")
                 + (" pushed" if applied.push_id else ""))
        return applied


#: the app's receiver, built once its store is open
RECEIVER = web.AppKey("status_receiver", StatusReceiver)
