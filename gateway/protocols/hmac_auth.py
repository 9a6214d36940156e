"""HMAC-SHA256 request signing (scheme ``hmac-sha256``): sign outgoing requests, verify incoming.

For partners that authenticate calls with a shared secret and a keyed hash over the request
(the pattern of AWS SigV4, Alibaba Cloud API gateways and most Chinese provincial API gateways),
four headers by default::

    X-Gw-Key-Id      which secret (credentials ``key_id``)
    X-Gw-Timestamp   Unix seconds
    X-Gw-Nonce       a fresh random string per request
    X-Gw-Signature   hex HMAC-SHA256(secret, canonical string)

    canonical string = METHOD \\n path \\n timestamp \\n nonce \\n hex SHA-256(body)

Unlike ``x-tif`` the signature covers the body (its SHA-256) and the path, so a captured
signature cannot carry another case or reach another endpoint; the timestamp bounds how long a
captured request stays usable, and the nonce makes it single use inside that window on every
instance (the shared :class:`~gateway.protocols.tif.NonceStore`, in the database).

Everything a partner might do differently is an option (:class:`HmacOptions`, the partner's
``options.auth_options``): the header names, which parts make the canonical string and in what
order, the separator, hex or Base64 signatures, seconds or milliseconds, how the secret is
written. A partner that signs with HMAC under other names is configuration, never code.

Verification is split like :mod:`gateway.protocols.tif`: :func:`check` (pure: headers, window,
signature in constant time) and :func:`verify` (then the nonce must be new, remembered only once
everything else holds, so a forged request cannot burn a genuine one's nonce). Refusals are
:class:`HmacError` with a ``code``; messages name headers, never the secret or a signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.protocols.tif import NonceStore

Part = Literal["method", "path", "timestamp", "nonce", "body_sha256", "key_id"]
HmacProblem = Literal["missing_header", "malformed_header", "stale_timestamp", "bad_signature",
                      "reused_nonce"]

_NONCE = re.compile(r"[A-Za-z0-9._~+/=-]{8,128}")
_KEY_ID = re.compile(r"[\x21-\x7e]{1,128}")
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")


class HmacOptions(BaseModel):
    """How a partner writes the scheme (module docstring); the defaults are the gateway's own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id_header: str = "X-Gw-Key-Id"
    timestamp_header: str = "X-Gw-Timestamp"
    nonce_header: str = "X-Gw-Nonce"
    signature_header: str = "X-Gw-Signature"
    canonical: tuple[Part, ...] = Field(("method", "path", "timestamp", "nonce", "body_sha256"),
                                        min_length=1)
    separator: str = "\n"
    signature_encoding: Literal["hex", "base64"] = "hex"
    timestamp_unit: Literal["s", "ms"] = "s"
    #: how the ``secret`` credential is written: text (UTF-8 bytes), hex or Base64
    secret_encoding: Literal["utf-8", "hex", "base64"] = "utf-8"

    @field_validator("key_id_header", "timestamp_header", "nonce_header", "signature_header")
    @classmethod
    def _header_name(cls, v: str) -> str:
        if not _HEADER.fullmatch(v):
            raise ValueError("must be an HTTP header name (letters, digits, '-')")
        return v

    @field_validator("canonical")
    @classmethod
    def _covers(cls, v: tuple[Part, ...]) -> tuple[Part, ...]:
        missing = {"timestamp", "nonce", "body_sha256"} - set(v)
        if missing:  # without them a signature is replayable or does not bind the body
            raise ValueError(f"the canonical string must include {', '.join(sorted(missing))}")
        return v


DEFAULT_OPTIONS = HmacOptions()
"""The gateway's own headers and canonical string (module docstring)."""


