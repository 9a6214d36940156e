"""SM3, SM4 and SM2 (GB/T 32905, GB/T 32907, GB/T 32918 / GM/T 0003) for the national envelope.

Library: ``gmssl-pyx`` (a C extension over GmSSL 3.2, the Peking University GmSSL project). Its
SM2 signature draws the nonce ``k`` with ``sm2_fn_rand`` → ``rand_bytes`` → ``getentropy()``
(GmSSL ``src/sm2_sign.c``, ``src/rand_unix.c``): the kernel's CSPRNG, never a user-space PRNG.
``gmssl`` (the pure-Python package of that name) is *not* used anywhere: its signing nonce comes
from :mod:`random` (DESIGN.md §4). The tests check this module against the published vectors of
GB/T 32905/32907/32918 and against a second, independent implementation (``gmalg``, test only).

Conventions, each the common one in Chinese integrations and each a per-partner option where
partners differ:

* SM2 signature: SM3withSM2 over ``Z || M`` with ``Z`` = SM3(ENTL || ID || a || b || xG || yG ||
  xA || yA) and the default user id ``1234567812345678`` (GM/T 0009). Encoded ``raw`` (r || s,
  32 bytes each, 64 bytes) or ``der`` (``SEQUENCE {INTEGER r, INTEGER s}``).
* SM2 ciphertext: ``C1C3C2`` (the 2012+ order of GM/T 0003) or ``C1C2C3`` (the draft order that
  older libraries still emit); C1 is the uncompressed point ``04 || x || y`` (65 bytes), C3 the
  SM3 hash (32 bytes). GmSSL itself speaks GM/T 0009 DER; the raw forms are converted here.
* SM4: CBC with PKCS#7 padding and a fresh random 16-byte IV *prefixed* to the ciphertext
  (``IV || C``). ECB is what some platforms use, but it leaks equal blocks of equal fields (the
  same ID number encrypts to the same bytes in every case) and nothing public documents the
  national platform's choice, so CBC with a random IV is the one implemented.

Keys travel as hex: private key 64 hex digits, public key ``04`` + 128 hex digits (``x || y``),
SM4 key 32 hex digits. Every failure is a :class:`CryptoError` whose message never carries key
material or plaintext.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from typing import Literal

from gmssl_pyx import gmsslext as _gm

from gateway.errors import GatewayError

DEFAULT_USER_ID = b"1234567812345678"
SignatureEncoding = Literal["raw", "der"]
CipherOrder = Literal["C1C3C2", "C1C2C3"]
SM4_KEY_BYTES = 16
_BLOCK = 16
_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
_MAX_SM2_PLAINTEXT = 255  # GmSSL's SM2 encryption limit (enough for keys, which is its use)


class CryptoError(GatewayError):
    """A key, signature or ciphertext that cannot be used (the message says which, never a
    secret)."""


def sm3(data: bytes) -> bytes:
    """The SM3 digest (32 bytes)."""
    return bytes(_gm.sm3_hash(data))


# -- SM4 ------------------------------------------------------------------------------------------

def sm4_key(value: str | bytes) -> bytes:
    """An SM4 key from 32 hex digits (or 16 bytes)."""
    key = _unhex(value, "SM4 key") if isinstance(value, str) else bytes(value)
    if len(key) != SM4_KEY_BYTES:
        raise CryptoError(f"an SM4 key is 16 bytes (32 hex digits), got {len(key)} bytes")
    return key


def sm4_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC, PKCS#7, a random IV prefixed: ``IV || C``."""
    iv = secrets.token_bytes(_BLOCK)
    return iv + _sm4_cbc(key, iv, plaintext)


