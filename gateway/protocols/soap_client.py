"""One SOAP client for every SOAP style: build → call → read.

The SOAP styles differ only in how a mapped payload becomes the operation's input element (and
header blocks) and in where the operation's output element keeps the business result, much as
zeep's ``Soap11Binding`` and ``Soap12Binding`` share one base and differ only where they must.
A style is a subclass of :class:`SoapClient` naming its options model (``options_model``) with
three hooks:

* :meth:`~SoapClient.load_contract` ``(settings)``: what the style reads from the WSDL, its
  schemas and the credentials, once, when the client is built;
* :meth:`~SoapClient.build_body` ``(payload, idempotency_key, correlation_id)`` →
  :class:`SoapBody`, the input element and the style's header blocks; ``ValueError`` for a
  payload that must not be sent (a permanent outcome, nothing is sent);
* :meth:`~SoapClient.read_result` ``(output, status)`` → :class:`BusinessResult` (code, message,
  receipt), or an :class:`~gateway.outcome.Outcome` for a reply it cannot read.

Header blocks beyond the style's own come from mappings (option ``headers: [{mapping: name,
version: "1"}]``), rendered for each message in the order listed, after WS-Security and the
style's header: each mapping reads the message (the input element, or the string style's inner
document) with the context ``$idempotencyKey``, ``$partner``, ``$now`` and, declared under the
mapping's ``context:``, ``$correlation`` (the correlation id as a token); its output is
validated against the mapping's XSD before anything is sent. The mappings are looked up by name
through the live registry at send time (:data:`MappingLookup`, passed by whoever builds the
clients), so a reload applies to them.

Everything else is here, once: the options every SOAP style has (:class:`SoapOptions`), the WSDL
operation, WS-Security, the envelope, the exchange (:func:`gateway.protocols.soap.call`: no
redirect followed, the whole reply read up to a limit, faults and statuses classified), the check
that the reply is the operation's output, and the reading of the business code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, Literal, Protocol, TypeVar

import aiohttp
from lxml import etree
from pydantic import Field

from gateway.config import PartnerSettings
from gateway.errors import ConfigError, GatewayError
from gateway.outcome import Outcome
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.classify import BusinessCodes
from gateway.protocols.options import (StyleOptions, auth_headers, credential, option_error,
                                      parse_options, request_auth)
from gateway.protocols.wsse import UsernameToken
from gateway.security.tls import partner_tls


class HeaderMappingOptions(StyleOptions):
    """One header block of ``options.headers``: the mapping that renders it (and its version;
    the latest when not given)."""

    mapping: str = Field(min_length=1)
    version: str | None = Field(None, min_length=1)


class SoapOptions(StyleOptions):
    """What every SOAP style is told (``partners.<name>.options``); the styles add their own.

    ``code_field``, ``message_field`` and ``receipt_field`` say where a reply keeps the business
    code, its message and the receipt number (what a field is, each style says). Instead of a
    field, ``code_path``, ``message_path`` and ``receipt_path`` locate each by an XPath 1.0
    expression evaluated with the reply's output element (the string style: the result
    document's root) as context node, its prefixes declared in ``namespaces``; ``receipt_path:
    null`` says the partner issues no receipt (a success is then delivered without one),
    ``message_path: null`` that it sends no message. Or ``reply_mapping: {mapping, version}``:
    an inbound mapping (``target.kind: json``) of the same element to ``code``, ``message`` and
    ``receipt`` — a reply whose status needs more than a path (codes split over two fields, a
    receipt to assemble) is a mapping, as everything else the partner writes. ``binding``
    chooses a WSDL binding by name (for a WSDL without ``wsdl:service``; the URL is always the
    partner's ``url``). ``wsse: digest`` adds a WS-Security UsernameToken (credentials
    ``username`` and ``password``).
    """

    wsdl: str = Field(min_length=1)
    operation: str = Field(min_length=1)
    service: str | None = None
    port: str | None = None
    #: the WSDL binding by name, for a WSDL without ``wsdl:service`` (instead of service/port)
    binding: str | None = Field(None, min_length=1)
    wsse: Literal["none", "digest"] = "none"
    code_field: str | None = Field(None, min_length=1)
    message_field: str | None = Field(None, min_length=1)
    receipt_field: str | None = Field(None, min_length=1)
    code_path: str | None = Field(None, min_length=1)
    message_path: str | None = Field(None, min_length=1)
    #: ``null`` (given explicitly) for a partner that issues no receipt
    receipt_path: str | None = Field(None, min_length=1)
    namespaces: dict[str, str] = Field(default_factory=dict)
    #: instead of *_field/*_path: an inbound mapping of the reply (its output element, the string
    #: style's result document) to {code, message, receipt}
    reply_mapping: HeaderMappingOptions | None = None
    #: header blocks rendered by mappings, in this order (after WS-Security and the style's own)
    headers: tuple[HeaderMappingOptions, ...] = ()
    success_codes: tuple[str, ...] = Field(min_length=1)
    retryable_codes: tuple[str, ...] = ()
    #: an HTTP-level signature besides (or instead of) WS-Security, by name (options.AUTH_SCHEMES)
    auth: str = "none"
    auth_options: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class SoapBody:
    """What a style puts in an envelope: the operation's input element and its header blocks."""

    element: etree._Element
    headers: tuple[etree._Element, ...] = ()
    #: what header mappings read (``None``: ``element``; the string style: its inner document)
    source: etree._Element | None = None


