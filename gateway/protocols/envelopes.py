"""Envelopes of REST partners: how ``data`` is wrapped going out and checked coming back.

The national platform wraps every message as ``{appId, version, timestamp, nonce, encType,
signType, data | encData, signData}`` (``schemas/national/README.md`` defines it byte by byte):

* ``encType`` ``SM4``: ``data`` travels as ``encData`` = Base64(IV || SM4-CBC(JSON of data))
  under the SM4 key shared for the ``appId`` (the envelope has no field for a wrapped per-message
  key, so the key is pre-shared: ``sm4_key`` or ``sm4_key_wrapped`` in the credentials);
* ``signType`` ``SM2``: ``signData`` = Base64(SM3withSM2 over :func:`signing_string` of every
  other field), by the gateway's ``sm2_private_key``; raw r||s or DER per ``sm2_signature``.

Replies, status query answers, export pages and status pushes from the platform carry
``signData`` over their own fields (``code``, ``msg``, ``data``/``encData`` …), checked with
``peer_public_key``, and ``encData`` when encryption is on; a signed reply echoes the
request's ``nonce`` (so a captured reply cannot answer another request). :meth:`Envelope.open`
checks all three and raises :class:`EnvelopeError` naming ``signData``, ``nonce`` or
``encData``; a caller never trusts a reply that did not open.

Partner options (``partners.<name>.options``, declared in :class:`EnvelopeOptions`):
``enc_type`` ``SM4``|``NONE``, ``sign_type`` ``SM2``|``NONE``, ``sm2_signature`` ``raw``|``der``,
``sm2_cipher_order`` ``C1C3C2``|``C1C2C3`` (how ``sm4_key_wrapped`` is laid out).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import ConfigError
from gateway.security import keys
from gateway.security.sm import (CipherOrder, CryptoError, SignatureEncoding, SM2PrivateKey,
                                 SM2PublicKey, sm2_sign, sm2_verify, sm4_decrypt, sm4_encrypt)

SIGN_FIELD, ENC_FIELD, DATA_FIELD = "signData", "encData", "data"


class EnvelopeError(Exception):
    """A message that did not open: ``field`` is ``signData`` or ``encData``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Envelope(Protocol):
    """Called as before issue 14, ``envelope(data, credentials)`` seals one outgoing message;
    :meth:`open` checks and unwraps what the partner sent (identity for unsigned envelopes)."""

    def __call__(self, data: dict[str, Any], credentials: Mapping[str, str]) -> dict[str, Any]:
        ...

    def open(self, doc: Any, answers: str | None = None) -> Any:
        ...


class EnvelopeOptions(BaseModel):
    """The envelope's share of a partner's options (other keys belong to its style)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    envelope: str = "none"
    enc_type: Literal["SM4", "NONE"] = "NONE"
    sign_type: Literal["SM2", "NONE"] = "NONE"
    sm2_signature: SignatureEncoding = "raw"
    sm2_cipher_order: CipherOrder = "C1C3C2"


@dataclass(frozen=True)
class EnvelopeSecurity:
    """Keys and choices of one partner's envelope (``NONE``/``NONE`` without keys by default)."""

    enc_type: Literal["SM4", "NONE"] = "NONE"
    sign_type: Literal["SM2", "NONE"] = "NONE"
    signature: SignatureEncoding = "raw"
    own_key: SM2PrivateKey | None = None
    peer_key: SM2PublicKey | None = None
    sm4_key: bytes | None = None

    @classmethod
    def of_partner(cls, partner: str, options: Mapping[str, Any],
                   credentials: Mapping[str, str]) -> EnvelopeSecurity:
        """From ``partners.<name>.options`` and ``.credentials``; ``ConfigError`` naming the key."""
        try:
            o = EnvelopeOptions.model_validate(dict(options))
        except ValidationError as e:
            err = e.errors()[0]
            raise ConfigError(err["msg"], key=f"partners.{partner}.options."
                              + ".".join(str(p) for p in err["loc"])) from None
        own = peer = None
        if o.sign_type == "SM2":
            own = keys.private_key(partner, credentials)
            peer = keys.public_key(partner, credentials)
        elif "sm4_key_wrapped" in credentials and "sm2_private_key" in credentials:
            own = keys.private_key(partner, credentials)
        sm4 = keys.shared_sm4_key(partner, credentials, own=own, order=o.sm2_cipher_order) \
            if o.enc_type == "SM4" else None
        return cls(o.enc_type, o.sign_type, o.sm2_signature, own, peer, sm4)


PLAIN = EnvelopeSecurity()


def signing_string(doc: Mapping[str, Any]) -> bytes:
    """The bytes ``signData`` signs: every field but ``signData`` whose value is not null or
    ``""``, sorted by name (ASCII), as ``name=value`` joined with ``&``, UTF-8. A string is
    itself, an integer in decimal, ``true``/``false``; an object or array (``data`` when not
    encrypted) is compact JSON with keys sorted, non-ASCII characters unescaped."""
    parts = []
    for name in sorted(doc):
        value = doc[name]
        if name == SIGN_FIELD or value is None or value == "":
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, dict | list):
            try:
                text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
            except TypeError as e:  # an integer past 64 bits: cannot be signed canonically
                raise EnvelopeError(SIGN_FIELD, f"{name} cannot be serialised: {e}") from None
        else:
            text = str(value)
        parts.append(f"{name}={text}")
    return "&".join(parts).encode("utf-8")