def _sm4_cbc(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    """SM4-CBC with PKCS#7 under a given IV (the tests check GB/T 32907's vector through it)."""
    return bytes(_gm.sm4_cbc_padding_encrypt(sm4_key(key), iv, plaintext))


def sm4_decrypt(key: bytes, data: bytes) -> bytes:
    """The plaintext of ``IV || C``; :class:`CryptoError` for a wrong key, length or padding."""
    if len(data) < 2 * _BLOCK or len(data) % _BLOCK:
        raise CryptoError(f"SM4 ciphertext of {len(data)} bytes: IV and whole blocks expected")
    try:
        return bytes(_gm.sm4_cbc_padding_decrypt(sm4_key(key), data[:_BLOCK], data[_BLOCK:]))
    except _gm.GmsslInnerError:  # InvalidValueError is a subclass: bad padding
        raise CryptoError("SM4 decryption failed (wrong key or damaged ciphertext)") from None


# -- SM2 keys -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SM2PublicKey:
    point: bytes  # x || y, 64 bytes

    @classmethod
    def from_hex(cls, value: str) -> SM2PublicKey:
        """``04 || x || y`` (130 hex digits) or ``x || y`` (128)."""
        raw = _unhex(value, "SM2 public key")
        if len(raw) == 65 and raw[0] == 4:
            raw = raw[1:]
        if len(raw) != 64:
            raise CryptoError("an SM2 public key is 04 || x || y (130 hex digits)")
        return cls(raw)

    def hex(self) -> str:
        return "04" + self.point.hex()


@dataclass(frozen=True)
class SM2PrivateKey:
    secret: bytes = field(repr=False)  # d, 32 bytes
    public: SM2PublicKey

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        public, private = _gm.sm2_key_generate()
        return cls(bytes(private), SM2PublicKey(bytes(public)))

    @classmethod
    def from_hex(cls, value: str) -> SM2PrivateKey:
        """64 hex digits; the public key is derived (an SM2 signature's Z needs it)."""
        d = _unhex(value, "SM2 private key")
        if len(d) != 32 or not 0 < int.from_bytes(d, "big") < _N - 1:
            raise CryptoError("an SM2 private key is 64 hex digits in [1, n-2]")
        return cls(d, SM2PublicKey(_public_of(d)))

    def hex(self) -> str:
        return self.secret.hex()


def _public_of(d: bytes) -> bytes:
    """d·G: the extension offers no scalar multiplication, so the point is computed here, once
    when a key is loaded (signing and decryption themselves run in GmSSL)."""
    return _scalar_mult_g(int.from_bytes(d, "big"))


# SM2 recommended curve (GB/T 32918.5)
_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
_A = _P - 3
_B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
_GX = int("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7", 16)
_GY = int("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0", 16)


def _scalar_mult_g(k: int) -> bytes:
    """k·G (Jacobian double-and-add). Used once per loaded key, not on secret-dependent hot
    paths of the protocol (signing and decryption run in GmSSL)."""
    def add(p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
        if p1 is None:
            return p2
        if p2 is None:
            return p1
        (x1, y1), (x2, y2) = p1, p2
        if x1 == x2 and (y1 + y2) % _P == 0:
            return None
        if p1 == p2:
            lam = (3 * x1 * x1 + _A) * pow(2 * y1, -1, _P) % _P
        else:
            lam = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
        x3 = (lam * lam - x1 - x2) % _P
        return x3, (lam * (x1 - x3) - y1) % _P

    result: tuple[int, int] | None = None
    addend: tuple[int, int] | None = (_GX, _GY)
    while k:
        if k & 1:
            result = add(result, addend)
        addend = add(addend, addend)
        k >>= 1
    if result is None:  # pragma: no cover - k in [1, n-2]
        raise CryptoError("SM2 private key gives the point at infinity")
    return result[0].to_bytes(32, "big") + result[1].to_bytes(32, "big")


# -- SM2 signatures -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _z(public_point: bytes, user_id: bytes) -> bytes:
    """Z_A = SM3(ENTL || ID || a || b || x_G || y_G || x_A || y_A) (GB/T 32918.2 §5.5): fixed
    per key and signer id, so computed once."""
    if len(user_id) * 8 > 0xFFFF:
        raise CryptoError("an SM2 signer id is at most 8191 bytes")
    curve = b"".join(v.to_bytes(32, "big") for v in (_A, _B, _GX, _GY))
    return sm3((len(user_id) * 8).to_bytes(2, "big") + user_id + curve + public_point)


def sm2_sign(key: SM2PrivateKey, message: bytes, *, encoding: SignatureEncoding = "raw",
             user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """SM3withSM2 over ``Z || message``; ``raw`` r || s (64 bytes) or ``der``.

    The digest e = SM3(Z || message) is made here and GmSSL signs it: GmSSL's whole-message
    ``sm2_sign`` took ~3.9 ms of CPU per signature on this machine against ~0.4 ms for signing
    the digest (bench/README.md), with the GIL held either way (a thread would not help)."""
    e = sm3(_z(key.public.point, user_id) + message)
    der = bytes(_gm.sm2_sign_sm3_digest(key.secret, e))
    return der if encoding == "der" else der_to_raw_signature(der)


def sm2_verify(key: SM2PublicKey, message: bytes, signature: bytes, *,
               encoding: SignatureEncoding = "raw", user_id: bytes = DEFAULT_USER_ID) -> bool:
    """Whether ``signature`` (in ``encoding``) is ``key``'s over ``message``; a malformed
    signature is simply not valid."""
    try:
        der = signature if encoding == "der" else raw_to_der_signature(signature)
        r, s = _der_signature_ints(der)  # strict DER, canonical: refuse malleable encodings
        if not (0 < r < _N and 0 < s < _N) or raw_to_der_signature(
                r.to_bytes(32, "big") + s.to_bytes(32, "big")) != der:
            return False
        return bool(_gm.sm2_verify(key.point, message, der, signer_id=user_id))
    except (CryptoError, _gm.GmsslInnerError):
        return False


def der_to_raw_signature(der: bytes) -> bytes:
    r, s = _der_signature_ints(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def raw_to_der_signature(raw: bytes) -> bytes:
    if len(raw) != 64:
        raise CryptoError(f"a raw SM2 signature is 64 bytes (r || s), got {len(raw)}")
    return _seq(_int(int.from_bytes(raw[:32], "big")) + _int(int.from_bytes(raw[32:], "big")))


def _der_signature_ints(der: bytes) -> tuple[int, int]:
    body = _read_tlv(der, 0x30, whole=True)
    r, rest = _read_int(body)
    s, rest = _read_int(rest)
    if rest or r >= 1 << 256 or s >= 1 << 256:
        raise CryptoError("not a DER SM2 signature (SEQUENCE of two INTEGERs)")
    return r, s


# -- SM2 encryption -------------------------------------------------------------------------------

def sm2_encrypt(key: SM2PublicKey, plaintext: bytes, *, order: CipherOrder = "C1C3C2") -> bytes:
    """``04 || x1 || y1`` then C3 and C2 in ``order`` (up to 255 bytes: keys, not documents)."""
    if not 0 < len(plaintext) <= _MAX_SM2_PLAINTEXT:
        raise CryptoError(f"SM2 encrypts 1 to {_MAX_SM2_PLAINTEXT} bytes (a key), "
                          f"not {len(plaintext)}")
    der = bytes(_gm.sm2_encrypt(key.point, plaintext))
    body = _read_tlv(der, 0x30, whole=True)
    x, rest = _read_int(body)
    y, rest = _read_int(rest)
    c3, rest = _read_tlv_rest(rest, 0x04)
    c2, rest = _read_tlv_rest(rest, 0x04)
    c1 = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    return c1 + (c3 + c2 if order == "C1C3C2" else c2 + c3)


def sm2_decrypt(key: SM2PrivateKey, ciphertext: bytes, *, order: CipherOrder = "C1C3C2") -> bytes:
    """The plaintext of a raw SM2 ciphertext in ``order``; :class:`CryptoError` when it does not
    decrypt (wrong key, wrong order, altered bytes: C3 does not match)."""
    if len(ciphertext) < 65 + 32 + 1 or ciphertext[0] != 4:
        raise CryptoError("not an SM2 ciphertext (04 || x || y, C3, C2 expected)")
    c1, rest = ciphertext[1:65], ciphertext[65:]
    c3, c2 = (rest[:32], rest[32:]) if order == "C1C3C2" else (rest[-32:], rest[:-32])
    der = _seq(_int(int.from_bytes(c1[:32], "big")) + _int(int.from_bytes(c1[32:], "big"))
               + _tlv(0x04, c3) + _tlv(0x04, c2))
    try:
        return bytes(_gm.sm2_decrypt(key.secret, der))
    except _gm.GmsslInnerError:
        raise CryptoError("SM2 decryption failed (wrong key, wrong cipher order or altered "
                          "ciphertext)") from None


# -- minimal strict DER (SEQUENCE, INTEGER, OCTET STRING) -----------------------------------------

def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    else:
        octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + length + value


def _int(v: int) -> bytes:
    return _tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


def _seq(content: bytes) -> bytes:
    return _tlv(0x30, content)


def _read_tlv_rest(data: bytes, tag: int) -> tuple[bytes, bytes]:
    if len(data) < 2 or data[0] != tag:
        raise CryptoError(f"DER: tag {tag:#04x} expected")
    first, pos = data[1], 2
    if first < 0x80:
        n = first
    else:
        width = first & 0x7F
        if not 0 < width <= 4 or len(data) < 2 + width:
            raise CryptoError("DER: bad length")
        n, pos = int.from_bytes(data[2:2 + width], "big"), 2 + width
        if n < 0x80 or data[2] == 0:
            raise CryptoError("DER: length not in its shortest form")
    if len(data) < pos + n:
        raise CryptoError("DER: truncated")
    return data[pos:pos + n], data[pos + n:]


def _read_tlv(data: bytes, tag: int, *, whole: bool) -> bytes:
    value, rest = _read_tlv_rest(data, tag)
    if whole and rest:
        raise CryptoError("DER: bytes after the value")
    return value


def _read_int(data: bytes) -> tuple[int, bytes]:
    value, rest = _read_tlv_rest(data, 0x02)
    if not value or value[0] & 0x80 or (len(value) > 1 and value[0] == 0 and not value[1] & 0x80):
        raise CryptoError("DER: INTEGER not positive or not minimal")
    return int.from_bytes(value, "big"), rest


def _unhex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value.strip())
    except ValueError:
        raise CryptoError(f"{what}: not hex") from None