@dataclass(frozen=True)
class BusinessResult:
    """The business answer a style read from the operation's output element."""

    code: str
    message: str
    receipt: str | None


OptionsT = TypeVar("OptionsT", bound=SoapOptions)
BEIJING = timezone(timedelta(hours=8))


class HeaderMapping(Protocol):
    """What a header block needs of a compiled mapping (:class:`gateway.mapping.CompiledMapping`
    is one; this layer does not import the mapping package, which sits above it)."""

    name: str
    version: str
    target_kind: str

    def render(self, source: Any, context: Mapping[str, Any], *, parent: Any = None) -> Any:
        ...

    def validate_output(self, payload: Any, source: Any = None) -> None:
        ...


#: (name, version or ``None`` for the latest) → the mapping; ``ConfigError`` when unknown
MappingLookup = Callable[[str, str | None], HeaderMapping]

#: a field's text as a style reads it (child by local name, ElementPath in a document…)
FieldReader = Callable[[etree._Element, str], str]


def xpath_text(found: Any) -> str:
    """The text an XPath result stands for: a string or number as is, the first node's string
    value (an element's text content, an attribute's value), ``""`` for nothing found."""
    if isinstance(found, list):
        if not found:
            return ""
        found = found[0]
    if isinstance(found, etree._Element):
        return "".join(found.itertext())
    if isinstance(found, bool):
        return "true" if found else "false"
    if isinstance(found, float):
        return str(int(found)) if found.is_integer() else ("" if found != found else str(found))
    return str(found)


@dataclass(frozen=True)
class Locator:
    """Where one value of a reply is: a style's field, or an XPath (compiled once)."""

    option: str
    where: str
    xpath: etree.XPath | None = None

    def read(self, context: etree._Element, by_field: FieldReader) -> str:
        if self.xpath is None:
            return by_field(context, self.where).strip()
        try:
            return xpath_text(self.xpath(context)).strip()
        except etree.XPathError:
            return ""


