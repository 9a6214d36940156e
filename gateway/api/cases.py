"""``/api/v1/cases``: the city platform submits cases and looks them up."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import structlog
from aiohttp import web

from gateway.api import params
from gateway.api.keys import CONTRACTS, INTAKE, METRICS, STORE, WORKER
from gateway.errors import ConfigError, InputError, NotFound
from gateway.mapping import MappingRegistry
from gateway.partner_gates import shared_breakers
from gateway.routing.view import delivery_view
from gateway.status import child_of, derive_bundle, derive_items
from gateway.store import CaseRecord, DeliveryRecord, DeliveryState
from gateway.store.breakers import BreakerRows

BEIJING = timezone(timedelta(hours=8))


def beijing_iso(v: Any) -> Any:
    """A timestamp as every answer shows it: ISO 8601 in Beijing time (``+08:00``), like the
    cases themselves. The store keeps UTC (a naive value is UTC); the instant is the same."""
    if isinstance(v, datetime):
        return _beijing(v).isoformat()
    return v.isoformat() if hasattr(v, "isoformat") else v


def _beijing(t: datetime) -> datetime:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(BEIJING)


def beijing_iso_text(v: Any) -> Any:
    """An ISO 8601 timestamp already rendered as text (e.g. by a breaker snapshot), in +08:00."""
    if not isinstance(v, str):
        return beijing_iso(v)
    try:
        return beijing_iso(datetime.fromisoformat(v))
    except ValueError:
        return v


def _in_beijing(d: DeliveryRecord) -> DeliveryRecord:
    """The record with its times in +08:00, for views that render them themselves."""
    times: dict[str, Any] = {f.name: _beijing(getattr(d, f.name)) for f in dataclasses.fields(d)
                             if isinstance(getattr(d, f.name), datetime)}
    return dataclasses.replace(d, **times)


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


def case_doc(c: CaseRecord, mappings: MappingRegistry | None = None) -> dict[str, Any]:
    """The case as the city platform sees it: one derived status (the bundle view: every part
    not yet accepted by its partner named in ``blocking``, the items handed to the home platform
    under ``home``), the status of every item (a 多地联办 item needs every region; a Beijing item
    is with the home platform), and each child delivery. Derived from the stored deliveries and
    home items alone (``gateway.status``). With the live ``mappings``, each delivery lists the
    case's fields it does not carry (``notCarried``): nothing is dropped without a record."""
    children = [child_of(_in_beijing(d)) for d in c.deliveries]
    return {
        "id": c.id, "applicationNo": c.application_no, "correlationId": c.correlation_id,
        "receivedAt": beijing_iso(c.received_at), "homeItems": c.home_items,
        "bundle": derive_bundle(children, c.home_items).as_dict(),
        "items": {no: v.item_dict() for no, v in derive_items(children, c.home_items).items()},
        "deliveries": [delivery_doc(d, uncarried=None if mappings is None
                                    else not_carried(mappings, c.body, d))
                       for d in c.deliveries],
        "case": c.body,
    }


async def submit_case(request: web.Request) -> web.Response:
    ctype = request.content_type
    if ctype not in ("application/json", "application/problem+json") and not ctype.endswith("+json"):
        raise InputError(f"Content-Type must be application/json, not {ctype or 'missing'}")
    correlation_id = params.correlation_id(request)
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    metrics = request.app[METRICS]
    try:
        accepted = await request.app[INTAKE].submit(await request.read(),
                                                   correlation_id=correlation_id)
    except InputError:
        metrics.cases.labels("rejected").inc()
        raise
    if accepted.result.created:
        metrics.cases.labels("accepted").inc()
        if WORKER in request.app:
            request.app[WORKER].notify()
    else:
        metrics.cases.labels("duplicate").inc()
    case = accepted.result.case
    doc = case_doc(case, request.app[CONTRACTS].current.mappings)
    doc.pop("case")
    if accepted.warnings:  # what intake changed in storing it (a name's look-alike middle dot)
        doc["warnings"] = [w.as_dict() for w in accepted.warnings]
    headers = {"Location": f"/api/v1/cases/{case.id}"}
    return web.json_response(doc, status=accepted.status, headers=headers)


async def get_case(request: web.Request) -> web.Response:
    case_id = params.case_id(request.match_info["case_id"])
    case = await request.app[STORE].get_case(case_id, with_history=True)
    if case is None:
        raise NotFound(f"no case with id {case_id}")
    doc = case_doc(case, request.app[CONTRACTS].current.mappings)
    if case.deliveries:  # each partner's breaker as every instance shares it
        shared = await shared_breakers(BreakerRows(request.app[STORE]),
                                       {d.partner for d in case.deliveries})
        for d in doc["deliveries"]:
            d["partnerBreaker"] = shared[d["partner"]].state.value
    return web.json_response(doc, dumps=dumps)


def dumps(obj: Any) -> str:
    """JSON with Chinese kept readable and datetimes as ISO strings in +08:00."""
    return json.dumps(obj, ensure_ascii=False, default=lambda v: str(beijing_iso(v)))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/cases", submit_case)
    app.router.add_get("/api/v1/cases/{case_id}", get_case)
