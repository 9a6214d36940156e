"""WS-Security UsernameToken digest: our apply/verify, cross-checked against zeep's token; the
inbound limits (``Created`` too old and too far ahead separately, ``Timestamp/Expires``), the
nonce in a shared store (a replay to a second gateway instance on the same database is refused),
and the scheme named in the partner's ``inbound`` configuration."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from lxml import etree
from zeep.wsse.username import UsernameToken as ZeepToken

from gateway.app import create_app
from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.protocols import soap
from gateway.protocols.hmac_auth import HmacOptions, HmacSigner
from gateway.protocols.wsse import (SECURITY, WSSE_NS, WSU_NS, UsernameToken,
                                    UsernameTokenVerifier, WsseError, format_created,
                                    password_digest)
from gateway.store import Store, create_engine
from gateway.store.nonces import DbNonceStore
from tests.harness import Gateway, edit_config, settings_for, write_config
from tests.status_callback_env import (Part, hebei_envelope, soap12_fault, tianjin_envelope,
                                       tianjin_package, tianjin_result)

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


async def test_verifier_accepts_zeep_generated_token():
    env = etree.fromstring(soap.build_envelope(soap.SOAP12, etree.Element("b")))
    ZeepToken("BJ-GATEWAY", "s3cret", use_digest=True).apply(env, {})
    v = UsernameTokenVerifier({"BJ-GATEWAY": "s3cret"})
    assert await v.verify(env.find(f".//{SECURITY.text}")) == "BJ-GATEWAY"


def verifier(**kw):
    return UsernameTokenVerifier({"u": "p"}, clock=lambda: NOW, **kw)


def token(password="p", at=NOW):
    return UsernameToken("u", password, clock=lambda: at).header(soap.SOAP12_NS)


async def test_round_trip_and_replay():
    v = verifier()
    t = token()
    assert await v.verify(t) == "u"
    with pytest.raises(WsseError, match="replay"):
        await v.verify(t)


@pytest.mark.parametrize("tok,code", [
    (lambda: token(password="x"), "wsse:FailedAuthentication"),
    (lambda: token(at=NOW - 301), "wsu:MessageExpired"),
    (lambda: token(at=NOW + 301), "wsu:MessageExpired"),
    (lambda: None, "wsse:InvalidSecurity"),
    (lambda: etree.Element(SECURITY), "wsse:InvalidSecurityToken"),
])
async def test_rejections(tok, code):
    with pytest.raises(WsseError) as e:
        await verifier().verify(tok())
    assert e.value.code == code


async def test_unknown_user_fails_like_wrong_password():
    t = UsernameToken("who", "p", clock=lambda: NOW).header(soap.SOAP12_NS)
    with pytest.raises(WsseError) as e:
        await verifier().verify(t)
    assert e.value.code == "wsse:FailedAuthentication"


async def test_plain_text_refused_by_default():
    t = token()
    pw = t.find(f".//{{{WSSE_NS}}}Password")
    pw.set("Type", pw.get("Type").replace("PasswordDigest", "PasswordText"))
    with pytest.raises(WsseError) as e:
        await verifier().verify(t)
    assert e.value.code == "wsse:UnsupportedSecurityToken"


async def test_tampered_created_fails():
    t = token()
    t.find(".//{*}Created").text = "2026-11-30T00:00:01.000Z"
    with pytest.raises(WsseError):
        await verifier(window=10**9).verify(t)


def test_must_understand_and_fresh_nonce_per_message():
    a, b = token(), token()
    assert a.get(f"{{{soap.SOAP12_NS}}}mustUnderstand") == "1"
    assert a.findtext(".//{*}Nonce") != b.findtext(".//{*}Nonce")


# -- inbound limits, the shared nonce store, the configured scheme (issue 14) --------------------

async def test_too_old_and_too_far_ahead_are_separate_limits():
    v = verifier(max_age=600, max_ahead=30)
    assert await v.verify(token(at=NOW - 599)) == "u"          # old, but within max_age
    with pytest.raises(WsseError) as ahead:
        await v.verify(token(at=NOW + 31))
    assert ahead.value.code == "wsu:MessageExpired" and "ahead" in ahead.value.message
    with pytest.raises(WsseError) as old:
        await v.verify(token(at=NOW - 601))
    assert old.value.code == "wsu:MessageExpired" and "old" in old.value.message
    assert await v.verify(token(at=NOW + 29)) == "u"


def _with_timestamp(sec, *, created=None, expires=None):
    ts = etree.SubElement(sec, f"{{{WSU_NS}}}Timestamp")
    if created is not None:
        etree.SubElement(ts, f"{{{WSU_NS}}}Created").text = format_created(created)
    if expires is not None:
        etree.SubElement(ts, f"{{{WSU_NS}}}Expires").text = format_created(expires)
    return sec


async def test_timestamp_expires_is_honoured():
    assert await verifier().verify(_with_timestamp(token(), created=NOW - 5,
                                                   expires=NOW + 5)) == "u"
    with pytest.raises(WsseError) as e:
        await verifier().verify(_with_timestamp(token(), created=NOW - 20, expires=NOW - 1))
    assert e.value.code == "wsu:MessageExpired" and "Expires" in e.value.message
    with pytest.raises(WsseError) as e:
        await verifier().verify(_with_timestamp(token(), created=NOW - 400))
    assert e.value.code == "wsu:MessageExpired" and "Timestamp/Created" in e.value.message


async def test_a_nonce_too_short_to_be_single_use_is_refused():
    t = UsernameToken("u", "p", clock=lambda: NOW, nonce_source=lambda n: b"1234").header(
        soap.SOAP12_NS)
    with pytest.raises(WsseError) as e:
        await verifier().verify(t)
    assert e.value.code == "wsse:InvalidSecurityToken" and "Nonce" in e.value.message


async def test_a_forged_token_burns_no_nonce():
    nonce = b"shared-nonce-0001"
    forged = UsernameToken("u", "guess", clock=lambda: NOW, nonce_source=lambda n: nonce)
    genuine = UsernameToken("u", "p", clock=lambda: NOW, nonce_source=lambda n: nonce)
    v = verifier()
    with pytest.raises(WsseError):
        await v.verify(forged.header(soap.SOAP12_NS))
    assert await v.verify(genuine.header(soap.SOAP12_NS)) == "u"


async def test_a_replay_to_another_instance_is_refused_through_the_database(store, db_url):
    now = time.time()
    t = UsernameToken("u", "p", clock=lambda: now).header(soap.SOAP12_NS)
    first = UsernameTokenVerifier({"u": "p"}, scope="hebei")   # instance 1
    second = UsernameTokenVerifier({"u": "p"}, scope="hebei")  # instance 2, its own memory
    assert await first.verify(t, nonces=DbNonceStore(store)) == "u"
    other = Store(create_engine(db_url))
    try:
        with pytest.raises(WsseError, match="replay"):
            await second.verify(t, nonces=DbNonceStore(other))
    finally:
        await other.close()


async def test_hebei_callback_replayed_on_a_second_gateway_is_refused(tmp_path, db_url):
    """Two gateway instances on one database: Hebei's notification is taken by the first, the
    same bytes sent to the second are refused (env:Sender, wsse:InvalidSecurityToken)."""
    part = Part(case_id="", application_no="HB-NOT-A-CASE-0001", receipt="HBSL-0000000001",
                key="k-0000000001", item="x")
    settings = settings_for(tmp_path, db_url, {"hebei": "http://127.0.0.1:9/hebei/CaseExchange"},
                            enabled=False)
    body = hebei_envelope(part, message_id="HB-REPLAY-0001")
    headers = {"Content-Type": "application/soap+xml; charset=utf-8"}
    async with Gateway(settings) as one, Gateway(settings) as two:
        assert one.http is not None and two.http is not None
        async with one.http.post("/soap/hebei/status", data=body, headers=headers) as r:
            first = r.status, await r.read()
        async with two.http.post("/soap/hebei/status", data=body, headers=headers) as r:
            second = r.status, await r.read()
    assert first[0] == 200 or soap12_fault(first[1])[1] not in (
        "InvalidSecurityToken", "FailedAuthentication", "MessageExpired"), first
    assert second[0] == 400
    code, subcode, reason = soap12_fault(second[1])
    assert (code, subcode) == ("Sender", "InvalidSecurityToken") and "replay" in reason


@pytest.mark.parametrize(("partner", "scheme", "message"), [
    ("hebei", "kerberos", "unknown scheme 'kerberos'"),
    ("hebei", "auth-code", "auth-code is not carried by hebei's callback contract"),
    ("tianjin", "wsse-digest", "wsse-digest is not carried by tianjin's callback contract"),
    ("national", "hmac-sha256", "national's callback endpoint checks app-id, national-sm2 only"),
])
def test_an_inbound_scheme_the_endpoint_cannot_check_fails_start_up(tmp_path, partner, scheme,
                                                                   message):
    config = edit_config(
        write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                     {partner: "http://127.0.0.1:9/x"}),
        lambda raw: raw["partners"][partner]["inbound"].update(scheme=scheme))
    with pytest.raises(ConfigError) as e:
        create_app(load_settings(config))
    assert e.value.key == f"partners.{partner}.inbound.scheme"
    assert message in str(e.value)


async def test_hebei_inbound_scheme_hmac_sha256_is_configuration(tmp_path):
    """The same endpoint checks HTTP HMAC headers instead when its inbound block says so."""
    secret = "synthetic-hebei-hmac-secret"
    config = edit_config(
        write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                     {"hebei": "http://127.0.0.1:9/x"}, enabled=False),
        lambda raw: raw["partners"]["hebei"]["inbound"].update(
            scheme="hmac-sha256", key_id="HEBEI-KEY", secret=secret, max_ahead=30,
            hmac={"signature_header": "X-Hb-Signature"}))
    part = Part(case_id="", application_no="HB-NOT-A-CASE-0002", receipt="HBSL-0000000002",
                key="k-0000000002", item="x")
    body = hebei_envelope(part, message_id="HB-HMAC-0001",
                          security=etree.Element("{urn:x}Nothing"))  # no WS-Security at all
    signer = HmacSigner("HEBEI-KEY", secret.encode(),
                        HmacOptions(signature_header="X-Hb-Signature"))
    ctype = {"Content-Type": "application/soap+xml; charset=utf-8"}
    async with Gateway(load_settings(config)) as gw:
        assert gw.http is not None
        url = str(gw.server.make_url("/soap/hebei/status"))

        async def post(headers):
            async with gw.http.post("/soap/hebei/status", data=body,
                                    headers={**ctype, **headers}) as r:
                return r.status, await r.read()

        unsigned = await post({})
        signed_headers = signer.sign(method="POST", url=url, body=body)
        signed = await post(signed_headers)
        replayed = await post(signed_headers)
        ahead = await post(HmacSigner("HEBEI-KEY", secret.encode(),
                                      HmacOptions(signature_header="X-Hb-Signature"),
                                      clock=lambda: time.time() + 60).sign(
                                          method="POST", url=url, body=body))
    assert soap12_fault(unsigned[1])[1] == "FailedAuthentication"
    assert signed[0] == 200 or soap12_fault(signed[1])[1] not in (
        "FailedAuthentication", "MessageExpired"), signed
    assert soap12_fault(replayed[1])[1] == "FailedAuthentication"
    assert "replay" in soap12_fault(replayed[1])[2]
    assert soap12_fault(ahead[1])[1] == "MessageExpired"


async def test_tianjin_inbound_scheme_hmac_sha256_replaces_the_auth_code(tmp_path):
    secret = "synthetic-tianjin-hmac-secret"
    config = edit_config(
        write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                     {"tianjin": "http://127.0.0.1:9/x"}, enabled=False),
        lambda raw: raw["partners"]["tianjin"]["inbound"].update(
            scheme="hmac-sha256", key_id="TJ-KEY", secret=secret))
    part = Part(case_id="", application_no="TJ-NOT-A-CASE-0001", receipt="TJSL-0000000001",
                key="k-0000000003", item="x")
    body = tianjin_envelope(tianjin_package(part, tzbh="TJ-HMAC-0001"), auth_code="unused")
    ctype = {"Content-Type": "text/xml; charset=utf-8"}
    async with Gateway(load_settings(config)) as gw:
        assert gw.http is not None
        url = str(gw.server.make_url("/soap/tianjin/status"))

        async def code(headers):
            async with gw.http.post("/soap/tianjin/status", data=body,
                                    headers={**ctype, **headers}) as r:
                return tianjin_result(await r.read()).findtext("CODE")

        signed = HmacSigner("TJ-KEY", secret.encode()).sign(method="POST", url=url, body=body)
        results = [await code({}), await code(signed), await code(signed)]
    assert results == ["-1", "0", "-1"]  # unsigned, signed (the authCode is not looked at), replay
