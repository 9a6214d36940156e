"""``rest-json``: JSON over HTTP POST, business ``code`` inside an HTTP 200 (national style).

Options (``partners.<name>.options``):

* ``envelope``: ``national`` | ``none`` (see :mod:`gateway.protocols.envelopes`)
* ``enc_type`` (``SM4`` | ``NONE``), ``sign_type`` (``SM2`` | ``NONE``), ``sm2_signature``
  (``raw`` | ``der``), ``sm2_cipher_order`` (``C1C3C2`` | ``C1C2C3``): the national envelope's
  encryption and signature, keys from the credentials (:mod:`gateway.security.keys`). A reply
  whose signature or ``encData`` does not open is not trusted: a retryable outcome naming why
* ``success_codes`` / ``retryable_codes``: business codes; any other code is permanent
* ``code_field`` (``code``), ``message_field`` (``msg``), ``receipt_field`` (``data.receiptNo``)
* ``auth``: how each request is signed, a scheme named in
  :data:`~gateway.protocols.options.AUTH_SCHEMES`: ``none`` (default) or ``x-tif`` (the city
  platform's headers, from the credentials ``paasid`` and ``token``; a new timestamp and nonce
  for every attempt) or ``hmac-sha256`` (credentials ``key_id`` and ``secret``; HMAC over method,
  path, timestamp, nonce and the body's SHA-256, :mod:`gateway.protocols.hmac_auth`)
* ``auth_options``: the scheme's own options (``hmac-sha256``: header names, canonical string,
  encodings — :class:`~gateway.protocols.hmac_auth.HmacOptions`)
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
from pydantic import Field

from gateway import jsoncodec
from gateway.config import PartnerSettings
from gateway.outcome import Outcome
from gateway.protocols import transport
from gateway.protocols.classify import BusinessCodes, outcome_from_http
from gateway.protocols.envelopes import EnvelopeError, partner_envelope
from gateway.protocols.options import (RequestAuth, StyleOptions, auth_headers, parse_options,
                                      request_auth)
from gateway.security.tls import partner_tls


class RestJsonOptions(StyleOptions):
    """The ``rest-json`` options (module docstring)."""

    envelope: str = "none"
    enc_type: Literal["SM4", "NONE"] = "NONE"
    sign_type: Literal["SM2", "NONE"] = "NONE"
    sm2_signature: Literal["raw", "der"] = "raw"
    sm2_cipher_order: Literal["C1C3C2", "C1C2C3"] = "C1C3C2"
    success_codes: tuple[str, ...] = ("0",)
    retryable_codes: tuple[str, ...] = ()
    code_field: str = "code"
    message_field: str = "msg"
    receipt_field: str = "data.receiptNo"
    auth: str = "none"
    auth_options: dict[str, Any] = Field(default_factory=dict)  # the scheme's (hmac-sha256)


MAX_JSON_DEPTH = 64
"""Deepest nesting accepted in a partner's JSON reply (real replies nest three or four deep)."""


def load_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a partner's JSON reply; ``ValueError`` names what is wrong.

    Refused: bytes that are not UTF-8, non-standard ``NaN``/``Infinity``, and nesting deeper
    than ``max_depth`` (the C parser's own recursion guard raises ``RecursionError`` long after
    that, with a traceback nobody needs in a dead letter).
    """
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 at byte {e.start}") from None
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at line {e.lineno} column {e.colno}): "
                         f"{raw[:120]!r}") from None
    except ValueError as e:  # a 5000-digit number, NaN, Infinity
        raise ValueError(f"unreadable JSON: {e}") from None
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise ValueError(f"JSON nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


class RestJsonClient:
    def __init__(self, name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                 options: RestJsonOptions, auth: RequestAuth | None = None) -> None:
        self.name = name
        self.auth = auth
        self.settings = settings
        self.http = http
        self.options = options
        self.tls = partner_tls(name, settings)  # partners.<name>.tls; None: default verification
        self.envelope = partner_envelope(name, settings.options, settings.credentials)
        self.codes = BusinessCodes.of(options.success_codes, options.retryable_codes,
                                      settings.retry.throttle_codes)

    async def send(self, payload: Any, *, idempotency_key: str, correlation_id: str) -> Outcome:
        body = self.envelope(payload, self.settings.credentials)
        headers = {"X-Idempotency-Key": idempotency_key, "X-Correlation-Id": correlation_id,
                   "Content-Type": "application/json; charset=utf-8"}
        data = jsoncodec.dumps(body).encode("utf-8")
        headers.update(auth_headers(self.auth, method="POST", url=self.settings.url, body=data))
        reply = await transport.post(self.http, self.settings.url, data, headers=headers,
                                     timeout=self.settings.timeout,
                                     max_bytes=self.settings.max_reply_bytes, tls=self.tls)
        if isinstance(reply, Outcome):
            return reply
        failed = outcome_from_http(reply.status, reply.headers, now=datetime.now(UTC),
                                   message=f"HTTP {reply.status}: "
                                           f"{reply.body[:200].decode('utf-8', 'replace')}")
        if failed is not None:
            return failed
        try:
            doc = await transport.off_loop(len(reply.body), functools.partial(load_json, reply.body))
        except ValueError as e:
            # The partner may or may not have taken it; a retry is safe because it dedupes.
            return Outcome.retryable(f"malformed reply: {e}", http_status=reply.status)
        try:
            doc = self.envelope.open(doc, answers=body.get("nonce"))
        except EnvelopeError as e:
            # Whatever it says (a receipt, a refusal) is not the partner's word: ask again.
            return Outcome.retryable(f"reply not trusted: {e}", http_status=reply.status)
        return self._business(doc, reply.status)

    def _business(self, doc: Any, status: int) -> Outcome:
        o = self.options
        code = _dig(doc, o.code_field)
        msg = str(_dig(doc, o.message_field) or "")
        if code is None:
            return Outcome.retryable(f"reply has no {o.code_field}", http_status=status)
        if not isinstance(code, str | int) or isinstance(code, bool):
            return Outcome.retryable(f"malformed reply: {o.code_field} is a {type(code).__name__}",
                                     http_status=status)
        receipt = _dig(doc, o.receipt_field)
        return self.codes.outcome(code, msg, receipt_no=None if receipt is None else str(receipt),
                                  receipt_field=o.receipt_field, http_status=status)

    async def close(self) -> None:
        return None


def create_client(name: str, settings: PartnerSettings, http: aiohttp.ClientSession) -> RestJsonClient:
    options = parse_options(RestJsonOptions, name, settings.options)
    auth = request_auth(name, options.auth, settings.credentials, options.auth_options)
    return RestJsonClient(name, settings, http, options, auth)
