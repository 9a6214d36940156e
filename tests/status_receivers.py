"""A small receiver of partners' status callbacks, written from the contracts alone (WSDLs, XSDs,
JSON Schemas), for the tests of the simulators' callbacks and of zeep calling the callback
WSDLs. It checks what the gateway's endpoints will check: Tianjin's authCode and inner document
(status-notify.xsd), Hebei's WS-Security digest and body (case.xsd), the national envelope,
appId and push (status-callback.schema.json); and answers in each contract.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator
from lxml import etree

from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.soap_xml_string import encode_inner
from gateway.protocols.wsse import SECURITY, UsernameTokenVerifier, WsseError

ROOT = Path(__file__).resolve().parent.parent
TJ = "http://exchange.zwfw.tj.example/"
HB = "http://zwfw.hebei.example/exchange/v1"
TIANJIN_AUTH = "TJ-NOTIFY-AUTHCODE-0001"
HEBEI_USERS = {"HEBEI-EXCHANGE": "hebei-notify-secret"}
NATIONAL_APP_IDS = {"NATIONAL-PLATFORM"}

RECEIVED = web.AppKey("received", list)


def _schema(path: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((ROOT / path).read_text(encoding="utf-8")))


def receiver() -> web.Application:
    app = web.Application()
    app[RECEIVED] = []
    notify_xsd = safexml.load_schema(ROOT / "schemas/tianjin/status-notify.xsd")
    case_xsd = safexml.load_schema(ROOT / "schemas/hebei/case.xsd")
    verifier = UsernameTokenVerifier(HEBEI_USERS)
    envelope_v = _schema("schemas/national/envelope.schema.json")
    push_v = _schema("schemas/national/status-callback.schema.json")

    def tianjin_answer(code: int, msg: str) -> web.Response:
        r = etree.Element("RESULT")
        etree.SubElement(r, "CODE").text = str(code)
        etree.SubElement(r, "MSG").text = msg
        wrapper = etree.Element(etree.QName(TJ, "notifyStatusResponse"), nsmap={"ns2": TJ})
        etree.SubElement(wrapper, "return").text = encode_inner(r, "GBK", reject_rare=False)
        return web.Response(body=soap.build_envelope(soap.SOAP11, wrapper),
                            content_type="text/xml", charset="utf-8")

    async def tianjin(request: web.Request) -> web.Response:
        env = soap.parse_envelope(await request.read())
        assert env.version is soap.SOAP11
        call = env.body[0]
        assert call.tag == f"{{{TJ}}}notifyStatus", call.tag
        record: dict[str, Any] = {"partner": "tianjin", "headers": dict(request.headers)}
        app[RECEIVED].append(record)
        if call.findtext("authCode") != TIANJIN_AUTH:
            record["refused"] = "authCode"
            return tianjin_answer(-1, "授权码无效")
        text = call.findtext("xmlData") or ""
        record["declaration"] = text[:text.find("?>") + 2]
        pkg = safexml.parse_text(text)
        errors = safexml.schema_errors(notify_xsd, pkg)
        if errors:
            record["refused"] = errors
            return tianjin_answer(-2, "数据校验失败: " + "; ".join(errors))
        record["document"] = pkg
        record["id"] = pkg.findtext("PACKAGEHEAD/TZBH")
        return tianjin_answer(0, "接收成功")

    def hebei_fault(code: str, reason: str, subcode: etree.QName) -> web.Response:
        return web.Response(status=400 if code == "Sender" else 500,
                            body=soap.build_fault(soap.SOAP12, code, reason, subcode=subcode),
                            content_type="application/soap+xml", charset="utf-8")

    async def hebei(request: web.Request) -> web.Response:
        env = soap.parse_envelope(await request.read())
        assert env.version is soap.SOAP12
        record: dict[str, Any] = {"partner": "hebei", "headers": dict(request.headers)}
        app[RECEIVED].append(record)
        try:
            record["user"] = await verifier.verify(env.header(SECURITY))
        except WsseError as e:
            record["refused"] = e.code
            ns, _, local = e.code.partition(":")
            return hebei_fault("Sender", e.message, etree.QName(
                {"wsse": SECURITY.namespace}.get(ns, HB), local))
        call = env.body[0]
        errors = safexml.schema_errors(case_xsd, call)
        if call.tag != f"{{{HB}}}NotifyStatusRequest" or errors:
            record["refused"] = errors or call.tag
            return hebei_fault("Sender", "invalid", etree.QName(HB, "InvalidMessage"))
        hdr = env.header(f"{{{HB}}}MessageHeader")
        record["id"] = hdr.findtext(f"{{{HB}}}messageId") if hdr is not None else None
        record["document"] = call
        r = etree.Element(etree.QName(HB, "NotifyStatusResponse"), nsmap={"hb": HB})
        etree.SubElement(r, etree.QName(HB, "resultCode")).text = "0000"
        etree.SubElement(r, etree.QName(HB, "resultMessage")).text = "接收成功"
        return web.Response(body=soap.build_envelope(soap.SOAP12, r),
                            content_type="application/soap+xml", charset="utf-8")

    async def national(request: web.Request) -> web.Response:
        doc = json.loads(await request.read())
        record: dict[str, Any] = {"partner": "national", "headers": dict(request.headers)}
        app[RECEIVED].append(record)
        problems = [e.message for e in envelope_v.iter_errors(doc)]
        if doc.get("appId") not in NATIONAL_APP_IDS:
            record["refused"] = "appId"
            return web.json_response({"code": "40100", "msg": "未授权的appId"})
        problems += [e.message for e in push_v.iter_errors(doc.get("data"))]
        if problems:
            record["refused"] = problems
            return web.json_response({"code": "40001", "msg": "; ".join(problems)})
        record["document"] = doc["data"]
        record["id"] = request.headers.get("X-Idempotency-Key")
        return web.json_response({"code": "0", "msg": "成功"})

    app.router.add_post("/tianjin", tianjin)
    app.router.add_post("/hebei", hebei)
    app.router.add_post("/national", national)
    return app
