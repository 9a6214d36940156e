"""``/api/v1/admin``: operators' API — dead letters, breakers, contract reload.

Guarded by a bearer token (``server.admin_token`` / ``$GATEWAY_ADMIN_TOKEN``); with no token set
the admin API answers 403, so it is never open by accident.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from aiohttp import web

from gateway.api.cases import delivery_doc, dumps as _dumps
from gateway.api.keys import CONTRACTS, SETTINGS, STORE, WORKER
from gateway.api.problems import problem
from gateway.errors import ConfigError, FieldProblem, InputError
from gateway.runtime import reload_contracts
from gateway.store.dlq import DeadLetterFilter, DeadLetters
from gateway.validation import parse_json


def _authorised(request: web.Request) -> web.Response | None:
    token = request.app[SETTINGS].server.admin_token
    if not token:
        return problem(403, "Admin API disabled",
                       "set server.admin_token (or GATEWAY_ADMIN_TOKEN) to enable it")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return problem(401, "Unauthorized", "a valid 'Authorization: Bearer <token>' is required")
    return None


def _actor(request: web.Request) -> str:
    return request.headers.get("X-Operator") or "admin-api"


def _filter(doc: dict[str, Any]) -> DeadLetterFilter:
    ids = doc.get("ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InputError("ids must be a list of delivery ids", [FieldProblem("/ids", "not a list of strings")])
    f = DeadLetterFilter(ids=tuple(ids), partner=doc.get("partner"), code=doc.get("code"),
                         application_no=doc.get("applicationNo"),
                         everything=bool(doc.get("all")))
    if f.is_empty():
        raise InputError("name the dead letters: ids, partner, code, applicationNo or all: true")
    return f


async def _body(request: web.Request) -> dict[str, Any]:
    doc = parse_json(await request.read())
    if not isinstance(doc, dict):
        raise InputError("the body must be a JSON object")
    if not isinstance(doc.get("reason"), str) or not doc["reason"].strip():
        raise InputError("a reason is required", [FieldProblem("/reason", "missing or empty")])
    return doc


async def list_dead(request: web.Request) -> web.Response:
    if denied := _authorised(request):
        return denied
    q = request.query
    f = DeadLetterFilter(partner=q.get("partner"), code=q.get("code"),
                         application_no=q.get("applicationNo"), everything=True)
    found = await DeadLetters(request.app[STORE].engine).find(f, limit=int(q.get("limit", 100)))
    return web.json_response([{"applicationNo": x.application_no, **delivery_doc(x.delivery)}
                              for x in found], dumps=_dumps)


async def replay(request: web.Request) -> web.Response:
    if denied := _authorised(request):
        return denied
    doc = await _body(request)
    ids = await DeadLetters(request.app[STORE].engine).replay(
        _filter(doc), actor=_actor(request), reason=doc["reason"],
        current_mapping=bool(doc.get("currentMapping")))
    if WORKER in request.app:
        request.app[WORKER].notify()
    return web.json_response({"replayed": ids})


async def discard(request: web.Request) -> web.Response:
    if denied := _authorised(request):
        return denied
    doc = await _body(request)
    ids = await DeadLetters(request.app[STORE].engine).discard(
        _filter(doc), actor=_actor(request), reason=doc["reason"])
    return web.json_response({"discarded": ids})


async def breakers(request: web.Request) -> web.Response:
    if denied := _authorised(request):
        return denied
    if WORKER not in request.app:
        return web.json_response({})
    gates = request.app[WORKER].gates
    return web.json_response({p: gates.snapshot(p) for p in gates.gates}, dumps=_dumps)


async def reload(request: web.Request) -> web.Response:
    """Load mappings and routes anew; swap only if everything loads (else the old set stays)."""
    if denied := _authorised(request):
        return denied
    holder = request.app[CONTRACTS]
    try:
        fresh = await asyncio.to_thread(reload_contracts, request.app[SETTINGS])
    except ConfigError as e:
        return problem(422, "Reload refused", f"{e}; the previous contracts stay live",
                       generation=holder.generation)
    holder.swap(fresh)
    await DeadLetters(request.app[STORE].engine).record(
        actor=_actor(request), action="reload", target=None,
        detail={"generation": holder.generation})
    return web.json_response({"generation": holder.generation,
                              "mappings": fresh.mappings.names()})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/dead-letters", list_dead)
    app.router.add_post("/api/v1/admin/dead-letters/replay", replay)
    app.router.add_post("/api/v1/admin/dead-letters/discard", discard)
    app.router.add_get("/api/v1/admin/breakers", breakers)
    app.router.add_post("/api/v1/admin/reload", reload)
