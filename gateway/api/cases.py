"""``/api/v1/cases``: the city platform submits cases and looks them up.

What a case looks like in the answers is :mod:`gateway.views` (the CLI shows the same); here only
the HTTP side: content type, correlation id, metrics, status codes. Who may do what is the
caller's (``request["caller"]``, gateway/api/auth.py and gateway/security/callers.py): a caller
reads only the cases it submitted (or any, with ``read_any``), masked as its ``identity`` says.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from gateway.api import params
from gateway.api.auth import PENDING_NONCE
from gateway.api.keys import CONTRACTS, INTAKE, METRICS, STORE, WORKER
from gateway.errors import InputError, NotFound
from gateway.delivery.gates import shared_breakers
from gateway.security.callers import Caller
from gateway.store.breakers import BreakerRows
from gateway.store.timeline import read_timeline
from gateway.views import case_doc, dumps


async def submit_case(request: web.Request) -> web.Response:
    ctype = request.content_type
    if ctype not in ("application/json", "application/problem+json") and not ctype.endswith("+json"):
        raise InputError(f"Content-Type must be application/json, not {ctype or 'missing'}")
    correlation_id = params.correlation_id(request)
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    metrics = request.app[METRICS]
    caller: Caller = request["caller"]  # authenticated, with the submit permission (auth.py)
    try:
        # the x-tif nonce is remembered in the case's own transaction (auth.py defers it)
        accepted = await request.app[INTAKE].submit(await request.read(),
                                                   correlation_id=correlation_id, caller=caller,
                                                   nonce=request.get(PENDING_NONCE))
    except InputError:
        metrics.cases.labels("rejected").inc()
        raise
    if accepted.result.created:
        metrics.cases.labels("accepted").inc()
        metrics.case_accepted(accepted.result.case.body)
        # a delivery intake handed to the worker is already being sent: wake the worker
        # only for one committed pending (its claim round is a database read)
        if WORKER in request.app and any(d.lease_owner is None
                                         for d in accepted.result.case.deliveries):
            request.app[WORKER].notify()
    else:
        metrics.cases.labels("duplicate").inc()
    case = accepted.result.case
    contracts = request.app[CONTRACTS].current
    doc = case_doc(case, contracts.mappings, deadlines=contracts.deadlines,
                   identity=caller.identity, with_body=False)
    if accepted.warnings:  # what intake changed in storing it (a name's look-alike middle dot)
        doc["warnings"] = [w.as_dict() for w in accepted.warnings]
    headers = {"Location": f"/api/v1/cases/{case.id}"}
    return web.json_response(doc, status=accepted.status, headers=headers, dumps=dumps)


async def get_case(request: web.Request) -> web.Response:
    case_id = params.case_id(request.match_info["case_id"])
    caller: Caller = request["caller"]
    if not (caller.may("read") or caller.may("read_any")):
        caller.require("read")
    case = await request.app[STORE].get_case(case_id, with_history=True)
    # another caller's case answers exactly like a missing one: a 403 would confirm the id
    if case is None or not caller.reads(case.submitted_by):
        raise NotFound(f"no case with id {case_id}")
    contracts = request.app[CONTRACTS].current
    doc = case_doc(case, contracts.mappings, deadlines=contracts.deadlines,
                   timeline=await read_timeline(request.app[STORE], case.id),
                   identity=caller.identity)
    if case.deliveries:  # each partner's breaker as every instance shares it
        shared = await shared_breakers(BreakerRows(request.app[STORE]),
                                       {d.partner for d in case.deliveries})
        for d in doc["deliveries"]:
            d["partnerBreaker"] = shared[d["partner"]].state.value
    return web.json_response(doc, dumps=dumps)


async def traced_submit(request: web.Request) -> web.Response:
    """``submit_case`` in the ``intake`` span (tracing off: a no-op; gateway/observability)."""
    with request.app[METRICS].tracing.span("intake"):
        return await submit_case(request)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/cases", traced_submit)
    app.router.add_get("/api/v1/cases/{case_id}", get_case)
