"""Errors rendered as RFC 9457 problem documents; never a stack trace to the caller."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.errors import InputError, NotFound

log = logging.getLogger("gateway.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    doc = {"type": extra.pop("type", "about:blank"), "title": title, "status": status,
           "detail": detail, **extra}
    return web.Response(status=status, text=json.dumps(doc, ensure_ascii=False),
                        content_type="application/problem+json", charset="utf-8")


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except InputError as e:
        doc = e.problem()
        doc["instance"] = request.path
        return problem(e.status, doc.pop("title"), doc.pop("detail"),
                       **{k: v for k, v in doc.items() if k != "status"})
    except NotFound as e:
        return problem(404, "Not found", str(e), instance=request.path)
    except web.HTTPRequestEntityTooLarge as e:
        return problem(413, "Payload too large", e.text or "request body too large",
                       instance=request.path)
    except web.HTTPException as e:
        if e.status >= 400:
            return problem(e.status, e.reason, e.text or e.reason, instance=request.path)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "Internal error",
                       "the gateway failed to handle this request; nothing was stored",
                       instance=request.path)
