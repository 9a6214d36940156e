"""WS-Security 1.0 UsernameToken with PasswordDigest: apply (client) and verify (service side).

    digest = Base64( SHA-1( nonce_bytes + created_utf8 + password_utf8 ) )

The password never travels; a fresh 16-byte nonce and the creation time make each token single
use. The verifier therefore checks the digest (constant-time), that ``Created`` is at most
``max_age`` seconds old and at most ``max_ahead`` seconds ahead of its clock (separately, default
300 s each, as WSS4J's ``timeToLive``/``futureTimeToLive``), that a ``wsu:Timestamp``'s
``Expires``, when the sender put one, has not passed, and that the nonce was never accepted
before: :meth:`UsernameTokenVerifier.verify` asks a :class:`~gateway.protocols.tif.NonceStore`,
the database's in the gateway (shared by every instance, so a token replayed to another instance
is refused too), an in-process one in the simulators. The nonce is remembered only once
everything else holds (:meth:`~UsernameTokenVerifier.check` is pure), so a forged token cannot
burn the nonce of a genuine one. SHA-1 is what the OASIS profile prescribes; it is used here as a
keyed freshness proof, not for collision resistance, and the channel is TLS in production.

Small objects with ``apply``/``verify``, in the manner of ``zeep.wsse``; both sides live here so
the simulator verifies exactly what the client produces, and zeep's own ``UsernameToken`` is the
independent check (``tests/test_wsse.py``).
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from gateway.protocols.tif import MemoryNonceStore, NonceStore

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/"
                   "oasis-200401-wss-username-token-profile-1.0#PasswordDigest")
PASSWORD_TEXT = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-username-token-profile-1.0#PasswordText")
BASE64_BINARY = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-soap-message-security-1.0#Base64Binary")
SECURITY = etree.QName(WSSE_NS, "Security")


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """The profile's digest, Base64 text."""
    raw = hashlib.sha1(nonce + created.encode("utf-8") + password.encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def format_created(ts: float) -> str:
    """``Created`` in UTC with milliseconds and ``Z`` (what WSS4J and zeep both accept)."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class UsernameToken:
    """Client side: builds a fresh ``wsse:Security`` header block per message."""

    username: str
    password: str
    must_understand: bool = True
    clock: Callable[[], float] = time.time
    nonce_source: Callable[[int], bytes] = os.urandom

    def header(self, envelope_ns: str) -> etree._Element:
        """A fresh ``wsse:Security`` block: new nonce, current time, digest over both.

        The element skeleton is built once per envelope namespace and copied (building it with
        namespaces costs ~50 µs, a copy ~6 µs); only the four per-message values are written.
        """
        nonce = self.nonce_source(16)
        created = format_created(self.clock())
        sec = copy.deepcopy(_template(self.username, envelope_ns, self.must_understand))
        tok = sec[0]
        tok.set(_WSU_ID, "UsernameToken-" + nonce[:6].hex())
        tok[1].text = password_digest(nonce, created, self.password)
        tok[2].text = base64.b64encode(nonce).decode("ascii")
        tok[3].text = created
        return sec


_WSU_ID = etree.QName(WSU_NS, "Id").text


@functools.lru_cache(maxsize=64)
def _template(username: str, envelope_ns: str, must_understand: bool) -> etree._Element:
    sec = etree.Element(SECURITY, nsmap={"wsse": WSSE_NS, "wsu": WSU_NS})
    if must_understand:
        # SOAP 1.1 wants "1"; SOAP 1.2 accepts "1" or "true": "1" is valid for both.
        sec.set(etree.QName(envelope_ns, "mustUnderstand").text, "1")
    tok = etree.SubElement(sec, etree.QName(WSSE_NS, "UsernameToken"))
    etree.SubElement(tok, etree.QName(WSSE_NS, "Username")).text = username
    etree.SubElement(tok, etree.QName(WSSE_NS, "Password"), Type=PASSWORD_DIGEST)
    etree.SubElement(tok, etree.QName(WSSE_NS, "Nonce"), EncodingType=BASE64_BINARY)
    etree.SubElement(tok, etree.QName(WSU_NS, "Created"))
    return sec


class WsseError(Exception):
    """Verification failed. ``code`` is the WS-Security fault subcode (``wsse:…``/``wsu:…``)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def parse_created(text: str) -> float:
    """xsd:dateTime → epoch seconds; a missing offset is read as UTC (WSS convention)."""
    t = text.strip()
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@dataclass(frozen=True)
class UsernameClaims:
    """What a token asserts once its digest and times hold."""

    username: str
    nonce: str | None          # Base64 text as sent; None for a PasswordText token without one
    created: float | None      # Unix seconds


#: a nonce of fewer bytes is too guessable to make a token single use; more is not a nonce
MIN_NONCE_BYTES, MAX_NONCE_BYTES = 8, 64


@dataclass
class UsernameTokenVerifier:
    """Service side: checks digest, freshness and nonce uniqueness.

    ``users`` maps username → password. ``max_age`` / ``max_ahead`` bound how old and how far in
    the future ``Created`` may be (each defaults to ``window``). ``nonces`` is the replay
    defence unless :meth:`verify` is given the shared store: one in-process store per verifier.
    """

    users: Mapping[str, str]
    window: float = 300.0
    allow_plain_text: bool = False
    clock: Callable[[], float] = time.time
    max_age: float | None = None
    max_ahead: float | None = None
    nonces: NonceStore | None = None
    scope: str = "wsse"

    def __post_init__(self) -> None:
        if self.nonces is None:
            self.nonces = MemoryNonceStore(clock=self.clock)

    @property
    def limits(self) -> tuple[float, float]:
        """(max_age, max_ahead) in force."""
        return (self.window if self.max_age is None else self.max_age,
                self.window if self.max_ahead is None else self.max_ahead)

    async def verify(self, security: etree._Element | None, *,
                     nonces: NonceStore | None = None) -> str:
        """The authenticated username, or :class:`WsseError`: :meth:`check`, then the nonce must
        be new (``nonces``, else this verifier's store). A store that fails raises its own error
        (the database's ``StoreError``): the caller refuses the message as "busy"."""
        claims = self.check(security)
        store = nonces or self.nonces
        assert store is not None  # set in __post_init__
        if claims.nonce is not None:
            base = claims.created if claims.created is not None else self.clock()
            scope = f"wsse:{self.scope}:{claims.username}"[:128]  # apart from x-tif paasids
            if not await store.remember(scope, claims.nonce, expires_at=base + self.limits[0]):
                raise WsseError("wsse:InvalidSecurityToken", "nonce already used (replay)")
        return claims.username

    def check(self, security: etree._Element | None) -> UsernameClaims:
        """Everything but the nonce's single use (pure): the token's shape, ``Created`` within
        the limits, a ``wsu:Timestamp`` not expired, the digest (constant time)."""
        if security is None:
            raise WsseError("wsse:InvalidSecurity", "no wsse:Security header")
        tok = security.find(f"{{{WSSE_NS}}}UsernameToken")
        if tok is None:
            raise WsseError("wsse:InvalidSecurityToken", "no UsernameToken")
        user = (tok.findtext(f"{{{WSSE_NS}}}Username") or "").strip()
        pw_el = tok.find(f"{{{WSSE_NS}}}Password")
        nonce_b64 = (tok.findtext(f"{{{WSSE_NS}}}Nonce") or "").strip()
        created = (tok.findtext(f"{{{WSU_NS}}}Created") or "").strip()
        if not user or pw_el is None:
            raise WsseError("wsse:InvalidSecurityToken", "Username and Password are required")
        now = self.clock()
        self._check_timestamp(security, now)
        expected_pw = self.users.get(user)
        ptype = pw_el.get("Type", PASSWORD_TEXT)
        given = (pw_el.text or "").strip()
        if ptype == PASSWORD_TEXT:
            if not self.allow_plain_text:
                raise WsseError("wsse:UnsupportedSecurityToken", "PasswordText is not accepted")
            if expected_pw is None or not hmac.compare_digest(given.encode(), expected_pw.encode()):
                raise WsseError("wsse:FailedAuthentication", "authentication failed")
            return UsernameClaims(user, nonce_b64 or None,
                                  self._created(created, now) if created else None)
        if ptype != PASSWORD_DIGEST:
            raise WsseError("wsse:UnsupportedSecurityToken", f"password type {ptype}")
        if not nonce_b64 or not created:
            raise WsseError("wsse:InvalidSecurityToken", "digest needs Nonce and Created")
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
        except ValueError as e:
            raise WsseError("wsse:InvalidSecurityToken", f"unreadable Nonce: {e}") from e
        if not MIN_NONCE_BYTES <= len(nonce) <= MAX_NONCE_BYTES:
            raise WsseError("wsse:InvalidSecurityToken",
                            f"Nonce must be {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} bytes")
        created_at = self._created(created, now)
        # Compute even for an unknown user so timing does not reveal which usernames exist.
        digest = password_digest(nonce, created, expected_pw or "\x00unknown")
        if expected_pw is None or not hmac.compare_digest(digest.encode(), given.encode()):
            raise WsseError("wsse:FailedAuthentication", "authentication failed")
        return UsernameClaims(user, nonce_b64, created_at)

    def _created(self, text: str, now: float, what: str = "Created") -> float:
        """``text`` as Unix seconds, within ``max_age`` behind and ``max_ahead`` ahead of now."""
        try:
            at = parse_created(text)
        except ValueError as e:
            raise WsseError("wsse:InvalidSecurityToken", f"unreadable {what}: {e}") from e
        max_age, max_ahead = self.limits
        if now - at > max_age:
            raise WsseError("wsu:MessageExpired",
                            f"{what} is {now - at:.0f} s old (at most {max_age:g} s accepted)")
        if at - now > max_ahead:
            raise WsseError("wsu:MessageExpired", f"{what} is {at - now:.0f} s ahead of the "
                            f"receiver's clock (at most {max_ahead:g} s accepted)")
        return at

    def _check_timestamp(self, security: etree._Element, now: float) -> None:
        """A ``wsu:Timestamp`` block, when present: its ``Created`` within the limits, and its
        ``Expires`` (the sender's own limit) not passed."""
        ts = security.find(f"{{{WSU_NS}}}Timestamp")
        if ts is None:
            return
        created = (ts.findtext(f"{{{WSU_NS}}}Created") or "").strip()
        if created:
            self._created(created, now, "Timestamp/Created")
        expires = (ts.findtext(f"{{{WSU_NS}}}Expires") or "").strip()
        if expires:
            try:
                until = parse_created(expires)
            except ValueError as e:
                raise WsseError("wsse:InvalidSecurityToken",
                                f"unreadable Timestamp/Expires: {e}") from e
            if now > until:
                raise WsseError("wsu:MessageExpired",
                                f"the message expired {now - until:.0f} s ago (Timestamp/Expires)")
