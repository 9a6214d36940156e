"""Simulator of the national platform's 跨省通办 REST channel.

Speaks the contract in ``schemas/national/``: a JSON envelope with the case in ``data``; every
answer is HTTP 200 with a business ``code`` (``0`` success). It validates envelope and data
against the JSON Schemas, checks the ``appId``, dedupes on ``X-Idempotency-Key`` and answers the
same receipt to a duplicate, and misbehaves on command (see :mod:`gateway.simulators.base`):
``business_error`` (code 40003 unless ``code`` given), ``throttle`` (42900), ``malformed``.

Statuses (:mod:`gateway.simulators.statuses`): a case starts ``RECEIVED`` and moves in the
exchange's semantic codes (``resultCode`` 1 准予 / 2 不予). Endpoints besides the submission,
all answering ``{code, msg, data}``:

* ``POST /api/v1/cross-province/status/query``   envelope, ``data`` status-query.schema.json
  (``receiptNo`` | ``projectNo`` | ``localProjectNo`` [+ ``taskCode``] | ``idempotencyKey``)
  → ``data`` status-record.schema.json, or code ``40400`` 办件不存在 when it holds no such case
* ``POST /api/v1/cross-province/status/export``  envelope, ``data`` ``{cursor?, limit}`` → ``data``
  ``{records, nextCursor}`` (status-export.schema.json); generated populations and faults:
  :mod:`gateway.simulators.export`, set by ``POST /__sim/export``
* ``GET  /api/v1/cross-province/cases/{receipt}`` the same record by receipt (kept for callers
  of the first version)

With a callback URL configured, every status change is posted there as the national status push
(status-callback.schema.json in the envelope, ``appId`` from ``callback_auth.app_id``, the event
id as ``X-Idempotency-Key``).

Beijing's notifications (issue 15): the status of a case the platform submitted to Beijing arrives
at ``NOTIFY_PATH`` in the same envelope (``data`` per status-callback.schema.json), deduped on
``X-Idempotency-Key``; ``/__sim/state`` shows them as ``notifications``.

Signed and encrypted (``security``: the platform's side of
:class:`~gateway.protocols.envelopes.EnvelopeSecurity`, its own private key, the gateway's public
key, the SM4 key; ``gateway simulate national --keys DIR``): a request must say the agreed
``signType``/``encType`` and carry a ``signData`` that verifies with the gateway's public key,
else ``40101`` 签名验证失败 (naming ``signData``); ``encData`` that does not decrypt is ``40102``
数据解密失败. Every answer, export page and status push is then sealed the same way (``encData``
and ``signData`` over ``code``, ``msg``, …); an answer echoes the request's ``nonce``. Mode
``bad_signature`` alters the next answer's ``signData`` (a forged or damaged reply).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import dataclasses
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from jsonschema import Draft202012Validator

from gateway.simulators import backflow
from gateway.config import Settings
from gateway.protocols.envelopes import EnvelopeError, EnvelopeSecurity, open_message, seal
from gateway.security import keys
from gateway.security.sm import SignatureEncoding, SM2PrivateKey, SM2PublicKey, sm4_key
from gateway.simulators.base import NotifiedState, SimulatorState, add_control_routes, apply_common
from gateway.simulators.export import Export, control_route, page_answer, parse_cursor
from gateway.simulators.statuses import (
    CallbackRequest,
    SimCase,
    StatusConfig,
    StatusEvent,
    StatusProfile,
    plain_time,
)

SCHEMAS = Path(__file__).resolve().parent.parent.parent / "schemas" / "national"
PATH = "/api/v1/cross-province/cases"
QUERY_PATH = "/api/v1/cross-province/status/query"
EXPORT_PATH = "/api/v1/cross-province/status/export"
#: where Beijing notifies the platform of a case submitted through it (issue 15): the status
#: callback envelope, ``data`` per status-callback.schema.json, deduped on X-Idempotency-Key
NOTIFY_PATH = "/api/v1/cross-province/status/callback"
DEFAULT_CALLBACK_APP_ID = "NATIONAL-PLATFORM"
NOT_FOUND = "40400"
#: a licensing body's USCC (synthetic, valid GB 32100 check character)
ISSUER_USCC = "113100000000123475"

EXPORT = web.AppKey("national_export", Export)
PARTNER_NAME = "national"


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((SCHEMAS / name).read_text(encoding="utf-8")))


SIGNATURE_FAILED, DECRYPTION_FAILED = "40101", "40102"


#: the ``nonce`` of the request being answered (a signed answer echoes it: the gateway then knows
#: the answer is to this request, not a captured answer to another)
_ANSWERING: ContextVar[str | None] = ContextVar("answering_nonce", default=None)


def _answer(code: str, msg: str, data: Any = None, *,
            security: EnvelopeSecurity | None = None, tamper: bool = False) -> web.Response:
    doc: dict[str, Any] = {"code": code, "msg": msg}
    if security is not None:
        if (nonce := _ANSWERING.get()) is not None:
            doc["nonce"] = nonce
        seal(doc, data, security)
        if tamper and "signData" in doc:
            sig = bytearray(base64.b64decode(doc["signData"]))
            sig[len(sig) // 2] ^= 0x01
            doc["signData"] = base64.b64encode(bytes(sig)).decode()
    elif data is not None:
        doc["data"] = data
    return web.Response(text=json.dumps(doc, ensure_ascii=False),
                        content_type="application/json", charset="utf-8")


def _refusal(e: EnvelopeError) -> tuple[str, str]:
    if e.field == "signData":
        return SIGNATURE_FAILED, f"签名验证失败 /{e}"
    return DECRYPTION_FAILED, f"数据解密失败 /{e}"


def _first_error(v: Draft202012Validator, doc: Any, prefix: str) -> str | None:
    errs = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errs:
        return None
    e = errs[0]
    path = "/".join(str(p) for p in e.absolute_path)
    return f"{prefix}/{path}: {e.message}"


def create_app(*, app_ids: tuple[str, ...] = ("BJ-GATEWAY-DEMO",),
               callback_url: str | None = None, callback_auth: Mapping[str, Any] | None = None,
               dedupe: bool = True, security: EnvelopeSecurity | None = None,
               **_: Any) -> web.Application:
    """The simulator app. ``app_ids`` are the envelope ``appId`` values it accepts;
    ``callback_url``/``callback_auth`` (``{"app_id"}``) and ``dedupe`` are the start-up values
    of ``/__sim/config``; ``security`` signs and encrypts (module docstring)."""
    profile = dataclasses.replace(PROFILE, notifier=Notifier(security))
    state = NotifiedState("national", receipt_prefix="QG", profile=profile,
                           config=StatusConfig(callback_url, dict(callback_auth or {}),
                                               dedupe=dedupe))
    def answer(code: str, msg: str, data: Any = None, *, tamper: bool = False) -> web.Response:
        return _answer(code, msg, data, security=security, tamper=tamper)

    envelope_v = _validator("envelope.schema.json")
    data_v = _validator("case-submit.schema.json")
    query_v = _validator("status-query.schema.json")
    notify_v = _validator("status-callback.schema.json")
    export_request_v = Draft202012Validator(
        json.loads((SCHEMAS / "status-export.schema.json").read_text("utf-8"))["$defs"]["request"])
    export = Export()

    async def opened(request: web.Request, v: Draft202012Validator) -> dict[str, Any] | web.Response:
        """The envelope's ``data``, checked; or the answer refusing it."""
        try:
            doc = json.loads(await request.read())
        except ValueError:
            return answer("40000", "请求体不是合法的JSON")
        if isinstance(doc, dict) and isinstance(doc.get("nonce"), str):
            _ANSWERING.set(doc["nonce"])
        if err := _first_error(envelope_v, doc, ""):
            return answer("40001", f"报文格式错误 {err}")
        if doc["appId"] not in app_ids:
            return answer("40100", f"未授权的appId {doc['appId']}")
        if security is not None:
            if doc["signType"] != security.sign_type:
                return answer(SIGNATURE_FAILED, f"签名验证失败 /signType: 须为 {security.sign_type}")
            if doc["encType"] != security.enc_type:
                return answer(DECRYPTION_FAILED, f"数据解密失败 /encType: 须为 {security.enc_type}")
            try:
                doc = open_message(doc, security)
            except EnvelopeError as e:
                return answer(*_refusal(e))
        elif "data" not in doc:  # encrypted, but this simulator was started without keys
            return answer(DECRYPTION_FAILED, "数据解密失败 /encData: 未配置密钥 (no --keys)")
        if err := _first_error(v, doc["data"], "/data"):
            return answer("40001", f"数据校验失败 {err}")
        data: dict[str, Any] = doc["data"]
        return data

    async def submit(request: web.Request) -> web.StreamResponse:
        behaviour = state.next_behaviour()
        early = await apply_common(request, behaviour)
        if early is not None:
            return early
        if behaviour.mode == "malformed":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>",
                                content_type="text/html")
        if behaviour.mode == "throttle":
            return answer(behaviour.code or "42900", behaviour.message or "请求过于频繁")
        data = await opened(request, data_v)
        if isinstance(data, web.Response):
            return data
        key = request.headers.get("X-Idempotency-Key")
        if not key:
            return answer("40002", "缺少X-Idempotency-Key")
        if behaviour.mode == "business_error":
            return answer(behaviour.code or "40003",
                           behaviour.message or f"事项编码不存在 {data['taskCode']}")
        refs = {k: data.get(k) for k in ("projectNo", "localProjectNo", "taskCode", "areaCode")}
        with state.handling(key):
            if behaviour.mode == "slow_accept":
                await asyncio.sleep(behaviour.delay)
            received = state.accept(key, data, {"X-Correlation-Id":
                                                request.headers.get("X-Correlation-Id", "")},
                                    refs=refs)
        return answer("0", "成功", {"receiptNo": received.receipt_no,
                                  "projectNo": data["projectNo"],
                                  "duplicate": received.duplicate},
                      tamper=behaviour.mode == "bad_signature")

    async def notified(request: web.Request) -> web.StreamResponse:
        """Beijing's status of a case the platform submitted to Beijing: code 0 with the
        platform's number for it (the same for a resend of the X-Idempotency-Key), 40001 naming
        the field, 40002 without a key."""
        behaviour = state.next_behaviour()
        early = await apply_common(request, behaviour)
        if early is not None:
            return early
        data = await opened(request, notify_v)
        if isinstance(data, web.Response):
            return data
        key = request.headers.get("X-Idempotency-Key")
        if not key:
            return answer("40002", "缺少X-Idempotency-Key")
        duplicate = state.notified(key, {"data": data})
        # the platform's number for the notification (the first one again for a resend)
        number = [n["key"] for n in state.notifications if not n["duplicate"]].index(key) + 1
        return answer("0", "重复通知，已接收" if duplicate else "成功",
                      {"receiptNo": f"QGTZ{number:08d}", "duplicate": duplicate})

    async def by_receipt(request: web.Request) -> web.Response:
        case = state.book.find(receipt=request.match_info["receipt"])
        if case is None:
            return answer(NOT_FOUND, f"办件不存在 {request.match_info['receipt']}")
        return answer("0", "成功", status_record(case))

    async def query(request: web.Request) -> web.StreamResponse:
        behaviour = state.next_behaviour()
        early = await apply_common(request, behaviour)
        if early is not None:
            return early
        if behaviour.mode == "throttle":
            return answer(behaviour.code or "42900", behaviour.message or "请求过于频繁")
        data = await opened(request, query_v)
        if isinstance(data, web.Response):
            return data
        case = find(state, data)
        if case is None:
            return answer(NOT_FOUND, "办件不存在")
        return answer("0", "成功", status_record(case), tamper=behaviour.mode == "bad_signature")

    async def export_page(request: web.Request) -> web.StreamResponse:
        data = await opened(request, export_request_v)
        if isinstance(data, web.Response):
            return data
        limit = int(data["limit"])
        cfg = export.config
        try:
            if cfg.generated is not None:
                cur = parse_cursor(data.get("cursor"), "g")
                offset = int(cur or 0)
            else:
                after = parse_cursor(data.get("cursor"), "s")
                receipts = sorted(state.book.cases)
                offset = bisect.bisect_right(receipts, after) if isinstance(after, str) else 0
        except ValueError as e:
            return answer("40001", f"数据校验失败 /data/cursor: {e}")
        page = offset // limit + 1
        if export.fault("http500", page):
            return web.Response(status=500, text="simulated internal error")
        if export.fault("slow", page):
            await asyncio.sleep(cfg.slow_delay)
        start = max(0, offset - cfg.repeat_count) if export.fault("repeat", page) else offset
        if cfg.generated is not None:
            records, count, nxt = export.generated_page(offset, limit, start)
            next_cursor = None if nxt is None else f"g:{nxt}"
        else:
            chosen = receipts[start:offset + limit]
            count = len(chosen)
            records = json.dumps([status_record(state.book.cases[r]) for r in chosen],
                                 ensure_ascii=False, separators=(",", ":"))
            more = offset + limit < len(receipts)
            next_cursor = f"s:{receipts[offset + limit - 1]}" if more else None
        export.stats.pages += 1
        export.stats.records += count
        return page_answer(records, next_cursor, None if security is None else (
            lambda data: answer("0", "成功", data, tamper=export.fault("bad_signature", page))))

    export_control = control_route(export, "export", lambda: asdict(export.config))

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[EXPORT] = export
    backflow.mount(app, opened,  # the data back-flow export (数据回流), sealed when it has keys
                   None if security is None else lambda data: answer("0", "成功", data))
    app.router.add_post(PATH, submit)
    app.router.add_get(PATH + "/{receipt}", by_receipt)
    app.router.add_post(QUERY_PATH, query)
    app.router.add_post(EXPORT_PATH, export_page)
    app.router.add_post(NOTIFY_PATH, notified)
    app.router.add_route("*", "/__sim/export", export_control)
    add_control_routes(app, state)
    return app


