"""Simulator of Beijing's city integrated platform (统一申办受理平台): what the gateway pushes to.

Two REST endpoints, both authenticated with the ``x-tif-*`` signature (:mod:`gateway.protocols.tif`:
±``window`` seconds, nonces single use):

* ``POST /api/v1/status-events``: one status event (``schemas/city/status-event.schema.json``),
  deduped on its ``eventId``;
* ``POST /api/v1/inbound-cases``: a case in Beijing's unified format
  (``schemas/beijing/case.schema.json``), deduped on ``X-Idempotency-Key`` (else its
  ``applicationNo``).
* ``POST /api/v1/backflow-records``: a batch of national back-flow records
  (``schemas/city/backflow-batch.schema.json``), deduped on its ``batchId``; each record is kept
  by (kind, key) with the newest version, an older or equal one counted and ignored
  (``backflow`` in ``/__sim/state``: batches, records, kept, replaced, stale, per kind). Only the
  key and version are held, so a million records cost tens of MB, not their documents.

Answers: ``200 {"code": "0", "msg": "成功", "data": {"receiptNo", "duplicate", …}}`` for a new or
a repeated message (a repeat gets the first receipt and is counted as a duplicate, and as a
conflict too if its body differs from the first); a refused signature is ``401``, a body that is
not JSON ``400`` and one the schema refuses ``422``, each an RFC 9457 problem document naming the
header or the field (``errors``: one ``{path, message}`` per failing JSON pointer). Nothing
refused is recorded, only counted (``rejected`` in ``/__sim/state``).

``/__sim/state`` (:mod:`gateway.simulators.base`) adds per endpoint counts (``statusEvents``,
``inboundCases``), ``rejected`` by reason, ``conflicts``, and ``cases``: per application number
the latest status of each item (latest by the partner's time) and the latest bundle status, so
the demo and the tests read what the platform would show the applicant.

Behaviour modes: the common ones (``delay``, ``http500``, ``reset``, hostile modes) before the
signature is looked at, as a broken or overloaded platform would; after it: ``business_error``
(HTTP 200, ``code`` default ``40003``), ``throttle`` (HTTP 429 with ``Retry-After: delay``, or 1),
``malformed`` (an HTML error page with HTTP 200).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from gateway.protocols import tif
from gateway.schemacheck import describe_error, fast_validity, format_checker, human_validator
from gateway.simulators.base import SimulatorState, add_control_routes, apply_common

SCHEMAS = Path(__file__).resolve().parent.parent.parent / "schemas"
STATUS_EVENTS = "/api/v1/status-events"
INBOUND_CASES = "/api/v1/inbound-cases"
BACKFLOW_RECORDS = "/api/v1/backflow-records"
MAX_BODY = 4 * 1024 * 1024

DEMO_PAASID = "BJ-GATEWAY-DEMO"
DEMO_TOKEN = "city-demo-tif-token"
ENV_PAASID, ENV_TOKEN = "GATEWAY_CITY_TIF_PAASID", "GATEWAY_CITY_TIF_TOKEN"
"""``gateway simulate city`` accepts the caller these name (else the demo caller above), so the
simulator and a gateway configured with ``${GATEWAY_CITY_TIF_TOKEN}`` agree without a file."""

_EVENT, _CASE = "event:", "case:"
_HumanValidator = human_validator(Draft202012Validator)


def default_callers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """paasid → token the simulator accepts when none are given: from the environment
    (``GATEWAY_CITY_TIF_PAASID`` / ``GATEWAY_CITY_TIF_TOKEN``), else the demo caller."""
    env = os.environ if env is None else env
    return {env.get(ENV_PAASID) or DEMO_PAASID: env.get(ENV_TOKEN) or DEMO_TOKEN}


class CityState(SimulatorState):
    """The platform's memory: the base simulator's messages and receipts (keys prefixed by
    endpoint), the nonces it accepted, refusals by reason, and each case's latest statuses."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        super().__init__("city", receipt_prefix="BJSJ")

    def reset(self) -> None:
        super().reset()
        self.nonces = tif.MemoryNonceStore(self.clock)
        self.rejected: Counter[str] = Counter()
        self.conflicts = 0
        self.cases: dict[str, dict[str, Any]] = {}
        self._first: dict[str, Any] = {}
        self.backflow = BackflowSink()

    def record(self, key: str, doc: Any, headers: dict[str, str]) -> tuple[str, bool]:
        """Accept a message under ``key``: (receipt, duplicate). A repeat with another body is
        also counted as a conflict (the sender reused an id for something else)."""
        with self.handling(key):
            received = self.accept(key, doc, headers)
        if received.duplicate:
            if self._first.get(key) != doc:
                self.conflicts += 1
        else:
            self._first[key] = doc
            if key.startswith(_EVENT):
                self._apply_event(doc)
        return received.receipt_no, received.duplicate

    def _apply_event(self, ev: dict[str, Any]) -> None:
        case = self.cases.setdefault(ev["applicationNo"], {"items": {}, "bundle": None,
                                                           "events": 0})
        case["events"] += 1
        at = _instant(ev["partnerTime"])
        for item_no in ev.get("itemNos") or ():
            cur = case["items"].get(item_no)
            if cur is None or _instant(cur["partnerTime"]) <= at:
                case["items"][item_no] = {k: ev[k] for k in ("status", "result", "partner",
                                                             "partnerTime", "eventId") if k in ev}
        bundle = ev.get("bundleStatus")
        if bundle is not None and (case["bundle"] is None or case["bundle"]["at"] <= at):
            case["bundle"] = {**bundle, "at": at, "eventId": ev["eventId"]}

    def summary(self, with_messages: bool = True) -> dict[str, Any]:
        doc = super().summary(with_messages)
        for name, prefix in (("statusEvents", _EVENT), ("inboundCases", _CASE)):
            mine = [m for m in self.messages if m.idempotency_key.startswith(prefix)]
            doc[name] = {"received": len(mine),
                         "unique": sum(1 for k in self.receipts if k.startswith(prefix)),
                         "duplicates": sum(1 for m in mine if m.duplicate)}
        doc["backflow"] = self.backflow.summary()
        doc["rejected"] = dict(self.rejected)
        doc["conflicts"] = self.conflicts
        doc["cases"] = {no: {"items": c["items"], "events": c["events"],
                             "bundle": None if c["bundle"] is None else
                             {k: v for k, v in c["bundle"].items() if k != "at"}}
                        for no, c in self.cases.items()}
        return doc


