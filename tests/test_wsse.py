"""WS-Security UsernameToken digest: our apply/verify, cross-checked against zeep's token."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from lxml import etree
from zeep.wsse.username import UsernameToken as ZeepToken

from gateway.protocols import soap
from gateway.protocols.wsse import (SECURITY, WSSE_NS, UsernameToken, UsernameTokenVerifier,
                                    WsseError, password_digest)

NOW = 1_796_000_000.0  # 2026-11-30, a fixed clock


def test_profile_vector():
    # From the OASIS UsernameToken profile's construction: SHA-1 over nonce+created+password.
    assert password_digest(b"0123456789abcdef", "2026-11-30T00:00:00Z", "secret") == \
        base64.b64encode(__import__("hashlib").sha1(
            b"0123456789abcdef2026-11-30T00:00:00Zsecret").digest()).decode()


def test_same_digest_as_zeep_for_same_inputs():
    nonce = b"fixed-nonce-1234"
    created = datetime.fromtimestamp(NOW, UTC).replace(microsecond=0)
    ours = UsernameToken("u", "p", clock=lambda: NOW, nonce_source=lambda n: nonce).header(soap.SOAP12_NS)
    theirs_env = etree.fromstring(soap.build_envelope(soap.SOAP12, etree.Element("b")))
    ZeepToken("u", "p", use_digest=True, nonce=nonce.decode(), created=created,
              zulu_timestamp=True).apply(theirs_env, {})
    zsec = theirs_env.find(f".//{SECURITY.text}")
    zcreated = zsec.findtext(".//{*}Created")
    assert password_digest(nonce, zcreated, "p") == zsec.findtext(f".//{{{WSSE_NS}}}Password")
    assert ours.findtext(f".//{{{WSSE_NS}}}Nonce") == zsec.findtext(f".//{{{WSSE_NS}}}Nonce")


def test_verifier_accepts_zeep_generated_token():
    env = etree.fromstring(soap.build_envelope(soap.SOAP12, etree.Element("b")))
    ZeepToken("BJ-GATEWAY", "s3cret", use_digest=True).apply(env, {})
    v = UsernameTokenVerifier({"BJ-GATEWAY": "s3cret"})
    assert v.verify(env.find(f".//{SECURITY.text}")) == "BJ-GATEWAY"


def verifier(**kw):
    return UsernameTokenVerifier({"u": "p"}, clock=lambda: NOW, **kw)


def token(password="p", at=NOW):
    return UsernameToken("u", password, clock=lambda: at).header(soap.SOAP12_NS)


def test_round_trip_and_replay():
    v = verifier()
    t = token()
    assert v.verify(t) == "u"
    with pytest.raises(WsseError, match="replay"):
        v.verify(t)


@pytest.mark.parametrize("tok,code", [
    (lambda: token(password="x"), "wsse:FailedAuthentication"),
    (lambda: token(at=NOW - 301), "wsu:MessageExpired"),
    (lambda: token(at=NOW + 301), "wsu:MessageExpired"),
    (lambda: None, "wsse:InvalidSecurity"),
    (lambda: etree.Element(SECURITY), "wsse:InvalidSecurityToken"),
])
def test_rejections(tok, code):
    with pytest.raises(WsseError) as e:
        verifier().verify(tok())
    assert e.value.code == code


def test_unknown_user_fails_like_wrong_password():
    t = UsernameToken("who", "p", clock=lambda: NOW).header(soap.SOAP12_NS)
    with pytest.raises(WsseError) as e:
        verifier().verify(t)
    assert e.value.code == "wsse:FailedAuthentication"


def test_plain_text_refused_by_default():
    t = token()
    pw = t.find(f".//{{{WSSE_NS}}}Password")
    pw.set("Type", pw.get("Type").replace("PasswordDigest", "PasswordText"))
    with pytest.raises(WsseError) as e:
        verifier().verify(t)
    assert e.value.code == "wsse:UnsupportedSecurityToken"


def test_tampered_created_fails():
    t = token()
    t.find(".//{*}Created").text = "2026-11-30T00:00:01.000Z"
    with pytest.raises(WsseError):
        verifier(window=10**9).verify(t)


def test_must_understand_and_fresh_nonce_per_message():
    a, b = token(), token()
    assert a.get(f"{{{soap.SOAP12_NS}}}mustUnderstand") == "1"
    assert a.findtext(".//{*}Nonce") != b.findtext(".//{*}Nonce")