def platform_security(folder: Path, *, signature: SignatureEncoding = "raw",
                      enc_type: Literal["SM4", "NONE"] = "SM4",
                      sign_type: Literal["SM2", "NONE"] = "SM2") -> EnvelopeSecurity:
    """The platform's side, from the files ``gateway keys generate --out DIR`` writes: its own
    ``national.key``, the gateway's ``gateway.pub`` and the shared ``sm4.key``."""
    def read(name: str) -> str:
        return (folder / name).read_text(encoding="ascii").strip()
    return EnvelopeSecurity(enc_type, sign_type, signature,
                            SM2PrivateKey.from_hex(read("national.key")),
                            SM2PublicKey.from_hex(read("gateway.pub")),
                            sm4_key(read("sm4.key")) if enc_type == "SM4" else None)


def sign_demo(settings: Settings, folder: Path
              ) -> tuple[Settings, EnvelopeSecurity | None, Callable[[], None]]:
    """The demo's national partner signed and encrypted (SM2/SM4) with the keys in ``folder``
    (``data/keys``, the files ``gateway keys generate`` writes), and the platform's side for its
    simulator. Missing keys are made now and written by the returned ``save`` (called once the
    demo holds its ports: a demo that cannot start leaves no files). A national partner whose
    configuration already chooses ``sign_type``/``enc_type`` is left as configured."""
    p = settings.partners.get(PARTNER_NAME)
    if p is None or p.options.get("envelope") != "national" or \
            {"sign_type", "enc_type"} & set(p.options):
        return settings, None, lambda: None
    names = ("gateway.key", "national.key", "sm4.key")
    if all((folder / n).exists() for n in names):
        own, platform, shared = (SM2PrivateKey.from_hex(_read(folder, "gateway.key")),
                                 SM2PrivateKey.from_hex(_read(folder, "national.key")),
                                 sm4_key(_read(folder, "sm4.key")))
        save: Callable[[], None] = lambda: None  # noqa: E731
    else:
        own, platform, shared = SM2PrivateKey.generate(), SM2PrivateKey.generate(), os.urandom(16)

        def save() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in (("gateway.key", own.hex()), ("gateway.pub", own.public.hex()),
                               ("national.key", platform.hex()),
                               ("national.pub", platform.public.hex()),
                               ("sm4.key", shared.hex())):
                keys.write_secret(folder / name, text)
    signed = p.model_copy(update={
        "options": {**p.options, "enc_type": "SM4", "sign_type": "SM2"},
        "credentials": {**p.credentials, "sm2_private_key": own.hex(),
                        "peer_public_key": platform.public.hex(), "sm4_key": shared.hex()}})
    partners = {**settings.partners, PARTNER_NAME: signed}
    notify = partners.get(f"{PARTNER_NAME}-status")  # Beijing's notifications: the same keys
    if notify is not None and notify.options.get("envelope") == "national":
        partners[f"{PARTNER_NAME}-status"] = notify.model_copy(update={
            "options": {**notify.options, "enc_type": "SM4", "sign_type": "SM2"},
            "credentials": {**notify.credentials, **signed.credentials}})
    settings = settings.model_copy(update={"partners": partners})
    return settings, EnvelopeSecurity("SM4", "SM2", "raw", platform, own.public, shared), save


