"""``rest-json``: JSON over HTTP POST, business ``code`` inside an HTTP 200 (national style).

Options (``partners.<name>.options``):

* ``envelope``: ``national`` | ``none`` (see :mod:`gateway.protocols.envelopes`)
* ``success_codes`` / ``retryable_codes``: business codes; any other code is permanent
* ``code_field`` (``code``), ``message_field`` (``msg``), ``receipt_field`` (``data.receiptNo``)
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.protocols.base import Outcome, OutcomeKind
from gateway.protocols.envelopes import ENVELOPES
from gateway.retry.classify import BusinessCodes, classify_exception, outcome_from_http


class RestJsonOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    envelope: str = "none"
    success_codes: tuple[str, ...] = ("0",)   # read by BusinessCodes.from_options
    retryable_codes: tuple[str, ...] = ()
    code_field: str = "code"
    message_field: str = "msg"
    receipt_field: str = "data.receiptNo"


def _dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


class RestJsonClient:
    def __init__(self, name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                 options: RestJsonOptions) -> None:
        self.name = name
        self.settings = settings
        self.http = http
        self.options = options
        self.envelope = ENVELOPES[options.envelope]
        self.codes = BusinessCodes.from_options(settings.options, settings.retry.throttle_codes)
        self.timeout = aiohttp.ClientTimeout(total=settings.timeout)

    async def send(self, payload: Any, *, idempotency_key: str, correlation_id: str) -> Outcome:
        body = self.envelope(payload, self.settings.credentials)
        headers = {"X-Idempotency-Key": idempotency_key, "X-Correlation-Id": correlation_id,
                   "Content-Type": "application/json; charset=utf-8"}
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            async with self.http.post(self.settings.url, data=data, headers=headers,
                                      timeout=self.timeout) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            return classify_exception(e)
        failed = outcome_from_http(status, resp_headers, now=datetime.now(UTC),
                                   message=f"HTTP {status}: {raw[:200].decode('utf-8', 'replace')}")
        if failed is not None:
            return failed
        return self._business(raw, status)

    def _business(self, raw: bytes, status: int) -> Outcome:
        o = self.options
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            # The partner may or may not have taken it; a retry is safe because it dedupes.
            return Outcome.retryable(f"malformed reply (not JSON): {raw[:120]!r}",
                                     http_status=status)
        code = _dig(doc, o.code_field)
        msg = str(_dig(doc, o.message_field) or "")
        if code is None:
            return Outcome.retryable(f"reply has no {o.code_field}", http_status=status)
        receipt = _dig(doc, o.receipt_field)
        outcome = self.codes.outcome(code, msg, receipt_no=None if receipt is None else str(receipt),
                                     http_status=status)
        if outcome.kind is OutcomeKind.DELIVERED and not outcome.receipt_no:
            return Outcome.retryable(f"success without {o.receipt_field}",
                                     partner_code=outcome.partner_code, http_status=status)
        return outcome

    async def close(self) -> None:
        return None


def create_client(name: str, settings: PartnerSettings, http: aiohttp.ClientSession) -> RestJsonClient:
    try:
        options = RestJsonOptions.model_validate(settings.options)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(err["msg"], key=f"partners.{name}.options.{key}") from e
    if options.envelope not in ENVELOPES:
        raise ConfigError(f"unknown envelope {options.envelope!r}; known: {sorted(ENVELOPES)}",
                          key=f"partners.{name}.options.envelope")
    return RestJsonClient(name, settings, http, options)
