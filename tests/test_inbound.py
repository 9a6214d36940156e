"""Inbound cases (issue 15): Tianjin, Hebei and the national platform submit cases to Beijing
through the gateway, on both engines, with real sockets.

Tianjin is called by zeep pointed at the WSDL the gateway serves (``?wsdl``, the gateway's own
address) and by a raw-XML client (an envelope written by hand with lxml): a good case gets a
receipt (SLBH), a resend of the same SBLSH the same receipt, a wrong authCode ``-1``, an item
Tianjin may not submit ``-3``, a document that breaks package.xsd ``-2`` naming the field. The
national platform posts its envelope: good, resend, forbidden, invalid; signed (SM2/SM4) pushes
are taken and tampered ones refused. Hebei is called by zeep under a WS-Security UsernameToken
digest (good, resend, wrong password, forbidden item, invalid credit code) and by a raw SOAP 1.2
envelope that fails case.xsd. Each case reaches the city-platform simulator exactly once (its
``/__sim/state`` counts ``inboundCases``) through the outbox.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
import zeep
from lxml import etree

from gateway.config import load_settings
from gateway.protocols.envelopes import seal
from gateway.simulators.national import platform_security
from tests.harness import Gateway, Simulator, db_rows, wait_until, write_config
from tests.test_national_envelope import _read, keys  # noqa: F401 - the keys fixture

TJ = "http://exchange.zwfw.tj.example/"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
TJ_PATH, NATIONAL_PATH = "/soap/tianjin/cases", "/api/v1/partners/national/cases"
CITY_PATH = "/api/v1/inbound-cases"
AUTH_CODE = "TJ-NOTIFY-AUTHCODE-0001"  # the harness's GATEWAY_TIANJIN_INBOUND_AUTH_CODE
SERVED = zeep.Settings(strict=True, forbid_external=False, forbid_dtd=True, forbid_entities=True)


@dataclass
class Env:
    gw: Gateway
    city: Simulator
    http: aiohttp.ClientSession
    db_url: str

    def url(self, path: str, query: str = "") -> str:
        return str(self.gw.server.make_url(path)) + query

    async def city_cases(self) -> dict[str, int]:
        async with self.http.get(self.city.url("/__sim/state")) as r:
            got: dict[str, int] = (await r.json())["inboundCases"]
            return got


def _config(tmp_path: Path, db_url: str, city_url: str, edit: Any = None,
            env: dict[str, str] | None = None) -> Any:
    path = write_config(tmp_path, db_url, {"city-inbound": city_url, "tianjin": city_url,
                                           "national": city_url, "hebei": city_url})
    if edit is not None:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        edit(raw)
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_settings(path, env={**os.environ, **(env or {})})


@asynccontextmanager
async def inbound_env(tmp_path: Path, db_url: str, edit: Any = None,
                      env: dict[str, str] | None = None) -> AsyncIterator[Env]:
    async with Simulator("city") as city:
        settings = _config(tmp_path, db_url, city.url(CITY_PATH), edit, env)
        async with Gateway(settings) as gw, aiohttp.ClientSession() as http:
            yield Env(gw, city, http, db_url)


# -- Tianjin's documents, written by hand from the contract ----------------------------------------

def tianjin_package(sblsh: str = "TJ2026120100000001", *, basic_code: str = "000134023000",
                    region: str = "110105000000", cert_no: str = "120116198506112342",
                    sjbbh: str = "TJ-SJ-0001", **extra: str) -> str:
    """A submitCase PACKAGE (package.xsd) as Tianjin writes it, declared GBK, carried as text."""
    pkg = etree.Element("PACKAGE")
    head = etree.SubElement(pkg, "PACKAGEHEAD")
    for tag, value in (("SJBBH", sjbbh), ("XZBH", "BJTJ-XZ-2024-001"), ("FSFBM", "120000000000"),
                       ("JSFBM", "110000000000"), ("FSSJ", "20261201090000"), ("JLS", "1")):
        etree.SubElement(head, tag).text = value
    rec = etree.SubElement(etree.SubElement(pkg, "DATA"), "RECORD")
    fields = {"SBLSH": sblsh, "SXXH": "1", "SXBM": "11120116MB1A23456X" + basic_code + "001",
              "SXJBBM": basic_code, "SXMC": "养老保险关系转移接续申请", "SQRLX": "1",
              "SQRMC": "测试甲", "SQRZJLX": "10", "SQRZJHM": cert_no, "LXDH": "13800000001",
              "SBSJ": "2026-12-01 09:15:00", "SBQD": "WEB", "SLDQDM": "120116000000",
              "KYMS": "1", "XZQHDM": region, "BLBM": "北京市朝阳区社会保险事业管理中心", **extra}
    for tag, value in fields.items():
        etree.SubElement(rec, tag).text = value
    cl = etree.SubElement(etree.SubElement(rec, "CLXX"), "CL")
    etree.SubElement(cl, "CLBM").text = "M001"
    etree.SubElement(cl, "CLMC").text = "居民身份证"
    return etree.tostring(pkg, encoding="GBK", xml_declaration=True).decode("gb18030")


def tianjin_envelope(xml_data: str, auth_code: str = AUTH_CODE) -> bytes:
    env = etree.Element(etree.QName(SOAP11, "Envelope"), nsmap={"soap": SOAP11})
    call = etree.SubElement(etree.SubElement(env, etree.QName(SOAP11, "Body")),
                            etree.QName(TJ, "submitCase"), nsmap={"tns": TJ})
    etree.SubElement(call, "authCode").text = auth_code
    etree.SubElement(call, "xmlData").text = xml_data
    return etree.tostring(env, encoding="utf-8", xml_declaration=True)


def result_of(text: str) -> etree._Element:
    """The RESULT document carried in ``return`` (declared GBK)."""
    return etree.fromstring(text.encode("gb18030"),
                            etree.XMLParser(encoding="gb18030", resolve_entities=False))


async def raw_submit(env: Env, body: bytes) -> tuple[int, etree._Element | None]:
    async with env.http.post(env.url(TJ_PATH), data=body,
                             headers={"Content-Type": "text/xml; charset=utf-8"}) as r:
        status, data = r.status, await r.read()
    root = etree.fromstring(data)
    ret = root.find(f".//{{{TJ}}}submitCaseResponse/return")
    return status, (result_of(ret.text or "") if ret is not None else None)


# -- Tianjin ---------------------------------------------------------------------------------------

async def test_tianjin_submit_case_through_zeep_on_the_served_wsdl(tmp_path: Path,
                                                                  db_url: str) -> None:
    async with inbound_env(tmp_path, db_url) as env:
        async with env.http.get(env.url(TJ_PATH, "?wsdl")) as r:
            wsdl = etree.fromstring(await r.read())
        [addr] = wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address")
        assert addr.get("location") == env.url(TJ_PATH)   # the gateway's own address

        def calls() -> list[str]:
            client = zeep.Client(env.url(TJ_PATH, "?wsdl"), settings=SERVED)
            svc = client.bind("InboundService", "InboundServicePort")
            return [svc.submitCase(authCode=AUTH_CODE, xmlData=tianjin_package()),
                    svc.submitCase(authCode=AUTH_CODE, xmlData=tianjin_package()),
                    svc.submitCase(authCode="stolen", xmlData=tianjin_package("TJ2026120100X00001")),
                    svc.submitCase(authCode=AUTH_CODE,
                                   xmlData=tianjin_package("TJ2026120100X00002", basic_code="000999999000")),
                    svc.submitCase(authCode=AUTH_CODE,
                                   xmlData=tianjin_package("TJ2026120100X00003", region="310115000000")),
                    svc.submitCase(authCode=AUTH_CODE,
                                   xmlData=tianjin_package("TJ2026120100X00004", SQRLX="7")),
                    svc.submitCase(authCode=AUTH_CODE,
                                   xmlData=tianjin_package("TJ2026120100X00005",
                                                           cert_no="120116198506112341"))]

        ok, again, refused, item, region, invalid, bad_id = [
            result_of(t) for t in await asyncio.to_thread(calls)]
        assert ok.findtext("CODE") == "0", etree.tostring(ok, encoding="unicode")
        receipt = ok.findtext("SLBH") or ""
        assert receipt.startswith("BJSL") and len(receipt) == 32
        assert ok.findtext("SJBBH") == "TJ-SJ-0001"
        assert (again.findtext("CODE"), again.findtext("SLBH")) == ("0", receipt)
        assert refused.findtext("CODE") == "-1" and refused.findtext("SLBH") is None
        assert item.findtext("CODE") == "-3", item.findtext("MSG")
        assert "/items/0/implementationCode" in \
            item.findtext("MSG", "")
        assert region.findtext("CODE") == "-3" and "handlingRegion" in region.findtext("MSG", "")
        # package.xsd refuses SQRLX 7: the line and the field are named
        assert invalid.findtext("CODE") == "-2" and "SQRLX" in invalid.findtext("MSG", "")
        assert "line" in invalid.findtext("MSG", "")
        # valid by the partner's schema, not as a Beijing case: the field is named
        assert bad_id.findtext("CODE") == "-2" and "/applicant/certNo" in bad_id.findtext("MSG", "")

        rows = await db_rows(db_url, "SELECT partner, partner_case_no, receipt_no "
                                     "FROM inbound_cases")
        assert [tuple(r) for r in rows] == [("tianjin", "TJ2026120100000001", receipt)]
        # the case reaches the city platform once, in the unified format, keyed by the receipt
        await wait_until(lambda: _delivered(env), 10, "the inbound case delivered")
        assert (await env.city_cases())["unique"] == 1
        [msg] = [m for m in env.city.state.messages if m.idempotency_key.startswith("case:")]
        assert msg.idempotency_key == f"case:{receipt}"


async def _delivered(env: Env) -> bool:
    rows = await db_rows(env.db_url, "SELECT state FROM deliveries WHERE kind = 'inbound_case'")
    return bool(rows) and all(r[0] == "delivered" for r in rows)


async def test_tianjin_raw_xml_client_and_protocol_mistakes(tmp_path: Path, db_url: str) -> None:
    async with inbound_env(tmp_path, db_url) as env:
        status, ok = await raw_submit(env, tianjin_envelope(tianjin_package("TJ2026120100RAW001")))
        assert status == 200 and ok is not None and ok.findtext("CODE") == "0"
        status, again = await raw_submit(env, tianjin_envelope(tianjin_package("TJ2026120100RAW001")))
        assert again is not None and again.findtext("SLBH") == ok.findtext("SLBH")
        _, unreadable = await raw_submit(env, tianjin_envelope("<PACKAGE><DATA>"))
        assert unreadable is not None and unreadable.findtext("CODE") == "-2"
        # another operation is not this contract's conversation: a SOAP fault, never a 5xx
        body = tianjin_envelope(tianjin_package()).replace(b"submitCase", b"queryStatus")
        async with env.http.post(env.url(TJ_PATH), data=body,
                                 headers={"Content-Type": "text/xml; charset=utf-8"}) as r:
            assert r.status == 400 and b"Fault" in await r.read()
        async with env.http.get(env.url(TJ_PATH)) as r:
            assert r.status == 404   # only ?wsdl is served
        await wait_until(lambda: _delivered(env), 10, "the inbound case delivered")
        assert (await env.city_cases())["unique"] == 1


async def test_a_partner_without_a_submit_list_submits_nothing(tmp_path: Path,
                                                              db_url: str) -> None:
    def deny(raw: dict[str, Any]) -> None:
        del raw["partners"]["tianjin"]["inbound"]["submit"]

    async with inbound_env(tmp_path, db_url, deny) as env:
        _, answer = await raw_submit(env, tianjin_envelope(tianjin_package()))
        assert answer is not None and answer.findtext("CODE") == "-3"
        assert await db_rows(db_url, "SELECT count(*) FROM inbound_cases") == [(0,)]


# -- national --------------------------------------------------------------------------------------

def national_data(project_no: str = "12TJ2026120100000001", **data: Any) -> dict[str, Any]:
    return {"projectNo": project_no, "localProjectNo": "TJ2026120100000001",
            "taskCode": "11120116MB1A23456X000134023000001", "basicCode": "000134023000",
            "taskName": "养老保险关系转移接续申请", "areaCode": "110105000000",
            "receiveAreaCode": "120116000000", "crossType": "1", "userProp": 1,
            "userName": "测试甲", "userPageType": "111", "certKey": "120116198506112342",
            "mobile": "13800000001", "proStatus": "SUBMITTED", "applyDate": "2026-12-01 09:15:00",
            "applyFrom": "1", **data}


def national_envelope(data: dict[str, Any], app_id: str = "NATIONAL-PLATFORM") -> dict[str, Any]:
    return {"appId": app_id, "version": "1.0", "timestamp": int(time.time() * 1000),
            "nonce": os.urandom(8).hex(), "encType": "NONE", "signType": "NONE", "data": data}


async def post_national(env: Env, doc: dict[str, Any]) -> dict[str, Any]:
    async with env.http.post(env.url(NATIONAL_PATH), data=json.dumps(doc, ensure_ascii=False),
                             headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200, await r.text()
        answer: dict[str, Any] = await r.json()
        return answer


async def test_national_rest_inbound(tmp_path: Path, db_url: str) -> None:
    async with inbound_env(tmp_path, db_url) as env:
        good = await post_national(env, national_envelope(national_data()))
        again = await post_national(env, national_envelope(national_data()))
        wrong_app = await post_national(env, national_envelope(national_data("12TJ2026120100000099"), "WHO"))
        forbidden = await post_national(env, national_envelope(
            national_data("12TJ2026120100000002", basicCode="000999999000",
                          taskCode="11120116MB1A23456X000999999000001")))
        invalid = await post_national(env, national_envelope(
            national_data("12TJ2026120100000003", userPageType="999")))
        missing = national_data("12TJ2026120100000004")
        del missing["certKey"]
        absent = await post_national(env, national_envelope(missing))
        assert good["code"] == "0" and good["data"]["duplicate"] is False, good
        assert again["code"] == "0" and again["data"] == {**good["data"], "duplicate": True}
        assert wrong_app["code"] == "40100"
        assert forbidden["code"] == "40300" and "implementationCode" in forbidden["msg"]
        assert invalid["code"] == "40001" and "/data/userPageType" in invalid["msg"], invalid
        assert absent["code"] == "40001" and "certKey" in absent["msg"], absent
        await wait_until(lambda: _delivered(env), 10, "the inbound case delivered")
        assert (await env.city_cases())["unique"] == 1
        rows = await db_rows(db_url, "SELECT count(*) FROM audit_log WHERE kind = 'inbound'")
        assert rows == [(1,)]


async def test_signed_national_inbound_cases(tmp_path: Path, db_url: str,
                                             keys: Path) -> None:  # noqa: F811
    platform = platform_security(keys)

    def signed(raw: dict[str, Any]) -> None:
        p = raw["partners"]["national"]
        p["options"].update({"enc_type": "SM4", "sign_type": "SM2", "sm2_signature": "raw",
                             "sm2_cipher_order": "C1C3C2"})
        p["credentials"] = {"app_id": "BJ-GATEWAY-DEMO", "sm2_private_key": "${H6_GW_KEY}",
                            "peer_public_key": "${H6_PEER_PUB}", "sm4_key": "${H6_SM4}"}

    secrets = {"H6_GW_KEY": _read(keys, "gateway.key"), "H6_PEER_PUB": _read(keys, "national.pub"),
               "H6_SM4": _read(keys, "sm4.key")}
    async with inbound_env(tmp_path, db_url, signed, secrets) as env:
        def sealed(data: dict[str, Any]) -> dict[str, Any]:
            doc = {"appId": "NATIONAL-PLATFORM", "version": "1.0",
                   "timestamp": int(time.time() * 1000), "nonce": os.urandom(8).hex(),
                   "encType": "SM4", "signType": "SM2"}
            return seal(doc, data, platform)

        good = sealed(national_data())
        tampered = {**sealed(national_data("12TJ2026120100000009")),
                    "signData": base64.b64encode(bytes(64)).decode()}
        answers = [await post_national(env, d) for d in (good, tampered, good)]
        assert answers[0]["code"] == "0", answers
        assert answers[1]["code"] == "40100" and "signData" in answers[1]["msg"]
        assert answers[2]["code"] == "40100"   # the same signed message again: a replay
        assert await db_rows(db_url, "SELECT count(*) FROM inbound_cases") == [(1,)]


# -- Hebei (SOAP 1.2, typed, WS-Security) ----------------------------------------------------------

HB_PATH = "/soap/hebei/cases"
HB_PASSWORD = "hebei-notify-secret"   # the harness's GATEWAY_HEBEI_INBOUND_PASSWORD


def hebei_case(case_no: str = "HB2026120100000001", *, basic_code: str = "000105004000",
               cert_no: str = "91130100MA0CXXXX4A", **applicant: str) -> dict[str, Any]:
    """SubmitCaseRequest/case as zeep takes it (case.xsd): a company's filing handled in
    Beijing's Haidian."""
    return {"caseNo": case_no, "submitTime": "2026-12-01T09:15:00+08:00", "channel": "WEB",
            "receivingRegion": "130100000000", "crossRegionMode": "PROXY_RECEIVE",
            "applicant": {"applicantType": "2", "name": "河北示例科技有限公司", "certType": "001",
                          "certNo": cert_no, **applicant},
            "items": {"item": [{"itemNo": "1", "basicCode": basic_code,
                                "implementationCode": f"11130100MB4G56789B{basic_code}001",
                                "itemName": "分支机构设立登记",
                                "handlingRegion": "110108000000"}]}}


