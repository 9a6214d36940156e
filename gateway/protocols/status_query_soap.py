"""The SOAP styles' status query: another operation of the partner's vendored WSDL, asked through
the same envelope, WS-Security and exchange as its sends (:mod:`gateway.protocols.soap`).

``status_query`` block (besides :class:`~gateway.protocols.status_query.StatusQueryOptions`):
    operation        the query operation of the partner's WSDL (``options.wsdl``)
    wsdl             another WSDL, if the query lives elsewhere (optional)
    soap-xml-string (the query document travels as text in a string parameter):
      inner_schema, result_schema   XSDs of the query document and of the answer document
      root                          the query document's root element (``QUERY``)
      constants                     {element: value} written first, in order (an agreement
                                    number the contract requires, say)
      auth_field, data_field, return_field, inner_encoding   as the style's options
                                    (defaults: the partner's ``options``)
    soap-typed (the query is the operation's typed input element):
      body_schema                   XSD the input element is checked against (optional)
The request fields name children of the query document / input element; ``code_field``,
``message_field`` and ``receipt_field`` are paths of local names (``caseStatus/receiptNo``) in
the answer document (soap-xml-string) or the output element (soap-typed). Instead of a field,
``code_path``, ``message_path`` and ``receipt_path`` locate each by an XPath 1.0 expression
(prefixes in ``namespaces``), evaluated on that element, as the style's own reply paths
(:class:`gateway.protocols.soap_client.ResultPaths`); ``receipt_path: null`` / ``message_path:
null`` for an answer that carries none; or ``reply_mapping: {mapping, version}``, an inbound
mapping of that element to ``{code, message, receipt}``. A found answer's document is that element: the
partner's inbound status mapping reads it.
"""

from __future__ import annotations

import uuid
from typing import Literal

import aiohttp
from lxml import etree
from pydantic import Field

from gateway.config import PartnerSettings
from gateway.outcome import Outcome
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.options import RequestAuth, auth_headers, credential
from gateway.protocols.soap_client import (HeaderMappingOptions, MappingLookup, ResultPaths,
                                           SoapOptions, load_operation, load_schema)
from gateway.protocols.soap_xml_string import encode_inner, read_inner
from gateway.protocols.status_query import (CaseRef, StatusAnswer, StatusQueryOptions,
                                            block_error, parse_block)
from gateway.protocols.wsse import UsernameToken
from gateway.security.tls import partner_tls


class SoapStatusQueryOptions(StatusQueryOptions):
    operation: str = Field(min_length=1)
    wsdl: str | None = None
    # soap-xml-string
    inner_schema: str | None = None
    result_schema: str | None = None
    root: str | None = None
    constants: dict[str, str] = Field(default_factory=dict)
    auth_field: str | None = None
    data_field: str | None = None
    return_field: str | None = None
    inner_encoding: str | None = None
    # soap-typed
    body_schema: str | None = None
    # where the answer keeps code, message and receipt: a field, or an XPath (module docstring)
    code_field: str | None = Field(None, min_length=1)  # type: ignore[assignment]
    message_field: str | None = Field(None, min_length=1)  # type: ignore[assignment]
    receipt_field: str | None = Field(None, min_length=1)  # type: ignore[assignment]
    code_path: str | None = Field(None, min_length=1)
    message_path: str | None = Field(None, min_length=1)
    receipt_path: str | None = Field(None, min_length=1)
    namespaces: dict[str, str] = Field(default_factory=dict)
    reply_mapping: HeaderMappingOptions | None = None


def find_local(root: etree._Element, path: str) -> etree._Element | None:
    """The element at ``path`` (local names separated by ``/``) below ``root``, any namespace."""
    node: etree._Element | None = root
    for part in path.split("/"):
        if node is None:
            return None
        node = next((c for c in node if isinstance(c.tag, str)
                     and etree.QName(c).localname == part), None)
    return node


def text_at(root: etree._Element, path: str) -> str:
    el = find_local(root, path)
    return (el.text or "").strip() if el is not None else ""


