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

Everything else is here, once: the options every SOAP style has (:class:`SoapOptions`), the WSDL
operation, WS-Security, the envelope, the exchange (:func:`gateway.protocols.soap.call`: no
redirect followed, the whole reply read up to a limit, faults and statuses classified), the check
that the reply is the operation's output, and the reading of the business code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import aiohttp
from lxml import etree
from pydantic import Field

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.outcome import Outcome
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.classify import BusinessCodes
from gateway.protocols.options import (StyleOptions, auth_headers, credential, parse_options,
                                      request_auth)
from gateway.protocols.wsse import UsernameToken
from gateway.security.tls import partner_tls


class SoapOptions(StyleOptions):
    """What every SOAP style is told (``partners.<name>.options``); the styles add their own.

    ``code_field``, ``message_field`` and ``receipt_field`` say where a reply keeps the business
    code, its message and the receipt number (what a field is, each style says). ``wsse:
    digest`` adds a WS-Security UsernameToken (credentials ``username`` and ``password``).
    """

    wsdl: str = Field(min_length=1)
    operation: str = Field(min_length=1)
    service: str | None = None
    port: str | None = None
    wsse: Literal["none", "digest"] = "none"
    code_field: str = Field(min_length=1)
    message_field: str = Field(min_length=1)
    receipt_field: str = Field(min_length=1)
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


@dataclass(frozen=True)
class BusinessResult:
    """The business answer a style read from the operation's output element."""

    code: str
    message: str
    receipt: str | None


OptionsT = TypeVar("OptionsT", bound=SoapOptions)


class SoapClient(ABC, Generic[OptionsT]):
    """A :class:`~gateway.protocols.base.PartnerClient` for one operation of a vendored WSDL.

    Built at start-up (it loads the WSDL and schemas, synchronously); ``ConfigError`` names the
    partner's option or credential that is wrong.
    """

    options_model: type[OptionsT]
    """The style's options (a :class:`SoapOptions` model), validated from ``settings.options``."""

    def __init__(self, name: str, settings: PartnerSettings,
                 http: aiohttp.ClientSession) -> None:
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

    def build_request(self, payload: Any, idempotency_key: str, correlation_id: str) -> bytes:
        """Envelope bytes for one message; ``ValueError`` for a payload we must not send."""
        body = self.build_body(payload, idempotency_key, correlation_id)
        headers = list(body.headers)
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
        o = self.options
        if not got.code:
            return Outcome.retryable(f"malformed reply: no {o.code_field}", http_status=status)
        return self.codes.outcome(got.code, got.message or f"partner code {got.code}",
                                  receipt_no=got.receipt or None, receipt_field=o.receipt_field,
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
                                   service=options.service, port=options.port)
    except ConfigError as e:
        raise ConfigError(e.reason, file=e.file,
                          key=f"partners.{partner}.{e.key or 'options.wsdl'}") from e


def load_schema(partner: str, key: str, path: str) -> etree.XMLSchema:
    """An XSD named by option ``key``; ``ConfigError`` names the file and the option."""
    try:
        return safexml.load_schema(resolve_path(path))
    except ConfigError as e:
        raise ConfigError(e.reason, file=e.file, key=f"partners.{partner}.options.{key}") from e


__all__ = ["BusinessResult", "SoapBody", "SoapClient", "SoapOptions", "load_operation",
           "load_schema", "resolve_path"]
