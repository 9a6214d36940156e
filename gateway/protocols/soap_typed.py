"""Protocol style ``soap-typed``: SOAP (1.2 or 1.1, as the WSDL binding says), document/literal
wrapped, typed XSD complex types, optional WS-Security UsernameToken digest.

Hebei's contract is one (DESIGN.md §3); its values are in ``config/gateway.yaml``, none here. The
mapped payload is the operation's input element (an lxml element, as an XML mapping renders it)
or a ``dict`` of its fields (rendered through zeep's XSD types). It is validated against the
vendored XSD before anything is sent: a schema error is ours and permanent. The idempotency key
travels in the header block the WSDL declares, whose fields come from ``header_fields``. The
envelope, the exchange and the reading of the business code are the shared SOAP client's
(:mod:`gateway.protocols.soap_client`); this module builds the body and header and reads the
output element's fields.

Outcomes: SOAP faults by code (1.2 ``Sender`` → permanent, ``Receiver`` → retryable, keeping the
detail's ``errorCode`` or the subcode); a normal reply by its result code (``success_codes``,
``retryable_codes``, anything else is a business rejection → permanent).

Options (``partners.<name>.options``; required unless a default is given):
    wsdl, operation, service, port   vendored WSDL and its operation (:class:`SoapOptions`)
    body_schema                      XSD the input element is validated against (recommended)
    header_fields                    {field: value} for the header element the operation
                                     declares (required when it declares one); the values
                                     ``$idempotency_key``, ``$correlation_id`` (reduced to token
                                     characters) and ``$now`` are filled per message
    code_field, message_field, receipt_field   child elements of the output element
    code_path, message_path, receipt_path      or XPaths from the output element, prefixes in
                                     ``namespaces: {p: uri}``; ``receipt_path: null``: no receipt
    success_codes, retryable_codes   business codes (any other code is permanent)
    wsse                             ``none`` (default) or ``digest``
Credentials: ``username`` and ``password`` with ``wsse: digest``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
from lxml import etree

from gateway.config import PartnerSettings
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.options import option_error
from gateway.protocols.soap_client import (
    BusinessResult,
    MappingLookup,
    SoapBody,
    SoapClient,
    SoapOptions,
    load_schema,
)

CST = timezone(timedelta(hours=8))
_PLACEHOLDERS = ("$idempotency_key", "$correlation_id", "$now")


class TypedOptions(SoapOptions):
    """The ``soap-typed`` options (module docstring)."""

    body_schema: str | None = None
    header_fields: dict[str, str] | None = None


def now_text() -> str:
    """xsd:dateTime in +08:00, second precision (what the contracts' examples use)."""
    return datetime.now(CST).replace(microsecond=0).isoformat()


class TypedSoapClient(SoapClient[TypedOptions]):
    """The ``soap-typed`` style: the hooks of :class:`SoapClient`."""

    options_model = TypedOptions

    def load_contract(self, settings: PartnerSettings) -> None:
        name, o, op = self.name, self.options, self.operation
        self.body_schema = (load_schema(name, "body_schema", o.body_schema)
                            if o.body_schema else None)
        self.header_qname = op.header_qnames[0] if op.header_qnames else None
        self.header_children: dict[str, etree.QName] = {}
        fields = o.header_fields
        if self.header_qname is not None:
            self.header_children = op.element_fields(self.header_qname)
            if fields is None:
                raise option_error(name, "header_fields",
                                   f"{op.name} declares the header {self.header_qname.localname}: "
                                   f"name the values of its fields "
                                   f"({', '.join(self.header_children)}; placeholders "
                                   f"{', '.join(_PLACEHOLDERS)})")
            unknown = sorted(set(fields) - set(self.header_children))
            if unknown:
                raise option_error(name, "header_fields",
                                   f"{', '.join(unknown)} not in {self.header_qname.localname} "
                                   f"(has {', '.join(self.header_children)})")
        elif fields:
            raise option_error(name, "header_fields", f"{op.name} declares no header")
        self.header_fields: dict[str, str] = dict(fields or {})

    def _header_block(self, idempotency_key: str, correlation_id: str) -> etree._Element | None:
        if self.header_qname is None:
            return None
        values = {"$idempotency_key": idempotency_key, "$correlation_id": soap.token(correlation_id)}
        block = etree.Element(self.header_qname)  # lxml names the prefix
        # Children in the order the header type declares them (xsd:sequence).
        for fname, qname in self.header_children.items():
            if fname not in self.header_fields:
                continue
            raw = self.header_fields[fname]
            value = now_text() if raw == "$now" else values.get(raw, raw)
            if value:
                etree.SubElement(block, qname).text = value
        return block

    def build_body(self, payload: Any, idempotency_key: str, correlation_id: str) -> SoapBody:
        op = self.operation
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
            raise ValueError(f"payload is {etree.QName(body).text}, operation {op.name} takes "
                             f"{op.input_qname}")
        if self.body_schema is not None:
            errors = safexml.schema_errors(self.body_schema, body)
            if errors:
                raise ValueError("payload fails its schema: " + "; ".join(errors))
        block = self._header_block(idempotency_key, correlation_id)
        return SoapBody(body, (block,) if block is not None else ())

    def read_result(self, output: etree._Element, status: int) -> BusinessResult:
        """A ``*_field`` is a child of the output element, by local name; a ``*_path`` an XPath
        from the output element."""
        return self.paths.read(output, child_text)


def child_text(parent: etree._Element, local_name: str) -> str:
    """The text of ``parent``'s first child element named ``local_name`` (any namespace)."""
    return next(((c.text or "") for c in parent
                 if isinstance(c.tag, str) and etree.QName(c).localname == local_name), "")


def create_client(name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                  mappings: MappingLookup | None = None) -> TypedSoapClient:
    """Factory for the ``soap-typed`` style (loads the WSDL and XSD: call at start-up)."""
    return TypedSoapClient(name, settings, http, mappings)
