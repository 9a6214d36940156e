"""The city platform reports an inbound case's status: ``POST /api/v1/inbound-cases/{receiptNo}/status``.

x-tif signed by a caller with the permission ``inbound.status`` (gateway/api/auth.py), the body
one canonical status event::

    {"eventId": "EV-0001", "status": "FINISHED", "result": "APPROVED",
     "occurredAt": "2026-12-02T10:00:00+08:00", "message": "准予许可"}

``status`` a :class:`~gateway.status.CaseStatus`, ``result`` (FINISHED only) a
:class:`~gateway.status.Result`, ``occurredAt`` ISO 8601 with its offset, ``eventId`` 1-64 of
``A-Za-z0-9._-`` (the city platform's id, deduped per case). Answers ``200 {code: 0, data:
{receiptNo, status, applied, duplicate, flag, notSent}}`` (``notSent``: why a change does
not go back to the partner, e.g. a status its contract has no code for); a problem document
naming the field (400), an unknown receipt (404). What happens to the event:
:mod:`gateway.store.inbound_status`.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.api.keys import CONTRACTS, STORE, WORKER
from gateway.errors import ConfigError, FieldProblem, GatewayError, InputError, NotFound
from gateway.inbound import history
from gateway.mapping.context import delivery_context
from gateway.security.callers import Caller
from gateway.status import CaseStatus, Result
from gateway.store.inbound_status import (
    InboundStatuses,
    Notifies,
    StatusReport,
    notify_mapping,
    notify_partner,
)

log = logging.getLogger("gateway.inbound")
PATH = "/api/v1/inbound-cases/{receipt_no}/status"
_EVENT_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
STATUSES = web.AppKey("inbound_statuses", InboundStatuses)


def _bad(field: str, message: str) -> InputError:
    return InputError(f"{field}: {message}", [FieldProblem(field, message)])


def parse_report(receipt_no: str, raw: bytes, caller: str) -> StatusReport:
    """The report in ``raw`` (JSON), or :class:`InputError` naming the field."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InputError("the body must be a JSON object (a status event)")
    event_id = doc.get("eventId")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise _bad("/eventId", "required, 1-64 characters of A-Za-z0-9._-")
    try:
        status = CaseStatus(str(doc.get("status")))
    except ValueError:
        raise _bad("/status", "required, one of " + ", ".join(CaseStatus)) from None
    result: Result | None = None
    if doc.get("result") is not None:
        try:
            result = Result(doc["result"])
        except ValueError:
            raise _bad("/result", "one of APPROVED, DENIED, or null") from None
        if status is not CaseStatus.FINISHED:
            raise _bad("/result", "a result belongs to FINISHED only")
    at = doc.get("occurredAt")
    try:
        occurred = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        occurred = None
    if occurred is None or occurred.tzinfo is None:
        raise _bad("/occurredAt", "required, ISO 8601 with its offset (2026-12-02T10:00:00+08:00)")
    message = doc.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > 1000):
        raise _bad("/message", "a string of at most 1000 characters")
    return StatusReport(receipt_no=receipt_no, event_id=event_id, status=status,
                        occurred_at=occurred, result=result, message=message,
                        reported_by=caller)


async def report_status(request: web.Request) -> web.Response:
    ctype = request.content_type
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise InputError(f"Content-Type must be application/json, not {ctype or 'missing'}")
    caller: Caller = request["caller"]  # authenticated, with inbound.status (auth.py)
    receipt_no = request.match_info["receipt_no"]
    report = parse_report(receipt_no, await request.read(), caller.name)
    got = await request.app[STATUSES].report(report)
    if got is None:
        raise NotFound(f"no inbound case has the receipt {receipt_no!r}")
    if got.delivery_id and WORKER in request.app:
        request.app[WORKER].notify()
    log.info("inbound case %s: %s %s%s", receipt_no, report.status.value,
             "applied" if got.applied else (got.flag or "kept"),
             f", notification {got.delivery_id} queued" if got.delivery_id else "")
    data: dict[str, Any] = {"receiptNo": receipt_no, "status": got.status, "applied": got.applied,
                            "duplicate": got.duplicate, "flag": got.flag, "notSent": got.not_sent}
    return web.json_response({"code": 0, "msg": "ok", "data": data})


def notifier(app: web.Application, configured: Callable[[str], bool]) -> Notifies:
    """Whether a notification goes to the partner: its ``<partner>-status`` is ``configured``
    and its mapping (the contracts in force) renders it; else why not. A mapping that cannot say
    it (a status without the partner's code) is not queued to be dead-lettered."""
    def notifies(partner: str, doc: dict[str, Any]) -> str | None:
        if not configured(partner):
            return f"no partner {notify_partner(partner)!r} is configured"
        name = notify_mapping(partner)
        try:
            mapping = app[CONTRACTS].current.mappings.get(name)
        except ConfigError:
            return None  # queued: the worker dead-letters it naming the missing mapping
        context = delivery_context(case_id="", delivery_id="", idempotency_key="probe",
                                   partner=notify_partner(partner), region=None)
        try:
            mapping.validate_output(mapping.render(doc, context), doc)
        except GatewayError as e:
            return f"{name} cannot say it: {e}"
        return None
    return notifies


def add_routes(app: web.Application, configured: Callable[[str], bool]) -> None:
    """Register the endpoint; ``configured(partner)``: whether ``<partner>-status`` exists."""
    async def service(app: web.Application) -> None:
        app[STATUSES] = InboundStatuses(app[STORE], notifies=notifier(app, configured))

    app.on_startup.append(service)
    app.router.add_post(PATH, report_status)
    history.add_routes(app)  # GET …/statuses: what was reported, what became of it
