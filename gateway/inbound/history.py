"""An inbound case's status history: ``GET /api/v1/inbound-cases/{receiptNo}/statuses``.

The city platform reports an inbound case's statuses (gateway/inbound/status.py, ``POST …/status``)
and the gateway carries each change back to the submitting partner; this is where the platform,
or an operator, reads what was reported and what became of it — which events moved the case,
which were kept with a flag (``duplicate``, ``regression``, ``conflict``), and whether each
change's notification reached the partner::

    {"code": 0, "msg": "ok", "data": {
      "receiptNo": "BJSL…", "partner": "tianjin", "partnerCaseNo": "TJ…", "applicationNo": "…",
      "receivedAt": "…", "status": "FINISHED", "statusAt": "…", "result": "APPROVED",
      "statuses": [{"eventId": "EV-1", "status": "ACCEPTED", "result": null, "occurredAt": "…",
                    "receivedAt": "…", "message": null, "applied": true, "flag": null,
                    "reportedBy": "city-status",
                    "notification": {"deliveryId": "…", "partner": "tianjin-status",
                                     "state": "delivered"}}, …]}}

x-tif signed like every ``/api/v1/inbound-cases/`` route (gateway/api/auth.py); the caller needs
``inbound.status`` (the platform that reports them may read them back) or ``read_any`` (an
operator's console): else 403 naming the caller. An unknown receipt is a 404 problem document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.api.keys import STORE
from gateway.errors import NotFound
from gateway.security.callers import Caller, Forbidden
from gateway.store.inbound_history import status_history

PATH = "/api/v1/inbound-cases/{receipt_no}/statuses"
#: either permission reads the history (module docstring)
READERS = ("inbound.status", "read_any")


def _time(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _event(e: dict[str, Any]) -> dict[str, Any]:
    notification = None if e["delivery_id"] is None else {
        "deliveryId": e["delivery_id"], "partner": e["delivery_partner"],
        "state": None if e["delivery_state"] is None else str(e["delivery_state"])}
    return {"eventId": e["event_id"], "status": e["status"], "result": e["result"],
            "occurredAt": _time(e["occurred_at"]), "receivedAt": _time(e["received_at"]),
            "message": e["message"], "applied": bool(e["applied"]), "flag": e["flag"],
            "reportedBy": e["reported_by"], "notification": notification}


async def read_statuses(request: web.Request) -> web.Response:
    caller: Caller = request["caller"]  # authenticated by the middleware
    if not any(caller.may(p) for p in READERS):
        raise Forbidden(f"caller {caller.name!r} has neither {' nor '.join(map(repr, READERS))}",
                        caller=caller.name)
    receipt_no = request.match_info["receipt_no"]
    got = await status_history(request.app[STORE], receipt_no)
    if got is None:
        raise NotFound(f"no inbound case has the receipt {receipt_no[:64]!r}")
    data = {"receiptNo": got.receipt_no, "partner": got.partner,
            "partnerCaseNo": got.partner_case_no, "applicationNo": got.application_no,
            "receivedAt": _time(got.received_at), "status": got.status,
            "statusAt": _time(got.status_at), "result": got.result,
            "statuses": [_event(e) for e in got.events]}
    return web.json_response({"code": 0, "msg": "ok", "data": data})


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, read_statuses)


__all__ = ["PATH", "READERS", "add_routes", "read_statuses"]
