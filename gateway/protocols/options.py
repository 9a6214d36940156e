"""Typed options of the protocol styles, validated once when a partner's client is built.

Every style declares its ``partners.<name>.options`` as a frozen pydantic model that refuses
unknown keys (a typo must not pass silently); :func:`parse_options` turns the first problem into
a :class:`~gateway.errors.ConfigError` naming ``partners.<name>.options.<key>``. The models hold
no partner's values: what a contract names (fields, codes, encodings) is configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import ConfigError
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


def _no_auth(partner: str, credentials: Mapping[str, str]) -> RequestAuth | None:
    return None


def _tif(partner: str, credentials: Mapping[str, str]) -> RequestAuth | None:
    """The city platform's ``x-tif-*`` signature (:mod:`gateway.protocols.tif`): credentials
    ``paasid`` and ``token``."""
    return TifSigner(credential(partner, credentials, "paasid"),
                     credential(partner, credentials, "token"))


#: ``options.auth`` of an HTTP style → builder of its signer from the partner's credentials. A
#: scheme is chosen by name in the configuration, never coded per partner.
AUTH_SCHEMES: dict[str, Callable[[str, Mapping[str, str]], RequestAuth | None]] = {
    "none": _no_auth,
    "x-tif": _tif,
}


def request_auth(partner: str, scheme: str, credentials: Mapping[str, str]) -> RequestAuth | None:
    """The signer ``options.auth`` names (``None`` for ``none``); ``ConfigError`` naming
    ``partners.<name>.options.auth`` for an unknown scheme, or the missing credential."""
    builder = AUTH_SCHEMES.get(scheme)
    if builder is None:
        known = ", ".join(sorted(AUTH_SCHEMES))
        raise option_error(partner, "auth", f"unknown auth scheme {scheme!r}; known: {known}")
    return builder(partner, credentials)


__all__ = ["AUTH_SCHEMES", "RequestAuth", "StyleOptions", "credential", "option_error",
           "parse_options", "request_auth"]
