"""WS-Security 1.0 UsernameToken with PasswordDigest: apply (client) and verify (service side).

    digest = Base64( SHA-1( nonce_bytes + created_utf8 + password_utf8 ) )

The password never travels; a fresh 16-byte nonce and the creation time make each token single
use. The verifier therefore checks the digest (constant-time), that ``Created`` lies within a
window around its clock (default ±300 s, as WSS4J), and that the nonce was not seen within the
window (replay cache, pruned as it goes). SHA-1 is what the OASIS profile prescribes; it is used
here as a keyed freshness proof, not for collision resistance, and the channel is TLS in
production.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

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


@dataclass
class UsernameTokenVerifier:
    """Service side: checks digest, freshness and nonce uniqueness.

    ``users`` maps username → password. One instance per service (its nonce cache is the
    replay defence, so share it across requests; it is bounded by the window).
    """

    users: Mapping[str, str]
    window: float = 300.0
    allow_plain_text: bool = False
    clock: Callable[[], float] = time.time
    _seen: dict[str, float] = field(default_factory=dict, repr=False)

    def verify(self, security: etree._Element | None) -> str:
        """Return the authenticated username or raise :class:`WsseError`."""
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
        expected_pw = self.users.get(user)
        ptype = pw_el.get("Type", PASSWORD_TEXT)
        given = (pw_el.text or "").strip()
        if ptype == PASSWORD_TEXT:
            if not self.allow_plain_text:
                raise WsseError("wsse:UnsupportedSecurityToken", "PasswordText is not accepted")
            if expected_pw is None or not hmac.compare_digest(given.encode(), expected_pw.encode()):
                raise WsseError("wsse:FailedAuthentication", "authentication failed")
            return user
        if ptype != PASSWORD_DIGEST:
            raise WsseError("wsse:UnsupportedSecurityToken", f"password type {ptype}")
        if not nonce_b64 or not created:
            raise WsseError("wsse:InvalidSecurityToken", "digest needs Nonce and Created")
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
            created_at = parse_created(created)
        except ValueError as e:
            raise WsseError("wsse:InvalidSecurityToken", f"unreadable Nonce or Created: {e}") from e
        now = self.clock()
        if abs(now - created_at) > self.window:
            raise WsseError("wsu:MessageExpired", "Created is outside the accepted window")
        # Compute even for an unknown user so timing does not reveal which usernames exist.
        digest = password_digest(nonce, created, expected_pw or "\x00unknown")
        if expected_pw is None or not hmac.compare_digest(digest.encode(), given.encode()):
            raise WsseError("wsse:FailedAuthentication", "authentication failed")
        self._prune(now)
        if self._seen.get(nonce_b64, 0.0) > now:
            raise WsseError("wsse:InvalidSecurityToken", "nonce already used (replay)")
        self._seen[nonce_b64] = now + 2 * self.window
        return user

    def _prune(self, now: float) -> None:
        if len(self._seen) < 1024:
            return
        for k in [k for k, exp in self._seen.items() if exp < now]:
            del self._seen[k]
