"""The ``console:`` section of the configuration: who may sign in to the web console, and how.

Here beside the API callers' settings (:mod:`gateway.security.callers`) for the same reason:
:mod:`gateway.config` embeds it, and config imports only layers below it (tests/test_layers.py).
The console itself (gateway/console) reads it. Two ways in, both off until configured:

* accounts (``users:``): a name, a role and an Argon2 password hash made by
  ``gateway console hash-password`` (the hash may itself be ``${ENV}`` or ``${file:…}``);
* the city platform's single sign-on (``sso:``): its reverse proxy authenticates the person and
  passes the user name in a header. A header anyone could send is no proof, so the console
  believes it only from the proxy's own addresses (``trusted``), and only for names listed in
  ``sso.users`` (name → role): deny by default, as for API callers.

``secret`` signs the session cookie (HMAC-SHA256): required as soon as anyone can sign in,
shared by every instance behind one load balancer, at least 32 characters.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["viewer", "operator", "engineer"]
#: what each role may do, cumulative: a viewer reads, an operator also replays and discards
#: dead letters, an engineer also uses the mapping playground
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "engineer": 2}
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConsoleUser(_Frozen):
    role: Role
    #: ``$argon2id$…`` as ``gateway console hash-password`` prints it
    password_hash: str

    @field_validator("password_hash")
    @classmethod
    def _argon2(cls, v: str) -> str:
        if not v.startswith("$argon2"):
            raise ValueError("must be an Argon2 hash (make one with `gateway console "
                             "hash-password`), never the password itself")
        return v


class SsoSettings(_Frozen):
    #: the header the platform's proxy writes the signed-in user's name into
    header: str = Field("X-City-User", min_length=1, max_length=64)
    #: addresses or networks of that proxy: the header is ignored from anyone else
    trusted: tuple[str, ...] = Field(min_length=1)
    #: user name → role; a name not listed is refused
    users: dict[str, Role] = Field(default_factory=dict)

    @field_validator("trusted")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for n in v:
            try:
                ipaddress.ip_network(n, strict=False)
            except ValueError as e:
                raise ValueError(f"not an address or network: {n!r}") from e
        return v


class ConsoleSettings(_Frozen):
    enabled: bool = True
    #: signs session cookies (HMAC-SHA256); ``${ENV}`` or ``${file:…}`` like every secret
    secret: str | None = None
    users: dict[str, ConsoleUser] = Field(default_factory=dict)
    sso: SsoSettings | None = None
    #: a session ends this long after sign-in
    session_hours: float = Field(8.0, gt=0, le=24 * 7)
    #: send the cookie only over HTTPS (on behind a TLS-terminating proxy or with server.tls)
    secure_cookie: bool = False

    @model_validator(mode="after")
    def _secret_when_anyone_may_sign_in(self) -> ConsoleSettings:
        for name in [*self.users, *(self.sso.users if self.sso else {})]:
            if not _NAME.match(name):
                raise ValueError(f"console user name {name!r}: 1-64 letters, digits or ._@-")
        if (self.users or self.sso) and (self.secret is None or len(self.secret) < 32):
            raise ValueError("console.secret (at least 32 characters, e.g. "
                             "${GATEWAY_CONSOLE_SECRET}) is required when console.users or "
                             "console.sso is set: it signs the session cookies")
        return self

    def trusts(self, peer: str | None) -> bool:
        """Whether ``peer`` (the TCP peer's address) is the SSO proxy."""
        if self.sso is None or peer is None:
            return False
        try:
            addr = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(addr in ipaddress.ip_network(n, strict=False) for n in self.sso.trusted)


__all__ = ["ROLE_RANK", "ConsoleSettings", "ConsoleUser", "Role", "SsoSettings"]
