"""The city platform's ``x-tif-*`` request signature: sign outgoing requests, verify incoming ones.

Beijing's city integrated platform (DESIGN.md §3) authenticates every call with four headers::

    x-tif-paasid     the caller's registered application id
    x-tif-timestamp  Unix seconds, as decimal digits
    x-tif-nonce      a fresh random string per request
    x-tif-signature  uppercase hex SHA-256 of  timestamp + token + nonce + timestamp

The token never travels; the timestamp bounds how long a captured request stays usable (±180 s
around the receiver's clock) and the nonce makes it single use inside that window: the receiver
remembers every nonce it accepted until the window has passed (:class:`NonceStore`).

The signature covers neither the body nor the path: what stops a captured signature from
carrying another body is the nonce's single use (the genuine request has already spent it, or
spends it first), and TLS in production. A receiver must therefore check the nonce on every
request it accepts, on every instance (issue 14: a shared, database-backed store).

Both sides live here so the city-platform simulator verifies exactly what the REST client
produces; the tests check the signature against ``hashlib`` directly. Verification is split into
a pure part (:func:`check_headers`: presence, format, window, signature) and the one stateful
step (:func:`verify`: the nonce is remembered only once everything else holds, so a forged or
stale request cannot burn a nonce a genuine one will use). Every refusal is a :class:`TifError`
whose ``code`` says what is wrong; its message names headers, never the token or a signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

PAASID = "x-tif-paasid"
TIMESTAMP = "x-tif-timestamp"
NONCE = "x-tif-nonce"
SIGNATURE = "x-tif-signature"
HEADERS = (PAASID, TIMESTAMP, NONCE, SIGNATURE)

WINDOW = 180.0
"""Seconds a request's timestamp may lie before or after the receiver's clock (inclusive)."""

TifProblem = Literal["missing_header", "malformed_header", "stale_timestamp", "bad_signature",
                     "reused_nonce"]

_TIMESTAMP = re.compile(r"[0-9]{1,20}")
_NONCE = re.compile(r"[A-Za-z0-9._~-]{8,128}")   # URL-safe, at least 8 characters
_PAASID = re.compile(r"[\x21-\x7e]{1,128}")      # printable ASCII, no spaces
_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")


def signature(timestamp: str, token: str, nonce: str) -> str:
    """``x-tif-signature`` for these values: uppercase hex SHA-256 of
    timestamp + token + nonce + timestamp (the strings exactly as sent, UTF-8)."""
    text = timestamp + token + nonce + timestamp
    return hashlib.sha256(text.encode("utf-8")).hexdigest().upper()


def new_nonce() -> str:
    """A fresh nonce from the operating system's CSPRNG: 32 hex characters (128 bits)."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class TifSigner:
    """Client side: fresh ``x-tif-*`` headers for every request of one paasid.

    ``clock`` and ``nonce_source`` are seams for tests; the defaults are the wall clock and the
    CSPRNG. The token is kept out of ``repr`` so a signer in a log or a traceback reveals nothing.
    """

    paasid: str
    token: str = field(repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False)
    nonce_source: Callable[[], str] = field(default=new_nonce, repr=False)

    def headers(self) -> dict[str, str]:
        """The four headers for one request (a new timestamp and nonce each call)."""
        timestamp = str(int(self.clock()))
        nonce = self.nonce_source()
        return {PAASID: self.paasid, TIMESTAMP: timestamp, NONCE: nonce,
                SIGNATURE: signature(timestamp, self.token, nonce)}


class TifError(Exception):
    """A request the ``x-tif`` scheme refuses. ``code`` is the kind of problem, ``header`` the
    header it concerns; the message is safe to return to the caller and to log."""

    def __init__(self, code: TifProblem, header: str, message: str) -> None:
        self.code: TifProblem = code
        self.header = header
        self.message = message
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class TifClaims:
    """What a request's headers assert, once their format, window and signature hold."""

    paasid: str
    timestamp: int
    nonce: str


def _one(headers: Mapping[str, str], name: str) -> str:
    getall = getattr(headers, "getall", None)  # aiohttp's CIMultiDict: a header may repeat
    values: list[str] = list(getall(name, [])) if callable(getall) else \
        [v for k, v in headers.items() if k.lower() == name]
    if not values:
        raise TifError("missing_header", name, f"header {name} is missing")
    if len(values) > 1:
        raise TifError("malformed_header", name, f"header {name} is repeated")
    return values[0].strip()