def _read(folder: Path, name: str) -> str:
    return (folder / name).read_text(encoding="ascii").strip()


def find(state: SimulatorState, data: Mapping[str, Any]) -> SimCase | None:
    """The case a status query names (status-query.schema.json)."""
    book = state.book
    if "receiptNo" in data:
        return book.find(receipt=data["receiptNo"])
    if "idempotencyKey" in data:
        return book.find(key=data["idempotencyKey"])
    for field in ("projectNo", "localProjectNo"):
        if field in data:
            return next((c for c in book.cases.values() if c.refs.get(field) == data[field]
                         and data.get("taskCode") in (None, c.refs.get("taskCode"))), None)
    return None


def callback_data(case: SimCase, event: StatusEvent) -> dict[str, Any]:
    """The status push for one event (status-callback.schema.json)."""
    d: dict[str, Any] = {"projectNo": case.refs.get("projectNo"),
                         "localProjectNo": case.refs.get("localProjectNo"),
                         "taskCode": case.refs.get("taskCode"),
                         "areaCode": case.refs.get("areaCode"),
                         "proStatus": event.status, "resultCode": event.result,
                         "statusTime": plain_time(event.at),
                         "handleDeptName": event.department, "opinion": event.message}
    if event.licences:
        d["licences"] = [{k: v for k, v in (("licenceId", lic.get("licenceId")),
                                            ("licenceTypeCode", lic.get("typeCode")),
                                            ("licenceName", lic.get("name")),
                                            ("holderCertNo", lic.get("holderCertNo"))) if v}
                         for lic in event.licences]
    return {k: v for k, v in d.items() if v is not None}


