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

With ``server.auth: off`` (accepted only on a loopback address: gateway/config.py) every
request is the local operator (:data:`gateway.security.callers.LOCAL`).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from gateway.api.keys import SETTINGS
from gateway.api.problems import Handler, problem
from gateway.errors import StoreError
from gateway.protocols import tif
from gateway.security.callers import ADMIN_ROUTES, CASE_ROUTES, LOCAL, Callers
from gateway.store.nonces import DbNonceStore

log = logging.getLogger("gateway.api")

CALLERS: web.AppKey[Callers] = web.AppKey("callers", Callers)
#: the instance's shared nonce store (set once the database is open; partners' inbound schemes
#: with nonces use it too, scoped by the partner's name)
NONCES: web.AppKey[DbNonceStore] = web.AppKey("nonces", DbNonceStore)
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


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not guarded(request.path):
        return await handler(request)
    settings = request.app[SETTINGS].server
    if settings.auth == "off":
        request["caller"] = LOCAL
        return await handler(request)
    callers = request.app[CALLERS]
    try:
        claims = await tif.verify(request.headers, callers.tokens, request.app[NONCES],
                                  now=time.time(), window=settings.auth_window)
    except tif.TifError as e:
        log.info("refused %s %s: %s (%s)", request.method, request.path, e.code, e.header)
        return unauthorized(e, request.path)
    except StoreError as e:  # the replay check could not be made: refuse, never wave through
        log.warning("nonce check failed: %s", e)
        return problem(503, "Service unavailable",
                       "the gateway cannot check the request's nonce now; retry shortly "
                       "with a new nonce", instance=request.path,
                       headers={"Retry-After": "1"})
    caller = callers.by_paasid(claims.paasid)
    assert caller is not None  # verify() accepted a paasid only with its token
    request["caller"] = caller
    needed = _route_permission(request)
    if needed is not None and needed != "read" and not caller.may(needed):
        return problem(403, "Forbidden",
                       f"caller {caller.name!r} does not have the permission {needed!r}",
                       type="urn:gateway:problem:forbidden", instance=request.path,
                       caller=caller.name, permission=needed)
    return await handler(request)


__all__ = ["CALLERS", "NONCES", "auth_middleware", "guarded", "unauthorized"]
