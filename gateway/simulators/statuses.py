"""Case statuses on the partner's side: every simulator keeps one per case it received, tests and
the demo move it over HTTP, and the simulator tells the gateway in the partner's own contract.

Control API (under ``/__sim``, on every simulator; partners' own status codes throughout):

* ``POST /__sim/config``  ``{"callback_url", "callback_auth", "callback_repeat", "dedupe",
  "callback_timeout"}`` (each optional) → the configuration now. ``callback_url`` ``null``
  switches callbacks off; ``callback_auth`` is the partner's credential for the receiver
  (Tianjin ``{"auth_code"}``, Hebei ``{"username", "password"}``, national ``{"app_id"}``);
  ``callback_repeat`` N sends every callback N more times (same event id: a partner resending);
  ``dedupe`` ``false`` turns a resent submission into a second case with its own receipt.
* ``POST /__sim/status``  ``{"receipt"|"key", "status", "at", "result", "licences", "message",
  "department", "notify": true, "repeat": 0, "force": false}`` sets one case's status (``at``:
  ISO 8601 or ``yyyy-MM-dd HH:mm:ss`` Beijing time, default now; a code the partner does not
  have needs ``force``) → the case and the callbacks sent.
* ``POST /__sim/walk``    ``{"receipt"|"key", "path": "approved", "steps": [...], "start",
  "step_seconds": 1, "order": "in_order"|"reverse"|"shuffle", "seed": 0, "repeat": 0,
  "notify": true}`` walks a case through a realistic sequence (the partner's ``paths``, or
  ``steps`` given as status objects), later steps later in time; the case ends at the last step
  whatever ``order`` the callbacks are sent in (out-of-order delivery for the gateway's tests).
* ``GET  /__sim/cases``   every case with its status history; ``GET /__sim/callbacks`` every
  callback sent: url, event id, request body, HTTP status and the receiver's answer.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import aiohttp
from aiohttp import web

CST = timezone(timedelta(hours=8))
PLAIN_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass
class StatusEvent:
    """One status a partner reached, in its own codes."""

    event_id: str
    status: str
    at: datetime
    result: str | None = None
    licences: list[dict[str, str]] = field(default_factory=list)
    message: str | None = None
    department: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat()
        return d


@dataclass
class SimCase:
    """A case the partner holds: its receipt, the key it was submitted with, what the partner
    needs to name it in a callback (``refs``: application number, item code…) and its history
    (the current status is the last event)."""

    receipt: str
    key: str
    refs: dict[str, Any]
    history: list[StatusEvent]

    @property
    def current(self) -> StatusEvent:
        return self.history[-1]

    def as_dict(self) -> dict[str, Any]:
        return {"receipt": self.receipt, "key": self.key, "refs": self.refs,
                "status": self.current.status, "history": [e.as_dict() for e in self.history]}


@dataclass(frozen=True)
class CallbackRequest:
    """What a simulator posts to the receiver: body and headers in the partner's contract."""

    body: bytes
    headers: dict[str, str]


class Notifier(Protocol):
    """A partner's callback contract, as its simulator speaks it."""

    def request(self, case: SimCase, event: StatusEvent,
                auth: Mapping[str, Any]) -> CallbackRequest: ...

    def verdict(self, status: int, body: bytes) -> dict[str, Any]:
        """The receiver's answer read in the contract's terms: ``{"ok", "code", "message"}``."""
        ...


@dataclass(frozen=True)
class StatusProfile:
    """A partner's status vocabulary: the status a new case starts in, every code it reports,
    its result codes, the realistic paths a case takes after that (name → (status, result)
    steps) and how it calls the receiver."""

    initial: str
    codes: frozenset[str]
    results: frozenset[str]
    paths: Mapping[str, tuple[tuple[str, str | None], ...]]
    notifier: Notifier
    default_auth: Mapping[str, Any] = field(default_factory=dict)
    granted: str | None = None          # the result code that issues an e-licence …
    licence: Callable[[SimCase], dict[str, str]] | None = None   # … this one (walks only)


