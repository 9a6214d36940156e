"""Mutual TLS, both ways, by configuration: toward partners and from callers.

Toward a partner (``partners.<name>.tls``, :class:`TlsClientSettings`): the partner's server
certificate is checked against ``ca_file`` (the system's trust store without one) and its name
against the URL's host (or ``server_name``); with ``cert_file``/``key_file`` the gateway
presents its own certificate. Every request to that partner (sends, status queries, export
pages) goes through :func:`gateway.protocols.transport.post` with the partner's
:class:`ClientTls`, on the one shared HTTP session: aiohttp keys its pooled connections by the
SSL context, so partners never share a connection made with another's certificate.

From callers (``server.tls``, :class:`TlsServerSettings`): ``gateway serve`` listens with TLS;
with ``client_ca_file`` a client must present a certificate issued by that CA or the handshake
fails before any HTTP is read (``require_client_cert: false`` makes it optional: verified when
presented). A handler may read who connected with :func:`peer_subject` (the certificate's
subject, e.g. ``{"commonName": "city-platform"}``): a caller credential can be bound to a
certificate by comparing it there.

TLS 1.2 is the minimum both ways. Verification is never switched off silently: ``verify: false``
(a partner's test system with a self-made certificate) logs a warning naming the partner every
time its context is built. Key files are secrets: the configuration holds paths only, the files
are read at start-up, and a missing or unreadable one is a :class:`~gateway.errors.ConfigError`
naming its key (``partners.national.tls.key_file: cannot read …``), never the file's content.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.errors import ConfigError
from gateway.outcome import Outcome, OutcomeKind

log = logging.getLogger("gateway.tls")

TlsVersion = Literal["1.2", "1.3"]
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsClientSettings(_Frozen):
    """``partners.<name>.tls``: how the gateway connects to that partner (module docstring)."""

    ca_file: str | None = None      # trust anchors for the partner's certificate; None: system
    cert_file: str | None = None    # the gateway's own certificate (chain), PEM
    key_file: str | None = None     # its private key, PEM (a secret: a path, never the key)
    verify: bool = True             # false only for a test system; logged at every start
    server_name: str | None = Field(None, min_length=1)  # name expected in the partner's cert
    min_version: TlsVersion = "1.2"

    @model_validator(mode="after")
    def _pair(self) -> TlsClientSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (the gateway's certificate "
                             "and its key)")
        return self


class TlsServerSettings(_Frozen):
    """``server.tls``: how ``gateway serve`` listens (module docstring).

    ``require_client_cert`` unset means: required when ``client_ca_file`` is given.
    """

    cert_file: str = Field(min_length=1)
    key_file: str = Field(min_length=1)
    client_ca_file: str | None = None
    require_client_cert: bool | None = None
    min_version: TlsVersion = "1.2"

    @model_validator(mode="after")
    def _client_ca(self) -> TlsServerSettings:
        if self.require_client_cert and self.client_ca_file is None:
            raise ValueError("require_client_cert needs client_ca_file (the CA that issues "
                             "the callers' certificates)")
        return self

    @property
    def client_certs(self) -> Literal["required", "optional", "none"]:
        if self.client_ca_file is None:
            return "none"
        return "optional" if self.require_client_cert is False else "required"


#: how a failed exchange reads when the partner dropped the connection during or right after
#: the handshake (TLS 1.3 completes on the client's side before the server checks its certificate)
_DROPPED = ("connection failed", "server disconnected", "TLS connection closed")


@dataclass(frozen=True)
class ClientTls:
    """What one partner's requests are made with: the SSL context and the name to check."""

    context: ssl.SSLContext
    server_name: str | None = None
    partner: str = ""
    client_cert: bool = False

    def explain(self, failed: Outcome) -> Outcome:
        """``failed`` with a hint when it looks like a refused client certificate: a server that
        refuses one under TLS 1.3 just resets the connection, which alone reads like a network
        fault. The kind stays (a reset may be the network's after all)."""
        if failed.kind is not OutcomeKind.RETRYABLE or not failed.message.startswith(_DROPPED):
            return failed
        key = f"partners.{self.partner}.tls.cert_file"
        hint = (f"a partner that refuses the gateway's client certificate ({key}) drops the "
                f"connection so" if self.client_cert else
                f"a partner that requires a client certificate drops the connection so, and "
                f"none is configured ({key})")
        return dataclasses.replace(failed, message=f"{failed.message} (over TLS: {hint})")


