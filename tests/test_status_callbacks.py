"""The gateway's status callback endpoints, called by independent clients (zeep pointed at the
WSDLs the gateway serves, raw XML and JSON written from the contracts), on both engines: a good
callback is applied to its delivery; a repeat is answered as success and changes nothing; wrong
credentials, a wrong digest, a stale Created and a replayed nonce are refused in the caller's
protocol with nothing stored; an unknown status code is kept flagged and answered as received;
malformed XML, a GBK inner document, an oversized body get a clean answer, never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any

import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from gateway.status import CaseStatus, Result
from gateway.store.statuses import Flag
from tests.status_callback_env import (
    SOAP11,
    callback_env,
    hebei_envelope,
    national_body,
    soap12_fault,
    tianjin_envelope,
    tianjin_package,
    tianjin_result,
    wsse_header,
)

SERVED = zeep.Settings(strict=True, forbid_external=False, forbid_dtd=True, forbid_entities=True)
TJ_BINDING = "{http://exchange.zwfw.tj.example/}StatusNotifySoapBinding"
HB_BINDING = "{http://zwfw.hebei.example/exchange/v1/notify/wsdl}StatusNotifySoap12Binding"


def zeep_result(text: str) -> etree._Element:
    return etree.fromstring(text.encode("gb18030"),
                            etree.XMLParser(encoding="gb18030", resolve_entities=False))


# -- Tianjin ---------------------------------------------------------------------------------------

async def test_tianjin_notify_status_through_zeep_on_the_served_wsdl(tmp_path: Path,
                                                                    db_url: str) -> None:
    async with callback_env(tmp_path, db_url) as env:
        part = env.parts["tianjin"]
        async with env.http.get(env.url("tianjin", "?wsdl")) as r:
            wsdl = etree.fromstring(await r.read())
        [addr] = wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address")
        assert addr.get("location") == env.url("tianjin")   # the gateway's own address

        def calls() -> list[str]:
            client = zeep.Client(env.url("tianjin", "?wsdl"), settings=SERVED)
            svc = client.bind("StatusNotifyService", "StatusNotifyPort")
            return [svc.notifyStatus(authCode="TJ-NOTIFY-AUTHCODE-0001",
                                     xmlData=tianjin_package(part, "30", tzbh="TZ-1")),
                    svc.notifyStatus(authCode="TJ-NOTIFY-AUTHCODE-0001",
                                     xmlData=tianjin_package(part, "30", tzbh="TZ-1")),
                    svc.notifyStatus(authCode="stolen",
                                     xmlData=tianjin_package(part, "90", tzbh="TZ-2")),
                    svc.notifyStatus(authCode="TJ-NOTIFY-AUTHCODE-0001",
                                     xmlData=tianjin_package(part, "3O", tzbh="TZ-3")),
                    svc.notifyStatus(authCode="TJ-NOTIFY-AUTHCODE-0001",
                                     xmlData=tianjin_package(part, "27", tzbh="TZ-4",
                                                             at="2026-12-01 10:00:00"))]

        ok, again, refused, invalid, unknown = [zeep_result(t) for t in
                                                await asyncio.to_thread(calls)]
        assert (ok.findtext("CODE"), again.findtext("CODE")) == ("0", "0")
        assert refused.findtext("CODE") == "-1"
        assert invalid.findtext("CODE") == "-2" and "BLZT" in invalid.findtext("MSG", "")
        assert "line" in invalid.findtext("MSG", "")
        assert unknown.findtext("CODE") == "0"          # kept, answered as received
        history = await env.history("tianjin")
        assert [(e.status, e.flag, e.partner_code) for e in history] == [
            (CaseStatus.ACCEPTED, None, "30"), (None, Flag.UNMAPPED, "27")]
        assert history[0].applied and history[0].event_key == "TZ-1"
        assert await env.events() == 2                   # the repeat, the refusals: nothing
        _, case = await env.gw.get(f"/api/v1/cases/{part.case_id}")
        assert case["deliveries"][0]["partnerStatus"] == "ACCEPTED"


async def test_tianjin_inner_document_in_gbk_and_utf8_rare_characters_kept(
        tmp_path: Path, db_url: str) -> None:
    """The inner document declared GBK (a character outside GBK as a reference) or UTF-8: read
    alike by the hardened parser; the department survives to the stored event."""
    async with callback_env(tmp_path, db_url) as env:
        part = env.parts["tianjin"]
        dept = "天津市滨海新区𠮷审批局"                      # 𠮷 is not in GBK
        for n, encoding in enumerate(("GBK", "UTF-8")):
            xml_data = tianjin_package(part, "30" if n == 0 else "90", tzbh=f"TZ-ENC-{n}",
                                       at=f"2026-12-0{n + 1} 09:00:00", BLBM=dept,
                                       encoding=encoding, **({"BJJG": "1"} if n else {}))
            assert ("&#134071;" in xml_data) == (encoding == "GBK")
            status, body = await env.post("tianjin", tianjin_envelope(xml_data))
            assert status == 200 and tianjin_result(body).findtext("CODE") == "0", body
        history = await env.history("tianjin")
        assert [(e.status, e.result) for e in history] == [
            (CaseStatus.ACCEPTED, None), (CaseStatus.FINISHED, Result.APPROVED)]
        assert {e.detail.get("department") for e in history} == {dept}


@pytest.mark.parametrize(("body", "words"), [
    (b"<soap:Envelope", "not well-formed"),
    (b"not xml at all", "not well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "DOCTYPE"),
])
async def test_tianjin_unreadable_requests_get_a_code_not_a_crash(
        tmp_path: Path, body: bytes, words: str) -> None:
    async with callback_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'g.db'}") as env:
        status, answer = await env.post("tianjin", body)
        assert status == 200
        result = tianjin_result(answer)
        assert result.findtext("CODE") == "-2" and words in result.findtext("MSG", ""), answer
        # a broken inner document: the line is named
        part = env.parts["tianjin"]
        broken = tianjin_package(part).replace("</BLZT>", "</BLZX>")
        status, answer = await env.post("tianjin", tianjin_envelope(broken))
        msg = tianjin_result(answer).findtext("MSG", "")
        assert status == 200 and "line" in msg and "BLZ" in msg, msg
        # the wrong SOAP version or operation is not this contract at all: a SOAP fault
        wrong = tianjin_envelope(tianjin_package(part)).replace(b"notifyStatus", b"queryStatus")
        status, answer = await env.post("tianjin", wrong)
        fault = etree.fromstring(answer).find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
        assert fault is not None and "notifyStatus" in (fault.findtext("faultstring") or "")
        assert await env.events() == 0


# -- Hebei -----------------------------------------------------------------------------------------

async def test_hebei_notify_status_through_zeep_under_ws_security(tmp_path: Path,
                                                                 db_url: str) -> None:
    async with callback_env(tmp_path, db_url) as env:
        part = env.parts["hebei"]
        header = {"messageId": "HB-EV-1", "senderCode": "HEBEI-EXCHANGE",
                  "sentAt": "2026-12-01T09:00:00+08:00"}
        status = {"receiptNo": part.receipt, "messageId": part.key, "caseNo": part.application_no,
                  "status": "COMPLETED", "statusTime": "2026-12-03T07:45:30Z",
                  "result": "REFUSED", "opinion": "不符合设立条件"}

        def service(password: str, created: datetime | None = None) -> Any:
            client = zeep.Client(env.url("hebei", "?wsdl"), settings=SERVED,
                                 wsse=UsernameToken("HEBEI-EXCHANGE", password, use_digest=True,
                                                    created=created))
            return client.bind("StatusNotifyService", "StatusNotifySoap12Port")

        def calls() -> tuple[Any, Fault, Fault]:
            ok = service("hebei-notify-secret").NotifyStatus(
                caseStatus=status, _soapheaders={"header": header})
            with pytest.raises(Fault) as wrong:
                service("guess").NotifyStatus(caseStatus=status, _soapheaders={"header": header})
            stale = datetime.now(UTC) - timedelta(seconds=400)
            with pytest.raises(Fault) as expired:
                service("hebei-notify-secret", stale).NotifyStatus(
                    caseStatus=status, _soapheaders={"header": {**header, "messageId": "X"}})
            return ok, wrong.value, expired.value

        ok, wrong, expired = await asyncio.to_thread(calls)
        assert ok.resultCode == "0000"
        assert wrong.code.endswith("Sender") and \
            any(str(s).endswith("FailedAuthentication") for s in wrong.subcodes or [])
        assert any(str(s).endswith("MessageExpired") for s in expired.subcodes or [])
        [event] = await env.history("hebei")
        assert (event.status, event.result, event.event_key, event.applied) == \
            (CaseStatus.FINISHED, Result.DENIED, "HB-EV-1", True)
        assert event.occurred_at is not None and \
            event.occurred_at.astimezone(UTC).hour == 7
        assert await env.events() == 1


async def test_hebei_refusals_are_soap12_faults_and_store_nothing(tmp_path: Path,
                                                                  db_url: str) -> None:
    async with callback_env(tmp_path, db_url) as env:
        part = env.parts["hebei"]
        cases = {
            "wrong password": (hebei_envelope(part, security=wsse_header(password="nope")),
                               "FailedAuthentication"),
            "unknown user": (hebei_envelope(part, security=wsse_header(username="X")),
                             "FailedAuthentication"),
            "stale Created": (hebei_envelope(part, security=wsse_header(
                created=time.time() - 301)), "MessageExpired"),
            "Created ahead": (hebei_envelope(part, security=wsse_header(
                created=time.time() + 400)), "MessageExpired"),
            "no Security": (hebei_envelope(part, security=etree.Element("{urn:x}Nothing")),
                            "InvalidSecurity"),
            "invalid body": (hebei_envelope(part, statusTime_bad="x"), "InvalidMessage"),
            "not XML": (b"<env:Envelope", "InvalidMessage"),
        }
        for what, (body, subcode) in cases.items():
            status, answer = await env.post("hebei", body)
            code, sub, reason = soap12_fault(answer)
            assert (status, code, sub) == (400, "Sender", subcode), (what, answer)
            assert reason, what
        # SOAP 1.1 to a SOAP 1.2 service
        status, answer = await env.post("hebei", hebei_envelope(part, version=SOAP11))
        assert status == 400 and b"VersionMismatch" in answer
        # a replayed nonce: the first send is taken, the second refused
        body = hebei_envelope(part, message_id="HB-REPLAY")
        assert (await env.post("hebei", body))[0] == 200
        status, answer = await env.post("hebei", body)
        assert (status, soap12_fault(answer)[1]) == (400, "InvalidSecurityToken")
        assert "replay" in soap12_fault(answer)[2]
        assert await env.events() == 1


async def test_hebei_unknown_code_is_kept_flagged_and_a_repeat_is_success(tmp_path: Path,
                                                                         db_url: str) -> None:
    async with callback_env(tmp_path, db_url) as env:
        part = env.parts["hebei"]
        for _ in range(2):  # a resend: same messageId, fresh token
            status, answer = await env.post("hebei", hebei_envelope(
                part, "ARCHIVED", message_id="HB-EV-9"))
            assert status == 200 and b"<hb:resultCode>0000" in answer, answer
        [event] = await env.history("hebei")
        assert (event.status, event.flag, event.partner_code, event.applied) == \
            (None, Flag.UNMAPPED, "ARCHIVED", False)
        _, case = await env.gw.get(f"/api/v1/cases/{part.case_id}")
        assert case["deliveries"][0]["partnerStatus"] != "ARCHIVED"


async def test_hebei_wsdl_and_its_schema_are_served_by_the_gateway(tmp_path: Path) -> None:
    async with callback_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'g.db'}") as env:
        async with env.http.get(env.url("hebei", "?wsdl")) as r:
            wsdl = etree.fromstring(await r.read())
        [imp] = wsdl.iter("{http://www.w3.org/2001/XMLSchema}import")
        assert imp.get("schemaLocation") == env.url("hebei", "?xsd=case.xsd")
        async with env.http.get(imp.get("schemaLocation")) as r:
            xsd = etree.fromstring(await r.read())
        assert xsd.find("{http://www.w3.org/2001/XMLSchema}element[@name='NotifyStatusRequest']") \
            is not None
        async with env.http.get(env.url("hebei", "?xsd=../../etc/passwd")) as r:
            assert r.status == 404


# -- national --------------------------------------------------------------------------------------

async def test_national_status_push_in_its_envelope(tmp_path: Path, db_url: str) -> None:
    async with callback_env(tmp_path, db_url) as env:
        part = env.parts["national"]

        async def push(body: bytes, key: str | None = None) -> dict[str, Any]:
            status, answer = await env.post("national", body,
                                            **({"X-Idempotency-Key": key} if key else {}))
            assert status == 200, answer
            doc: dict[str, Any] = json.loads(answer)
            return doc

        first = await push(national_body(part, "ACCEPTED"), "NAT-EV-1")
        assert (first["code"], first["data"]["duplicate"]) == ("0", False)
        again = await push(national_body(part, "ACCEPTED"), "NAT-EV-1")
        assert (again["code"], again["data"]["duplicate"]) == ("0", True)
        done = await push(national_body(part, "FINISHED", at="2026-12-02 09:00:00",
                                        resultCode="1", handleDeptName="上海市人社局"), "NAT-EV-2")
        assert done["code"] == "0"
        late = await push(national_body(part, "IN_REVIEW", at="2026-12-01 12:00:00"), "NAT-EV-3")
        assert (late["code"], late["data"]["flag"]) == ("0", "regression")
        odd = await push(national_body(part, "ARCHIVED_X", at="2026-12-03 09:00:00"), "NAT-EV-4")
        assert (odd["code"], odd["data"]["flag"]) == ("0", "unmapped")

        refused = {
            "appId": (national_body(part, app_id="SOMEONE-ELSE"), "40100"),
            "SM2": (national_body(part).replace(b'"signType": "NONE"', b'"signType": "SM2"'),
                    "40100"),
            "proStatus": (national_body(part, pro_status="x"), "40001"),
            "not JSON": (b"{'appId': 1}", "40001"),
            "array": (b"[]", "40001"),
            "NaN": (b'{"appId": NaN}', "40001"),
            "too large": (b" " * (env.max_body + 1), "40001"),
        }
        for what, (body, code) in refused.items():
            doc = await push(body)
            assert doc["code"] == code, (what, doc)
        missing = await push(national_body(part).replace(b'"statusTime"', b'"statusTimes"'))
        assert "/data/statusTime" in missing["msg"] and "statusTimes" in missing["msg"]

        history = await env.history("national")
        assert [(e.status, e.applied, e.flag) for e in history] == [
            (CaseStatus.ACCEPTED, True, None), (CaseStatus.FINISHED, True, None),
            (CaseStatus.IN_REVIEW, False, Flag.REGRESSION), (None, False, Flag.UNMAPPED)]
        assert history[1].result == Result.APPROVED
        assert history[1].detail.get("nationalCaseNo", "").startswith("11BJ")
        assert await env.events() == 4