def status_record(case: SimCase) -> dict[str, Any]:
    """The case's current status (status-record.schema.json)."""
    return {"receiptNo": case.receipt, "idempotencyKey": case.key,
            **callback_data(case, case.current)}


class Notifier:
    """The national platform pushes a status: its envelope, ``X-Idempotency-Key`` = event id;
    sealed (``encData``, ``signData``) with ``security``."""

    def __init__(self, security: EnvelopeSecurity | None = None) -> None:
        self.security = security or EnvelopeSecurity()

    def request(self, case: SimCase, event: StatusEvent,
                auth: Mapping[str, Any]) -> CallbackRequest:
        s = self.security
        envelope: dict[str, Any] = {
            "appId": str(auth.get("app_id", "")), "version": "1.0",
            "timestamp": int(time.time() * 1000), "nonce": secrets.token_hex(16),
            "encType": s.enc_type, "signType": s.sign_type}
        seal(envelope, callback_data(case, event), s)
        return CallbackRequest(json.dumps(envelope, ensure_ascii=False).encode("utf-8"),
                               {"Content-Type": "application/json; charset=utf-8",
                                "X-Idempotency-Key": event.event_id})

    def verdict(self, status: int, body: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(body)
            code, msg = str(doc.get("code")), doc.get("msg")
        except (ValueError, AttributeError):
            return {"ok": False, "code": None, "message": "answer is not a JSON object"}
        return {"ok": status == 200 and code == "0", "code": code, "message": msg}


def _licence(case: SimCase) -> dict[str, str]:
    serial = "".join(ch for ch in case.receipt if ch.isdigit())[-8:]
    return {"licenceId": f"1.2.156.3005.2.{ISSUER_USCC}.003.{serial}",
            "typeCode": f"{ISSUER_USCC}003", "name": "准予行政许可决定书"}


PROFILE = StatusProfile(
    initial="RECEIVED",
    codes=frozenset({"SUBMITTED", "PRECHECK_RETURNED", "PRECHECK_PASSED", "RECEIVED",
                     "SUPPLEMENT_REQUIRED", "ACCEPTED", "IN_REVIEW", "SUSPENDED", "FINISHED",
                     "NOT_ACCEPTED", "WITHDRAWN", "VOIDED"}),
    results=frozenset({"1", "2"}),
    paths={
        "approved": (("ACCEPTED", None), ("IN_REVIEW", None), ("FINISHED", "1")),
        "denied": (("ACCEPTED", None), ("IN_REVIEW", None), ("FINISHED", "2")),
        "supplement": (("SUPPLEMENT_REQUIRED", None), ("ACCEPTED", None), ("IN_REVIEW", None),
                       ("FINISHED", "1")),
        "suspended": (("ACCEPTED", None), ("IN_REVIEW", None), ("SUSPENDED", None),
                      ("IN_REVIEW", None), ("FINISHED", "1")),
        "not_accepted": (("NOT_ACCEPTED", None),),
        "withdrawn": (("ACCEPTED", None), ("WITHDRAWN", None)),
        "voided": (("ACCEPTED", None), ("VOIDED", None)),
    },
    notifier=Notifier(),
    default_auth={"app_id": DEFAULT_CALLBACK_APP_ID},
    granted="1",
    licence=_licence,
)