def _readable(path: str, key: str) -> str:
    """``path`` if it can be opened; else a ConfigError naming ``key`` (and why, not the content)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}", key=key) from None
    return path


def _load_chain(ctx: ssl.SSLContext, cert_file: str, key_file: str, prefix: str) -> None:
    cert = _readable(cert_file, f"{prefix}.cert_file")
    key = _readable(key_file, f"{prefix}.key_file")
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        raise ConfigError(f"certificate and key cannot be used together ({e.reason or e}): "
                          f"not PEM, encrypted, or the key is not the certificate's",
                          key=f"{prefix}.key_file") from None


def _load_cas(ctx: ssl.SSLContext, ca_file: str, key: str) -> None:
    try:
        ctx.load_verify_locations(cafile=_readable(ca_file, key))
    except ssl.SSLError as e:
        raise ConfigError(f"not a PEM certificate file ({e.reason or e})", key=key) from None


@functools.lru_cache(maxsize=64)
def client_tls(partner: str, settings: TlsClientSettings | None) -> ClientTls | None:
    """The partner's :class:`ClientTls`, or ``None`` without a ``tls`` block (aiohttp's default
    verification). Built once per partner and settings (the send, the status query and the
    export reader share it, and so share pooled connections); ``ConfigError`` names the key."""
    if settings is None:
        return None
    prefix = f"partners.{partner}.tls"
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = _VERSIONS[settings.min_version]
    if settings.ca_file is not None:
        _load_cas(ctx, settings.ca_file, f"{prefix}.ca_file")
    if settings.cert_file is not None and settings.key_file is not None:
        _load_chain(ctx, settings.cert_file, settings.key_file, prefix)
    if not settings.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        log.warning("%s.verify is false: the partner's certificate is NOT checked "
                    "(anyone on the path can pose as %s)", prefix, partner)
    return ClientTls(ctx, settings.server_name, partner,
                     client_cert=settings.cert_file is not None)


def require_https(partner: str, url: str, settings: TlsClientSettings | None) -> None:
    """A ``tls`` block on a partner reached over plain HTTP is a mistake worth stopping for."""
    if settings is not None and not url.lower().startswith("https://"):
        raise ConfigError("a tls block needs an https:// url (the partner's requests would "
                          "otherwise go in clear text)", key=f"partners.{partner}.url")


class PartnerTlsSettings(Protocol):
    """What :func:`partner_tls` reads of a partner's settings (``PartnerSettings``)."""

    @property
    def url(self) -> str: ...

    @property
    def tls(self) -> TlsClientSettings | None: ...


def partner_tls(partner: str, settings: PartnerTlsSettings) -> ClientTls | None:
    """:func:`client_tls` of a partner, after :func:`require_https` on its URL: what a protocol
    client calls once when it is built (at start-up), passing the result to every request."""
    require_https(partner, settings.url, settings.tls)
    return client_tls(partner, settings.tls)


def server_context(settings: TlsServerSettings) -> ssl.SSLContext:
    """The listening SSL context of ``server.tls``; ``ConfigError`` names the key at fault."""
    prefix = "server.tls"
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = _VERSIONS[settings.min_version]
    _load_chain(ctx, settings.cert_file, settings.key_file, prefix)
    if settings.client_ca_file is not None:
        _load_cas(ctx, settings.client_ca_file, f"{prefix}.client_ca_file")
    ctx.verify_mode = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL,
                       "none": ssl.CERT_NONE}[settings.client_certs]
    return ctx


#: ``server.tls`` keys and the environment variables that set them (a container's mounted files)
TLS_ENV = {"cert_file": "GATEWAY_TLS_CERT_FILE", "key_file": "GATEWAY_TLS_KEY_FILE",
           "client_ca_file": "GATEWAY_TLS_CLIENT_CA_FILE"}


def server_tls_from_env(env: Mapping[str, str]) -> dict[str, str] | None:
    """``server.tls`` from ``GATEWAY_TLS_*`` (paths, never contents), or ``None`` when
    ``GATEWAY_TLS_CERT_FILE`` is unset. A partial set is left to the settings model to name
    (``server.tls.key_file: Field required``)."""
    if not env.get(TLS_ENV["cert_file"]):
        return None
    return {key: env[name] for key, name in TLS_ENV.items() if env.get(name)}


def peer_subject(request: web.Request) -> dict[str, str] | None:
    """The verified client certificate's subject (``{"commonName": …, "organizationName": …}``),
    or ``None`` over plain HTTP or when the client presented none. Only certificates the
    server's ``client_ca_file`` vouches for reach a handler, so this names who connected."""
    transport = request.transport
    if transport is None:
        return None
    cert: Any = transport.get_extra_info("peercert")
    if not cert:
        return None
    subject: dict[str, str] = {}
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            subject[str(name)] = str(value)
    return subject


__all__ = ["TLS_ENV", "ClientTls", "PartnerTlsSettings", "TlsClientSettings", "TlsServerSettings",
           "TlsVersion", "client_tls", "partner_tls", "peer_subject", "require_https",
           "server_context", "server_tls_from_env"]
