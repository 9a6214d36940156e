"""Protocol style ``soap-xml-string``: one SOAP operation whose string parameter carries a whole
XML document, answered by an escaped XML document inside the reply's string field.

A common provincial style (Tianjin's contract is one, DESIGN.md §3): ``submitCase(authCode,
xmlData)`` → ``<return>&lt;RESULT&gt;&lt;CODE&gt;0&lt;/CODE&gt;…</return>``. Everything that
names fields, codes, encodings or files is an option without a partner's default, so another
partner of the same style needs only configuration (``config/gateway.yaml`` holds Tianjin's).
The envelope, the exchange and the reading of the business code are the shared SOAP client's
(:mod:`gateway.protocols.soap_client`); this module builds the body and reads the result document.

Encoding decision (tested in ``tests/test_soap_xml_string.py``): the inner document is declared
with ``inner_encoding`` and serialised by libxml2 in that encoding, so any character the encoding
lacks (𠮷 U+20BB7 in GBK, even €) becomes a numeric character reference (``&#134071;``). The
document then travels as Unicode text inside the UTF-8 envelope. A receiver that re-encodes the
text as GBK and parses it gets the exact character back; nothing is replaced. ``rare_chars:
reject`` instead fails such a message permanently, naming the element, for partners known to
mishandle references. Replies are read as GB18030 whatever GBK-family name they declare.

Options (``partners.<name>.options``; required unless a default is given):
    wsdl, operation, service, port   vendored WSDL and its operation (:class:`SoapOptions`)
    inner_schema                     XSD of the inner document; result_schema (optional)
    auth_field, data_field           the operation's parameters carrying the credential
                                     ``auth_code`` and the inner document
    return_field                     the reply's string field (``return``, JAX-WS's name)
    inner_encoding                   declared encoding of the inner document (``UTF-8``)
    rare_chars                       ``ncr`` (default) or ``reject``
    idempotency_element              element path in the inner document set to the idempotency key
    code_field, message_field, receipt_field   element paths in the result document
    code_path, message_path, receipt_path      or XPaths from the result document's root,
                                     prefixes in ``namespaces: {p: uri}``; ``receipt_path:
                                     null``: the partner issues no receipt
    success_codes, retryable_codes   business codes (any other code is permanent)
    wsse                             ``none`` (default) or ``digest``
Credentials: ``auth_code`` (and ``username``/``password`` with ``wsse: digest``).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import aiohttp
from lxml import etree
from pydantic import Field, field_validator

from gateway.config import PartnerSettings
from gateway.outcome import Outcome
from gateway.protocols import xml as safexml
from gateway.protocols.options import credential, option_error
from gateway.protocols.soap_client import (
    BusinessResult,
    MappingLookup,
    SoapBody,
    SoapClient,
    SoapOptions,
    load_schema,
)


class XmlStringOptions(SoapOptions):
    """The ``soap-xml-string`` options (module docstring)."""

    inner_schema: str = Field(min_length=1)
    result_schema: str | None = None
    auth_field: str = Field(min_length=1)
    data_field: str = Field(min_length=1)
    return_field: str = Field("return", min_length=1)
    inner_encoding: str = "UTF-8"
    rare_chars: Literal["ncr", "reject"] = "ncr"
    idempotency_element: str = Field(min_length=1)

    @field_validator("inner_encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            "".encode(value)  # a text encoding (codecs.lookup also knows base64, zlib…)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value


def declaration(encoding: str) -> bytes:
    """The inner prolog, fixed bytes with double quotes (some receivers compare it literally)."""
    return b'<?xml version="1.0" encoding="' + encoding.encode("ascii") + b'"?>'


def read_inner(text: str, schema: etree.XMLSchema | None, what: str,
               status: int) -> etree._Element | Outcome:
    """The XML document a reply carries as text: parsed by the hardened parser and checked
    against its schema, or the retryable outcome saying ``what`` is wrong with it."""
    try:
        doc = safexml.parse_text(text)
    except safexml.XmlError as e:
        return Outcome.retryable(f"{what}: {e.reason}", http_status=status)
    if schema is not None:
        errors = safexml.schema_errors(schema, doc)
        if errors:
            return Outcome.retryable(f"{what}: " + "; ".join(errors), http_status=status)
    return doc


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
                        raise ValueError(f"{etree.QName(el).text} holds U+{ord(bad[0]):04X}, which "
                                         f"{encoding} cannot carry") from None
    body = etree.tostring(root, encoding=encoding, xml_declaration=False)
    # GB18030 decodes every GBK/GB2312 byte sequence, and the rest are ASCII references.
    codec = "gb18030" if encoding.lower() in safexml.GBK_FAMILY else encoding
    return (declaration(encoding) + body).decode(codec)


class XmlStringClient(SoapClient[XmlStringOptions]):
    """The ``soap-xml-string`` style: the hooks of :class:`SoapClient`."""

    options_model = XmlStringOptions

    def load_contract(self, settings: PartnerSettings) -> None:
        o = self.options
        params = self.operation.element_fields(self.operation.input_qname)
        self.auth_qname = self._parameter(params, "auth_field", o.auth_field)
        self.data_qname = self._parameter(params, "data_field", o.data_field)
        self.inner_schema = load_schema(self.name, "inner_schema", o.inner_schema)
        self.result_schema = (load_schema(self.name, "result_schema", o.result_schema)
                              if o.result_schema else None)
        self._auth_code = credential(self.name, settings.credentials, "auth_code")

    def _parameter(self, params: dict[str, etree.QName], key: str, field: str) -> etree.QName:
        """Parameter name → exact element QName (qualified or not, as the WSDL's schema says)."""
        if field not in params:
            raise option_error(self.name, key, f"{field!r} is not a parameter of "
                                               f"{self.operation.name} (has {', '.join(params)})")
        return params[field]

    def build_body(self, payload: Any, idempotency_key: str, correlation_id: str) -> SoapBody:
        o = self.options
        root = self.inner_document(payload)
        key_el = root.find(o.idempotency_element)
        if key_el is None:
            raise ValueError(f"payload has no {o.idempotency_element} to carry the idempotency key")
        key_el.text = idempotency_key
        errors = safexml.schema_errors(self.inner_schema, root)
        if errors:
            raise ValueError("inner document fails its schema: " + "; ".join(errors))
        inner = encode_inner(root, o.inner_encoding, reject_rare=o.rare_chars == "reject")
        wrapper = etree.Element(self.operation.input_qname)  # lxml names the prefix
        etree.SubElement(wrapper, self.auth_qname).text = self._auth_code
        etree.SubElement(wrapper, self.data_qname).text = inner
        return SoapBody(wrapper, source=root)

    def inner_document(self, payload: Any) -> etree._Element:
        """A private copy of the inner document, whichever form the mapping produced.

        Accepted: the inner root element, the operation's wrapper element whose data field
        already holds the document as text (a mapping using ``document:``), or that text
        itself. Text is parsed again so the key, the schema check and the encoding rule are
        applied in one place whatever the mapping did.
        """
        if isinstance(payload, etree._ElementTree):
            payload = payload.getroot()
        if isinstance(payload, etree._Element) and payload.tag == self.operation.input_qname.text:
            field = payload.find(self.data_qname.text)
            if field is None or not (field.text or "").strip():
                raise ValueError(f"wrapper has no {self.data_qname.localname} document")
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

    def read_result(self, output: etree._Element, status: int) -> BusinessResult | Outcome:
        """The result document embedded as text in the output's ``return_field``."""
        o = self.options
        ret = next((c for c in output if isinstance(c.tag, str)
                    and etree.QName(c).localname == o.return_field), None)
        text = (ret.text or "").strip() if ret is not None else ""
        if not text:
            return Outcome.retryable(f"malformed reply: no <{o.return_field}>", http_status=status)
        result = read_inner(text, self.result_schema, "malformed reply document", status)
        if isinstance(result, Outcome):
            return result
        return self.paths.read(result, _find_text)


def _find_text(document: etree._Element, path: str) -> str:
    """An element path (ElementPath) in the result document: the text of its first match."""
    return document.findtext(path) or ""


def create_client(name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                  mappings: MappingLookup | None = None) -> XmlStringClient:
    """Factory for the ``soap-xml-string`` style (loads the WSDL and XSDs: call at start-up)."""
    return XmlStringClient(name, settings, http, mappings)
