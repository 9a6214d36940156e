"""SM key material: read from a partner's credentials, written by ``gateway keys generate``.

Keys are never in the repository or the configuration file itself: a credential is
``${ENV_NAME}`` or ``${file:PATH}`` (resolved by :mod:`gateway.config`), and its value is hex:

====================  ============================================================================
``sm2_private_key``   the gateway's SM2 private key (64 hex digits), signs what it sends
``peer_public_key``   the partner's SM2 public key (``04`` + 128 hex digits), checks what it sends
``sm4_key``           the SM4 key shared with the partner for the ``appId`` (32 hex digits), or
``sm4_key_wrapped``   the same key as the platform issues it: SM2-encrypted to the gateway's
                      public key, in the partner's ``sm2_cipher_order`` (hex)
====================  ============================================================================

A key that is missing or unusable is a :class:`~gateway.errors.ConfigError` naming
``partners.<name>.credentials.<key>``, never the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from gateway.errors import ConfigError
from gateway.security.sm import (CipherOrder, CryptoError, SM2PrivateKey, SM2PublicKey,
                                 sm2_decrypt, sm2_encrypt, sm4_key)


def _value(partner: str, credentials: Mapping[str, str], key: str) -> str:
    value = credentials.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("is required (hex; from ${ENV} or ${file:PATH}, never inline)",
                          key=f"partners.{partner}.credentials.{key}")
    return value


def private_key(partner: str, credentials: Mapping[str, str],
                key: str = "sm2_private_key") -> SM2PrivateKey:
    try:
        return SM2PrivateKey.from_hex(_value(partner, credentials, key))
    except CryptoError as e:
        raise ConfigError(str(e), key=f"partners.{partner}.credentials.{key}") from None


def public_key(partner: str, credentials: Mapping[str, str],
               key: str = "peer_public_key") -> SM2PublicKey:
    try:
        return SM2PublicKey.from_hex(_value(partner, credentials, key))
    except CryptoError as e:
        raise ConfigError(str(e), key=f"partners.{partner}.credentials.{key}") from None


def shared_sm4_key(partner: str, credentials: Mapping[str, str], *,
                   own: SM2PrivateKey | None, order: CipherOrder) -> bytes:
    """``sm4_key``, or ``sm4_key_wrapped`` opened with the gateway's private key."""
    if "sm4_key" in credentials or "sm4_key_wrapped" not in credentials:
        try:
            return sm4_key(_value(partner, credentials, "sm4_key"))
        except CryptoError as e:
            raise ConfigError(str(e), key=f"partners.{partner}.credentials.sm4_key") from None
    where = f"partners.{partner}.credentials.sm4_key_wrapped"
    if own is None:
        raise ConfigError("needs sm2_private_key to be opened", key=where)
    try:
        wrapped = bytes.fromhex(_value(partner, credentials, "sm4_key_wrapped").strip())
        return sm4_key(sm2_decrypt(own, wrapped, order=order))
    except (ValueError, CryptoError) as e:
        raise ConfigError(f"cannot be opened with sm2_private_key in order {order}: {e}",
                          key=where) from None


def write_key_pair(folder: Path, name: str, *, overwrite: bool = False) -> tuple[Path, Path]:
    """``NAME.key`` (the private key in hex) and ``NAME.pub`` (``04||x||y`` hex), both mode 0600
    (a credential file others may read draws a warning from :mod:`gateway.config`)."""
    folder.mkdir(parents=True, exist_ok=True)
    secret, public = folder / f"{name}.key", folder / f"{name}.pub"
    if not overwrite and (secret.exists() or public.exists()):
        raise FileExistsError(f"{secret} or {public} exists (keys are not replaced silently)")
    key = SM2PrivateKey.generate()
    write_secret(secret, key.hex())
    write_secret(public, key.public.hex())  # 0600 too: the config warns on readable credentials
    return secret, public


def write_sm4_key(path: Path, *, wrap_for: SM2PublicKey | None = None,
                  order: CipherOrder = "C1C3C2", overwrite: bool = False) -> bytes:
    """A fresh SM4 key written to ``path`` (hex, 0600); with ``wrap_for`` also ``path.wrapped``:
    the key SM2-encrypted to that public key in ``order``, as a platform issues it."""
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists (keys are not replaced silently)")
    key = os.urandom(16)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_secret(path, key.hex())
    if wrap_for is not None:
        wrapped = path.with_name(path.name + ".wrapped")
        write_secret(wrapped, sm2_encrypt(wrap_for, key, order=order).hex())
    return key


def write_secret(path: Path, text: str) -> None:
    """A key file, created with mode 0600 from the start (never world-readable for a moment)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
