"""The ``rest-json`` style's status query: one JSON POST naming the case, a business code in
the reply, the case's status record beside it (the national platform's
``POST /api/v1/cross-province/status/query``).

``status_query`` block (besides :class:`~gateway.protocols.status_query.StatusQueryOptions`):
    path             where to POST, relative to the partner's ``url`` (or an absolute URL)
    envelope         request envelope (default: the partner's ``options.envelope``)
    record_field     dotted path of the status record in the reply (``data``): the document
                     the partner's inbound status mapping reads
The ``code_field``, ``message_field`` are dotted paths in the reply; ``receipt_field`` is a
dotted path in the record. Signed like the partner's sends (``options.auth``), in the partner's
envelope with its keys (``options.enc_type``/``sign_type``): an answer whose ``signData`` or
``encData`` does not open is not trusted (a retryable failure naming the field).
"""

from __future__ import annotations

import functools
import json
import uuid
from datetime import UTC, datetime
from urllib.parse import urljoin

import aiohttp
from pydantic import Field

from gateway.config import PartnerSettings
from gateway.outcome import Outcome
from gateway.protocols import transport
from gateway.protocols.classify import outcome_from_http
from gateway.protocols.envelopes import ENVELOPES, EnvelopeError, partner_envelope
from gateway.protocols.options import RequestAuth, auth_headers, parse_options
from gateway.protocols.rest import RestJsonOptions, _dig, load_json
from gateway.security.tls import partner_tls
from gateway.protocols.status_query import (AnswerKind, CaseRef, StatusAnswer,
                                            StatusQueryOptions, block_error, parse_block)


class RestStatusQueryOptions(StatusQueryOptions):
    path: str = Field(min_length=1)
    envelope: str | None = None
    record_field: str = "data"
    code_field: str = "code"
    message_field: str = "msg"


class RestStatusQuery:
    """:class:`~gateway.protocols.status_query.StatusQuery` of a ``rest-json`` partner."""

    def __init__(self, name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                 options: RestStatusQueryOptions, auth: RequestAuth | None) -> None:
        self.name = name
        self.settings = settings
        self.http = http
        self.options = options
        self.auth = auth
        self.url = urljoin(settings.url, options.path)
        self.tls = partner_tls(name, settings)
        style = parse_options(RestJsonOptions, name, settings.options)
        self.envelope = partner_envelope(name, settings.options, settings.credentials,
                                         options.envelope or style.envelope)
        self.timeout = options.timeout or settings.timeout

    async def query_status(self, ref: CaseRef, *, correlation_id: str | None = None
                           ) -> StatusAnswer:
        o = self.options
        try:
            field, value = o.naming(ref)
        except ValueError as e:
            return StatusAnswer.failed(Outcome.permanent(str(e)))
        body = self.envelope({field: value}, self.settings.credentials)
        # no X-Idempotency-Key: a query is not a submission, and must not read as one
        headers = {"X-Correlation-Id": correlation_id or str(uuid.uuid4()),
                   "Content-Type": "application/json; charset=utf-8"}
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers.update(auth_headers(self.auth, method="POST", url=self.url, body=data))
        reply = await transport.post(self.http, self.url, data,
                                     headers=headers, timeout=self.timeout,
                                     max_bytes=self.settings.max_reply_bytes, tls=self.tls)
        if isinstance(reply, Outcome):
            return StatusAnswer.failed(reply)
        failed = outcome_from_http(reply.status, reply.headers, now=datetime.now(UTC),
                                   message=f"status query: HTTP {reply.status}")
        if failed is not None:
            return StatusAnswer.failed(failed)
        try:
            doc = await transport.off_loop(len(reply.body), functools.partial(load_json, reply.body))
        except ValueError as e:
            return StatusAnswer.failed(Outcome.retryable(f"malformed status answer: {e}",
                                                         http_status=reply.status))
        try:
            doc = self.envelope.open(doc, answers=body.get("nonce"))
        except EnvelopeError as e:
            return StatusAnswer.failed(Outcome.retryable(f"status answer not trusted: {e}",
                                                         http_status=reply.status))
        code = _dig(doc, o.code_field)
        record = _dig(doc, o.record_field)
        receipt = _dig(record, o.receipt_field) if isinstance(record, dict) else None
        answer = o.answer(None if code is None else str(code),
                          str(_dig(doc, o.message_field) or ""), document=record,
                          receipt=None if receipt is None else str(receipt),
                          http_status=reply.status)
        if answer.kind is AnswerKind.FOUND and not isinstance(record, dict):
            return StatusAnswer.failed(Outcome.retryable(
                f"malformed status answer: no {o.record_field} object", http_status=reply.status))
        return answer


def create_status_query(name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                        auth: RequestAuth | None) -> RestStatusQuery:
    """The partner's status query from its ``status_query`` block (``ConfigError`` naming the
    key of the first problem)."""
    options = parse_block(RestStatusQueryOptions, name, settings.status_query)
    if options.envelope is not None and options.envelope not in ENVELOPES:
        raise block_error(name, "envelope", f"unknown envelope {options.envelope!r}")
    return RestStatusQuery(name, settings, http, options, auth)
