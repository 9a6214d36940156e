"""Case bodies and delivery payloads encrypted at rest (AES-256-GCM), off by default.

What is sealed: ``cases.body`` (the application: names, ID numbers, addresses) and
``deliveries.payload`` (a status push's document). Both columns are :class:`SealedJSON`, so every
reader (the API's case view, the worker's claim, dead letters, reconcile, ``gateway case show``)
gets the document back without knowing; every writer seals with the newest key. A sealed value
is stored as the JSON document ``{"$sealed": 1, "kid": …, "nonce": …, "ct": …}``: AES-GCM over
the document's JSON, with the column's name as associated data (a value copied into another
column does not open). Values written while sealing was off stay readable as they are.

Keys come from the environment, never from the repository or the configuration file:

* ``GATEWAY_SEAL_KEYS_FILE``: a file (mode 0600), one key a line, ``<key id> <base64 key>``,
  newest first; ``#`` starts a comment. ``gateway seal keygen --file PATH`` writes one;
* or ``GATEWAY_SEAL_KEYS``: the same entries inline, comma-separated (``k2:BASE64,k1:BASE64``).

The newest (first) key seals; every listed key opens (a keyring). Neither variable set: sealing
is off. A key id is up to 32 letters, digits, ``-`` or ``_``; a key is 32 random bytes.

Every key that has sealed a value is listed in ``seal_keys``. At start the gateway compares that
list with the keyring (:func:`check_keys`): a key still in use that the keyring lacks is one
line naming its id (``ConfigError``), never a failure at the first read; a value sealed under a
key that is not in the keyring raises :class:`SealedValueUnreadable` naming the key id.

Rotation:

1. ``gateway seal keygen --file $GATEWAY_SEAL_KEYS_FILE`` puts a new key first (the old ones stay);
2. restart every instance: new values are sealed with the new key, old ones still open;
3. ``gateway seal reseal`` re-encrypts every sealed (and, with sealing on, every plain) value with
   the newest key, in batches of short transactions (intake and delivery go on), then marks the
   older keys retired in ``seal_keys``;
4. remove the retired keys from the file and restart; a key removed too early is named at start.

The keyring is process-wide (:func:`activate`; :class:`~gateway.store.Store` activates the one
the environment names): one gateway process, one keyring.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import JSON
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from gateway import jsoncodec
from gateway.errors import ConfigError, StoreError

ENV_KEYS = "GATEWAY_SEAL_KEYS"
ENV_FILE = "GATEWAY_SEAL_KEYS_FILE"
MARK = "$sealed"
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SealedValueUnreadable(StoreError):
    """A stored value is sealed under a key the keyring does not hold (or was altered)."""

    def __init__(self, column: str, kid: str, why: str) -> None:
        super().__init__(f"open sealed {column}", f"key {kid!r}: {why}")
        self.kid = kid


@dataclass(frozen=True)
class Keyring:
    """Keys by id, newest first: the first seals, all open."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigError("the sealing keyring is empty", key=ENV_FILE)
        for kid, key in self.keys:
            if not _KID.match(kid):
                raise ConfigError(f"sealing key id {kid!r}: 1-32 letters, digits, '-' or '_'",
                                  key=ENV_FILE)
            if len(key) != 32:
                raise ConfigError(f"sealing key {kid!r}: {len(key)} bytes, AES-256 needs 32",
                                  key=ENV_FILE)

    @property
    def newest(self) -> str:
        return self.keys[0][0]

    def ids(self) -> list[str]:
        return [kid for kid, _ in self.keys]

    def key(self, kid: str) -> bytes | None:
        return next((k for i, k in self.keys if i == kid), None)

    @classmethod
    def parse(cls, entries: Sequence[tuple[str, str]], source: str) -> Keyring:
        keys: list[tuple[str, bytes]] = []
        for kid, text in entries:
            try:
                keys.append((kid, base64.b64decode(text, validate=True)))
            except (binascii.Error, ValueError):
                raise ConfigError(f"sealing key {kid!r} in {source} is not base64",
                                  key=ENV_FILE) from None
        return cls(tuple(keys))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Keyring | None:
        """The keyring the environment names (module docstring); None: sealing off."""
        env = os.environ if env is None else env
        if path := env.get(ENV_FILE):
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as e:
                raise ConfigError(f"cannot read the sealing keys file ({e.strerror})",
                                  key=ENV_FILE) from None
            lines = [ln.split("#", 1)[0].split() for ln in text.splitlines()]
            bad = [n for n, parts in enumerate(lines, 1) if parts and len(parts) != 2]
            if bad:
                raise ConfigError(f"sealing keys file line {bad[0]}: expected '<key id> "
                                  f"<base64 key>'", key=ENV_FILE)
            return cls.parse([(p[0], p[1]) for p in lines if p], ENV_FILE)
        if inline := env.get(ENV_KEYS):
            pairs = [e.strip().split(":", 1) for e in inline.split(",") if e.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ConfigError("expected '<key id>:<base64 key>,…'", key=ENV_KEYS)
            return cls.parse([(p[0], p[1]) for p in pairs], ENV_KEYS)
        return None


_active: Keyring | None = None


def activate(keyring: Keyring | None) -> None:
    """Seal with ``keyring`` from now on in this process (None: write plain, read both)."""
    global _active
    _active = keyring


def active() -> Keyring | None:
    return _active


def new_key() -> str:
    """A fresh key, base64."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get(MARK) == 1


def seal(value: Any, column: str, keyring: Keyring) -> dict[str, Any]:
    kid = keyring.newest
    key = keyring.key(kid)
    assert key is not None
    nonce = secrets.token_bytes(12)
    ct = AESGCM(key).encrypt(nonce, jsoncodec.dumps(value).encode("utf-8"), column.encode())
    return {MARK: 1, "kid": kid, "nonce": base64.b64encode(nonce).decode("ascii"),
            "ct": base64.b64encode(ct).decode("ascii")}


def unseal(value: dict[str, Any], column: str, keyring: Keyring | None) -> Any:
    kid = str(value.get("kid"))
    key = keyring.key(kid) if keyring is not None else None
    if key is None:
        raise SealedValueUnreadable(column, kid, "not in the keyring (GATEWAY_SEAL_KEYS_FILE)")
    try:
        plain = AESGCM(key).decrypt(base64.b64decode(value["nonce"]),
                                    base64.b64decode(value["ct"]), column.encode())
    except (InvalidTag, KeyError, ValueError, binascii.Error):
        raise SealedValueUnreadable(column, kid, "does not open it (altered, or another "
                                    "column's value)") from None
    return json.loads(plain)  # the standard reader: integers come back exact (jsoncodec)


class SealedJSON(TypeDecorator[Any]):
    """A JSON column sealed with the active keyring (module docstring); ``column`` is the
    associated data (``cases.body``)."""

    impl = JSON
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        keyring = _active
        if value is None or keyring is None:
            return value
        return seal(value, self.column, keyring)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return unseal(value, self.column, _active) if is_sealed(value) else value


__all__ = ["ENV_FILE", "ENV_KEYS", "Keyring", "SealedJSON", "SealedValueUnreadable", "activate",
           "active", "is_sealed", "new_key", "seal", "unseal"]