async def test_hebei_submit_case_through_zeep_under_ws_security(tmp_path: Path,
                                                                db_url: str) -> None:
    from zeep.exceptions import Fault
    from zeep.wsse.username import UsernameToken

    from gateway.domain.checkdigits import uscc_check_char
    body = "91130100MA0CXXXX4"   # a valid credit code for the sample, and one with a wrong check
    cert_no = body + uscc_check_char(body)
    wrong_no = body + ("0" if not cert_no.endswith("0") else "1")
    async with inbound_env(tmp_path, db_url) as env:
        header = {"messageId": "HB-IN-1", "senderCode": "HEBEI-EXCHANGE",
                  "sentAt": "2026-12-01T09:00:00+08:00"}

        def service(password: str) -> Any:
            client = zeep.Client(env.url(HB_PATH, "?wsdl"), settings=SERVED,
                                 wsse=UsernameToken("HEBEI-EXCHANGE", password, use_digest=True))
            return client.bind("InboundService", "InboundSoap12Port")

        def calls() -> tuple[Any, Any, list[Fault]]:
            ok = service(HB_PASSWORD).SubmitCase(case=hebei_case(cert_no=cert_no),
                                                 _soapheaders={"header": header})
            again = service(HB_PASSWORD).SubmitCase(case=hebei_case(cert_no=cert_no),
                                                    _soapheaders={"header": header})
            faults = []
            for password, case in (("guess", hebei_case("HB2026120100000002", cert_no=cert_no)),
                                   (HB_PASSWORD, hebei_case("HB2026120100000003",
                                                            basic_code="000999999000",
                                                            cert_no=cert_no)),
                                   (HB_PASSWORD, hebei_case("HB2026120100000004",
                                                            cert_no=wrong_no))):
                try:
                    service(password).SubmitCase(case=case, _soapheaders={"header": header})
                except Fault as f:
                    faults.append(f)
            return ok, again, faults

        ok, again, (wrong, forbidden, invalid) = await asyncio.to_thread(calls)
        assert ok.resultCode == "0000" and ok.receiptNo.startswith("BJSL")
        assert (again.resultCode, again.receiptNo) == ("0000", ok.receiptNo)
        assert any(str(s).endswith("FailedAuthentication") for s in wrong.subcodes or [])
        assert any(str(s).endswith("NotPermitted") for s in forbidden.subcodes or [])
        assert "implementationCode" in str(forbidden.message)
        assert any(str(s).endswith("InvalidMessage") for s in invalid.subcodes or [])
        assert "/applicant/certNo" in str(invalid.message), invalid.message
        await wait_until(lambda: _delivered(env), 10, "the inbound case delivered")
        assert (await env.city_cases())["unique"] == 1
        # the served WSDL names the gateway and its schema beside it
        async with env.http.get(env.url(HB_PATH, "?wsdl")) as r:
            wsdl = etree.fromstring(await r.read())
        [addr] = wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}address")
        assert addr.get("location") == env.url(HB_PATH)


