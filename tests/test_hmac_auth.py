"""HMAC-SHA256 request signing (``hmac-sha256``, gateway/protocols/hmac_auth.py): fixed vectors
computed here with ``hmac``/``hashlib`` directly, the partner's own header names and canonical
string as options, refusals (bad signature, stale either way, replay, on a second instance
through the shared database store), and the real request of a ``rest-json`` client verified by
a real server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.protocols import create_client
from gateway.protocols.hmac_auth import (HmacError, HmacOptions, HmacSigner, check,
                                         request_path, verify)
from gateway.protocols.options import auth_headers, request_auth
from gateway.protocols.tif import MemoryNonceStore
from gateway.store import Store, create_engine
from gateway.store.nonces import DbNonceStore

SECRET = "synthetic-test-secret-0001"   # made up for the tests
KEY_ID = "BJ-GW-TEST"
NOW = 1_764_640_800                     # 2025-12-02T02:00:00Z
NONCE = "0123456789abcdef0123456789abcdef"
BODY = '{"applicationNo":"TEST0001","name":"张三"}'.encode()
PATH = "/api/v1/cross-province/cases"
URL = f"https://partner.example.cn{PATH}"


def expected_signature(secret: bytes, *parts: str) -> str:
    """Independently of the module: hex HMAC-SHA256 over the parts joined by newlines."""
    return hmac.new(secret, "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def signer(*, at: float = NOW, nonce: str = NONCE, secret: str = SECRET, key_id: str = KEY_ID,
           options: HmacOptions | None = None) -> HmacSigner:
    return HmacSigner(key_id, secret.encode(), options or HmacOptions(), clock=lambda: at,
                      nonce_source=lambda: nonce)


SECRETS = {KEY_ID: SECRET.encode()}


def checked(headers: dict[str, str], *, now: float = NOW, body: bytes = BODY, path: str = PATH,
            method: str = "POST", **kw: Any) -> Any:
    return check(headers, method=method, path=path, body=body, secrets_by_key=SECRETS, now=now,
                 **kw)


# -- fixed vectors ---------------------------------------------------------------------------

def test_fixed_vector_default_headers_and_canonical_string() -> None:
    h = signer().sign(method="post", url=URL, body=BODY)
    body_digest = hashlib.sha256(BODY).hexdigest()
    assert h == {"X-Gw-Key-Id": KEY_ID, "X-Gw-Timestamp": str(NOW), "X-Gw-Nonce": NONCE,
                 "X-Gw-Signature": expected_signature(SECRET.encode(), "POST", PATH, str(NOW),
                                                      NONCE, body_digest)}
    # and the literal value, so a change of the canonical string cannot go unnoticed
    assert h["X-Gw-Signature"] == hmac.new(
        SECRET.encode(),
        f"POST\n{PATH}\n{NOW}\n{NONCE}\n{body_digest}".encode(), hashlib.sha256).hexdigest()


def test_a_partners_own_names_order_and_encodings_are_options() -> None:
    options = HmacOptions(key_id_header="X-Ca-Key", timestamp_header="X-Ca-Timestamp",
                          nonce_header="X-Ca-Nonce", signature_header="X-Ca-Signature",
                          canonical=("key_id", "timestamp", "nonce", "method", "path",
                                     "body_sha256"),
                          separator="&", signature_encoding="base64", timestamp_unit="ms",
                          secret_encoding="hex")
    key = bytes(range(32))
    s = HmacSigner(KEY_ID, key, options, clock=lambda: NOW + 0.25, nonce_source=lambda: NONCE)
    h = s.sign(method="POST", url=URL + "?page=2", body=BODY)
    ms = str(NOW * 1000 + 250)
    text = "&".join([KEY_ID, ms, NONCE, "POST", PATH + "?page=2", hashlib.sha256(BODY).hexdigest()])
    mac = hmac.new(key, text.encode(), hashlib.sha256).digest()
    assert h == {"X-Ca-Key": KEY_ID, "X-Ca-Timestamp": ms, "X-Ca-Nonce": NONCE,
                 "X-Ca-Signature": base64.b64encode(mac).decode()}
    claims = check(h, method="POST", path=PATH + "?page=2", body=BODY,
                   secrets_by_key={KEY_ID: key}, now=NOW + 1, options=options)
    assert claims.key_id == KEY_ID and claims.timestamp == NOW + 0.25


def test_request_path_keeps_the_query() -> None:
    assert request_path("https://h:8443/a/b?x=1&y=2") == "/a/b?x=1&y=2"
    assert request_path("https://h") == "/"


def test_a_good_request_verifies() -> None:
    claims = checked(signer().sign(method="POST", url=URL, body=BODY))
    assert (claims.key_id, claims.nonce) == (KEY_ID, NONCE)


# -- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("change", ["body", "path", "method", "secret", "key_id", "signature"])
def test_anything_changed_after_signing_is_a_bad_signature(change: str) -> None:
    h = signer(secret="not-the-secret" if change == "secret" else SECRET,
               key_id="NOBODY" if change == "key_id" else KEY_ID).sign(
        method="POST", url=URL, body=BODY)
    if change == "signature":
        h["X-Gw-Signature"] = "0" * 64
    with pytest.raises(HmacError) as e:
        checked(h, body=BODY + b" " if change == "body" else BODY,
                path="/api/v1/admin/reload" if change == "path" else PATH,
                method="PUT" if change == "method" else "POST")
    assert e.value.code == "bad_signature"
    assert SECRET not in e.value.message and h["X-Gw-Signature"] not in e.value.message


def test_stale_and_future_timestamps_have_their_own_limits() -> None:
    h = signer(at=NOW - 301).sign(method="POST", url=URL, body=BODY)
    with pytest.raises(HmacError) as old:
        checked(h)
    assert old.value.code == "stale_timestamp" and "old" in old.value.message
    checked(h, max_age=600)                         # accepted with a longer max_age
    ahead = signer(at=NOW + 61).sign(method="POST", url=URL, body=BODY)
    with pytest.raises(HmacError) as fut:
        checked(ahead, max_ahead=60)
    assert fut.value.code == "stale_timestamp" and "ahead" in fut.value.message
    checked(signer(at=NOW + 59).sign(method="POST", url=URL, body=BODY), max_ahead=60)


@pytest.mark.parametrize("header", ["X-Gw-Key-Id", "X-Gw-Timestamp", "X-Gw-Nonce",
                                    "X-Gw-Signature"])
def test_a_missing_header_is_named(header: str) -> None:
    h = signer().sign(method="POST", url=URL, body=BODY)
    del h[header]
    with pytest.raises(HmacError) as e:
        checked(h)
    assert e.value.code == "missing_header" and e.value.header == header


async def test_a_replay_is_refused_and_a_forgery_burns_no_nonce() -> None:
    store = MemoryNonceStore(clock=lambda: NOW)
    h = signer().sign(method="POST", url=URL, body=BODY)
    forged = signer(secret="guess").sign(method="POST", url=URL, body=BODY)  # same nonce
    with pytest.raises(HmacError):
        await verify(forged, method="POST", path=PATH, body=BODY, secrets_by_key=SECRETS,
                     nonces=store, scope="national", now=NOW)
    await verify(h, method="POST", path=PATH, body=BODY, secrets_by_key=SECRETS, nonces=store,
                 scope="national", now=NOW)
    with pytest.raises(HmacError) as e:
        await verify(h, method="POST", path=PATH, body=BODY, secrets_by_key=SECRETS,
                     nonces=store, scope="national", now=NOW + 1)
    assert e.value.code == "reused_nonce"


async def test_a_replay_on_a_second_instance_is_refused(store: Any, db_url: str) -> None:
    now = time.time()
    h = signer(at=now).sign(method="POST", url=URL, body=BODY)
    await verify(h, method="POST", path=PATH, body=BODY, secrets_by_key=SECRETS,
                 nonces=DbNonceStore(store), scope="national", now=now)
    other = Store(create_engine(db_url))  # a second instance on the same database
    try:
        with pytest.raises(HmacError) as e:
            await verify(h, method="POST", path=PATH, body=BODY, secrets_by_key=SECRETS,
                         nonces=DbNonceStore(other), scope="national", now=now + 1)
    finally:
        await other.close()
    assert e.value.code == "reused_nonce"


# -- configuration ---------------------------------------------------------------------------

def test_the_scheme_is_chosen_by_name_with_its_credentials() -> None:
    auth = request_auth("partner-x", "hmac-sha256", {"key_id": KEY_ID, "secret": SECRET},
                        {"signature_header": "X-Sig"})
    h = auth_headers(auth, method="POST", url=URL, body=BODY)
    assert set(h) == {"X-Gw-Key-Id", "X-Gw-Timestamp", "X-Gw-Nonce", "X-Sig"}
    assert auth is not None
    with pytest.raises(TypeError, match="signs the method, path and body"):
        auth.headers()  # never an unsigned request from a call site that forgot the body


@pytest.mark.parametrize(("credentials", "options", "key"), [
    ({"key_id": KEY_ID}, {}, "partners.p.credentials.secret"),
    ({"secret": SECRET}, {}, "partners.p.credentials.key_id"),
    ({"key_id": KEY_ID, "secret": "zz"}, {"secret_encoding": "hex"},
     "partners.p.credentials.secret"),
    ({"key_id": KEY_ID, "secret": SECRET}, {"signature_header": "X Sig"},
     "partners.p.options.auth_options.signature_header"),
    ({"key_id": KEY_ID, "secret": SECRET}, {"canonical": ["method", "path", "timestamp", "nonce"]},
     "partners.p.options.auth_options.canonical"),
    ({"key_id": KEY_ID, "secret": SECRET}, {"colour": "red"},
     "partners.p.options.auth_options.colour"),
])
def test_configuration_mistakes_name_their_key(credentials: dict[str, str],
                                               options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        request_auth("p", "hmac-sha256", credentials, options)
    assert e.value.key == key
    assert SECRET not in str(e.value)


# -- the real request of a rest-json client --------------------------------------------------

async def test_a_rest_json_partner_verifies_the_gateways_real_request() -> None:
    seen: list[str] = []
    nonces = MemoryNonceStore()

    async def partner(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            await verify(request.headers, method=request.method, path=request.path_qs,
                         body=body, secrets_by_key=SECRETS, nonces=nonces, scope="gw")
        except HmacError as e:
            seen.append(e.code)
            return web.json_response({"code": "40100", "msg": e.message}, status=401)
        seen.append("ok")
        return web.json_response({"code": "0", "msg": "ok", "data": {"receiptNo": "R-1"}})

    app = web.Application()
    app.router.add_post(PATH, partner)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    settings = PartnerSettings(protocol="rest-json", url=str(server.make_url(PATH)),
                               mapping="national/case-submit",
                               credentials={"key_id": KEY_ID, "secret": SECRET},
                               options={"auth": "hmac-sha256"})
    try:
        async with aiohttp.ClientSession() as http:
            client = create_client("hmac-partner", settings, http)
            first = await client.send({"applicationNo": "TEST0001", "name": "张三"},
                                      idempotency_key="k-1", correlation_id="c-1")
            again = await client.send({"applicationNo": "TEST0001"}, idempotency_key="k-1",
                                      correlation_id="c-2")  # a retry: fresh nonce, signed anew
    finally:
        await server.close()
    assert first.kind == "delivered" and first.receipt_no == "R-1", first
    assert again.kind == "delivered", again
    assert seen == ["ok", "ok"]


def test_json_body_digest_is_of_the_bytes_sent() -> None:
    # the body is hashed as bytes: a re-serialised JSON (other spacing) does not verify
    h = signer().sign(method="POST", url=URL, body=BODY)
    reserialised = json.dumps(json.loads(BODY), ensure_ascii=False, indent=1).encode()
    with pytest.raises(HmacError):
        checked(h, body=reserialised)
