"""``/api/v1/admin``: operators' API — dead letters, breakers, contract reload.

Guarded by the caller's permissions (``callers:``, one per operation: gateway/security/callers.py,
checked by gateway/api/auth.py) when ``server.auth`` is ``x-tif``; with ``auth: off`` (loopback
only) by a bearer token (``server.admin_token`` / ``$GATEWAY_ADMIN_TOKEN``), and with no token set
the admin API answers 403, so it is never open by accident.

Every query parameter, header and body field is bounded and checked before it reaches a query
(``limit`` 1–1000, names and codes up to their column widths, ids as UUIDs, ``X-Operator`` up to
128 printable characters); anything else is a 400 naming it, never a 500 from the database.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from aiohttp import web

from gateway.api import params
from gateway.api.keys import CONTRACTS, SETTINGS, STORE, WORKER
from gateway.api.problems import problem
from gateway.contracts import reload_contracts
from gateway.errors import ConfigError, FieldProblem, InputError
from gateway.intake.jsoninput import parse_json, pointer, text_problems
from gateway.delivery.gates import shared_breakers
from gateway.store.breakers import BreakerRows
from gateway.store.dlq import DeadLetterFilter, DeadLetters
from gateway.views import breaker_doc, dead_letter_doc, dumps

MAX_LIMIT = 1000
MAX_IDS = 1000
MAX_REASON = 1000
_NAME = params.text(64)  # partner names and partner codes: String(64) columns
LIST_PARAMS: dict[str, params.Check] = {
    "partner": _NAME, "code": _NAME, "applicationNo": params.application_no,
    "limit": params.bounded_int(1, MAX_LIMIT)}


def _authorised(request: web.Request) -> web.Response | None:
    caller = request.get("caller")
    if caller is not None and caller.via == "x-tif":
        return None  # a signed caller whose permission gateway/api/auth.py has checked
    token = request.app[SETTINGS].server.admin_token
    if not token:
        return problem(403, "Admin API disabled",
                       "set server.admin_token (or GATEWAY_ADMIN_TOKEN) to enable it")
    given = request.headers.get("Authorization", "")
    try:  # an undecodable header byte arrives as a surrogate, which cannot be the token
        given_bytes = given.encode("utf-8")
    except UnicodeEncodeError:
        given_bytes = b""
    if not hmac.compare_digest(given_bytes, f"Bearer {token}".encode()):
        return problem(401, "Unauthorized", "a valid 'Authorization: Bearer <token>' is required")
    return None


def _guard(request: web.Request, query: dict[str, params.Check] | None = None) -> tuple[
        web.Response | None, dict[str, str], str]:
    """Token first (an outsider learns nothing about parameters), then the query and the
    operator header: ``(denied, query values, actor)``."""
    if denied := _authorised(request):
        return denied, {}, ""
    return None, params.query(request, query or {}), _actor(request)


def _actor(request: web.Request) -> str:
    """Who acts, as the audit log and ``operator_actions`` keep it: a signed caller by its
    authenticated name (with the person ``X-Operator`` names, if any), else ``X-Operator``."""
    operator = params.operator(request)
    caller = request.get("caller")
    if caller is None or caller.via != "x-tif":
        return operator
    named = request.headers.get(params.OPERATOR)
    return f"{caller.name}/{operator}"[:128] if named else str(caller.name)


def _string(doc: dict[str, Any], key: str, check: params.Check,
            problems: list[FieldProblem]) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(FieldProblem(f"/{key}", "must be a string"))
    elif (why := check(value)) is not None:
        problems.append(FieldProblem(f"/{key}", why))
    else:
        return value
    return None


def _filter(doc: dict[str, Any]) -> DeadLetterFilter:
    problems: list[FieldProblem] = []
    ids = doc.get("ids")
    ids = [] if ids is None else ids
    if not isinstance(ids, list):
        problems.append(FieldProblem("/ids", "must be a list of delivery ids"))
        ids = []
    elif len(ids) > MAX_IDS:
        problems.append(FieldProblem("/ids", f"names {len(ids)} ids; at most {MAX_IDS} at once"))
    else:
        problems += [FieldProblem(f"/ids/{i}", "not a delivery id (a UUID)")
                     for i, x in enumerate(ids) if not isinstance(x, str) or not params.is_case_id(x)]
    partner = _string(doc, "partner", _NAME, problems)
    code = _string(doc, "code", _NAME, problems)
    application_no = _string(doc, "applicationNo", params.application_no, problems)
    if doc.get("all") is not None and not isinstance(doc["all"], bool):
        problems.append(FieldProblem("/all", "must be true or false"))
    if problems:
        raise InputError(f"the dead letters are not named correctly: {problems[0].path}: "
                         f"{problems[0].message}", problems)
    f = DeadLetterFilter(ids=tuple(ids), partner=partner, code=code,
                         application_no=application_no, everything=doc.get("all") is True)
    if f.is_empty():
        raise InputError("name the dead letters: ids, partner, code, applicationNo or all: true")
    return f


async def _body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    doc = parse_json(await request.read())
    if not isinstance(doc, dict):
        raise InputError("the body must be a JSON object", [FieldProblem("", "not an object")])
    problems = [FieldProblem(pointer([k]), f"unknown field (allowed: {', '.join(sorted(allowed))})")
                for k in doc if k not in allowed]
    reason = doc.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        problems.append(FieldProblem("/reason", "missing or empty (a non-empty string is required)"))
    elif len(reason) > MAX_REASON:
        problems.append(FieldProblem("/reason", f"{len(reason)} characters; at most {MAX_REASON}"))
    else:  # free text: line breaks and tabs allowed, control characters not
        problems += text_problems({"reason": reason}, lambda path: True)
    if doc.get("currentMapping") is not None and not isinstance(doc["currentMapping"], bool):
        problems.append(FieldProblem("/currentMapping", "must be true or false"))
    if problems:
        raise InputError(f"{problems[0].path}: {problems[0].message}", problems)
    return doc


async def list_dead(request: web.Request) -> web.Response:
    denied, q, _ = _guard(request, LIST_PARAMS)
    if denied:
        return denied
    f = DeadLetterFilter(partner=q.get("partner"), code=q.get("code"),
                         application_no=q.get("applicationNo"), everything=True)
    found = await DeadLetters(request.app[STORE]).find(f, limit=int(q.get("limit", 100)))
    return web.json_response([dead_letter_doc(x.application_no, x.delivery) for x in found],
                             dumps=dumps)


_FILTER_FIELDS = {"ids", "partner", "code", "applicationNo", "all", "reason"}


async def replay(request: web.Request) -> web.Response:
    denied, _, actor = _guard(request)
    if denied:
        return denied
    doc = await _body(request, _FILTER_FIELDS | {"currentMapping"})
    ids = await DeadLetters(request.app[STORE]).replay(
        _filter(doc), actor=actor, reason=doc["reason"],
        current_mapping=bool(doc.get("currentMapping")))
    if WORKER in request.app:
        request.app[WORKER].notify()
    return web.json_response({"replayed": ids})


async def discard(request: web.Request) -> web.Response:
    denied, _, actor = _guard(request)
    if denied:
        return denied
    doc = await _body(request, _FILTER_FIELDS)
    ids = await DeadLetters(request.app[STORE]).discard(
        _filter(doc), actor=actor, reason=doc["reason"])
    return web.json_response({"discarded": ids})


async def breakers(request: web.Request) -> web.Response:
    """Every configured partner's breaker as all instances share it (the database rows), so an
    instance without a worker shows the same as the one whose worker opened it."""
    denied, _, _ = _guard(request)
    if denied:
        return denied
    shared = await shared_breakers(BreakerRows(request.app[STORE]),
                                   request.app[SETTINGS].partners)
    return web.json_response({p: breaker_doc(s.to_dict()) for p, s in shared.items()},
                             dumps=dumps)


async def reload(request: web.Request) -> web.Response:
    """Load mappings and routes anew; swap only if everything loads (else the old set stays)."""
    denied, _, actor = _guard(request)
    if denied:
        return denied
    holder = request.app[CONTRACTS]
    try:
        fresh = await asyncio.to_thread(reload_contracts, request.app[SETTINGS])
    except ConfigError as e:
        return problem(422, "Reload refused", f"{e}; the previous contracts stay live",
                       generation=holder.generation)
    holder.swap(fresh)
    await DeadLetters(request.app[STORE]).record(
        actor=actor, action="reload", target=None,
        detail={"generation": holder.generation})
    return web.json_response({"generation": holder.generation,
                              "mappings": fresh.mappings.names()})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/dead-letters", list_dead)
    app.router.add_post("/api/v1/admin/dead-letters/replay", replay)
    app.router.add_post("/api/v1/admin/dead-letters/discard", discard)
    app.router.add_get("/api/v1/admin/breakers", breakers)
    app.router.add_post("/api/v1/admin/reload", reload)
