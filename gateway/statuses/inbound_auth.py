"""How a partner's status callback is authenticated: a scheme named in ``partners.<name>.inbound``.

Schemes (``inbound.scheme``; unset: the one of the partner's callback contract)::

    wsse-digest   WS-Security UsernameToken digest in the SOAP header (username, password)
    auth-code     a shared code inside the message (Tianjin's notifyStatus ``authCode``)
    app-id        the national envelope's ``appId`` (its SM2 signature: ``national-sm2``)
    national-sm2  the national envelope's SM3withSM2 ``signData`` (partner options decide keys)
    hmac-sha256   HTTP headers over method, path and body (key_id, secret, ``hmac`` options)

The first four live inside a contract's message, so an endpoint checks the ones its contract
carries; ``hmac-sha256`` is HTTP-level, and Tianjin's and Hebei's endpoints check it instead
when named (before the body is parsed; the national envelope keeps its own signature).
:func:`scheme_of` decides at start-up, refusing a name that is unknown or that the endpoint
cannot check with one line naming ``partners.<name>.inbound.scheme``: which scheme a partner
uses is configuration, never code. Timestamps are held to ``inbound.max_age`` /
``inbound.max_ahead`` (each defaulting to ``wsse_window``); nonces go to the shared store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import ValidationError

from gateway.config import InboundSettings
from gateway.errors import ConfigError
from gateway.protocols import hmac_auth
from gateway.protocols.tif import NonceStore

IN_MESSAGE = frozenset({"wsse-digest", "auth-code", "app-id", "national-sm2"})
HTTP_LEVEL = frozenset({"hmac-sha256"})
SCHEMES = IN_MESSAGE | HTTP_LEVEL


def scheme_of(partner: str, inbound: InboundSettings | None, native: tuple[str, ...]) -> str:
    """The scheme this partner's endpoint checks: ``inbound.scheme``, else ``native[0]`` (the
    contract's). ``native`` lists the in-message schemes the endpoint's contract carries."""
    if inbound is None or inbound.scheme is None:
        return native[0]
    key = f"partners.{partner}.inbound.scheme"
    if inbound.scheme not in SCHEMES:
        raise ConfigError(f"unknown scheme {inbound.scheme!r}; known: {', '.join(sorted(SCHEMES))}",
                          key=key)
    if inbound.scheme in IN_MESSAGE and inbound.scheme not in native:
        can = ", ".join([*native, *sorted(HTTP_LEVEL)])
        raise ConfigError(f"{inbound.scheme} is not carried by {partner}'s callback contract; "
                          f"it can check {can}", key=key)
    return inbound.scheme


def limits(inbound: InboundSettings | None) -> tuple[float, float]:
    """(max_age, max_ahead) of the partner's timestamps, in seconds."""
    if inbound is None:
        return 300.0, 300.0
    return (inbound.wsse_window if inbound.max_age is None else inbound.max_age,
            inbound.wsse_window if inbound.max_ahead is None else inbound.max_ahead)


@dataclass(frozen=True)
class HmacInbound:
    """The ``hmac-sha256`` check of one partner's calls (:mod:`gateway.protocols.hmac_auth`)."""

    partner: str
    secrets: Mapping[str, bytes] = field(repr=False)
    options: hmac_auth.HmacOptions
    max_age: float
    max_ahead: float

    @classmethod
    def of(cls, partner: str, inbound: InboundSettings) -> HmacInbound:
        """Built at start-up; ``ConfigError`` naming the inbound key that is missing or wrong."""
        prefix = f"partners.{partner}.inbound"
        try:
            options = hmac_auth.HmacOptions.model_validate(inbound.hmac)
        except ValidationError as e:
            err = e.errors()[0]
            raise ConfigError(err["msg"], key=".".join(
                [prefix, "hmac", *(str(p) for p in err["loc"])])) from None
        for name in ("key_id", "secret"):
            if not getattr(inbound, name):
                raise ConfigError("is required by scheme hmac-sha256", key=f"{prefix}.{name}")
        assert inbound.key_id is not None and inbound.secret is not None
        try:
            key = hmac_auth.secret_bytes(inbound.secret, options.secret_encoding)
        except ValueError as e:
            raise ConfigError(str(e), key=f"{prefix}.secret") from None
        max_age, max_ahead = limits(inbound)
        return cls(partner, {inbound.key_id: key}, options, max_age, max_ahead)

    async def verify(self, request: web.Request, body: bytes, nonces: NonceStore) -> str:
        """The key id that signed ``request``, or :class:`~gateway.protocols.hmac_auth.HmacError`
        (the store's own error when it fails: the caller answers "busy")."""
        claims = await hmac_auth.verify(
            request.headers, method=request.method, path=request.path_qs, body=body,
            secrets_by_key=self.secrets, nonces=nonces, scope=self.partner,
            options=self.options, max_age=self.max_age, max_ahead=self.max_ahead)
        return claims.key_id


__all__ = ["HTTP_LEVEL", "IN_MESSAGE", "SCHEMES", "HmacInbound", "limits", "scheme_of"]