async def test_hebei_raw_envelope_failing_case_xsd_is_a_fault_naming_the_line(
        tmp_path: Path, db_url: str) -> None:
    from tests.status_callback_env import HB, SOAP12, soap12_fault, wsse_header

    def envelope(security: etree._Element, **case: str) -> bytes:
        env = etree.Element(etree.QName(SOAP12, "Envelope"), nsmap={"env": SOAP12})
        etree.SubElement(env, etree.QName(SOAP12, "Header")).append(security)
        req = etree.SubElement(etree.SubElement(env, etree.QName(SOAP12, "Body")),
                               etree.QName(HB, "SubmitCaseRequest"), nsmap={"hb": HB})
        c = etree.SubElement(req, etree.QName(HB, "case"))
        for name, value in case.items():
            etree.SubElement(c, etree.QName(HB, name)).text = value
        return etree.tostring(env, encoding="utf-8", xml_declaration=True)

    async with inbound_env(tmp_path, db_url) as env:
        async def post(body: bytes) -> tuple[int, bytes]:
            async with env.http.post(env.url(HB_PATH), data=body, headers={
                    "Content-Type": "application/soap+xml; charset=utf-8"}) as r:
                return r.status, await r.read()

        status, answer = await post(envelope(wsse_header(), caseNo="HB-1", channel="WEB"))
        code, sub, reason = soap12_fault(answer)
        assert (status, code, sub) == (400, "Sender", "InvalidMessage")
        assert "line" in reason and "submitTime" in reason, reason
        status, answer = await post(envelope(wsse_header(password="nope"), caseNo="HB-1"))
        assert soap12_fault(answer)[1] == "FailedAuthentication"
        assert await db_rows(db_url, "SELECT count(*) FROM inbound_cases") == [(0,)]
