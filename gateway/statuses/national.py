"""``POST /api/v1/partners/national/status``: the national platform's status push, in its
envelope (``schemas/national/envelope.schema.json``, ``data`` per status-callback.schema.json).

The envelope is opened under the national partner's own envelope settings
(``partners.national.options.enc_type``/``sign_type``, keys in its credentials; see
:mod:`gateway.protocols.envelopes`): with ``sign_type: SM2`` a push must carry ``signData`` that
verifies with ``peer_public_key``; with ``enc_type: SM4`` its ``data`` comes as ``encData``.

Every answer is HTTP 200 ``{code, msg}`` as the contract says (``0`` taken; ``40001`` invalid
request, naming the field (``encData`` that does not decrypt, an ``encType`` other than the one
agreed); ``40100`` unknown ``appId``, a missing or wrong ``signData``, or a ``signType`` other than
the one agreed, a signed ``timestamp`` outside ``inbound.max_age``/``max_ahead`` or a ``nonce``
already used (the shared nonce store);
``50001`` the gateway is busy: send again), never a 5xx. A push the gateway keeps is ``0``, also
one it cannot map yet or one it already has (the platform resends with the same
``X-Idempotency-Key``).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from gateway.api.auth import NONCES
from gateway.config import InboundSettings, Settings
from gateway.errors import ConfigError, StoreError
from gateway.protocols.envelopes import (PLAIN, EnvelopeError, EnvelopeSecurity,
                                         open_message)
from gateway.schemacheck import describe_error, format_checker, human_validator
from gateway.statuses.body import TooLarge, read_body
from gateway.statuses.inbound_auth import limits
from gateway.statuses.receive import RECEIVER, RawStatus

log = logging.getLogger("gateway.statuses")
PATH = "/api/v1/partners/national/status"
PARTNER = "national"
OK, INVALID, UNAUTHORISED, BUSY = "0", "40001", "40100", "50001"
NONCE_SCOPE = "national-push"
_Validator = human_validator(Draft202012Validator)


def push_security(settings: Settings) -> EnvelopeSecurity:
    """How pushes are opened: the national partner's envelope settings (unsigned without it)."""
    p = settings.partners.get(PARTNER)
    if p is None:
        return PLAIN
    security = EnvelopeSecurity.of_partner(PARTNER, p.options, p.credentials)
    if p.inbound is not None and p.inbound.scheme == "national-sm2" and \
            security.sign_type != "SM2":
        raise ConfigError("national-sm2 needs partners.national.options.sign_type: SM2 (and "
                          "its keys)", key=f"partners.{PARTNER}.inbound.scheme")
    return security


def _answer(code: str, msg: str, data: dict[str, Any] | None = None) -> web.Response:
    doc: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        doc["data"] = data
    return web.json_response(doc, dumps=lambda d: json.dumps(d, ensure_ascii=False))


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _problems(validator: Any, doc: Any, prefix: str) -> list[str]:
    errs = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{prefix}/{'/'.join(str(p) for p in e.absolute_path)}: {describe_error(e)}"
            for e in errs[:5]]


def _load(path: Path) -> Any:
    return _Validator(json.loads(path.read_text(encoding="utf-8")),
                      format_checker=format_checker())


class NationalEndpoint:
    def __init__(self, inbound: InboundSettings | None,
                 schemas: Path, max_body: int, security: EnvelopeSecurity = PLAIN) -> None:
        self.inbound = inbound
        self.security = security
        self.max_body = max_body
        self.envelope = _load(schemas / "national" / "envelope.schema.json")
        self.data = _load(schemas / "national" / "status-callback.schema.json")

    async def _replay(self, request: web.Request, doc: dict[str, Any]) -> web.Response | None:
        """The signed ``timestamp`` within ``inbound.max_age``/``max_ahead`` and the signed
        ``nonce`` never seen before (the shared nonce store): a captured push replayed (with a
        new ``X-Idempotency-Key``, which the signature does not cover) is refused."""
        max_age, max_ahead = limits(self.inbound)
        sent, now = doc["timestamp"] / 1000, time.time()
        if not now - max_age <= sent <= now + max_ahead:
            return _answer(UNAUTHORISED, f"/timestamp: {doc['timestamp']} is outside the "
                                         f"accepted window (-{max_age:g} s, +{max_ahead:g} s)")
        try:
            fresh = await request.app[NONCES].remember(
                NONCE_SCOPE, doc["nonce"], expires_at=sent + max_age + max_ahead)
        except StoreError as e:
            log.error("national status push: nonce not checked: %s", e)
            return _answer(BUSY, "系统繁忙, 请稍后重发 (the gateway could not check the nonce)")
        if not fresh:
            return _answer(UNAUTHORISED, "/nonce: already used (a replayed push)")
        return None

    async def opened(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The push's ``data``, its envelope opened and checked (appId, schema, signature,
        freshness) and the data valid against ``self.data``; or the answer refusing it. The
        back-flow push (gateway.backflow.push) opens its envelope through the same steps."""
        try:
            raw = await read_body(request, self.max_body)
        except TooLarge as e:
            return _answer(INVALID, str(e))
        try:
            doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            return _answer(INVALID, f"the body is not UTF-8 JSON ({type(e).__name__})")
        if not isinstance(doc, dict):
            return _answer(INVALID, "the body is not a JSON object (the national envelope)")
        app_id, inbound = doc.get("appId"), self.inbound
        if inbound is None or inbound.app_id is None or not isinstance(app_id, str) or \
                not hmac.compare_digest(app_id.encode(), inbound.app_id.encode()):
            return _answer(UNAUTHORISED, "未授权的appId (unknown appId)")
        if problems := _problems(self.envelope, doc, ""):
            return _answer(INVALID, "; ".join(problems))
        sec = self.security
        if doc["signType"] != sec.sign_type:
            return _answer(UNAUTHORISED, f"/signType: {doc['signType']!r}, the gateway expects "
                                         f"{sec.sign_type!r} for this appId")
        if doc["encType"] != sec.enc_type:
            return _answer(INVALID, f"/encType: {doc['encType']!r}, the gateway expects "
                                    f"{sec.enc_type!r} for this appId")
        try:
            doc = open_message(doc, sec)
        except EnvelopeError as e:
            log.warning("national status push refused: %s", e)
            return _answer(UNAUTHORISED if e.field == "signData" else INVALID, f"/{e}")
        if sec.sign_type == "SM2":  # a signed push is fresh and used once, on any instance
            refused = await self._replay(request, doc)
            if refused is not None:
                return refused
        data: dict[str, Any] = doc["data"]
        if problems := _problems(self.data, data, "/data"):
            return _answer(INVALID, "; ".join(problems))
        return data

    async def handle(self, request: web.Request) -> web.Response:
        receiver = request.app[RECEIVER]
        data = await self.opened(request)
        if isinstance(data, web.Response):
            return data
        key = request.headers.get("X-Idempotency-Key")
        event_id = key.strip()[:128] or None if key else None
        raw_status = RawStatus(code=data.get("proStatus"), national_case_no=data.get("projectNo"),
                               application_no=data.get("localProjectNo"),
                               occurred_at=data.get("statusTime"))
        event = receiver.event(PARTNER, data, raw_status, event_id=event_id)
        try:
            applied = await receiver.apply(event)
        except StoreError as e:
            log.error("national status callback not stored: %s", e)
            return _answer(BUSY, "系统繁忙, 请稍后重发 (the gateway could not store the push)")
        return _answer(OK, "成功", {"duplicate": applied.duplicate,
                                  **({"flag": str(applied.flag)} if applied.flag else {})})
