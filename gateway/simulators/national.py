"""Simulator of the national platform's 跨省通办 REST channel.

Speaks the contract in ``schemas/national/``: a JSON envelope with the case in ``data``; every
answer is HTTP 200 with a business ``code`` (``0`` success). It validates envelope and data
against the JSON Schemas, checks the ``appId``, dedupes on ``X-Idempotency-Key`` and answers the
same receipt to a duplicate, and misbehaves on command (see :mod:`gateway.simulators.base`):
``business_error`` (code 40003 unless ``code`` given), ``throttle`` (42900), ``malformed``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from gateway.simulators.base import SimulatorState, add_control_routes, apply_common

SCHEMAS = Path(__file__).resolve().parent.parent.parent / "schemas" / "national"
PATH = "/api/v1/cross-province/cases"


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text(encoding="utf-8")))


def _answer(code: str, msg: str, data: dict[str, Any] | None = None) -> web.Response:
    doc: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        doc["data"] = data
    return web.Response(text=json.dumps(doc, ensure_ascii=False),
                        content_type="application/json", charset="utf-8")


def _first_error(v: Draft202012Validator, doc: Any, prefix: str) -> str | None:
    errs = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errs:
        return None
    e = errs[0]
    path = "/".join(str(p) for p in e.absolute_path)
    return f"{prefix}/{path}: {e.message}"


def create_app(*, app_ids: tuple[str, ...] = ("BJ-GATEWAY-DEMO",), **_: Any) -> web.Application:
    """The simulator app. ``app_ids`` are the envelope ``appId`` values it accepts."""
    state = SimulatorState("national", receipt_prefix="QG")
    envelope_v = _validator("envelope.schema.json")
    data_v = _validator("case-submit.schema.json")

    async def submit(request: web.Request) -> web.StreamResponse:
        behaviour = state.next_behaviour()
        early = await apply_common(request, behaviour)
        if early is not None:
            return early
        if behaviour.mode == "malformed":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>",
                                content_type="text/html")
        if behaviour.mode == "throttle":
            return _answer(behaviour.code or "42900", behaviour.message or "请求过于频繁")
        try:
            doc = json.loads(await request.read())
        except ValueError:
            return _answer("40000", "请求体不是合法的JSON")
        if err := _first_error(envelope_v, doc, ""):
            return _answer("40001", f"报文格式错误 {err}")
        if doc["appId"] not in app_ids:
            return _answer("40100", f"未授权的appId {doc['appId']}")
        if err := _first_error(data_v, doc["data"], "/data"):
            return _answer("40001", f"数据校验失败 {err}")
        key = request.headers.get("X-Idempotency-Key")
        if not key:
            return _answer("40002", "缺少X-Idempotency-Key")
        if behaviour.mode == "business_error":
            return _answer(behaviour.code or "40003",
                           behaviour.message or f"事项编码不存在 {doc['data']['taskCode']}")
        with state.handling(key):
            if behaviour.mode == "slow_accept":
                import asyncio
                await asyncio.sleep(behaviour.delay)
            received = state.accept(key, doc["data"], {"X-Correlation-Id":
                                                       request.headers.get("X-Correlation-Id", "")})
        return _answer("0", "成功", {"receiptNo": received.receipt_no,
                                   "projectNo": doc["data"]["projectNo"],
                                   "duplicate": received.duplicate})

    async def query(request: web.Request) -> web.Response:
        receipt = request.match_info["receipt"]
        for m in state.messages:
            if m.receipt_no == receipt:
                return _answer("0", "成功", {"receiptNo": receipt, "proStatus": "RECEIVED"})
        return _answer("40400", f"办件不存在 {receipt}")

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post(PATH, submit)
    app.router.add_get(PATH + "/{receipt}", query)
    add_control_routes(app, state)
    return app