def secret_bytes(secret: str, encoding: Literal["utf-8", "hex", "base64"]) -> bytes:
    """The key bytes of a ``secret`` credential; ``ValueError`` (never echoing it) if unreadable."""
    try:
        if encoding == "hex":
            return bytes.fromhex(secret)
        if encoding == "base64":
            return base64.b64decode(secret, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(f"the secret is not {encoding}") from None
    return secret.encode("utf-8")


def request_path(url_or_path: str) -> str:
    """The path (and query, if any) a request is signed for: ``/a/b?x=1`` of a full URL."""
    parts = urlsplit(url_or_path)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def canonical_string(options: HmacOptions, *, method: str, path: str, timestamp: str,
                     nonce: str, body: bytes, key_id: str) -> bytes:
    """The bytes that are signed: the configured parts, in order, joined by the separator."""
    values: dict[Part, str] = {"method": method.upper(), "path": path, "timestamp": timestamp,
                               "nonce": nonce, "body_sha256": hashlib.sha256(body).hexdigest(),
                               "key_id": key_id}
    return options.separator.join(values[p] for p in options.canonical).encode("utf-8")


def signature(key: bytes, canonical: bytes, encoding: Literal["hex", "base64"] = "hex") -> str:
    """HMAC-SHA256 of ``canonical`` under ``key``, hex (lowercase) or Base64."""
    mac = hmac.new(key, canonical, hashlib.sha256).digest()
    return mac.hex() if encoding == "hex" else base64.b64encode(mac).decode("ascii")


def new_nonce() -> str:
    """128 bits from the operating system's CSPRNG, 32 hex characters."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class HmacSigner:
    """Client side: the scheme's headers for one request (:func:`gateway.protocols.options.
    auth_headers` calls :meth:`sign` with the request's method, URL and body)."""

    key_id: str
    secret: bytes = field(repr=False)
    options: HmacOptions = DEFAULT_OPTIONS
    clock: Callable[[], float] = field(default=time.time, repr=False)
    nonce_source: Callable[[], str] = field(default=new_nonce, repr=False)

    def sign(self, *, method: str, url: str, body: bytes) -> dict[str, str]:
        o = self.options
        now = self.clock()
        timestamp = str(int(now * 1000) if o.timestamp_unit == "ms" else int(now))
        nonce = self.nonce_source()
        text = canonical_string(o, method=method, path=request_path(url), timestamp=timestamp,
                                nonce=nonce, body=body, key_id=self.key_id)
        return {o.key_id_header: self.key_id, o.timestamp_header: timestamp,
                o.nonce_header: nonce,
                o.signature_header: signature(self.secret, text, o.signature_encoding)}

    def headers(self) -> dict[str, str]:
        """Not enough for this scheme: it signs the body. A call site that only asks for headers
        must use ``auth_headers`` (a loud failure, never an unsigned or wrongly signed request)."""
        raise TypeError("hmac-sha256 signs the method, path and body: call sign(...) "
                        "(gateway.protocols.options.auth_headers)")


class HmacError(Exception):
    """A request the scheme refuses; ``code`` says why, ``header`` which header; the message is
    safe to answer and to log."""

    def __init__(self, code: HmacProblem, header: str, message: str) -> None:
        self.code: HmacProblem = code
        self.header = header
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class HmacClaims:
    """What a verified request asserts."""

    key_id: str
    timestamp: float   # Unix seconds
    nonce: str


def _one(headers: Mapping[str, str], name: str) -> str:
    getall = getattr(headers, "getall", None)  # aiohttp's CIMultiDict: a header may repeat
    lname = name.lower()
    values: list[str] = list(getall(name, [])) if callable(getall) else \
        [v for k, v in headers.items() if k.lower() == lname]
    if not values:
        raise HmacError("missing_header", name, f"header {name} is missing")
    if len(values) > 1:
        raise HmacError("malformed_header", name, f"header {name} is repeated")
    return values[0].strip()


def check(headers: Mapping[str, str], *, method: str, path: str, body: bytes,
          secrets_by_key: Mapping[str, bytes], now: float, options: HmacOptions = DEFAULT_OPTIONS,
          max_age: float = 300.0, max_ahead: float = 300.0) -> HmacClaims:
    """Everything but the nonce's freshness (pure): the headers present once and well formed,
    the timestamp at most ``max_age`` seconds old and at most ``max_ahead`` seconds ahead of
    ``now``, and the signature over this method, path and body right (constant time). An
    unknown key id is refused like a wrong signature, after the same work."""
    o = options
    key_id, ts_text, nonce, given = (_one(headers, h) for h in (
        o.key_id_header, o.timestamp_header, o.nonce_header, o.signature_header))
    if not _KEY_ID.fullmatch(key_id):
        raise HmacError("malformed_header", o.key_id_header,
                        f"{o.key_id_header} must be 1 to 128 printable ASCII characters")
    if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 16:
        raise HmacError("malformed_header", o.timestamp_header,
                        f"{o.timestamp_header} must be Unix time in "
                        f"{'milliseconds' if o.timestamp_unit == 'ms' else 'seconds'}")
    if not _NONCE.fullmatch(nonce):
        raise HmacError("malformed_header", o.nonce_header,
                        f"{o.nonce_header} must be 8 to 128 URL-safe or Base64 characters")
    at = int(ts_text) / (1000.0 if o.timestamp_unit == "ms" else 1.0)
    if now - at > max_age:
        raise HmacError("stale_timestamp", o.timestamp_header,
                        f"{o.timestamp_header} is {now - at:.0f} s old (at most {max_age:g} s "
                        f"accepted)")
    if at - now > max_ahead:
        raise HmacError("stale_timestamp", o.timestamp_header,
                        f"{o.timestamp_header} is {at - now:.0f} s ahead of the receiver's clock "
                        f"(at most {max_ahead:g} s accepted)")
    key = secrets_by_key.get(key_id)
    text = canonical_string(o, method=method, path=path, timestamp=ts_text, nonce=nonce,
                            body=body, key_id=key_id)
    expected = signature(key if key is not None else b"\x00unknown", text, o.signature_encoding)
    if o.signature_encoding == "hex":
        given = given.lower()
    if not hmac.compare_digest(expected.encode(), given.encode()) or key is None:
        raise HmacError("bad_signature", o.signature_header,
                        f"{o.signature_header} does not verify for {o.key_id_header} {key_id!r} "
                        f"(unknown key id, wrong secret, or the method, path or body differ "
                        f"from what was signed)")
    return HmacClaims(key_id, at, nonce)


async def verify(headers: Mapping[str, str], *, method: str, path: str, body: bytes,
                 secrets_by_key: Mapping[str, bytes], nonces: NonceStore, scope: str,
                 now: float | None = None, options: HmacOptions = DEFAULT_OPTIONS,
                 max_age: float = 300.0, max_ahead: float = 300.0) -> HmacClaims:
    """Authenticate one incoming request: :func:`check`, then its nonce must be new in ``scope``
    (``hmac:<scope>:<key id>`` in the shared store, kept until the timestamp leaves the window)."""
    at = time.time() if now is None else now
    claims = check(headers, method=method, path=path, body=body, secrets_by_key=secrets_by_key,
                   now=at, options=options, max_age=max_age, max_ahead=max_ahead)
    if not await nonces.remember(f"hmac:{scope}:{claims.key_id}"[:128], claims.nonce,
                                 expires_at=claims.timestamp + max_age):
        raise HmacError("reused_nonce", options.nonce_header,
                        f"{options.nonce_header} was already used (replay)")
    return claims


__all__ = ["DEFAULT_OPTIONS", "HmacClaims", "HmacError", "HmacOptions", "HmacProblem", "HmacSigner", "Part",
           "canonical_string", "check", "new_nonce", "request_path", "secret_bytes", "signature",
           "verify"]