@dataclass(frozen=True)
class ResultPaths:
    """Where a reply keeps the business code, its message and the receipt (options
    ``*_field`` or ``*_path``); ``message``/``receipt`` are ``None`` for a partner that sends
    none (``message_path: null``, ``receipt_path: null``)."""

    code: Locator
    message: Locator | None
    receipt: Locator | None
    #: ``reply_mapping``: the mapping that reads all three, and where mappings are looked up
    mapping: HeaderMappingOptions | None = None
    lookup: MappingLookup | None = None

    @classmethod
    def of(cls, partner: str, options: PathOptions,
           error: Callable[[str, str, str], ConfigError] = option_error,
           mappings: MappingLookup | None = None) -> ResultPaths:
        """The locators the options name; ``ConfigError`` naming the option that is wrong
        (``error``: how the block is named — the partner's ``options``, or its
        ``status_query`` block, whose answers are located the same way)."""
        def absent(what: str) -> bool:  # ``<what>_path: null`` written, and no field
            return (f"{what}_path" in options.model_fields_set
                    and getattr(options, f"{what}_path") is None
                    and getattr(options, f"{what}_field") is None)
        spec: HeaderMappingOptions | None = getattr(options, "reply_mapping", None)
        if spec is not None:
            return cls._by_mapping(partner, options, spec, error, mappings, absent)
        code = _locator(partner, options, "code", error)
        message = None if absent("message") else _locator(partner, options, "message", error)
        receipt = None if absent("receipt") else _locator(partner, options, "receipt", error)
        return cls(code, message, receipt)

    @classmethod
    def _by_mapping(cls, partner: str, options: PathOptions, spec: HeaderMappingOptions,
                    error: Callable[[str, str, str], ConfigError],
                    mappings: MappingLookup | None, absent: Callable[[str], bool]) -> ResultPaths:
        given = [f"{w}_{k}" for w in ("code", "message", "receipt") for k in ("field", "path")
                 if getattr(options, f"{w}_{k}", None)]
        if given:
            raise error(partner, "reply_mapping", f"give reply_mapping or {', '.join(given)}, "
                                                  "not both")
        if mappings is None:
            raise error(partner, "reply_mapping", "a reply mapping needs the mapping registry "
                                                  "(build the client with mappings=…)")
        try:
            m = mappings(spec.mapping, spec.version)
        except ConfigError as e:
            raise error(partner, "reply_mapping.mapping", e.reason) from None
        if m.target_kind != "json":
            raise error(partner, "reply_mapping.mapping",
                        f"{spec.mapping} writes {m.target_kind}; a reply mapping writes "
                        "{code, message, receipt} (target.kind: json)")
        where = f"code (reply mapping {spec.mapping})"
        return cls(Locator("reply_mapping", where),
                   None if absent("message") else Locator("reply_mapping", "message"),
                   None if absent("receipt") else Locator("reply_mapping", "receipt"),
                   spec, mappings)

    def _by_reply_mapping(self, context: etree._Element) -> BusinessResult:
        """Render the reply mapping on ``context``; a reply it cannot read has no code (the
        caller's "malformed reply: no code (reply mapping …)")."""
        assert self.mapping is not None and self.lookup is not None
        try:
            m = self.lookup(self.mapping.mapping, self.mapping.version)
            doc = m.render(context, {})
            m.validate_output(doc)
        except (GatewayError, ConfigError):
            return BusinessResult("", "", None)
        if not isinstance(doc, Mapping):
            return BusinessResult("", "", None)

        def text(key: str) -> str:
            value = doc.get(key)
            return "" if value is None else str(value).strip()
        return BusinessResult(text("code"), text("message") if self.message else "",
                              (text("receipt") or None) if self.receipt is not None else None)

    def read(self, context: etree._Element, by_field: FieldReader) -> BusinessResult:
        if self.mapping is not None:
            return self._by_reply_mapping(context)
        return BusinessResult(self.code.read(context, by_field),
                              self.message.read(context, by_field) if self.message else "",
                              (self.receipt.read(context, by_field) or None)
                              if self.receipt is not None else None)


class PathOptions(Protocol):
    """Options that locate a reply's code, message and receipt (``*_field``/``*_path``,
    ``namespaces``): a SOAP style's, and a SOAP status query's."""

    @property
    def namespaces(self) -> dict[str, str]: ...

    @property
    def model_fields_set(self) -> set[str]: ...