class NationalEnvelope:
    """The national envelope under one partner's :class:`EnvelopeSecurity`."""

    def __init__(self, security: EnvelopeSecurity = PLAIN, app_id: str | None = None) -> None:
        self.security = security
        self.app_id = app_id

    def __call__(self, data: dict[str, Any], credentials: Mapping[str, str]) -> dict[str, Any]:
        s = self.security
        doc: dict[str, Any] = {
            "appId": self.app_id if self.app_id is not None else credentials.get("app_id", ""),
            "version": "1.0", "timestamp": int(time.time() * 1000),
            "nonce": secrets.token_hex(16), "encType": s.enc_type, "signType": s.sign_type}
        seal(doc, data, s)
        return doc

    def open(self, doc: Any, answers: str | None = None) -> Any:
        """A reply, checked; with ``answers`` (the request's ``nonce``) a signed reply must echo
        it, so a captured reply to another request cannot stand in for this one's."""
        return open_message(doc, self.security, answers=answers)


def seal(doc: dict[str, Any], data: Any, security: EnvelopeSecurity) -> dict[str, Any]:
    """Put ``data`` into ``doc`` (encrypted when SM4 is on) and sign ``doc`` when SM2 is on. The
    simulators seal their replies and pushes with the same function."""
    s = security
    if s.enc_type == "SM4" and s.sm4_key is not None:
        doc[ENC_FIELD] = base64.b64encode(sm4_encrypt(s.sm4_key, orjson.dumps(data))).decode()
    elif data is not None:
        doc[DATA_FIELD] = data
    if s.sign_type == "SM2" and s.own_key is not None:
        sig = sm2_sign(s.own_key, signing_string(doc), encoding=s.signature)
        doc[SIGN_FIELD] = base64.b64encode(sig).decode()
    return doc


def open_message(doc: Any, security: EnvelopeSecurity, *, answers: str | None = None) -> Any:
    """``doc`` with its signature checked and ``encData`` replaced by ``data`` (a new dict);
    :class:`EnvelopeError` when the signature is missing or wrong, or ``encData`` does not
    decrypt to JSON. With ``NONE``/``NONE`` the document is returned as it is."""
    s = security
    if not isinstance(doc, dict) or (s.sign_type == "NONE" and s.enc_type == "NONE"):
        return doc
    if s.sign_type == "SM2" and s.peer_key is not None:
        sig_text = doc.get(SIGN_FIELD)
        if not isinstance(sig_text, str) or not sig_text:
            raise EnvelopeError(SIGN_FIELD, "missing: the message is not signed")
        try:
            sig = base64.b64decode(sig_text, validate=True)
        except (binascii.Error, ValueError):
            raise EnvelopeError(SIGN_FIELD, "not Base64") from None
        if not sm2_verify(s.peer_key, signing_string(doc), sig, encoding=s.signature):
            raise EnvelopeError(SIGN_FIELD, "SM2 signature does not verify with the partner's "
                                            f"public key ({s.signature} SM3withSM2)")
        if answers is not None and doc.get("nonce") != answers:
            raise EnvelopeError("nonce", "the signed reply does not echo this request's nonce "
                                         "(a reply to another request)")
    if s.enc_type != "SM4" or s.sm4_key is None:
        return doc
    if DATA_FIELD in doc:
        raise EnvelopeError(ENC_FIELD, "data came in the clear; SM4 encData expected")
    if ENC_FIELD not in doc:
        return doc  # an answer without data (an error code and its message)
    enc = doc[ENC_FIELD]
    try:
        plain = sm4_decrypt(s.sm4_key, base64.b64decode(enc if isinstance(enc, str) else "",
                                                        validate=True))
        data = json.loads(plain.decode("utf-8"))
    except (binascii.Error, CryptoError, UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = str(e) if isinstance(e, CryptoError) else "does not decrypt to UTF-8 JSON"
        raise EnvelopeError(ENC_FIELD, reason) from None
    opened = {k: v for k, v in doc.items() if k != ENC_FIELD}
    opened[DATA_FIELD] = data
    return opened


class Bare:
    """No envelope: ``data`` is the body."""

    def __call__(self, data: dict[str, Any], credentials: Mapping[str, str]) -> dict[str, Any]:
        return data

    def open(self, doc: Any, answers: str | None = None) -> Any:
        return doc


def national_plain(data: dict[str, Any], credentials: Mapping[str, str]) -> dict[str, Any]:
    """The unsigned, unencrypted national envelope (benchmarks post it straight)."""
    return NationalEnvelope()(data, credentials)


#: envelope names of ``options.envelope``, unsigned (a partner's own: :func:`partner_envelope`)
ENVELOPES: dict[str, Envelope] = {"national": NationalEnvelope(), "none": Bare()}


def partner_envelope(partner: str, options: Mapping[str, Any], credentials: Mapping[str, str],
                     name: str | None = None) -> Envelope:
    """The envelope ``options.envelope`` (or ``name``) names, with the partner's keys bound:
    loaded once here, so a bad key fails start-up naming its credential."""
    kind = name or str(options.get("envelope", "none"))
    if kind not in ENVELOPES:
        raise ConfigError(f"unknown envelope {kind!r}; known: {sorted(ENVELOPES)}",
                          key=f"partners.{partner}.options.envelope")
    security = EnvelopeSecurity.of_partner(partner, options, credentials)
    if kind == "none":
        if security != PLAIN:
            raise ConfigError("enc_type/sign_type need envelope: national",
                              key=f"partners.{partner}.options.envelope")
        return Bare()
    return NationalEnvelope(security, credentials.get("app_id", ""))
