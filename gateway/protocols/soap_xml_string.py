"""Protocol style ``soap-xml-string``: one SOAP operation whose string parameter carries a whole
XML document, answered by an escaped XML document inside the reply's string field.

This is Tianjin's contract (DESIGN.md §3) and a common provincial style: ``submitCase(authCode,
xmlData)`` → ``<return>&lt;RESULT&gt;&lt;CODE&gt;0&lt;/CODE&gt;…</return>``. Everything that
names fields, codes or files is an option, so another partner of the same style needs only
configuration.

Encoding decision (tested in ``tests/test_soap_xml_string.py``): the inner document is declared
with ``inner_encoding`` (default ``GBK``) and serialised by libxml2 in that encoding, so any
character the encoding lacks (𠮷 U+20BB7, even €) becomes a numeric character reference
(``&#134071;``). The document then travels as Unicode text inside the UTF-8 envelope. A receiver
that re-encodes the text as GBK and parses it gets the exact character back; nothing is replaced.
``rare_chars: reject`` instead fails such a message permanently, naming the element, for partners
known to mishandle references. Replies are read as GB18030 whatever GBK-family name they declare.

Options (``partners.<name>.options``):
    wsdl, operation            vendored WSDL file and operation name (required)
    inner_schema               XSD of the inner document (required); result_schema (optional)
    auth_field, data_field     input parameter names (``authCode``, ``xmlData``)
    return_field               reply's string field (``return``)
    inner_encoding             declared encoding of the inner document (``GBK``)
    rare_chars                 ``ncr`` (default) or ``reject``
    idempotency_element        path in the inner document set to the idempotency key
                               (``PACKAGEHEAD/SJBBH``)
    code_element, message_element, receipt_element   reply fields (``CODE``, ``MSG``, ``SLBH``)
    success_codes, retryable_codes                   (``["0"]``, ``["-9"]``)
Credentials: ``auth_code``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, cast

import aiohttp
from lxml import etree

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.outcome import Outcome
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.classify import BusinessCodes

STYLE = "soap-xml-string"
_KNOWN = {"wsdl", "operation", "service", "port", "inner_schema", "result_schema", "auth_field",
          "data_field", "return_field", "inner_encoding", "rare_chars", "idempotency_element",
          "code_element", "message_element", "receipt_element", "success_codes",
          "retryable_codes"}


@dataclass(frozen=True)
class XmlStringOptions:
    operation: soap.SoapOperation
    auth_qname: etree.QName
    data_qname: etree.QName
    return_field: str
    inner_schema: etree.XMLSchema
    result_schema: etree.XMLSchema | None
    inner_encoding: str
    reject_rare: bool
    idempotency_element: str
    code_element: str
    message_element: str
    receipt_element: str
    codes: BusinessCodes


def parse_options(name: str, settings: PartnerSettings) -> XmlStringOptions:
    """Validate options and load the WSDL and schemas (synchronous; at start-up)."""
    o = settings.options
    soap.check_known(name, o, _KNOWN)
    op = soap.load_operation(soap.resolve_path(soap.option_str(name, o, "wsdl")),
                             soap.option_str(name, o, "operation"),
                             service=o.get("service"), port=o.get("port"))
    params = _input_params(op)
    fields = {}
    for key, default in (("auth_field", "authCode"), ("data_field", "xmlData")):
        field_name = soap.option_str(name, o, key, default=default)
        if field_name not in params:
            raise ConfigError(f"{field_name!r} is not a parameter of {op.name} "
                              f"(has {', '.join(params)})", key=f"partners.{name}.options.{key}")
        fields[key] = params[field_name]
    encoding = soap.option_str(name, o, "inner_encoding", default="GBK")
    try:
        "".encode(encoding)
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r}",
                          key=f"partners.{name}.options.inner_encoding") from None
    rare = soap.option_str(name, o, "rare_chars", default="ncr")
    if rare not in {"ncr", "reject"}:
        raise ConfigError("must be 'ncr' or 'reject'", key=f"partners.{name}.options.rare_chars")
    result_schema = o.get("result_schema")
    return XmlStringOptions(
        operation=op, auth_qname=fields["auth_field"], data_qname=fields["data_field"],
        return_field=soap.option_str(name, o, "return_field", default="return"),
        inner_schema=safexml.load_schema(soap.resolve_path(soap.option_str(name, o, "inner_schema"))),
        result_schema=safexml.load_schema(soap.resolve_path(result_schema)) if result_schema else None,
        inner_encoding=encoding, reject_rare=rare == "reject",
        idempotency_element=soap.option_str(name, o, "idempotency_element",
                                            default="PACKAGEHEAD/SJBBH"),
        code_element=soap.option_str(name, o, "code_element", default="CODE"),
        message_element=soap.option_str(name, o, "message_element", default="MSG"),
        receipt_element=soap.option_str(name, o, "receipt_element", default="SLBH"),
        codes=soap.business_codes(name, settings, ["0"], ["-9"]),
    )


def _input_params(op: soap.SoapOperation) -> dict[str, etree.QName]:
    """Parameter name → exact element QName (qualified or not, as the WSDL's schema says)."""
    return op.element_fields(op.input_qname)


def declaration(encoding: str) -> bytes:
    """The inner prolog, fixed bytes with double quotes (some receivers compare it literally)."""
    return b'<?xml version="1.0" encoding="' + encoding.encode("ascii") + b'"?>'


def encode_inner(root: etree._Element, encoding: str, *, reject_rare: bool) -> str:
    """Serialise the inner document in ``encoding`` and return it as the text to embed.

    Characters ``encoding`` lacks become numeric character references (libxml2 does this when
    serialising), or, with ``reject_rare``, raise ``ValueError`` naming the element.
    """
    if reject_rare:
        for el in root.iter():
            for text in (el.text, el.tail, *el.attrib.values()):
                if text:
                    try:
                        text.encode(encoding)
                    except UnicodeEncodeError as e:
                        bad = text[e.start:e.end]
                        raise ValueError(f"{el.tag} holds U+{ord(bad[0]):04X}, which "
                                         f"{encoding} cannot carry") from None
    body = cast(bytes, etree.tostring(root, encoding=encoding, xml_declaration=False))
    # GB18030 decodes every GBK/GB2312 byte sequence, and the rest are ASCII references.
    codec = "gb18030" if encoding.lower() in safexml.GBK_FAMILY else encoding
    return (declaration(encoding) + body).decode(codec)


class XmlStringClient:
    """A :class:`~gateway.protocols.base.PartnerClient` for the ``soap-xml-string`` style."""

    def __init__(self, name: str, settings: PartnerSettings, options: XmlStringOptions,
                 http: aiohttp.ClientSession, auth_code: str) -> None:
        self.name = name
        self.url = settings.url
        self.timeout = settings.timeout
        self.max_bytes = settings.max_reply_bytes
        self.opts = options
        self.http = http
        self._auth_code = auth_code

    def build_request(self, payload: Any, idempotency_key: str) -> bytes:
        """Envelope bytes for one message; ``ValueError`` for a payload we must not send."""
        o = self.opts
        root = self.inner_document(payload)
        key_el = root.find(o.idempotency_element)
        if key_el is None:
            raise ValueError(f"payload has no {o.idempotency_element} to carry the idempotency key")
        key_el.text = idempotency_key
        errors = safexml.schema_errors(o.inner_schema, root)
        if errors:
            raise ValueError("inner document fails its schema: " + "; ".join(errors))
        inner = encode_inner(root, o.inner_encoding, reject_rare=o.reject_rare)
        wrapper = etree.Element(o.operation.input_qname, nsmap={"tj": o.operation.input_qname.namespace})
        etree.SubElement(wrapper, o.auth_qname).text = self._auth_code
        etree.SubElement(wrapper, o.data_qname).text = inner
        return soap.build_envelope(o.operation.version, wrapper)

    def inner_document(self, payload: Any) -> etree._Element:
        """A private copy of the inner document, whichever form the mapping produced.

        Accepted: the inner root element (``PACKAGE``), the operation's wrapper element whose
        data field already holds the document as text (a mapping using ``document:``), or that
        text itself. Text is parsed again so the key, the schema check and the encoding rule
        are applied in one place whatever the mapping did.
        """
        o = self.opts
        if isinstance(payload, etree._ElementTree):
            payload = payload.getroot()
        if isinstance(payload, etree._Element) and payload.tag == o.operation.input_qname.text:
            field = payload.find(o.data_qname.text)
            if field is None or not (field.text or "").strip():
                raise ValueError(f"wrapper has no {o.data_qname.localname} document")
            payload = field.text
        if isinstance(payload, str):
            try:
                return safexml.parse_text(payload.strip())
            except safexml.XmlError as e:
                raise ValueError(f"inner document is not usable XML: {e.reason}") from None
        if not isinstance(payload, etree._Element):
            raise ValueError(f"payload must be an XML element or document text, "
                             f"got {type(payload).__name__}")
        return copy.deepcopy(payload)

    async def send(self, payload: Any, *, idempotency_key: str, correlation_id: str) -> Outcome:
        try:
            body = self.build_request(payload, idempotency_key)
        except ValueError as e:
            return Outcome.permanent(f"not sent: {e}")
        got = await soap.call(self.http, self.url, body, operation=self.opts.operation,
                              timeout=self.timeout, max_bytes=self.max_bytes,
                              correlation_id=correlation_id)
        if isinstance(got, Outcome):
            return got
        return self.interpret(*got)

    def interpret(self, env: soap.Envelope, status: int) -> Outcome:
        """Read ``<return>``'s embedded RESULT document and classify its CODE."""
        o = self.opts
        wrapper = env.body[0]
        if wrapper.tag != o.operation.output_qname.text:
            return Outcome.retryable(f"malformed reply: unexpected {wrapper.tag}", http_status=status)
        ret = next((c for c in wrapper if isinstance(c.tag, str)
                    and etree.QName(c).localname == o.return_field), None)
        text = (ret.text or "").strip() if ret is not None else ""
        if not text:
            return Outcome.retryable(f"malformed reply: no <{o.return_field}>", http_status=status)
        try:
            result = safexml.parse_text(text)
        except safexml.XmlError as e:
            return Outcome.retryable(f"malformed reply document: {e.reason}", http_status=status)
        if o.result_schema is not None:
            errors = safexml.schema_errors(o.result_schema, result)
            if errors:
                return Outcome.retryable("malformed reply document: " + "; ".join(errors),
                                         http_status=status)
        code = (result.findtext(o.code_element) or "").strip()
        msg = (result.findtext(o.message_element) or "").strip()
        if not code:
            return Outcome.retryable(f"malformed reply: no {o.code_element}", http_status=status)
        receipt = (result.findtext(o.receipt_element) or "").strip() or None
        return o.codes.outcome(code, msg or f"partner code {code}", receipt_no=receipt,
                               http_status=status)

    async def close(self) -> None:
        """Nothing to release: the HTTP session is shared and owned by the application."""


def create_client(name: str, settings: PartnerSettings,
                  http: aiohttp.ClientSession) -> XmlStringClient:
    """Factory for the ``soap-xml-string`` style (loads the WSDL and XSDs: call at start-up)."""
    options = parse_options(name, settings)
    auth_code = soap.option_str(name, settings.credentials, "auth_code", where="credentials")
    return XmlStringClient(name, settings, options, http, auth_code)