def _locator(partner: str, options: PathOptions, what: str,
             option_error: Callable[[str, str, str], ConfigError] = option_error) -> Locator:
    field_name: str | None = getattr(options, f"{what}_field")
    path: str | None = getattr(options, f"{what}_path")
    if field_name and path:
        raise option_error(partner, f"{what}_path", f"give {what}_field or {what}_path, not both")
    if field_name:
        return Locator(f"{what}_field", field_name)
    if not path:
        hint = " (or receipt_path: null for a partner that issues no receipt)" \
            if what == "receipt" else ""
        raise option_error(partner, f"{what}_field",
                           f"is required: where the reply keeps the {what} "
                           f"({what}_field, or {what}_path as an XPath){hint}")
    try:
        xpath = etree.XPath(path, namespaces=options.namespaces, regexp=False,
                            smart_strings=False)
        xpath(etree.Element("probe"))  # an undeclared prefix is only found when evaluated
    except etree.XPathError as e:
        raise option_error(partner, f"{what}_path",
                           f"not a usable XPath ({e}); prefixes come from options.namespaces "
                           f"(declared: {', '.join(sorted(options.namespaces)) or 'none'})"
                           ) from None
    return Locator(f"{what}_path", path, xpath)


class SoapClient(ABC, Generic[OptionsT]):
    """A :class:`~gateway.protocols.base.PartnerClient` for one operation of a vendored WSDL.

    Built at start-up (it loads the WSDL and schemas, synchronously); ``ConfigError`` names the
    partner's option or credential that is wrong.
    """

    options_model: type[OptionsT]
    """The style's options (a :class:`SoapOptions` model), validated from ``settings.options``."""

    def __init__(self, name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                 mappings: MappingLookup | None = None) -> None:
        self.name = name
        self.url = settings.url
        self.timeout = settings.timeout
        self.max_bytes = settings.max_reply_bytes
        self.http = http
        self.tls = partner_tls(name, settings)  # partners.<name>.tls; None: default verification
        self.options = options = parse_options(self.options_model, name, settings.options)
        self.operation = load_operation(name, options)
        self.codes = BusinessCodes.of(options.success_codes, options.retryable_codes,
                                      settings.retry.throttle_codes)
        self.token: UsernameToken | None = None
        if options.wsse == "digest":
            self.token = UsernameToken(credential(name, settings.credentials, "username"),
                                       credential(name, settings.credentials, "password"))
        self.auth = request_auth(name, options.auth, settings.credentials, options.auth_options)
        self.paths = ResultPaths.of(name, options, mappings=mappings)
        self.mappings = mappings
        self._check_header_mappings()
        self.load_contract(settings)

    @abstractmethod
    def load_contract(self, settings: PartnerSettings) -> None:
        """Read what the style needs from the WSDL, its schemas and the credentials (once)."""

    @abstractmethod
    def build_body(self, payload: Any, idempotency_key: str, correlation_id: str) -> SoapBody:
        """The input element (and header blocks) for one message; ``ValueError`` to refuse."""

    @abstractmethod
    def read_result(self, output: etree._Element, status: int) -> BusinessResult | Outcome:
        """The business result in the operation's output element of a 2xx, fault-free reply."""

    def _check_header_mappings(self) -> None:
        """Every ``options.headers`` mapping exists now and renders XML (``ConfigError`` naming
        ``options.headers.<n>.mapping``)."""
        specs = self.options.headers
        if specs and self.mappings is None:
            raise option_error(self.name, "headers", "header mappings need the mapping registry "
                                                     "(build the client with mappings=…)")
        for i, spec in enumerate(specs):
            try:
                m = self._header_mapping(spec)
            except ConfigError as e:
                raise option_error(self.name, f"headers.{i}.mapping", e.reason) from None
            if m.target_kind != "xml":
                raise option_error(self.name, f"headers.{i}.mapping",
                                   f"{spec.mapping} renders {m.target_kind}; a header block is "
                                   f"an XML element (target kind: xml)")

    def _header_mapping(self, spec: HeaderMappingOptions) -> HeaderMapping:
        assert self.mappings is not None
        return self.mappings(spec.mapping, spec.version)

    def render_headers(self, source: etree._Element, idempotency_key: str,
                       correlation_id: str) -> list[etree._Element]:
        """The ``options.headers`` blocks for one message, each validated against its mapping's
        schema; ``ValueError`` naming the header for one that cannot be rendered."""
        if not self.options.headers:
            return []
        context = {"idempotencyKey": idempotency_key, "partner": self.name,
                   "now": datetime.now(BEIJING).isoformat(), "caseId": None,
                   "deliveryId": None, "deliveryRegion": None,
                   "correlation": soap.token(correlation_id)}
        blocks = []
        for i, spec in enumerate(self.options.headers):
            try:
                m = self._header_mapping(spec)
                block = m.render(source, context)
                m.validate_output(block)
            except GatewayError as e:
                raise ValueError(f"header {i} ({spec.mapping}): {e}") from None
            if not isinstance(block, etree._Element):
                raise ValueError(f"header {i} ({spec.mapping}) rendered no XML element")
            blocks.append(block)
        return blocks

    def build_request(self, payload: Any, idempotency_key: str, correlation_id: str) -> bytes:
        """Envelope bytes for one message; ``ValueError`` for a payload we must not send."""
        body = self.build_body(payload, idempotency_key, correlation_id)
        headers = list(body.headers)
        headers += self.render_headers(body.source if body.source is not None else body.element,
                                       idempotency_key, correlation_id)
        if self.token is not None:
            headers.insert(0, self.token.header(self.operation.version.ns))
        return soap.build_envelope(self.operation.version, body.element, headers)

    async def send(self, payload: Any, *, idempotency_key: str, correlation_id: str) -> Outcome:
        try:
            request = self.build_request(payload, idempotency_key, correlation_id)
        except ValueError as e:
            return Outcome.permanent(f"not sent: {e}")
        got = await soap.call(self.http, self.url, request, operation=self.operation,
                              timeout=self.timeout, max_bytes=self.max_bytes,
                              correlation_id=correlation_id, tls=self.tls,
                              auth=auth_headers(self.auth, method="POST", url=self.url,
                                                body=request))
        if isinstance(got, Outcome):
            return got
        return self.interpret(*got)

    def interpret(self, env: soap.Envelope, status: int) -> Outcome:
        """Classify a fault-free reply by the business code the style reads from it."""
        output = env.body[0]
        if output.tag != self.operation.output_qname.text:
            return Outcome.retryable(f"malformed reply: unexpected {etree.QName(output).text}",
                                     http_status=status)
        got = self.read_result(output, status)
        if isinstance(got, Outcome):
            return got
        paths = self.paths
        if not got.code:
            return Outcome.retryable(f"malformed reply: no {paths.code.where}", http_status=status)
        return self.codes.outcome(got.code, got.message or f"partner code {got.code}",
                                  receipt_no=got.receipt or None,
                                  receipt_field=paths.receipt.where if paths.receipt else "",
                                  receipt_required=paths.receipt is not None,
                                  http_status=status)

    async def close(self) -> None:
        """Nothing to release: the HTTP session is shared and owned by the application."""