class BackflowSink:
    """Back-flow batches as the platform keeps them: batch id → receipt, and per (kind, key) the
    newest version only (what a platform table upserting on the key would hold)."""

    def __init__(self) -> None:
        self.batches: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.counts: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()

    def accept(self, doc: dict[str, Any]) -> tuple[str, bool]:
        bid = doc["batchId"]
        self.counts["batchesReceived"] += 1
        if bid in self.batches:
            self.counts["duplicateBatches"] += 1
            return self.batches[bid], True
        receipt = f"BJHL{len(self.batches) + 1:08d}"
        self.batches[bid] = receipt
        for r in doc["records"]:
            key = f"{r['kind']}:{r['key']}"
            self.counts["records"] += 1
            had = self.versions.get(key)
            if had is None:
                self.counts["kept"] += 1
                self.kinds[r["kind"]] += 1
            elif r["version"] > had:
                self.counts["replaced"] += 1
            else:
                self.counts["stale"] += 1
                continue
            self.versions[key] = r["version"]
        return receipt, False

    def summary(self) -> dict[str, Any]:
        return {"batches": len(self.batches), **{k: self.counts[k] for k in (
            "batchesReceived", "duplicateBatches", "records", "kept", "replaced", "stale")},
            "keys": len(self.versions), "kinds": dict(self.kinds)}


