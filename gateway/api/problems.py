"""Errors rendered as RFC 9457 problem documents; never a stack trace to the caller."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from gateway.errors import InputError, NotFound

log = logging.getLogger("gateway.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, title: str, detail: str, *, headers: Mapping[str, str] | None = None,
            **extra: Any) -> web.Response:
    """An RFC 9457 problem document (``extra`` are its further members; ``headers`` go on the
    response, e.g. ``WWW-Authenticate`` or ``Retry-After``)."""
    doc = {"type": extra.pop("type", "about:blank"), "title": title, "status": status,
           "detail": detail, **extra}
    try:
        body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from an undecodable path or header byte
        body = json.dumps(doc).encode("ascii")
    return web.Response(status=status, body=body, headers=headers,
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
        return problem(500, "Internal error", failure_detail(request), instance=request.path)


def failure_detail(request: web.Request) -> str:
    """What a caller may assume after a 500. The error can come after a commit (a case stored,
    its answer not built), so a write is never said to have left nothing behind."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return "the gateway failed to answer this request; nothing was changed"
    if request.path.rstrip("/") == "/api/v1/cases":
        return ("the gateway failed to handle this request; the case may or may not have been "
                "stored: retry with the same application number (a case already stored is "
                "answered as itself, never stored twice)")
    return ("the gateway failed to handle this request; it may or may not have taken effect: "
            "check the current state before retrying")
