"""Who is signed in to the console: Argon2 password hashes, a signed session cookie, CSRF tokens.

The session is a cookie the gateway signs (HMAC-SHA256 with ``console.secret``), so any instance
behind one load balancer reads it without shared state: ``base64url(json).base64url(mac)``,
holding the user name, how they signed in, a random CSRF token and the expiry. The role is not
taken from the cookie: it is looked up in the configuration on every request, so removing a user
or lowering a role takes effect at once (at the next restart or reload of the settings), not when
the cookie expires. The cookie is ``HttpOnly`` and ``SameSite=Strict``; every POST must also
carry the session's CSRF token (a form field), compared in constant time. Being stateless, a
session cannot be revoked one by one: signing out deletes the browser's cookie, but a copy taken
before stays valid until it expires (``console.session_hours``, 8 by default); changing
``console.secret`` ends every session at once.

Passwords: Argon2id through argon2-cffi (its default, RFC 9106 low-memory parameters); the
check runs off the event loop, and an unknown user name costs the same hash as a known one, so
timing does not tell which names exist. Failed sign-ins are counted per name and instance:
after :data:`MAX_FAILURES` within :data:`FAILURE_WINDOW` seconds that name is refused until the
window passes (a guessing brake, not a lockout an attacker could use for long).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from aiohttp import web

from gateway.security.console_access import ROLE_RANK, ConsoleSettings

COOKIE = "gw_console"
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0
_HASHER = PasswordHasher()


@functools.cache
def _dummy() -> str:
    """Verified against when the user name is unknown (same cost as a real check); hashed at
    the first such sign-in, not at import (an Argon2 hash is ~0.3 s of every start-up)."""
    return _HASHER.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` for ``console.users.<name>.password_hash``."""
    return _HASHER.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Session:
    user: str
    role: str
    via: str            # "password" or "sso"
    csrf: str
    expires: float

    def may(self, role: str) -> bool:
        """Whether this session's role includes ``role`` (viewer < operator < engineer)."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest())


def encode(s: Session, secret: str) -> str:
    payload = _b64(json.dumps({"u": s.user, "v": s.via, "c": s.csrf, "e": int(s.expires)},
                              separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, payload)}"


def role_of(settings: ConsoleSettings, user: str, via: str) -> str | None:
    """The user's role as the configuration says now (None: no longer allowed in)."""
    if via == "password":
        u = settings.users.get(user)
        return u.role if u is not None else None
    if via == "sso" and settings.sso is not None:
        return settings.sso.users.get(user)
    return None


def decode(value: str, settings: ConsoleSettings, now: float) -> Session | None:
    """The session a cookie carries, or None if it is forged, expired or for a removed user."""
    if settings.secret is None or len(value) > 4096:
        return None
    payload, _, mac = value.partition(".")
    try:
        if not hmac.compare_digest(mac.encode("ascii"),
                                   _mac(settings.secret, payload).encode("ascii")):
            return None
        doc: Any = json.loads(_unb64(payload))
    except (ValueError, UnicodeError):
        return None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in "uvc") \
            or not isinstance(doc.get("e"), int) or doc["e"] <= now:
        return None
    role = role_of(settings, doc["u"], doc["v"])
    return None if role is None else Session(doc["u"], role, doc["v"], doc["c"], doc["e"])


def new_session(settings: ConsoleSettings, user: str, role: str, via: str,
                now: float) -> Session:
    return Session(user, role, via, secrets.token_urlsafe(24), now + settings.session_hours * 3600)


def set_cookie(response: web.StreamResponse, s: Session, settings: ConsoleSettings) -> None:
    assert settings.secret is not None  # a session exists only with a secret (settings rule)
    response.set_cookie(COOKIE, encode(s, settings.secret), path="/console/", httponly=True,
                        samesite="Strict", secure=settings.secure_cookie,
                        max_age=int(s.expires - time.time()))


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/console/")


class PasswordCheck:
    """Sign-in by name and password, with the per-name guessing brake (module docstring)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, user: str, now: float) -> bool:
        q = self._failures.get(user)
        while q and q[0] <= now - FAILURE_WINDOW:
            q.popleft()
        return q is not None and len(q) >= MAX_FAILURES

    async def check(self, settings: ConsoleSettings, user: str, password: str,
                    now: float) -> str | None:
        """The user's role if the password is right (and the name not braked), else None."""
        if self.blocked(user, now):
            return None
        account = settings.users.get(user)
        stored = account.password_hash if account else None
        ok = await asyncio.to_thread(lambda: _verify(stored or _dummy(), password))
        if ok and account is not None:
            self._failures.pop(user, None)
            return account.role
        if len(self._failures) > 10_000:  # bounded memory under a spray of made-up names
            self._failures.clear()
        self._failures.setdefault(user, deque()).append(now)
        return None


def sso_user(request: web.Request, settings: ConsoleSettings) -> tuple[str, str] | None:
    """``(user, role)`` from the SSO header, when the TCP peer is the trusted proxy and the
    name is listed; None otherwise (the header from anyone else is ignored)."""
    sso = settings.sso
    if sso is None or not settings.trusts(request.remote):
        return None
    name = request.headers.get(sso.header, "").strip()
    role = sso.users.get(name) if name else None
    return (name, role) if role is not None else None


def csrf_ok(session: Session, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(session.csrf.encode(),
                                                     given.encode("utf-8", "replace"))


__all__ = ["COOKIE", "PasswordCheck", "Session", "csrf_ok", "decode", "encode",
           "hash_password", "new_session", "role_of", "set_cookie", "sso_user"]