@dataclass
class StatusConfig:
    callback_url: str | None = None
    callback_auth: dict[str, Any] = field(default_factory=dict)
    callback_repeat: int = 0
    callback_timeout: float = 10.0
    dedupe: bool = True


class CaseBook:
    """The cases of one simulator and the callbacks it sent (reset with the simulator)."""

    def __init__(self, partner: str, profile: StatusProfile | None, config: StatusConfig) -> None:
        self.partner = partner
        self.profile = profile
        self.initial_config = config
        self.reset()

    def reset(self) -> None:
        c = self.initial_config
        self.config = StatusConfig(c.callback_url, dict(c.callback_auth), c.callback_repeat,
                                   c.callback_timeout, c.dedupe)
        self.cases: dict[str, SimCase] = {}
        self.by_key: dict[str, list[str]] = {}
        self.callbacks: list[dict[str, Any]] = []
        self._events = itertools.count(1)

    def event_id(self) -> str:
        return f"{self.partner.upper()}-EV{next(self._events):08d}"

    def open(self, receipt: str, key: str, refs: Mapping[str, Any] | None = None,
             at: datetime | None = None) -> SimCase | None:
        """Record a new case in its initial status (no-op for a simulator without statuses)."""
        if self.profile is None:
            return None
        case = SimCase(receipt, key, dict(refs or {}),
                       [StatusEvent(self.event_id(), self.profile.initial, at or now())])
        self.cases[receipt] = case
        self.by_key.setdefault(key, []).append(receipt)
        return case

    def find(self, *, receipt: str | None = None, key: str | None = None) -> SimCase | None:
        """The case under a receipt, or the first case submitted with an idempotency key."""
        if receipt is not None:
            return self.cases.get(receipt)
        if key is not None and key in self.by_key:
            return self.cases[self.by_key[key][0]]
        return None


def now() -> datetime:
    return datetime.now(CST).replace(microsecond=0)


def parse_time(text: str) -> datetime:
    """ISO 8601 (an offset, or Beijing time without one) or ``yyyy-MM-dd HH:mm:ss``."""
    t = text.strip()
    try:
        dt = datetime.strptime(t, PLAIN_TIME)
    except ValueError:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CST)
    return dt.astimezone(CST)


def plain_time(dt: datetime) -> str:
    """Beijing time as ``yyyy-MM-dd HH:mm:ss`` (what Tianjin and the national platform write)."""
    return dt.astimezone(CST).strftime(PLAIN_TIME)


CASE_BOOK = web.AppKey("sim_case_book", CaseBook)
_HTTP = web.AppKey("sim_callback_http", dict)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


def _book(request: web.Request) -> CaseBook:
    return request.app[CASE_BOOK]


def _case(book: CaseBook, doc: Mapping[str, Any]) -> SimCase:
    if book.profile is None:
        raise _Refused(404, f"the {book.partner} simulator keeps no case statuses")
    receipt, key = doc.get("receipt"), doc.get("key")
    if not isinstance(receipt, str) and not isinstance(key, str):
        raise _Refused(400, "name the case by 'receipt' or 'key'")
    case = book.find(receipt=receipt if isinstance(receipt, str) else None,
                     key=key if isinstance(key, str) else None)
    if case is None:
        raise _Refused(404, f"no case {receipt or key!r}")
    return case