# -- files named by options ----------------------------------------------------------------------

def resolve_path(value: str) -> Path:
    """A vendored file named in configuration: absolute, relative to the working directory, or
    relative to the project root (so ``schemas/hebei/CaseExchange.wsdl`` works from anywhere)."""
    p = Path(value)
    if p.is_absolute() or p.exists():
        return p
    return soap.PROJECT_ROOT / p


def load_operation(partner: str, options: SoapOptions) -> soap.SoapOperation:
    """The configured operation of the configured WSDL; ``ConfigError`` names the option."""
    try:
        return soap.load_operation(resolve_path(options.wsdl), options.operation,
                                   service=options.service, port=options.port,
                                   binding=options.binding)
    except ConfigError as e:
        raise ConfigError(e.reason, file=e.file,
                          key=f"partners.{partner}.{e.key or 'options.wsdl'}") from e


def load_schema(partner: str, key: str, path: str) -> etree.XMLSchema:
    """An XSD named by option ``key``; ``ConfigError`` names the file and the option."""
    try:
        return safexml.load_schema(resolve_path(path))
    except ConfigError as e:
        raise ConfigError(e.reason, file=e.file, key=f"partners.{partner}.options.{key}") from e


__all__ = ["BusinessResult", "FieldReader", "HeaderMapping", "HeaderMappingOptions", "Locator",
           "MappingLookup", "ResultPaths", "SoapBody", "SoapClient",
           "SoapOptions", "load_operation", "load_schema", "resolve_path", "xpath_text"]