class SoapStatusQuery:
    """:class:`~gateway.protocols.status_query.StatusQuery` of a SOAP partner (module docstring)."""

    def __init__(self, name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                 style: Literal["xml-string", "typed"],
                 http_auth: RequestAuth | None = None,
                 mappings: MappingLookup | None = None) -> None:
        self.name = name
        self.http_auth = http_auth  # the partner's HTTP signature (options.auth), as its sends
        self.http = http
        self.url = settings.url
        self.tls = partner_tls(name, settings)
        self.max_bytes = settings.max_reply_bytes
        self.style = style
        o = self.options = parse_block(SoapStatusQueryOptions, name, settings.status_query)
        self.timeout = o.timeout or settings.timeout
        self.paths = ResultPaths.of(name, o, block_error, mappings)
        base = settings.options
        wsdl = o.wsdl or str(base.get("wsdl") or "")
        if not wsdl:
            raise block_error(name, "wsdl", "no WSDL: name one here or in the partner's options")
        self.operation = load_operation(name, SoapOptions.model_construct(
            wsdl=wsdl, operation=o.operation, service=base.get("service"),
            port=base.get("port"), binding=base.get("binding"), code_field="-",
            message_field="-", receipt_field="-", success_codes=("-",)))
        self.token: UsernameToken | None = None
        if base.get("wsse") == "digest":
            self.token = UsernameToken(credential(name, settings.credentials, "username"),
                                       credential(name, settings.credentials, "password"))
        params = self.operation.element_fields(self.operation.input_qname)
        if style == "xml-string":
            if not (o.inner_schema and o.root):
                raise block_error(name, "inner_schema", "soap-xml-string needs inner_schema "
                                                        "and root")
            self.inner_schema = load_schema(name, "status_query.inner_schema", o.inner_schema)
            self.result_schema = (load_schema(name, "status_query.result_schema", o.result_schema)
                                  if o.result_schema else None)
            auth = o.auth_field or str(base.get("auth_field") or "")
            data = o.data_field or str(base.get("data_field") or "")
            for key, param in (("auth_field", auth), ("data_field", data)):
                if param not in params:
                    raise block_error(name, key, f"{param!r} is not a parameter of "
                                                 f"{self.operation.name}")
            self.auth_qname, self.data_qname = params[auth], params[data]
            self.return_field: str = o.return_field or str(base.get("return_field") or "return")
            self.encoding = o.inner_encoding or str(base.get("inner_encoding") or "UTF-8")
            self.auth_code = credential(name, settings.credentials, "auth_code")
        else:
            self.params = params
            for key, named in (("receipt_request_field", o.receipt_request_field),
                               ("key_request_field", o.key_request_field)):
                if named is not None and named not in params:
                    raise block_error(name, key, f"{named!r} is not a field of "
                                                 f"{self.operation.input_qname.localname}")
            self.body_schema = (load_schema(name, "status_query.body_schema", o.body_schema)
                                if o.body_schema else None)

    def _body(self, field: str, value: str) -> etree._Element:
        o = self.options
        op = self.operation
        if self.style == "typed":
            body = etree.Element(op.input_qname)
            etree.SubElement(body, self.params[field]).text = value
            if self.body_schema is not None:
                errors = safexml.schema_errors(self.body_schema, body)
                if errors:
                    raise ValueError("status query fails its schema: " + "; ".join(errors))
            return body
        assert o.root is not None  # checked when built
        query = etree.Element(o.root)
        for tag, constant in o.constants.items():
            etree.SubElement(query, tag).text = constant
        etree.SubElement(query, field).text = value
        errors = safexml.schema_errors(self.inner_schema, query)
        if errors:
            raise ValueError("status query document fails its schema: " + "; ".join(errors))
        wrapper = etree.Element(op.input_qname)
        etree.SubElement(wrapper, self.auth_qname).text = self.auth_code
        etree.SubElement(wrapper, self.data_qname).text = encode_inner(query, self.encoding,
                                                                       reject_rare=False)
        return wrapper

    async def query_status(self, ref: CaseRef, *, correlation_id: str | None = None
                           ) -> StatusAnswer:
        o = self.options
        try:
            field, value = o.naming(ref)
            body = self._body(field, value)
        except ValueError as e:
            return StatusAnswer.failed(Outcome.permanent(f"status query not sent: {e}"))
        headers = [self.token.header(self.operation.version.ns)] if self.token else []
        request = soap.build_envelope(self.operation.version, body, headers)
        got = await soap.call(self.http, self.url, request, operation=self.operation,
                              timeout=self.timeout, max_bytes=self.max_bytes,
                              correlation_id=correlation_id or str(uuid.uuid4()), tls=self.tls,
                              auth=auth_headers(self.http_auth, method="POST", url=self.url,
                                                body=request))
        if isinstance(got, Outcome):
            return StatusAnswer.failed(got)
        env, status = got
        output = env.body[0]
        if output.tag != self.operation.output_qname.text:
            return StatusAnswer.failed(Outcome.retryable(
                f"malformed status answer: unexpected {etree.QName(output).text}",
                http_status=status))
        document = self._document(output, status)
        if isinstance(document, Outcome):
            return StatusAnswer.failed(document)
        result = self.paths.read(document, text_at)
        return o.answer(result.code, result.message, document=document, receipt=result.receipt,
                        http_status=status)

    def _document(self, output: etree._Element, status: int) -> etree._Element | Outcome:
        """The answer document: the output element, or the one embedded as text in it."""
        if self.style == "typed":
            return output
        text = text_at(output, self.return_field)
        if not text:
            return Outcome.retryable(f"malformed status answer: no <{self.return_field}>",
                                     http_status=status)
        return read_inner(text, self.result_schema, "malformed status answer", status)


def create_xml_string(name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                      auth: RequestAuth | None = None,
                      mappings: MappingLookup | None = None) -> SoapStatusQuery:
    """The ``soap-xml-string`` partner's status query (loads WSDL and XSDs: call at start-up)."""
    return SoapStatusQuery(name, settings, http, "xml-string", auth, mappings)


def create_typed(name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                 auth: RequestAuth | None = None,
                 mappings: MappingLookup | None = None) -> SoapStatusQuery:
    """The ``soap-typed`` partner's status query (loads WSDL and XSD: call at start-up)."""
    return SoapStatusQuery(name, settings, http, "typed", auth, mappings)
