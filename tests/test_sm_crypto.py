"""SM3, SM4 and SM2 (gateway/security/sm.py) against the published vectors of the standards and
against a second, independent implementation (``gmalg``, pure Python, a test-only dependency):
signatures both ways in both encodings, encryption both ways in both cipher orders, and
tampered signatures and ciphertexts refused."""

from __future__ import annotations

import gmalg
import pytest

from gateway.security import sm

# GB/T 32918.5 / GM/T 0003.5-2012 examples on the recommended curve (also in OpenSSL's
# test/sm2_internal_test.c): key pair, signature of "message digest" with the default user id
# and k below, and the ciphertext of "encryption standard" with the same k.
D = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8"
PUB = ("04" "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
       "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
K = int("59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21", 16)
R = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
S = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
C1 = ("04" "04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73"
      "E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0")
C3 = "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766"
C2 = "21886CA989CA9C7D58087307CA93092D651EFA"
UID = b"1234567812345678"


def _b32(b: bytes) -> bytes:
    return b.rjust(32, b"\0")


def test_sm3_published_vectors() -> None:
    # GB/T 32905-2016 Annex A
    assert sm.sm3(b"abc").hex() == \
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm.sm3(b"abcd" * 16).hex() == \
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm4_published_vector_and_round_trip() -> None:
    # GB/T 32907-2016 Annex A: key = plaintext = 0123456789abcdeffedcba9876543210. CBC under a
    # zero IV enciphers the first block exactly as the standard's single-block example.
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    out = sm._sm4_cbc(key, bytes(16), key)
    assert out[:16].hex() == "681edf34d206965e86b3e94f536e4246"
    # the other implementation agrees on the padding block too
    other = gmalg.SM4(key)
    assert out[16:] == other.encrypt(bytes(a ^ b for a, b in zip(out[:16], bytes([16]) * 16,
                                                                   strict=True)))
    sealed = sm.sm4_encrypt(key, "张三·李四 110105199003071239".encode())
    assert sm.sm4_decrypt(key, sealed).decode() == "张三·李四 110105199003071239"
    assert sm.sm4_encrypt(key, b"same") != sm.sm4_encrypt(key, b"same")  # a fresh IV each time


def test_sm4_wrong_key_and_damage_are_refused() -> None:
    key, other = bytes(range(16)), bytes(range(1, 17))
    sealed = sm.sm4_encrypt(key, b"x" * 40)
    with pytest.raises(sm.CryptoError):
        sm.sm4_decrypt(key, sealed[:-1])
    damaged = sealed[:-1] + bytes([sealed[-1] ^ 1])
    for k, data in ((other, sealed), (key, damaged)):
        try:
            assert sm.sm4_decrypt(k, data) != b"x" * 40  # padding may survive by chance
        except sm.CryptoError:
            pass
    with pytest.raises(sm.CryptoError, match="16 bytes"):
        sm.sm4_key("abcd")


def test_sm2_published_key_and_signature() -> None:
    key = sm.SM2PrivateKey.from_hex(D)
    assert key.public.hex().upper() == PUB  # the public key derived from d
    raw = bytes.fromhex(R + S)
    assert sm.sm2_verify(key.public, b"message digest", raw)
    assert sm.sm2_verify(key.public, b"message digest", sm.raw_to_der_signature(raw),
                         encoding="der")
    assert not sm.sm2_verify(key.public, b"message digest!", raw)
    # the standard's fixed k through the second implementation's test hook gives (r, s)
    other = gmalg.SM2(bytes.fromhex(D), UID, rnd_fn=lambda bits: K)
    r, s = other.sign(b"message digest")
    assert (_b32(r) + _b32(s)).hex().upper() == R + S


def test_sm2_published_ciphertext_in_both_orders() -> None:
    key = sm.SM2PrivateKey.from_hex(D)
    c1c3c2 = bytes.fromhex(C1 + C3 + C2)
    c1c2c3 = bytes.fromhex(C1 + C2 + C3)
    assert sm.sm2_decrypt(key, c1c3c2, order="C1C3C2") == b"encryption standard"
    assert sm.sm2_decrypt(key, c1c2c3, order="C1C2C3") == b"encryption standard"
    with pytest.raises(sm.CryptoError):  # the wrong order does not pass C3's check
        sm.sm2_decrypt(key, c1c2c3, order="C1C3C2")


@pytest.mark.parametrize("encoding", ["raw", "der"])
def test_sm2_signatures_across_implementations(encoding: sm.SignatureEncoding) -> None:
    ours = sm.SM2PrivateKey.generate()
    other = gmalg.SM2(ours.secret, UID, bytes.fromhex(ours.public.hex()))
    message = "appId=BJ&data=一件事&nonce=1".encode()
    sig = sm.sm2_sign(ours, message, encoding=encoding)
    raw = sig if encoding == "raw" else sm.der_to_raw_signature(sig)
    assert len(raw) == 64
    assert other.verify(message, raw[:32], raw[32:])                 # ours → theirs
    r, s = other.sign(message)                                        # theirs → ours
    theirs = _b32(r) + _b32(s)
    if encoding == "der":
        theirs = sm.raw_to_der_signature(theirs)
    assert sm.sm2_verify(ours.public, message, theirs, encoding=encoding)
    # round trip of the encodings
    assert sm.der_to_raw_signature(sm.raw_to_der_signature(raw)) == raw
    # a signature by another key, a changed message or a flipped bit is refused
    stranger = sm.SM2PrivateKey.generate()
    assert not sm.sm2_verify(stranger.public, message, sig, encoding=encoding)
    assert not sm.sm2_verify(ours.public, message + b" ", sig, encoding=encoding)
    flipped = bytearray(sig)
    flipped[-3] ^= 0x40
    assert not sm.sm2_verify(ours.public, message, bytes(flipped), encoding=encoding)
    # the wrong encoding or garbage is not valid either, never an exception
    assert not sm.sm2_verify(ours.public, message, sig, encoding="der" if encoding == "raw"
                             else "raw")
    assert not sm.sm2_verify(ours.public, message, b"\x30\x00", encoding=encoding)


def test_der_signature_must_be_canonical() -> None:
    key = sm.SM2PrivateKey.generate()
    der = sm.sm2_sign(key, b"m", encoding="der")
    r, s = sm._der_signature_ints(der)
    # r with a needless leading zero byte: the same numbers, another byte string (malleable)
    loose = sm._seq(sm._tlv(0x02, b"\0" + sm._int(r)[2:]) + sm._int(s))
    assert sm._der_signature_ints(der) == (r, s)
    assert not sm.sm2_verify(key.public, b"m", loose, encoding="der")
    assert not sm.sm2_verify(key.public, b"m", der + b"\0", encoding="der")


@pytest.mark.parametrize("order", ["C1C3C2", "C1C2C3"])
def test_sm2_encryption_across_implementations(order: sm.CipherOrder) -> None:
    ours = sm.SM2PrivateKey.generate()
    other = gmalg.SM2(ours.secret, UID, bytes.fromhex(ours.public.hex()))
    key = bytes(range(16))
    sealed = sm.sm2_encrypt(ours.public, key, order=order)
    assert len(sealed) == 65 + 32 + 16 and sealed[0] == 4
    as_c1c3c2 = sealed if order == "C1C3C2" else sealed[:65] + sealed[-32:] + sealed[65:-32]
    assert other.decrypt(as_c1c3c2) == key                             # ours → theirs
    theirs = other.encrypt(key)                                        # theirs → ours (C1C3C2)
    if order == "C1C2C3":
        theirs = theirs[:65] + theirs[97:] + theirs[65:97]
    assert sm.sm2_decrypt(ours, theirs, order=order) == key
    damaged = bytearray(sealed)
    damaged[70] ^= 1
    with pytest.raises(sm.CryptoError):
        sm.sm2_decrypt(ours, bytes(damaged), order=order)
    with pytest.raises(sm.CryptoError):
        sm.sm2_decrypt(sm.SM2PrivateKey.generate(), sealed, order=order)


def test_bad_keys_are_named_without_their_value() -> None:
    with pytest.raises(sm.CryptoError, match="private key") as e:
        sm.SM2PrivateKey.from_hex("00" * 32)
    assert "00" * 8 not in str(e.value)
    with pytest.raises(sm.CryptoError, match="public key"):
        sm.SM2PublicKey.from_hex("04" + "11" * 10)
    with pytest.raises(sm.CryptoError, match="not hex"):
        sm.SM2PrivateKey.from_hex("zz" * 32)
    key = sm.SM2PrivateKey.generate()
    assert key.hex() not in repr(key)
