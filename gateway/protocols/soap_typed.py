"""Protocol style ``soap-typed``: SOAP (1.2 or 1.1, as the WSDL binding says), document/literal
wrapped, typed XSD complex types, optional WS-Security UsernameToken digest.

This is Hebei's contract (DESIGN.md §3). The mapped payload is the operation's input element
(an lxml element, as an XML mapping renders it) or a ``dict`` of its fields (rendered through
zeep's XSD types). It is validated against the vendored XSD before anything is sent: a schema
error is ours and permanent. The idempotency key travels in a WSDL-declared header block
(``hb:MessageHeader/messageId`` for Hebei), whose fields come from ``header_fields``.

Outcomes: SOAP faults by code (1.2 ``Sender`` → permanent, ``Receiver`` → retryable, keeping the
detail's ``errorCode`` or the subcode); a normal reply by its result code (``success_codes``,
``retryable_codes``, anything else is a business rejection → permanent).

Options (``partners.<name>.options``):
    wsdl, operation, service, port   vendored WSDL and operation (required: wsdl, operation)
    body_schema                      XSD the input element is validated against (recommended)
    header_fields                    {field: value} for the WSDL's header element; the values
                                     ``$idempotency_key``, ``$correlation_id`` (reduced to token
                                     characters), ``$now`` are filled
                                     per message (default: messageId/correlationId/sentAt)
    wsse                             ``digest`` (default) or ``none``
    result_code_field, result_message_field, receipt_field   (``resultCode``, ``resultMessage``,
                                     ``receiptNo``)
    success_codes, retryable_codes   (``["0000"]``, ``["9001"]``)
Credentials: ``username`` and ``password`` (when ``wsse: digest``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
from lxml import etree

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.outcome import Outcome, OutcomeKind
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.classify import BusinessCodes
from gateway.protocols.wsse import UsernameToken

STYLE = "soap-typed"
CST = timezone(timedelta(hours=8))
_KNOWN = {"wsdl", "operation", "service", "port", "body_schema", "header_fields", "wsse",
          "result_code_field", "result_message_field", "receipt_field", "success_codes",
          "retryable_codes"}
_DEFAULT_HEADER = {"messageId": "$idempotency_key", "correlationId": "$correlation_id",
                   "sentAt": "$now"}


@dataclass(frozen=True)
class TypedOptions:
    operation: soap.SoapOperation
    body_schema: etree.XMLSchema | None
    header_qname: etree.QName | None
    header_fields: Mapping[str, str]
    header_children: Mapping[str, etree.QName]
    result_code_field: str
    result_message_field: str
    receipt_field: str
    codes: BusinessCodes


def parse_options(name: str, settings: PartnerSettings) -> TypedOptions:
    """Validate options and load the WSDL and schema (synchronous; at start-up)."""
    o = settings.options
    soap.check_known(name, o, _KNOWN)
    op = soap.load_operation(soap.resolve_path(soap.option_str(name, o, "wsdl")),
                             soap.option_str(name, o, "operation"),
                             service=o.get("service"), port=o.get("port"))
    schema_path = o.get("body_schema")
    fields = o.get("header_fields", _DEFAULT_HEADER if op.header_qnames else {})
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise ConfigError("must map header field names to strings",
                          key=f"partners.{name}.options.header_fields")
    header_qname = op.header_qnames[0] if op.header_qnames else None
    children: dict[str, etree.QName] = {}
    if header_qname is not None:
        children = op.element_fields(header_qname)
        unknown = sorted(set(fields) - set(children))
        if unknown:
            raise ConfigError(f"{', '.join(unknown)} not in {header_qname.localname} "
                              f"(has {', '.join(children)})",
                              key=f"partners.{name}.options.header_fields")
    elif fields:
        raise ConfigError("the operation declares no header",
                          key=f"partners.{name}.options.header_fields")
    return TypedOptions(
        operation=op,
        body_schema=safexml.load_schema(soap.resolve_path(schema_path)) if schema_path else None,
        header_qname=header_qname, header_fields=dict(fields), header_children=children,
        result_code_field=soap.option_str(name, o, "result_code_field", default="resultCode"),
        result_message_field=soap.option_str(name, o, "result_message_field",
                                             default="resultMessage"),
        receipt_field=soap.option_str(name, o, "receipt_field", default="receiptNo"),
        codes=soap.business_codes(name, settings, ["0000"], ["9001"]),
    )


def now_text() -> str:
    """xsd:dateTime in +08:00, second precision (what the contract's examples use)."""
    return datetime.now(CST).replace(microsecond=0).isoformat()


class TypedSoapClient:
    """A :class:`~gateway.protocols.base.PartnerClient` for the ``soap-typed`` style."""

    def __init__(self, name: str, settings: PartnerSettings, options: TypedOptions,
                 http: aiohttp.ClientSession, token: UsernameToken | None) -> None:
        self.name = name
        self.url = settings.url
        self.timeout = settings.timeout
        self.max_bytes = settings.max_reply_bytes
        self.opts = options
        self.http = http
        self.token = token

    def _header_block(self, idempotency_key: str, correlation_id: str) -> etree._Element | None:
        o = self.opts
        if o.header_qname is None:
            return None
        values = {"$idempotency_key": idempotency_key, "$correlation_id": soap.token(correlation_id)}
        block = etree.Element(o.header_qname, nsmap={"hb": o.header_qname.namespace})
        # Children in the order the header type declares them (xsd:sequence).
        for fname, qname in o.header_children.items():
            if fname not in o.header_fields:
                continue
            raw = o.header_fields[fname]
            value = now_text() if raw == "$now" else values.get(raw, raw)
            if value:
                etree.SubElement(block, qname).text = value
        return block

    def build_request(self, payload: Any, idempotency_key: str, correlation_id: str) -> bytes:
        """Envelope bytes for one message; ``ValueError`` for a payload we must not send."""
        o = self.opts
        op = o.operation
        if isinstance(payload, Mapping):
            try:
                body = op.render(payload)
            except safexml.XmlError as e:
                raise ValueError(e.reason) from None
        else:
            root = payload.getroot() if isinstance(payload, etree._ElementTree) else payload
            if not isinstance(root, etree._Element):
                raise ValueError(f"payload must be an XML element or a dict, "
                                 f"got {type(payload).__name__}")
            body = copy.deepcopy(root)
        if body.tag != op.input_qname.text:
            raise ValueError(f"payload is {body.tag}, operation {op.name} takes {op.input_qname}")
        if o.body_schema is not None:
            errors = safexml.schema_errors(o.body_schema, body)
            if errors:
                raise ValueError("payload fails its schema: " + "; ".join(errors))
        headers = []
        if self.token is not None:
            headers.append(self.token.header(op.version.ns))
        block = self._header_block(idempotency_key, correlation_id)
        if block is not None:
            headers.append(block)
        return soap.build_envelope(op.version, body, headers)

    async def send(self, payload: Any, *, idempotency_key: str, correlation_id: str) -> Outcome:
        try:
            body = self.build_request(payload, idempotency_key, correlation_id)
        except ValueError as e:
            return Outcome.permanent(f"not sent: {e}")
        got = await soap.call(self.http, self.url, body, operation=self.opts.operation,
                              timeout=self.timeout, max_bytes=self.max_bytes,
                              correlation_id=correlation_id)
        if isinstance(got, Outcome):
            return got
        return self.interpret(*got)

    def interpret(self, env: soap.Envelope, status: int) -> Outcome:
        """Classify a non-fault reply by its result code."""
        o = self.opts
        out = env.body[0]
        if out.tag != o.operation.output_qname.text:
            return Outcome.retryable(f"malformed reply: unexpected {out.tag}", http_status=status)
        fields = {etree.QName(c).localname: (c.text or "").strip()
                  for c in out if isinstance(c.tag, str)}
        code = fields.get(o.result_code_field, "")
        msg = fields.get(o.result_message_field, "")
        if not code:
            return Outcome.retryable(f"malformed reply: no {o.result_code_field}",
                                     http_status=status)
        receipt = fields.get(o.receipt_field) or None
        if o.codes.classify(code) is OutcomeKind.DELIVERED and receipt is None:
            return Outcome.retryable(f"malformed reply: success without {o.receipt_field}",
                                     partner_code=code, http_status=status)
        return o.codes.outcome(code, msg or f"partner code {code}", receipt_no=receipt,
                               http_status=status)

    async def close(self) -> None:
        """Nothing to release: the HTTP session is shared and owned by the application."""


def create_client(name: str, settings: PartnerSettings,
                  http: aiohttp.ClientSession) -> TypedSoapClient:
    """Factory for the ``soap-typed`` style (loads the WSDL and XSD: call at start-up)."""
    options = parse_options(name, settings)
    mode = settings.options.get("wsse", "digest")
    if mode not in {"digest", "none"}:
        raise ConfigError("must be 'digest' or 'none'", key=f"partners.{name}.options.wsse")
    token = None
    if mode == "digest":
        token = UsernameToken(
            soap.option_str(name, settings.credentials, "username", where="credentials"),
            soap.option_str(name, settings.credentials, "password", where="credentials"))
    return TypedSoapClient(name, settings, options, http, token)