def _instant(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def problem(status: int, title: str, detail: str, *, headers: Mapping[str, str] | None = None,
            **extra: Any) -> web.Response:
    """An RFC 9457 problem document."""
    doc = {"type": extra.pop("type", "about:blank"), "title": title, "status": status,
           "detail": detail, **extra}
    return web.Response(status=status, text=json.dumps(doc, ensure_ascii=False),
                        content_type="application/problem+json", charset="utf-8",
                        headers=headers)


def _answer(code: str, msg: str, data: dict[str, Any] | None = None) -> web.Response:
    doc: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        doc["data"] = data
    return web.Response(text=json.dumps(doc, ensure_ascii=False),
                        content_type="application/json", charset="utf-8")


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _validator(relative: str) -> Any:
    doc = json.loads((SCHEMAS / relative).read_text(encoding="utf-8"))
    return _HumanValidator(doc, format_checker=format_checker())


def _invalid(validator: Any, doc: Any) -> web.Response | None:
    """A 422 naming every failing field, or ``None`` when ``doc`` is valid."""
    errs = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    if not errs:
        return None
    found = [{"path": "/" + "/".join(str(p) for p in e.absolute_path), "message": describe_error(e)}
             for e in errs]
    return problem(422, "Invalid document", f"{found[0]['path']}: {found[0]['message']}",
                   type="urn:gateway:problem:validation", errors=found)


def create_app(*, callers: Mapping[str, str] | None = None, window: float = tif.WINDOW,
               clock: Callable[[], float] = time.time, **_: Any) -> web.Application:
    """The simulator application. ``callers``: paasid → token it accepts (default
    :func:`default_callers`); ``window``: seconds of clock skew accepted; ``clock``: its clock."""
    tokens = dict(callers) if callers is not None else default_callers()
    state = CityState(clock)
    event_v = _validator("city/status-event.schema.json")
    case_v = _validator("beijing/case.schema.json")
    backflow_v = _validator("city/backflow-batch.schema.json")
    backflow_fast = fast_validity(backflow_v.schema)

    async def opening(request: web.Request) -> web.StreamResponse | Any:
        """Behaviour, signature, body: a response to send back, or the parsed JSON body."""
        b = state.next_behaviour()
        early = await apply_common(request, b)
        if early is not None:
            return early
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return problem(413, "Payload too large", f"the body exceeds {MAX_BODY} bytes")
        try:
            await tif.verify(request.headers, tokens, state.nonces, now=clock(), window=window)
        except tif.TifError as e:
            state.rejected[e.code] += 1
            return problem(401, "Unauthenticated", e.message, type="urn:gateway:problem:tif",
                           code=e.code, header=e.header)
        if b.mode == "malformed":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>",
                                content_type="text/html")
        if b.mode == "throttle":
            return problem(429, "Too many requests", b.message or "slow down",
                           headers={"Retry-After": str(int(b.delay or 1))})
        if b.mode == "business_error":
            return _answer(b.code or "40003", b.message or "业务处理失败")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError) as e:
            state.rejected["not_json"] += 1
            return problem(400, "Not JSON", f"the body is not UTF-8 JSON: {type(e).__name__}")

    def _headers(request: web.Request) -> dict[str, str]:
        return {h: request.headers.get(h, "") for h in ("X-Idempotency-Key", "X-Correlation-Id",
                                                         tif.PAASID)}

    async def status_event(request: web.Request) -> web.StreamResponse:
        doc = await opening(request)
        if isinstance(doc, web.StreamResponse):
            return doc
        if (bad := _invalid(event_v, doc)) is not None:
            state.rejected["invalid"] += 1
            return bad
        receipt, duplicate = state.record(_EVENT + doc["eventId"], doc, _headers(request))
        return _answer("0", "成功", {"receiptNo": receipt, "eventId": doc["eventId"],
                                   "duplicate": duplicate})

    async def inbound_case(request: web.Request) -> web.StreamResponse:
        doc = await opening(request)
        if isinstance(doc, web.StreamResponse):
            return doc
        if (bad := _invalid(case_v, doc)) is not None:
            state.rejected["invalid"] += 1
            return bad
        key = request.headers.get("X-Idempotency-Key") or doc["applicationNo"]
        receipt, duplicate = state.record(_CASE + key, doc, _headers(request))
        return _answer("0", "成功", {"receiptNo": receipt, "applicationNo": doc["applicationNo"],
                                   "duplicate": duplicate})

    async def backflow_batch(request: web.Request) -> web.StreamResponse:
        doc = await opening(request)
        if isinstance(doc, web.StreamResponse):
            return doc
        # the compiled yes/no first: a batch of thousands of records is not walked twice
        if (backflow_fast is None or not backflow_fast(doc)) and \
                (bad := _invalid(backflow_v, doc)) is not None:
            state.rejected["invalid"] += 1
            return bad
        receipt, duplicate = state.backflow.accept(doc)
        return _answer("0", "成功", {"receiptNo": receipt, "batchId": doc["batchId"],
                                   "records": len(doc["records"]), "duplicate": duplicate})

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(STATUS_EVENTS, status_event)
    app.router.add_post(INBOUND_CASES, inbound_case)
    app.router.add_post(BACKFLOW_RECORDS, backflow_batch)
    add_control_routes(app, state)
    return app


__all__ = ["BACKFLOW_RECORDS", "DEMO_PAASID", "DEMO_TOKEN", "INBOUND_CASES", "STATUS_EVENTS", "CityState",
           "create_app", "default_callers", "problem"]