def check_headers(headers: Mapping[str, str], tokens: Mapping[str, str], *, now: float,
                  window: float = WINDOW) -> TifClaims:
    """Everything but the nonce's freshness: the four headers present once each and well formed,
    the timestamp within ``window`` seconds of ``now`` (inclusive), and the signature made with
    the token ``tokens`` holds for the paasid (compared in constant time). Pure.

    An unknown paasid is refused like a wrong token (``bad_signature``), after the same work, so
    neither the answer nor its timing tells which paasids exist.
    """
    paasid, ts_text, nonce, given = (_one(headers, h) for h in HEADERS)
    if not _PAASID.fullmatch(paasid):
        raise TifError("malformed_header", PAASID,
                       f"{PAASID} must be 1 to 128 printable ASCII characters without spaces")
    if not _TIMESTAMP.fullmatch(ts_text):
        raise TifError("malformed_header", TIMESTAMP,
                       f"{TIMESTAMP} must be Unix seconds (decimal digits)")
    if len(ts_text) >= 13:  # 13 digits is today in milliseconds, a common mistake worth naming
        raise TifError("malformed_header", TIMESTAMP,
                       f"{TIMESTAMP} must be Unix seconds, not milliseconds")
    if not _NONCE.fullmatch(nonce):
        raise TifError("malformed_header", NONCE,
                       f"{NONCE} must be 8 to 128 characters from A-Z a-z 0-9 . _ ~ -")
    if not _HEX64.fullmatch(given):
        raise TifError("malformed_header", SIGNATURE,
                       f"{SIGNATURE} must be 64 hexadecimal characters (SHA-256)")
    timestamp = int(ts_text)
    skew = timestamp - now
    if abs(skew) > window:
        side = "ahead of" if skew > 0 else "behind"
        raise TifError("stale_timestamp", TIMESTAMP,
                       f"{TIMESTAMP} is {abs(skew):.0f} s {side} the receiver's clock "
                       f"(at most {window:g} s accepted)")
    token = tokens.get(paasid)
    expected = signature(ts_text, token if token is not None else "\x00unknown", nonce)
    if not hmac.compare_digest(expected, given.upper()) or token is None:
        raise TifError("bad_signature", SIGNATURE,
                       f"{SIGNATURE} does not verify for {PAASID} {paasid!r} "
                       f"(unknown paasid or wrong token)")
    return TifClaims(paasid, timestamp, nonce)


class NonceStore(Protocol):
    """Remembers accepted nonces until they can no longer be replayed.

    One instance (or one shared table, for several gateway instances) per receiver: it is the
    replay defence, so every request it verifies must go through the same store.
    """

    async def remember(self, paasid: str, nonce: str, *, expires_at: float) -> bool:
        """Record ``nonce`` of ``paasid`` until ``expires_at`` (Unix seconds); ``False`` if it is
        already recorded and not yet expired (a replay), ``True`` if it was new. Atomic."""
        ...


class MemoryNonceStore:
    """A :class:`NonceStore` in this process's memory (a simulator, a single instance, tests).

    Expired entries are pruned as the store grows, so it holds at most the nonces of one
    window's traffic. ``remember`` does not await, so on one event loop it is atomic.
    """

    def __init__(self, clock: Callable[[], float] = time.time, prune_above: int = 1024) -> None:
        self._clock = clock
        self._prune_above = prune_above
        self._seen: dict[tuple[str, str], float] = {}

    async def remember(self, paasid: str, nonce: str, *, expires_at: float) -> bool:
        now = self._clock()
        if len(self._seen) >= self._prune_above:
            for k in [k for k, exp in self._seen.items() if exp < now]:
                del self._seen[k]
        key = (paasid, nonce)
        if self._seen.get(key, float("-inf")) >= now:
            return False
        self._seen[key] = expires_at
        return True

    def __len__(self) -> int:
        return len(self._seen)


async def verify(headers: Mapping[str, str], tokens: Mapping[str, str], nonces: NonceStore, *,
                 now: float | None = None, window: float = WINDOW) -> TifClaims:
    """Authenticate one incoming request: :func:`check_headers`, then the nonce must be new.

    The nonce is remembered until the request's own timestamp leaves the window
    (``timestamp + window``): after that the timestamp check refuses the request anyway.
    Raises :class:`TifError`; returns the claims (the paasid is the authenticated caller).
    """
    at = time.time() if now is None else now
    claims = check_headers(headers, tokens, now=at, window=window)
    if not await nonces.remember(claims.paasid, claims.nonce,
                                 expires_at=claims.timestamp + window):
        raise TifError("reused_nonce", NONCE,
                       f"{NONCE} was already used by {PAASID} {claims.paasid!r} (replay)")
    return claims


__all__ = ["HEADERS", "NONCE", "PAASID", "SIGNATURE", "TIMESTAMP", "WINDOW", "MemoryNonceStore",
           "NonceStore", "TifClaims", "TifError", "TifProblem", "TifSigner", "check_headers",
           "new_nonce", "signature", "verify"]
