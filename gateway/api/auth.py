"""Who is calling: the city platform's ``x-tif`` signature on the case and admin API.

Every request to ``/api/v1/cases*`` and ``/api/v1/admin/*`` must carry the four ``x-tif-*``
headers (gateway/protocols/tif.py) signed with the token of a caller in ``callers:`` (config),
its timestamp within ``server.auth_window`` (±180 s) of the gateway's clock and its nonce never
seen before by *any* instance (:class:`gateway.store.nonces.DbNonceStore`). Anything else is a
401 problem document naming the header; the handler never runs, so nothing is stored. The
authenticated caller is ``request["caller"]`` (:class:`gateway.security.callers.Caller`); the
route's permission is checked here too (403 naming the caller and the permission), except
reading a case, whose owner only the handler knows (gateway/api/cases.py).

Not under this middleware, on purpose:

* the partners' callback endpoints (``/api/v1/partners/…``, ``/soap/…``): each partner
  authenticates in its own contract (gateway/statuses/);
* ``/healthz``, ``/readyz`` and ``/metrics``: orchestrators and Prometheus must reach them
  without credentials, and they carry no personal data (liveness, the database and worker
  being up, counters whose labels are bounded: partner, outcome, state — never a case number).
  Keep them off public networks all the same (bind them behind the platform's ingress).

A case submission (``POST /api/v1/cases``) has its nonce remembered in the case's own
transaction (one durable commit per submission: gateway/store/nonces.py): the middleware checks
everything else, hands the nonce to the handler as ``request[PENDING_NONCE]``, and answers 401 if
the store finds it replayed. When the handler ends without storing it (a 4xx, an earlier case
answered) the middleware spends it the separate way afterwards, so a replay of any request is
still refused (a replay of a refused submission is told 401 instead of the refusal).

With ``server.auth: off`` (accepted only on a loopback address: gateway/config.py) every
request is the local operator (:data:`gateway.security.callers.LOCAL`).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from aiohttp import web

from gateway.api.keys import SETTINGS
from gateway.api.problems import Handler, problem
from gateway.errors import StoreError
from gateway.protocols import tif
from gateway.security.callers import ADMIN_ROUTES, CASE_ROUTES, LOCAL, Callers
from gateway.store.nonces import DbNonceStore, PendingNonce, ReplayedNonce

log = logging.getLogger("gateway.api")

CALLERS: web.AppKey[Callers] = web.AppKey("callers", Callers)
#: the instance's shared nonce store (set once the database is open; partners' inbound schemes
#: with nonces use it too, scoped by the partner's name)
NONCES: web.AppKey[DbNonceStore] = web.AppKey("nonces", DbNonceStore)
#: a case submission's nonce, to be remembered with its case (gateway/api/cases.py)
PENDING_NONCE: web.RequestKey[PendingNonce] = web.RequestKey("pending_nonce", PendingNonce)
_GUARDED = ("/api/v1/cases", "/api/v1/admin/", "/api/v1/inbound-cases/")


def guarded(path: str) -> bool:
    """Whether ``path`` is the case or admin API (the caller must authenticate)."""
    return path == _GUARDED[0] or path.startswith((_GUARDED[0] + "/", *_GUARDED[1:]))


def _route_permission(request: web.Request) -> str | None:
    info = request.match_info
    if info.http_exception is not None:  # 404/405 from the router: nothing to permit
        return None
    route = info.route
    canonical = route.resource.canonical if route.resource is not None else request.path
    key = (request.method, canonical)
    return ADMIN_ROUTES.get(key) or CASE_ROUTES.get(key)


def unauthorized(e: tif.TifError, path: str) -> web.Response:
    """401 naming the header, the way parameter problems name theirs."""
    return problem(401, "Unauthorized", e.message, type="urn:gateway:problem:unauthorized",
                   instance=path, code=e.code,
                   errors=[{"in": "header", "name": e.header, "message": e.message}],
                   headers={"WWW-Authenticate": 'x-tif realm="gateway"'})


def _replayed(paasid: str, path: str) -> web.Response:
    return unauthorized(tif.TifError("reused_nonce", tif.NONCE,
                                     f"{tif.NONCE} was already used by {tif.PAASID} {paasid!r} "
                                     f"(replay)"), path)


def _busy(path: str, e: StoreError) -> web.Response:
    """The replay check could not be made: refuse, never wave through."""
    log.warning("nonce check failed: %s", e)
    return problem(503, "Service unavailable",
                   "the gateway cannot check the request's nonce now; retry shortly "
                   "with a new nonce", instance=path, headers={"Retry-After": "1"})


async def _spend(request: web.Request, pending: PendingNonce) -> web.Response | None:
    """Spend a deferred nonce the separate way: the 401/503 to answer instead, or None."""
    pending.spent = True
    try:
        fresh = await request.app[NONCES].remember(pending.scope, pending.nonce,
                                                   expires_at=pending.expires_at.timestamp())
    except StoreError as e:
        return _busy(request.path, e)
    return None if fresh else _replayed(pending.scope, request.path)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not guarded(request.path):
        return await handler(request)
    settings = request.app[SETTINGS].server
    if settings.auth == "off":
        request["caller"] = LOCAL
        return await handler(request)
    callers = request.app[CALLERS]
    deferred = request.method == "POST" and request.path == _GUARDED[0]
    try:
        if deferred:  # the nonce goes into the case's transaction (see the module docstring)
            claims = tif.check_headers(request.headers, callers.tokens, now=time.time(),
                                       window=settings.auth_window)
        else:
            claims = await tif.verify(request.headers, callers.tokens, request.app[NONCES],
                                      now=time.time(), window=settings.auth_window)
    except tif.TifError as e:
        log.info("refused %s %s: %s (%s)", request.method, request.path, e.code, e.header)
        return unauthorized(e, request.path)
    except StoreError as e:
        return _busy(request.path, e)
    caller = callers.by_paasid(claims.paasid)
    assert caller is not None  # verify() accepted a paasid only with its token
    request["caller"] = caller
    pending = None
    if deferred:
        pending = PendingNonce(claims.paasid, claims.nonce, datetime.fromtimestamp(
            claims.timestamp + settings.auth_window, UTC))
        request[PENDING_NONCE] = pending
    needed = _route_permission(request)
    if needed is not None and needed != "read" and not caller.may(needed):
        if pending is not None and (instead := await _spend(request, pending)) is not None:
            return instead
        return problem(403, "Forbidden",
                       f"caller {caller.name!r} does not have the permission {needed!r}",
                       type="urn:gateway:problem:forbidden", instance=request.path,
                       caller=caller.name, permission=needed)
    if pending is None:
        return await handler(request)
    try:
        answer = await handler(request)
    except ReplayedNonce:
        log.info("refused %s %s: reused_nonce (%s)", request.method, request.path, tif.NONCE)
        return _replayed(claims.paasid, request.path)
    except Exception:
        if not pending.spent and (instead := await _spend(request, pending)) is not None:
            return instead
        raise
    if not pending.spent and (instead := await _spend(request, pending)) is not None:
        return instead
    return answer


__all__ = ["CALLERS", "NONCES", "PENDING_NONCE", "auth_middleware", "guarded", "unauthorized"]
