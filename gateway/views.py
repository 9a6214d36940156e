"""What a stored case, delivery, dead letter or breaker looks like to those who read it.

The city platform reads cases through ``/api/v1/cases``; operators read the same cases, dead
letters and breakers through the admin API and through ``gateway case show`` and
``gateway dlq show``. Every one of them is built here, so the HTTP answer and the terminal show
the same thing: pure functions from store records to JSON-able dicts (no request, no database,
no terminal), and :func:`dumps` to write them.

Times are shown as every answer shows them: ISO 8601 in Beijing time (``+08:00``), like the
cases themselves. The store keeps UTC (a naive value is UTC); the instant is the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from gateway import jsoncodec
from gateway.config import PROJECT_ROOT
from gateway.domain.deadlines import Deadlines, deadlines_for, is_overdue, submit_time
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.routing.view import delivery_view
from gateway.security.masking import mask_case
from gateway.status import (BundleView, ChildView, child_of, derive_bundle, derive_items,
                            in_zone)
from gateway.store import CaseRecord, DeliveryRecord, DeliveryState
from gateway.store.timeline import TimelineData

BEIJING = timezone(timedelta(hours=8))


def beijing_iso(v: Any) -> Any:
    """A timestamp in ISO 8601, Beijing time; anything else with an ``isoformat`` (a date) in
    ISO 8601; any other value as it is."""
    if isinstance(v, datetime):
        return _beijing(v).isoformat()
    return v.isoformat() if hasattr(v, "isoformat") else v


def _beijing(t: datetime) -> datetime:
    return in_zone(t, BEIJING)


def beijing_iso_text(v: Any) -> Any:
    """An ISO 8601 timestamp already rendered as text (e.g. by a breaker snapshot), in +08:00."""
    if not isinstance(v, str):
        return beijing_iso(v)
    try:
        return beijing_iso(datetime.fromisoformat(v))
    except ValueError:
        return v


def not_carried(mappings: MappingRegistry, body: dict[str, Any],
                d: DeliveryRecord) -> list[str] | None:
    """The case's fields (JSON pointers) that hold a value but that this delivery's mapping
    does not carry to the partner; ``None`` when that mapping version is no longer loaded."""
    try:
        mapping = mappings.get(d.mapping, d.mapping_version)
        view = delivery_view(body, d.item_nos, d.region)
    except ConfigError:
        return None
    except (KeyError, TypeError):  # a body stored before today's case schema: nothing to say
        return None
    return list(mapping.uncarried_fields(view))


def delivery_doc(d: DeliveryRecord, *, uncarried: list[str] | None = None) -> dict[str, Any]:
    """One delivery: where it goes, with which mapping, how far it got (``history``: its
    attempts, when the record carries them)."""
    doc: dict[str, Any] = {
        "id": d.id, "partner": d.partner, "items": d.item_nos, "region": d.region,
        "route": d.route_rule, "mapping": d.mapping, "mappingVersion": d.mapping_version,
        "idempotencyKey": d.idempotency_key, "state": d.state, "attempts": d.attempts,
        "nextAttemptAt": (beijing_iso(d.next_attempt_at) if d.state == DeliveryState.PENDING
                          else None),
        "receiptNo": d.receipt_no, "partnerStatus": d.partner_status,
        "lastOutcome": d.last_outcome, "lastCode": d.last_code, "lastMessage": d.last_message,
        "deliveredAt": beijing_iso(d.delivered_at),
        "notCarried": uncarried,
    }
    if d.history:
        doc["history"] = [{k: beijing_iso(v) for k, v in h.items() if k != "id"}
                          for h in d.history]
    return doc


def case_doc(c: CaseRecord, mappings: MappingRegistry | None = None, *,
             deadlines: Deadlines | None = None, now: datetime | None = None,
             timeline: TimelineData | None = None,
             identity: Literal["full", "masked"] = "full",
             with_body: bool = True) -> dict[str, Any]:
    """The case as the city platform sees it: one derived status (the bundle view: every part
    not yet accepted by its partner named in ``blocking``, the items handed to the home platform
    under ``home``), the status of every item (a 多地联办 item needs every region; a Beijing item
    is with the home platform) with its deadline (:func:`item_deadline`), and each child
    delivery. Derived from the stored deliveries and home items alone (``gateway.status``).
    With the live ``mappings``, each delivery lists the case's fields it does not carry
    (``notCarried``): nothing is dropped without a record. ``deadlines`` default to those of the
    mappings folder; ``now`` (for overdue) to the present. ``timeline``: the case's status
    events and pushes (:func:`gateway.store.timeline.read_timeline`) for :func:`timeline_doc`;
    without them the timeline has intake, routing and attempts only. ``identity="masked"``:
    natural persons' ID numbers and phone numbers masked wherever they appear
    (:mod:`gateway.security.masking`; the API for callers configured so, never the CLI).
    ``with_body=False``: without the case's body (the answer to a submission, whose caller
    sent it: not masked only to be dropped)."""
    children = [child_of(d, BEIJING) for d in c.deliveries]
    views = derive_items(children, c.home_items)
    items = {no: v.item_dict() for no, v in views.items()}
    doc: dict[str, Any] = {
        "id": c.id, "applicationNo": c.application_no, "correlationId": c.correlation_id,
        "receivedAt": beijing_iso(c.received_at), "homeItems": c.home_items,
        "bundle": derive_bundle(children, c.home_items).as_dict(),
        "items": items,
        "deliveries": [delivery_doc(d, uncarried=None if mappings is None
                                    else not_carried(mappings, c.body, d))
                       for d in c.deliveries],
        "case": c.body,
        "timeline": timeline_doc(c, timeline),
    }
    if not with_body:
        del doc["case"]
    try:
        table = deadlines or deadlines_for(mappings.mappings_dir if mappings is not None
                                           else PROJECT_ROOT / "mappings")
    except ConfigError as e:  # the view still answers, and says why it has no deadlines
        doc["deadlineError"] = str(e)
        table = None
    for no, item in items.items():
        # an item with no home part: its view is the derivation over its deliveries already
        item.update(item_deadline(c, no, children, table, now or datetime.now(UTC),
                                  carried=None if no in c.home_items else views[no]))
    if identity == "masked":
        masked: dict[str, Any] = mask_case(doc, c.body)
        return masked
    return doc


#: Entries at the same instant keep the order a case lives them in.
_RANK = {"intake": 0, "routed": 1, "attempt": 2, "status": 3, "push": 4}


def timeline_doc(c: CaseRecord, data: TimelineData | None = None) -> list[dict[str, Any]]:
    """The case's life in time order, times in +08:00: ``intake`` (received), ``routed`` (per
    delivery: the route rule and partner), ``attempt`` (per send: outcome, partner code, HTTP
    status; never a body or a partner's message text), ``status`` (per status event: source,
    partner code, canonical status and result, partner time, received time, applied or the flag
    saying why not) and ``push`` (per push to the city platform: outbox state, attempts,
    receipt). ``c`` must carry its attempt history (``get_case(…, with_history=True)``)."""
    out: list[tuple[datetime, int, int, dict[str, Any]]] = []

    def add(at: datetime | None, entry: dict[str, Any]) -> None:
        if at is None:
            return
        t = _beijing(at)
        out.append((t, _RANK[entry["kind"]], len(out), {"at": t.isoformat(), **entry}))

    add(c.received_at, {"kind": "intake", "applicationNo": c.application_no,
                        "correlationId": c.correlation_id})
    for d in c.deliveries:
        add(d.created_at, {"kind": "routed", "deliveryId": d.id, "partner": d.partner,
                           "items": d.item_nos, "region": d.region, "route": d.route_rule})
        for h in d.history:
            add(h.get("started_at"), {
                "kind": "attempt", "deliveryId": d.id, "partner": d.partner,
                "attempt": h.get("attempt_no"), "outcome": h.get("outcome"),
                "code": h.get("partner_code"), "httpStatus": h.get("http_status"),
                "finishedAt": beijing_iso(h.get("finished_at"))})
    if data is not None:
        for e in data.events:
            add(e.received_at, {
                "kind": "status", "statusEventId": e.id, "deliveryId": e.delivery_id,
                "partner": e.partner, "source": e.source, "partnerCode": e.partner_code,
                "status": e.status, "result": e.result,
                "partnerTime": beijing_iso(e.occurred_at),
                "receivedAt": beijing_iso(e.received_at), "applied": e.applied,
                "flag": e.flag, "pushEventId": e.push_event_id if e.applied else None})
        for p in data.pushes:
            add(p.created_at, {
                "kind": "push", "pushId": p.id, "to": p.partner, "eventId": p.event_id,
                "state": p.state, "attempts": p.attempts, "receiptNo": p.receipt_no,
                "deliveredAt": beijing_iso(p.delivered_at), "lastOutcome": p.last_outcome,
                "lastCode": p.last_code})
    out.sort(key=lambda x: (x[0], x[1], x[2]))
    return [entry for *_, entry in out]


def item_deadline(c: CaseRecord, item_no: str, children: Iterable[ChildView],
                  deadlines: Deadlines | None, now: datetime, *,
                  carried: BundleView | None = None) -> dict[str, Any]:
    """``deadline`` (+08:00, end of the last working day: :mod:`gateway.domain.deadlines`),
    ``promisedDays`` and where they come from, ``deadlineProvisional``, and ``overdue``: past
    the deadline while a part the gateway carried for the item is not terminal. An item handled
    in Beijing alone is ``overdue: null``: the home platform keeps its deadline and the gateway
    never hears its status, so it cannot say (and would otherwise flag it forever).
    ``carried``: the derivation over the item's deliveries, when the caller has it."""
    body_item = next((i for i in c.body.get("items", ()) if isinstance(i, dict)
                      and i.get("itemNo") == item_no), None)
    if deadlines is None or body_item is None:
        return {"deadline": None, "promisedDays": None, "promisedDaysFrom": None,
                "deadlineProvisional": None, "overdue": None}
    d = deadlines.for_item(body_item, submit_time(c.body, c.received_at))
    status = carried
    if status is None:
        parts = [ch for ch in children if item_no in ch.item_nos]
        status = derive_bundle(parts) if parts else None
    return {"deadline": beijing_iso(d.due), "promisedDays": d.days,
            "promisedDaysFrom": d.source, "deadlineProvisional": d.provisional,
            "overdue": None if status is None else is_overdue(d.due, status.status, now)}


def dead_letter_doc(application_no: str, d: DeliveryRecord,
                    actions: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A dead letter: its case's application number and the delivery; with ``actions`` (the
    operator actions recorded on it), those too, as ``operatorActions``."""
    doc = {"applicationNo": application_no, **delivery_doc(d)}
    if actions is not None:
        doc["operatorActions"] = [{k: beijing_iso(v) for k, v in a.items()} for a in actions]
    return doc


_BREAKER_TIMES = ("opened_at", "open_until", "probe_started_at")


def breaker_doc(snap: Mapping[str, Any]) -> dict[str, Any]:
    """A breaker snapshot (``BreakerSnapshot.to_dict``) without its window's buckets, its times
    in +08:00 like every other answer (stored in UTC)."""
    return {k: beijing_iso_text(v) if k in _BREAKER_TIMES else v for k, v in snap.items()
            if k != "buckets"}


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """JSON with Chinese kept readable and datetimes as ISO strings in +08:00 (``indent`` for a
    terminal; the API answers compact)."""
    if indent is None:
        return jsoncodec.dumps(obj, default=lambda v: str(beijing_iso(v)))
    return json.dumps(obj, ensure_ascii=False, indent=indent,
                      default=lambda v: str(beijing_iso(v)))
