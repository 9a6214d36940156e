"""What the console tests share: a config with one account per role, and signing in.

The accounts' hashes are Argon2id (cheap parameters, see below) and the sign-in the tests
exercise is the real one; the cookie secret comes from the environment
(``${GATEWAY_CONSOLE_SECRET}``, tests/harness.py TEST_SECRETS), as a deployment's would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp

from argon2 import PasswordHasher

from tests.harness import edit_config, write_config

PASSWORDS = {"vera": "viewer-pass-0001", "otto": "operator-pass-0001",
             "emma": "engineer-pass-0001"}
ROLES = {"vera": "viewer", "otto": "operator", "emma": "engineer"}
#: Argon2id hashes at a low cost, so each sign-in in a test takes milliseconds, not the second
#: the production parameters (``gateway console hash-password``) cost on a loaded machine:
#: the console verifies whatever parameters a hash names, by the same code either way.
_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_HASHES = {u: _CHEAP.hash(p) for u, p in PASSWORDS.items()}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_section(**extra: Any) -> dict[str, Any]:
    return {"secret": "${GATEWAY_CONSOLE_SECRET}",
            "users": {u: {"role": ROLES[u], "password_hash": h} for u, h in _HASHES.items()},
            **extra}


def console_config(tmp_path: Path, db_url: str, partner_urls: dict[str, str],
                   **extra: Any) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = write_config(tmp_path, db_url, partner_urls)
    return edit_config(cfg, lambda raw: raw.update(console=console_section(**extra)))


def browser_session(base_url: str) -> aiohttp.ClientSession:
    """A client keeping cookies for an IP host (aiohttp's default jar refuses them)."""
    return aiohttp.ClientSession(base_url, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(http: aiohttp.ClientSession, user: str) -> str:
    """Sign ``user`` in; the session's CSRF token (read from a page, as a browser has it)."""
    async with http.post("/console/login", data={"user": user, "password": PASSWORDS[user]},
                         allow_redirects=False) as r:
        assert r.status == 303, await r.text()
    async with http.get("/console/cases") as r:
        assert r.status == 200
        m = CSRF.search(await r.text())
    assert m is not None
    return m.group(1)
