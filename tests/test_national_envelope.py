"""The national envelope signed (SM2) and encrypted (SM4) both ways, against the national
simulator on real sockets: sends, replies, status pushes, status answers and export pages, with
both signature encodings and both cipher orders of the wrapped SM4 key; on both engines where a
database is involved."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import Settings, load_settings
from gateway.protocols.envelopes import (EnvelopeError, EnvelopeSecurity, open_message,
                                         partner_envelope, seal, signing_string)
from gateway.protocols.status_query import AnswerKind, CaseRef
from gateway.protocols.status_query_rest import create_status_query
from gateway.security.sm import SM2PrivateKey, sm4_key
from gateway.simulators.national import platform_security
from gateway.statuses.export_reader import ExportEndpoint, ExportReader
from tests.harness import Gateway, Simulator, db_rows, write_config

PUSH_PATH = "/api/v1/partners/national/status"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """Key files as ``gateway keys generate`` writes them (the private ones 0600)."""
    folder = tmp_path / "keys"
    result = CliRunner().invoke(main, ["keys", "generate", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "gateway.key").stat().st_mode & 0o777 == 0o600
    assert (folder / "sm4.key").stat().st_mode & 0o777 == 0o600
    return folder


def _read(folder: Path, name: str) -> str:
    return (folder / name).read_text(encoding="ascii").strip()


def signed_settings(tmp_path: Path, db_url: str, url: str, keys: Path, *,
                    signature: str = "raw", order: str = "C1C3C2", wrapped: bool = False,
                    private_key: str | None = None) -> Settings:
    """The shipped config pointed at ``url``, the national partner signing and encrypting; the
    key material comes from the environment (``${ENV}``), never the file."""
    path = write_config(tmp_path, db_url, {"national": url})
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    p = raw["partners"]["national"]
    p["options"].update({"enc_type": "SM4", "sign_type": "SM2", "sm2_signature": signature,
                         "sm2_cipher_order": order})
    p["credentials"] = {"app_id": "BJ-GATEWAY-DEMO", "sm2_private_key": "${H1_GW_KEY}",
                        "peer_public_key": "${H1_PEER_PUB}",
                        ("sm4_key_wrapped" if wrapped else "sm4_key"): "${H1_SM4}"}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert _read(keys, "gateway.key") not in path.read_text(encoding="utf-8")
    env = {**os.environ, "H1_GW_KEY": private_key or _read(keys, "gateway.key"),
           "H1_PEER_PUB": _read(keys, "national.pub"),
           "H1_SM4": _read(keys, "sm4.key.wrapped" if wrapped else "sm4.key")}
    return load_settings(path, env=env)


def test_signing_string_is_the_documented_one() -> None:
    # schemas/national/README.md: sorted names, no signData, no null or empty values, data as
    # compact JSON with sorted keys and unescaped non-ASCII
    doc = {"signType": "SM2", "appId": "BJ", "nonce": "ab12", "timestamp": 1764553500000,
           "encType": "NONE", "version": "1.0", "empty": "", "none": None, "flag": True,
           "data": {"b": [1, {"z": 1, "a": "张"}], "a": None}, "signData": "xx"}
    assert signing_string(doc).decode() == (
        'appId=BJ&data={"a":null,"b":[1,{"a":"张","z":1}]}&encType=NONE&flag=true&nonce=ab12'
        "&signType=SM2&timestamp=1764553500000&version=1.0")


def test_seal_and_open_both_ways(keys: Path) -> None:
    gateway = EnvelopeSecurity("SM4", "SM2", "der", SM2PrivateKey.from_hex(_read(keys, "gateway.key")),
                               platform_security(keys).own_key.public,  # type: ignore[union-attr]
                               sm4_key(_read(keys, "sm4.key")))
    platform = platform_security(keys, signature="der")
    doc = seal({"code": "0", "msg": "成功"}, {"receiptNo": "QG1", "name": "张三"}, platform)
    assert "data" not in doc and "张三" not in json.dumps(doc, ensure_ascii=False)
    assert open_message(doc, gateway)["data"] == {"receiptNo": "QG1", "name": "张三"}
    for field, value in (("msg", "失败"), ("code", "1"), ("encData", doc["encData"][:-4] + "AAA=")):
        with pytest.raises(EnvelopeError) as e:
            open_message({**doc, field: value}, gateway)
        assert e.value.field == "signData"
    with pytest.raises(EnvelopeError, match="missing"):
        open_message({k: v for k, v in doc.items() if k != "signData"}, gateway)
    # a reply in the clear where SM4 was agreed is a downgrade, refused
    clear = seal({"code": "0", "msg": "ok"}, {"receiptNo": "QG1"},
                 EnvelopeSecurity("NONE", "SM2", "der", platform.own_key, None, None))
    with pytest.raises(EnvelopeError, match="clear") as e:
        open_message(clear, gateway)
    assert e.value.field == "encData"


@pytest.mark.parametrize(("signature", "order"), [("raw", "C1C3C2"), ("der", "C1C2C3")])
async def test_a_signed_encrypted_case_is_verified_and_decrypted_by_the_platform(
        db_url: str, tmp_path: Path, keys: Path, samples: dict[str, Any], signature: str,
        order: str) -> None:
    # the SM4 key as the platform issues it: wrapped for the gateway's public key in `order`
    result = CliRunner().invoke(main, ["keys", "generate", "--out", str(keys), "--force",
                                       "--cipher-order", order])
    assert result.exit_code == 0, result.output
    case = samples["01-person-shanghai-social-security"]
    sec = platform_security(keys, signature="der" if signature == "der" else "raw")
    async with Simulator("national", security=sec) as sim:
        settings = signed_settings(tmp_path, db_url, sim.url(), keys, signature=signature,
                                   order=order, wrapped=True)
        async with Gateway(settings) as gw:
            status, doc = await gw.post_case(case)
            assert status == 202, doc
            final = await gw.wait_final(doc["id"])
            [d] = final["deliveries"]
            assert d["state"] == "delivered" and d["receiptNo"].startswith("QG"), d
            # the status query goes signed and encrypted too, and its answer is opened
            async with aiohttp.ClientSession() as http:
                query = create_status_query("national", settings.partners["national"], http, None)
                answer = await query.query_status(CaseRef(d["idempotencyKey"], d["receiptNo"]))
    [msg] = sim.state.messages
    data = msg.payload  # what the platform decrypted and stored
    assert data["certKey"] == case["applicant"]["certNo"]
    assert data["localProjectNo"] == case["applicationNo"]
    assert answer.kind is AnswerKind.FOUND, answer
    assert answer.document is not None and answer.document["receiptNo"] == d["receiptNo"]


async def test_a_gateway_signing_with_the_wrong_key_is_refused_by_the_platform(
        db_url: str, tmp_path: Path, keys: Path, samples: dict[str, Any]) -> None:
    async with Simulator("national", security=platform_security(keys)) as sim:
        settings = signed_settings(tmp_path, db_url, sim.url(), keys,
                                   private_key=SM2PrivateKey.generate().hex())
        async with Gateway(settings) as gw:
            status, doc = await gw.post_case(samples["01-person-shanghai-social-security"])
            assert status == 202, doc
            final = await gw.wait_final(doc["id"])
    [d] = final["deliveries"]
    assert d["state"] == "dead", d
    rows = await db_rows(db_url, "SELECT outcome, partner_code, message FROM attempts")
    # the platform's refusal is itself signed and verified: a permanent business rejection
    assert [(r.outcome, r.partner_code) for r in rows] == [("permanent", "40101")]
    assert "签名验证失败" in rows[0].message and "signData" in rows[0].message
    assert sim.state.messages == []


async def test_a_reply_with_a_tampered_signature_is_not_trusted(
        db_url: str, tmp_path: Path, keys: Path, samples: dict[str, Any]) -> None:
    async with Simulator("national", security=platform_security(keys)) as sim:
        sim.misbehave("bad_signature")
        async with Gateway(signed_settings(tmp_path, db_url, sim.url(), keys)) as gw:
            status, doc = await gw.post_case(samples["01-person-shanghai-social-security"])
            assert status == 202, doc
            final = await gw.wait_final(doc["id"])
    [d] = final["deliveries"]
    rows = await db_rows(db_url, "SELECT outcome, message FROM attempts ORDER BY attempt_no")
    # the forged "success" gave no receipt; the send was asked again and the true one kept
    assert rows[0].outcome == "retryable" and "reply not trusted: signData" in rows[0].message
    assert d["state"] == "delivered" and d["receiptNo"] == sim.state.messages[0].receipt_no


async def test_signed_status_pushes_are_taken_and_tampered_ones_refused(
        db_url: str, tmp_path: Path, keys: Path, samples: dict[str, Any]) -> None:
    platform = platform_security(keys)
    async with Simulator("national", security=platform) as sim:
        async with Gateway(signed_settings(tmp_path, db_url, sim.url(), keys)) as gw, \
                aiohttp.ClientSession() as http:
            status, doc = await gw.post_case(samples["01-person-shanghai-social-security"])
            final = await gw.wait_final(doc["id"])
            [d] = final["deliveries"]
            push_url = str(gw.server.make_url(PUSH_PATH))

            async def sim_post(path: str, body: dict[str, Any]) -> Any:
                async with http.post(sim.url(path), json=body) as r:
                    assert r.status == 200, await r.text()
                    return await r.json()

            # the simulator's own pushes, sealed with the platform's key, are taken
            await sim_post("/__sim/config", {"callback_url": push_url,
                                             "callback_auth": {"app_id": "NATIONAL-PLATFORM"}})
            walked = await sim_post("/__sim/walk", {"receipt": d["receiptNo"], "path": "approved"})
            assert walked["callbacks"] and all(c["ok"] for c in walked["callbacks"]), walked

            async def push(doc: dict[str, Any]) -> dict[str, Any]:
                async with http.post(push_url, data=json.dumps(doc, ensure_ascii=False),
                                     headers={"Content-Type": "application/json",
                                              "X-Idempotency-Key": os.urandom(6).hex()}) as r:
                    assert r.status == 200
                    answer: dict[str, Any] = await r.json()
                    return answer

            def envelope(security: EnvelopeSecurity, age: float = 0, **data: Any
                         ) -> dict[str, Any]:
                doc = {"appId": "NATIONAL-PLATFORM", "version": "1.0",
                       "timestamp": int((time.time() - age) * 1000),
                       "nonce": os.urandom(8).hex(),
                       "encType": "SM4", "signType": "SM2"}
                return seal(doc, {"projectNo": "11BJ0000000001", "localProjectNo":
                                  final["applicationNo"], "proStatus": "IN_REVIEW",
                                  "taskCode": "11100000000000000X4442117003000",
                                  "statusTime": "2026-12-01 08:00:00", **data}, security)

            good = envelope(platform)
            tampered = {**good, "signData": base64.b64encode(
                bytes(64 if platform.signature == "raw" else 70)).decode()}
            altered = {**good, "nonce": good["nonce"] + "0"}
            unsigned = {k: v for k, v in good.items() if k != "signData"}
            wrong_sm4 = envelope(EnvelopeSecurity("SM4", "SM2", "raw", platform.own_key, None,
                                                  os.urandom(16)))
            plain = {**good, "signType": "NONE"}
            stale = envelope(platform, age=3600)  # signed an hour ago (inbound window: 300 s)
            answers = {what: await push(doc) for what, doc in (
                ("good", good), ("replayed", good), ("tampered", tampered), ("altered", altered),
                ("unsigned", unsigned), ("wrong_sm4", wrong_sm4), ("plain", plain),
                ("stale", stale))}
            events = await db_rows(db_url, "SELECT status FROM status_events ORDER BY id")
    assert answers["good"]["code"] == "0", answers["good"]
    for what in ("tampered", "altered", "unsigned"):
        assert answers[what]["code"] == "40100" and "signData" in answers[what]["msg"], answers
    assert answers["wrong_sm4"]["code"] == "40001" and "encData" in answers["wrong_sm4"]["msg"]
    assert answers["plain"]["code"] == "40100" and "signType" in answers["plain"]["msg"]
    # the same signed push again (a new X-Idempotency-Key: the signature does not cover it)
    assert answers["replayed"]["code"] == "40100" and "/nonce" in answers["replayed"]["msg"]
    assert answers["stale"]["code"] == "40100" and "/timestamp" in answers["stale"]["msg"]
    # the walk's three pushes and the good one; nothing of the refused ones
    assert len(events) == 4, events


async def test_export_pages_are_verified_and_a_forged_page_is_asked_again(keys: Path) -> None:
    async with Simulator("national", security=platform_security(keys, signature="der")) as sim:
        async with aiohttp.ClientSession() as http:
            async with http.post(sim.url("/__sim/export"), json={
                    "generated": 25, "bad_signature_pages": [2]}) as r:
                assert r.status == 200
            creds = {"app_id": "BJ-GATEWAY-DEMO", "sm2_private_key": _read(keys, "gateway.key"),
                     "peer_public_key": _read(keys, "national.pub"),
                     "sm4_key": _read(keys, "sm4.key")}
            options = {"envelope": "national", "enc_type": "SM4", "sign_type": "SM2",
                       "sm2_signature": "der"}
            ep = ExportEndpoint(url=sim.url("/api/v1/cross-province/status/export"),
                                envelope=partner_envelope("national", options, creds),
                                credentials=creds, page_size=10)
            reader = ExportReader(http, ep, retry_wait=0.01)
            pages = [p async for p in reader.pages()]
    assert sum(len(p.records) for p in pages) == 25
    assert [p.attempts for p in pages] == [1, 2, 1] and reader.retried == 1


def test_the_demo_signs_the_national_envelope_with_keys_it_makes(tmp_path: Path) -> None:
    from gateway.simulators.national import sign_demo
    # the shipped config's national partner (write_config keeps its options and credentials)
    shipped = load_settings(write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/g.db",
                                         {"national": "http://127.0.0.1:8701/x"}))
    settings, platform, save = sign_demo(shipped, tmp_path / "keys")
    assert not (tmp_path / "keys").exists()
    save()
    assert (tmp_path / "keys" / "gateway.key").stat().st_mode & 0o777 == 0o600
    again, _, _ = sign_demo(shipped, tmp_path / "keys")  # a second run keeps the keys it made
    assert platform is not None
    p = settings.partners["national"]
    assert (p.options["enc_type"], p.options["sign_type"]) == ("SM4", "SM2")
    assert again.partners["national"].credentials == p.credentials
    gateway = partner_envelope("national", p.options, p.credentials)
    sealed = gateway({"projectNo": "11BJ1"}, {})
    assert open_message(sealed, platform)["data"] == {"projectNo": "11BJ1"}
    answer = seal({"code": "0", "msg": "成功"}, {"receiptNo": "QG1"}, platform)
    assert gateway.open(answer)["data"] == {"receiptNo": "QG1"}
    assert "sm2_private_key" not in shipped.partners["national"].credentials  # file unchanged


async def test_a_captured_signed_reply_cannot_answer_another_request(
        db_url: str, tmp_path: Path, keys: Path, samples: dict[str, Any]) -> None:
    case = samples["01-person-shanghai-social-security"]
    async with Simulator("national", security=platform_security(keys)) as sim:
        settings = signed_settings(tmp_path, db_url, sim.url(), keys)
        p = settings.partners["national"]
        gateway = partner_envelope("national", p.options, p.credentials)
        # a genuine answer, correctly signed by the platform, to another request (a refusal
        # here; whatever its code, it names no receipt for this request)
        async with aiohttp.ClientSession() as http:
            sealed = gateway({"projectNo": "11BJ1", "localProjectNo": "x"}, {})
            async with http.post(sim.url(), json=sealed,
                                 headers={"X-Idempotency-Key": "captured"}) as r:
                captured = await r.text()
        assert json.loads(captured)["nonce"] == sealed["nonce"]
        assert "signData" in json.loads(captured)
        sim.misbehave("raw", body=captured, status=200, content_type="application/json")
        async with Gateway(settings) as gw:
            status, doc = await gw.post_case(case)
            assert status == 202, doc
            final = await gw.wait_final(doc["id"])
    [d] = final["deliveries"]
    rows = await db_rows(db_url, "SELECT outcome, message FROM attempts ORDER BY attempt_no")
    assert rows[0].outcome == "retryable" and "reply not trusted: nonce" in rows[0].message
    assert d["state"] == "delivered" and d["receiptNo"] == sim.state.messages[-1].receipt_no
