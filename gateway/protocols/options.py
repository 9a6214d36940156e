"""Typed options of the protocol styles, validated once when a partner's client is built.

Every style declares its ``partners.<name>.options`` as a frozen pydantic model that refuses
unknown keys (a typo must not pass silently); :func:`parse_options` turns the first problem into
a :class:`~gateway.errors.ConfigError` naming ``partners.<name>.options.<key>``. The models hold
no partner's values: what a contract names (fields, codes, encodings) is configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import ConfigError
from gateway.protocols.hmac_auth import HmacOptions, HmacSigner, secret_bytes
from gateway.protocols.tif import TifSigner


class StyleOptions(BaseModel):
    """Base of every style's options: frozen, and unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


OptionsT = TypeVar("OptionsT", bound=StyleOptions)


def parse_options(model: type[OptionsT], partner: str, options: Mapping[str, Any]) -> OptionsT:
    """``options`` validated into ``model``; ``ConfigError`` naming the key of the first problem."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise option_error(partner, key, err["msg"]) from None


def option_error(partner: str, key: str, reason: str) -> ConfigError:
    """A ``ConfigError`` for an option whose value the model accepted but the contract does not
    (a field the WSDL lacks, say)."""
    return ConfigError(reason, key=f"partners.{partner}.options.{key}")


def credential(partner: str, credentials: Mapping[str, str], key: str) -> str:
    """A required, non-empty credential; ``ConfigError`` naming ``partners.<name>.credentials.<key>``."""
    value = credentials.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError("is required and must be a non-empty string",
                          key=f"partners.{partner}.credentials.{key}")
    return value


class RequestAuth(Protocol):
    """Signs one outgoing HTTP request with headers (fresh ones for every attempt)."""

    def headers(self) -> dict[str, str]:
        ...


@runtime_checkable
class RequestSigner(Protocol):
    """A :class:`RequestAuth` whose signature covers the request itself (method, URL, body):
    :func:`auth_headers` calls :meth:`sign` instead of ``headers()``."""

    def sign(self, *, method: str, url: str, body: bytes) -> dict[str, str]:
        ...


def auth_headers(auth: RequestAuth | None, *, method: str, url: str,
                 body: bytes) -> dict[str, str]:
    """The headers that authenticate one request: what its scheme makes of the request (the
    HMAC scheme signs method, path and body), or its plain headers (``x-tif``); none without a
    scheme. The one call every HTTP style makes, after the body is final."""
    if auth is None:
        return {}
    if isinstance(auth, RequestSigner):
        return auth.sign(method=method, url=url, body=body)
    return auth.headers()


AuthBuilder = Callable[[str, Mapping[str, str], Mapping[str, Any]], RequestAuth | None]


def _no_options(partner: str, scheme: str, options: Mapping[str, Any]) -> None:
    if options:
        raise option_error(partner, "auth_options", f"the {scheme} scheme takes no options")


def _no_auth(partner: str, credentials: Mapping[str, str],
             options: Mapping[str, Any]) -> RequestAuth | None:
    _no_options(partner, "none", options)
    return None


def _tif(partner: str, credentials: Mapping[str, str],
         options: Mapping[str, Any]) -> RequestAuth | None:
    """The city platform's ``x-tif-*`` signature (:mod:`gateway.protocols.tif`): credentials
    ``paasid`` and ``token``."""
    _no_options(partner, "x-tif", options)
    return TifSigner(credential(partner, credentials, "paasid"),
                     credential(partner, credentials, "token"))


def _hmac(partner: str, credentials: Mapping[str, str],
          options: Mapping[str, Any]) -> RequestAuth | None:
    """HMAC-SHA256 over method, path, timestamp, nonce and the body's SHA-256
    (:mod:`gateway.protocols.hmac_auth`): credentials ``key_id`` and ``secret``; header names,
    canonical string and encodings from ``options.auth_options``."""
    try:
        hmac_options = HmacOptions.model_validate(dict(options))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(["auth_options", *(str(p) for p in err["loc"])])
        raise option_error(partner, where, err["msg"]) from None
    key_id = credential(partner, credentials, "key_id")
    try:
        key = secret_bytes(credential(partner, credentials, "secret"),
                           hmac_options.secret_encoding)
    except ValueError as e:
        raise ConfigError(str(e), key=f"partners.{partner}.credentials.secret") from None
    return HmacSigner(key_id, key, hmac_options)


#: ``options.auth`` of an HTTP style → builder of its signer from the partner's credentials and
#: ``options.auth_options``. A scheme is chosen by name in the configuration, never coded per
#: partner.
AUTH_SCHEMES: dict[str, AuthBuilder] = {
    "none": _no_auth,
    "x-tif": _tif,
    "hmac-sha256": _hmac,
}


def request_auth(partner: str, scheme: str, credentials: Mapping[str, str],
                 options: Mapping[str, Any] | None = None) -> RequestAuth | None:
    """The signer ``options.auth`` names (``None`` for ``none``); ``ConfigError`` naming
    ``partners.<name>.options.auth`` for an unknown scheme, ``…auth_options`` for options it
    refuses, or the missing credential."""
    builder = AUTH_SCHEMES.get(scheme)
    if builder is None:
        known = ", ".join(sorted(AUTH_SCHEMES))
        raise option_error(partner, "auth", f"unknown auth scheme {scheme!r}; known: {known}")
    return builder(partner, credentials, options or {})


__all__ = ["AUTH_SCHEMES", "AuthBuilder", "RequestAuth", "RequestSigner", "StyleOptions",
           "auth_headers", "credential", "option_error", "parse_options", "request_auth"]