def _event(book: CaseBook, doc: Mapping[str, Any], at: datetime) -> StatusEvent:
    assert book.profile is not None
    status = doc.get("status")
    if not isinstance(status, str) or not status:
        raise _Refused(400, "'status' is required (the partner's own code)")
    result = doc.get("result")
    if not doc.get("force"):
        if status not in book.profile.codes:
            raise _Refused(400, f"{book.partner} has no status {status!r} (known: "
                                f"{', '.join(sorted(book.profile.codes))}; 'force': true sends it)")
        if result is not None and result not in book.profile.results:
            raise _Refused(400, f"{book.partner} has no result {result!r}")
    licences = doc.get("licences") or []
    if not isinstance(licences, list) or not all(isinstance(x, dict) for x in licences):
        raise _Refused(400, "'licences' is a list of objects")
    return StatusEvent(book.event_id(), status, at, result if isinstance(result, str) else None,
                       [{str(k): str(v) for k, v in x.items()} for x in licences],
                       _text(doc.get("message")), _text(doc.get("department")))


def _text(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None


def _at(doc: Mapping[str, Any], key: str = "at") -> datetime | None:
    v = doc.get(key)
    if v is None:
        return None
    try:
        return parse_time(str(v))
    except ValueError:
        raise _Refused(400, f"{key!r} is not a time: {v!r}") from None


async def send_callback(app: web.Application, case: SimCase, event: StatusEvent,
                        repeat: int = 0) -> list[dict[str, Any]]:
    """Post one status event to the configured receiver, ``1 + repeat + callback_repeat``
    times; every send is recorded with the answer (a failed send too: the partner would retry,
    the test decides). Nothing is sent without a ``callback_url``."""
    book = app[CASE_BOOK]
    cfg = book.config
    if cfg.callback_url is None or book.profile is None:
        return []
    notifier = book.profile.notifier
    auth = {**book.profile.default_auth, **cfg.callback_auth}
    http = app[_HTTP]
    if "session" not in http:
        http["session"] = aiohttp.ClientSession()
    session: aiohttp.ClientSession = http["session"]
    sent = []
    for _ in range(1 + max(0, repeat) + max(0, cfg.callback_repeat)):
        req = notifier.request(case, event, auth)
        record: dict[str, Any] = {"url": cfg.callback_url, "eventId": event.event_id,
                                  "receipt": case.receipt, "status": event.status,
                                  "at": time.time(), "request": req.body.decode("utf-8"),
                                  "headers": req.headers}
        try:
            async with session.post(cfg.callback_url, data=req.body, headers=req.headers,
                                    timeout=aiohttp.ClientTimeout(total=cfg.callback_timeout),
                                    allow_redirects=False) as resp:
                body = await resp.read()
                record.update(httpStatus=resp.status, answer=body.decode("utf-8", "replace"),
                              **notifier.verdict(resp.status, body))
        except (aiohttp.ClientError, TimeoutError) as e:
            record.update(httpStatus=None, ok=False, code=None,
                          message=f"{type(e).__name__}: {e}")
        book.callbacks.append(record)
        sent.append(record)
    return sent


async def _config(request: web.Request) -> web.Response:
    book = _book(request)
    try:
        doc = await request.json()
        if not isinstance(doc, dict):
            raise ValueError("a JSON object is required")
        cfg = book.config
        if "callback_url" in doc:
            cfg.callback_url = None if doc["callback_url"] is None else str(doc["callback_url"])
        if "callback_auth" in doc:
            if not isinstance(doc["callback_auth"], dict):
                raise ValueError("callback_auth is an object")
            cfg.callback_auth = dict(doc["callback_auth"])
        if "callback_repeat" in doc:
            cfg.callback_repeat = int(doc["callback_repeat"])
        if "callback_timeout" in doc:
            cfg.callback_timeout = float(doc["callback_timeout"])
        if "dedupe" in doc:
            if not isinstance(doc["dedupe"], bool):
                raise ValueError("dedupe is true or false")
            cfg.dedupe = doc["dedupe"]
        unknown = set(doc) - {"callback_url", "callback_auth", "callback_repeat",
                              "callback_timeout", "dedupe"}
        if unknown:
            raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
    except (ValueError, TypeError) as e:
        return web.json_response({"error": f"bad config: {e}"}, status=400)
    return web.json_response(config_doc(book))


def config_doc(book: CaseBook) -> dict[str, Any]:
    """The configuration, credentials masked."""
    d = asdict(book.config)
    d["callback_auth"] = {k: "***" for k in d["callback_auth"]}
    return d


async def _status(request: web.Request) -> web.Response:
    book = _book(request)
    try:
        doc = await request.json()
        case = _case(book, doc)
        event = _event(book, doc, _at(doc) or now())
    except _Refused as e:
        return web.json_response({"error": e.message}, status=e.status)
    except ValueError as e:
        return web.json_response({"error": f"bad request: {e}"}, status=400)
    case.history.append(event)
    sent = []
    if doc.get("notify", True):
        sent = await send_callback(request.app, case, event, int(doc.get("repeat", 0)))
    return web.json_response({"case": case.as_dict(), "callbacks": sent}, dumps=_dumps)


async def _walk(request: web.Request) -> web.Response:
    book = _book(request)
    try:
        doc = await request.json()
        case = _case(book, doc)
        assert book.profile is not None
        steps = doc.get("steps")
        if steps is None:
            name = doc.get("path", "approved")
            if name not in book.profile.paths:
                raise _Refused(400, f"no path {name!r} (known: "
                                    f"{', '.join(sorted(book.profile.paths))})")
            steps = [{"status": s, "result": r} for s, r in book.profile.paths[name]]
        if not isinstance(steps, list) or not steps:
            raise _Refused(400, "'steps' is a non-empty list of status objects")
        step = timedelta(seconds=float(doc.get("step_seconds", 1)))
        start = _at(doc, "start") or max(now(), case.current.at + step)
        events = []
        for n, s in enumerate(steps):
            if not isinstance(s, dict):
                raise _Refused(400, "each step is an object")
            e = _event(book, s, _at(s) or start + n * step)
            if book.profile.licence is not None and e.result == book.profile.granted \
                    and not e.licences and "licences" not in s:
                e.licences = [book.profile.licence(case)]
            events.append(e)
        order = doc.get("order", "in_order")
        if order not in ("in_order", "reverse", "shuffle"):
            raise _Refused(400, "order is in_order, reverse or shuffle")
    except _Refused as e:
        return web.json_response({"error": e.message}, status=e.status)
    except (ValueError, TypeError) as e:
        return web.json_response({"error": f"bad request: {e}"}, status=400)
    case.history.extend(events)
    sending = list(events)
    if order == "reverse":
        sending.reverse()
    elif order == "shuffle":
        random.Random(int(doc.get("seed", 0))).shuffle(sending)
    sent: list[dict[str, Any]] = []
    if doc.get("notify", True):
        for ev in sending:
            sent += await send_callback(request.app, case, ev, int(doc.get("repeat", 0)))
    return web.json_response({"case": case.as_dict(), "sent_order": [x.event_id for x in sending],
                              "callbacks": sent}, dumps=_dumps)


async def _cases(request: web.Request) -> web.Response:
    book = _book(request)
    return web.json_response({"cases": [c.as_dict() for c in book.cases.values()]}, dumps=_dumps)


async def _callbacks(request: web.Request) -> web.Response:
    return web.json_response({"callbacks": _book(request).callbacks}, dumps=_dumps)


async def _close_http(app: web.Application) -> None:
    session = app[_HTTP].pop("session", None)
    if session is not None:
        await session.close()
        await asyncio.sleep(0)


def _dumps(obj: Any) -> str:
    import json
    return json.dumps(obj, ensure_ascii=False, default=str)


def add_status_routes(app: web.Application, book: CaseBook) -> None:
    app[CASE_BOOK] = book
    app[_HTTP] = {}
    app.on_cleanup.append(_close_http)
    app.router.add_post("/__sim/config", _config)
    app.router.add_post("/__sim/status", _status)
    app.router.add_post("/__sim/walk", _walk)
    app.router.add_get("/__sim/cases", _cases)
    app.router.add_get("/__sim/callbacks", _callbacks)
