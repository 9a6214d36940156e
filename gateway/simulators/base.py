"""What every partner simulator shares: dedupe by idempotency key, a log of what arrived, and a
queue of misbehaviours that tests and the demo can order over HTTP.

Control API (same on every simulator, under ``/__sim``):

* ``GET  /__sim/state``      counts (received, unique, duplicates, cases, concurrent overlaps,
  callbacks) and messages
* ``POST /__sim/behaviour``  ``{"mode": ..., "count": 1, "delay": 0, "code": ...}`` queued in order
* ``POST /__sim/reset``      forget everything (the configuration returns to the start-up one)
* ``POST /__sim/config``, ``/__sim/status``, ``/__sim/walk``, ``GET /__sim/cases``,
  ``/__sim/callbacks``: the partner's case statuses, its callbacks to the gateway and the dedupe
  switch (:mod:`gateway.simulators.statuses`)

Dedupe: a partner answers a resent submission (same idempotency key) with the first receipt.
With ``{"dedupe": false}`` it makes a second case of it instead, with a new receipt, as a partner
that trusts its callers would; ``duplicates`` counts messages whose key was seen before either
way, ``cases`` the cases the partner holds.

Modes every simulator understands: ``ok``, ``delay`` (answer normally after ``delay`` seconds),
``http500``, ``reset`` (drop the connection without answering). Protocol-specific modes
(``business_error``, ``throttle``, ``fault_sender``, ``fault_receiver``, ``malformed``) are
interpreted by each simulator's handler.

Hostile modes, the malicious partner of the security tests (what a compromised or spoofed
partner server can answer; the gateway must not be steered by any of them):

* ``redirect``  HTTP ``status`` (default 307) with ``Location: location``
* ``split``     the normal answer, its bytes sent in two pieces ``delay`` seconds apart
* ``oversized`` a ``size``-byte body (default 100 MB), streamed, never held in memory here
* ``deep``      a document nested ``size`` levels (default 200,000): JSON ``[[[…`` to a JSON
  request, XML ``<a><a>…`` to an XML one
* ``raw``       exactly ``body`` (or base64 ``body_b64``) with ``status`` and ``content_type``:
  a long receipt, a long code, a UTF-16 document with a DOCTYPE — whatever the test crafts
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.protocols import soap
from gateway.protocols.xml import XmlError
from gateway.simulators.statuses import CaseBook, StatusConfig, StatusProfile, add_status_routes

COMMON_MODES = {"ok", "delay", "http500", "reset"}


@dataclass
class Behaviour:
    mode: str = "ok"
    count: int = 1          # how many requests it applies to; -1 = until reset
    delay: float = 0.0
    code: str | None = None
    message: str | None = None
    status: int | None = None        # hostile modes: HTTP status of ``redirect`` / ``raw``
    location: str | None = None      # ``redirect``
    size: int = 0                    # ``oversized`` bytes, ``deep`` levels
    body: str | None = None          # ``raw``
    body_b64: str | None = None      # ``raw``, for bytes that are not UTF-8 (UTF-16 …)
    content_type: str | None = None  # ``raw``


@dataclass
class Received:
    idempotency_key: str
    receipt_no: str
    duplicate: bool
    at: float
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class SimulatorState:
    """In-memory state of one simulator process (a partner's database, for test purposes)."""

    def __init__(self, partner: str, receipt_prefix: str, *,
                 profile: StatusProfile | None = None, config: StatusConfig | None = None) -> None:
        self.partner = partner
        self.receipt_prefix = receipt_prefix
        self.book = CaseBook(partner, profile, config or StatusConfig())
        self.reset()

    def reset(self) -> None:
        self.book.reset()
        self.messages: list[Received] = []
        self.receipts: dict[str, str] = {}
        self.behaviours: deque[Behaviour] = deque()
        self.requests = 0
        self.overlaps = 0
        self._in_flight: dict[str, int] = {}
        self._seq = itertools.count(1)

    # -- behaviour queue -------------------------------------------------------------------
    def push(self, b: Behaviour) -> None:
        self.behaviours.append(b)

    def next_behaviour(self) -> Behaviour:
        self.requests += 1
        if not self.behaviours:
            return Behaviour()
        b = self.behaviours[0]
        if b.count > 0:
            b.count -= 1
            if b.count == 0:
                self.behaviours.popleft()
        return b

    # -- dedupe ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def handling(self, key: str) -> Iterator[None]:
        """Count requests that carry a key another request is still being handled with."""
        if self._in_flight.get(key):
            self.overlaps += 1
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield
        finally:
            self._in_flight[key] -= 1

    def accept(self, key: str, payload: Any = None, headers: dict[str, str] | None = None, *,
               refs: dict[str, Any] | None = None) -> Received:
        """Record a message; the same key gets the same receipt (an idempotent partner), unless
        dedupe is off: then every message is a new case with a new receipt. A new case starts in
        the partner's initial status; ``refs`` is what its callbacks will name it by."""
        duplicate = key in self.receipts
        if duplicate and self.book.config.dedupe:
            receipt = self.receipts[key]
        else:
            receipt = f"{self.receipt_prefix}{next(self._seq):08d}"
            self.receipts.setdefault(key, receipt)
            self.book.open(receipt, key, refs)
        r = Received(key, receipt, duplicate, time.time(), payload, headers or {})
        self.messages.append(r)
        return r

    def summary(self, with_messages: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "partner": self.partner,
            "requests": self.requests,
            "received": len(self.messages),
            "unique": len(self.receipts),
            "duplicates": sum(1 for m in self.messages if m.duplicate),
            "cases": len({m.receipt_no for m in self.messages}),
            "dedupe": self.book.config.dedupe,
            "overlaps": self.overlaps,
            "callbacks": len(self.book.callbacks),
        }
        if with_messages:
            doc["messages"] = [asdict(m) for m in self.messages]
        return doc


class NotifiedState(SimulatorState):
    """A simulator's state with the status notifications Beijing sent it about cases the partner
    submitted to Beijing (issue 15), deduped on the notification's id; ``/__sim/state`` shows
    them as ``notifications`` (``received``, ``unique``, ``duplicates``, ``records``)."""

    def reset(self) -> None:
        super().reset()
        self.notifications: list[dict[str, Any]] = []
        self.notification_ids: set[str] = set()

    def notified(self, key: str, doc: dict[str, Any]) -> bool:
        """Record one notification; True when its id was seen before (a resend)."""
        duplicate = key in self.notification_ids
        self.notification_ids.add(key)
        self.notifications.append({**doc, "key": key, "duplicate": duplicate})
        return duplicate

    def summary(self, with_messages: bool = True) -> dict[str, Any]:
        doc = super().summary(with_messages)
        doc["notifications"] = {
            "received": len(self.notifications),
            "unique": len(self.notification_ids),
            "duplicates": sum(1 for n in self.notifications if n["duplicate"]),
            "records": [n for n in self.notifications if not n["duplicate"]],
        }
        return doc


SIM_STATE = web.AppKey("sim_state", SimulatorState)


async def apply_common(request: web.Request, b: Behaviour) -> web.StreamResponse | None:
    """Carry out the modes every simulator shares; ``None`` means "answer normally"."""
    if b.mode == "delay" and b.delay > 0:
        await asyncio.sleep(b.delay)
    elif b.mode == "http500":
        return web.Response(status=500, text=b.message or "simulated internal error")
    elif b.mode == "reset":
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # nothing more is written on an aborted connection
    elif b.mode == "split":
        request[_SPLIT] = b.delay or 0.3
    elif b.mode in HOSTILE:
        await request.read()  # a real server reads the request before it answers
        return await HOSTILE[b.mode](request, b)
    return None


async def soap_request(
        request: web.Request, state: SimulatorState, *,
        too_large: Callable[[], web.StreamResponse],
        malformed: Callable[[str], web.StreamResponse],
) -> tuple[Behaviour, soap.Envelope] | web.StreamResponse:
    """What every SOAP simulator does first: take the next behaviour (a common one is answered
    here), read the whole body (one past ``client_max_size`` is answered by ``too_large``, in
    SOAP like every other refusal) and parse the envelope through the hardened parser (one that
    is not well-formed or not an envelope is answered by ``malformed(reason)``)."""
    b = state.next_behaviour()
    common = await apply_common(request, b)
    if common is not None:
        return common
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return too_large()
    try:
        return b, soap.parse_envelope(raw)
    except XmlError as e:
        return malformed(e.reason)


_SPLIT = "sim_split_reply"


async def _redirect(request: web.Request, b: Behaviour) -> web.StreamResponse:
    return web.Response(status=b.status or 307,
                        headers={"Location": b.location or "http://127.0.0.1:9/elsewhere"})


async def _oversized(request: web.Request, b: Behaviour) -> web.StreamResponse:
    size = b.size or 100 * 1024 * 1024
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    if b.status is None:  # chunked: no Content-Length to warn the reader in advance
        resp.enable_chunked_encoding()
    else:
        resp.content_length = size
    await resp.prepare(request)
    chunk = b" " * 65536
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < size:
            piece = chunk[: size - sent]
            await resp.write(piece)
            sent += len(piece)
        await resp.write_eof()
    return resp


async def _deep(request: web.Request, b: Behaviour) -> web.StreamResponse:
    n = b.size or 200_000
    if "xml" in (request.content_type or ""):
        return web.Response(body=b"<a>" * n + b"</a>" * n, content_type="text/xml")
    return web.Response(body=b"[" * n + b"]" * n, content_type="application/json")


async def _raw(request: web.Request, b: Behaviour) -> web.StreamResponse:
    body = base64.b64decode(b.body_b64) if b.body_b64 else (b.body or "").encode("utf-8")
    return web.Response(status=b.status or 200, body=body,
                        headers={"Content-Type": b.content_type or "application/octet-stream"})


HOSTILE = {"redirect": _redirect, "oversized": _oversized, "deep": _deep, "raw": _raw}


@web.middleware
async def _split_replies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Send a ``split`` answer's bytes in two TCP pieces, ``delay`` seconds apart."""
    resp = await handler(request)
    delay = request.get(_SPLIT)
    if delay is None or not isinstance(resp, web.Response) or resp.body is None:
        return resp
    body = bytes(resp.body)  # type: ignore[arg-type]
    out = web.StreamResponse(status=resp.status, headers=resp.headers)
    out.content_length = len(body)
    await out.prepare(request)
    half = max(1, len(body) // 2)
    await out.write(body[:half])
    await asyncio.sleep(delay)
    await out.write(body[half:])
    await out.write_eof()
    return out


async def _state(request: web.Request) -> web.Response:
    with_messages = request.query.get("messages", "1") != "0"
    return web.json_response(request.app[SIM_STATE].summary(with_messages), dumps=_dumps)


async def _behaviour(request: web.Request) -> web.Response:
    try:
        doc = await request.json()
        b = Behaviour(**doc)
    except (ValueError, TypeError) as e:
        return web.json_response({"error": f"bad behaviour: {e}"}, status=400)
    request.app[SIM_STATE].push(b)
    return web.json_response({"queued": asdict(b)})


async def _reset(request: web.Request) -> web.Response:
    request.app[SIM_STATE].reset()
    return web.json_response({"reset": True})


def _dumps(obj: Any) -> str:
    import json
    return json.dumps(obj, ensure_ascii=False, default=str)


def add_control_routes(app: web.Application, state: SimulatorState) -> None:
    app[SIM_STATE] = state
    add_status_routes(app, state.book)
    app.middlewares.append(_split_replies)
    app.router.add_get("/__sim/state", _state)
    app.router.add_post("/__sim/behaviour", _behaviour)
    app.router.add_post("/__sim/reset", _reset)
