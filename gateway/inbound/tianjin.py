"""``/soap/tianjin/cases``: Tianjin submits a case to Beijing (``schemas/tianjin/
InboundService.wsdl``, served at ``?wsdl`` with the gateway's own address): SOAP 1.1
``submitCase(authCode, xmlData)``, the inner document ``PACKAGE`` (package.xsd, the same document
Beijing sends Tianjin) carried as a string, declared GBK or UTF-8.

Answers in Tianjin's terms, the escaped ``RESULT`` (result.xsd) in ``<return>``: ``CODE 0`` with
``SLBH``, Beijing's receipt (a resend of the same ``SBLSH`` gets the first one); ``-1`` wrong
authCode (or, with ``inbound.scheme: hmac-sha256``, the request's HMAC headers); ``-2`` the
inner document is not readable or not valid (MSG names the line and the field), or cannot become
a Beijing case (MSG names the field); ``-3`` an item or region Tianjin may not submit
(``partners.tianjin.inbound.submit``); ``-9`` busy (send again). A readable request that is not
submitCase over SOAP 1.1 is a SOAP fault (HTTP 400). The inner document is parsed only by the
hardened parser (:func:`gateway.protocols.xml.parse_text`).
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from lxml import etree

from gateway.api.auth import NONCES
from gateway.config import InboundSettings
from gateway.errors import StoreError
from gateway.inbound.service import INBOUND, Forbidden, Invalid
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.hmac_auth import HmacError
from gateway.protocols.soap_xml_string import encode_inner
from gateway.statuses.body import TooLarge, read_body
from gateway.statuses.documents import ServedWsdl
from gateway.statuses.inbound_auth import HmacInbound, scheme_of
from gateway.statuses.tianjin import fault

log = logging.getLogger("gateway.inbound")
PATH = "/soap/tianjin/cases"
PARTNER = "tianjin"
TNS = "http://exchange.zwfw.tj.example/"
OK, AUTH, INVALID, FORBIDDEN, BUSY = 0, -1, -2, -3, -9


def result(code: int, msg: str, *, slbh: str | None = None, sjbbh: str | None = None
           ) -> web.Response:
    """The ``submitCaseResponse``: RESULT (CODE, MSG, SJBBH, SLBH) as GBK-declared text."""
    r = etree.Element("RESULT")
    etree.SubElement(r, "CODE").text = str(code)
    etree.SubElement(r, "MSG").text = msg[:1000]
    if sjbbh:
        etree.SubElement(r, "SJBBH").text = sjbbh[:64]
    if slbh:
        etree.SubElement(r, "SLBH").text = slbh
    wrapper = etree.Element(etree.QName(TNS, "submitCaseResponse"), nsmap={"ns2": TNS})
    etree.SubElement(wrapper, "return").text = encode_inner(r, "GBK", reject_rare=False)
    return web.Response(body=soap.build_envelope(soap.SOAP11, wrapper),
                        content_type="text/xml", charset="utf-8")


class TianjinCasesEndpoint:
    def __init__(self, inbound: InboundSettings | None, wsdl: ServedWsdl,
                 schema: etree.XMLSchema, max_body: int) -> None:
        self.inbound = inbound
        self.scheme = scheme_of(PARTNER, inbound, ("auth-code",))
        self.http_auth = HmacInbound.of(PARTNER, inbound) \
            if self.scheme == "hmac-sha256" and inbound is not None else None
        self.wsdl = wsdl
        self.schema = schema
        self.max_body = max_body

    async def documents(self, request: web.Request) -> web.Response:
        return self.wsdl.answer(request)

    def _auth_code_ok(self, given: str) -> bool:
        inbound = self.inbound
        return inbound is not None and inbound.auth_code is not None and \
            hmac.compare_digest(given.encode(), inbound.auth_code.encode())

    async def handle(self, request: web.Request) -> web.Response:
        try:
            body = await read_body(request, self.max_body)
        except TooLarge as e:
            return result(INVALID, f"数据校验失败: {e}")
        if self.http_auth is not None:
            try:
                await self.http_auth.verify(request, body, request.app[NONCES])
            except HmacError as e:
                return result(AUTH, f"授权码无效 ({e.message})")
            except StoreError as e:
                log.error("tianjin inbound case: nonce not checked: %s", e)
                return result(BUSY, "系统繁忙 (the gateway could not check the request)")
        try:
            env = soap.parse_envelope(body, max_bytes=self.max_body)
        except safexml.XmlError as e:
            return result(INVALID, f"数据校验失败: unreadable request: {e.reason}")
        if env.version is not soap.SOAP11:
            return fault("submitCase is SOAP 1.1 (InboundService.wsdl)", "VersionMismatch")
        call = env.body[0] if env.body else None
        if call is None or call.tag != f"{{{TNS}}}submitCase":
            return fault(f"unknown operation {str(call.tag) if call is not None else '(empty Body)'}"
                         "; this service has submitCase")
        if self.scheme == "auth-code" and not self._auth_code_ok(call.findtext("authCode") or ""):
            return result(AUTH, "授权码无效 (authCode refused)")
        text = call.findtext("xmlData")
        if not text:
            return result(INVALID, "数据校验失败: xmlData is empty")
        try:
            pkg = safexml.parse_text(text, max_bytes=self.max_body)
        except safexml.XmlError as e:
            return result(INVALID, f"数据校验失败: xmlData {e.reason}")
        if errors := safexml.schema_errors(self.schema, pkg):
            return result(INVALID, "数据校验失败: xmlData " + "; ".join(errors))
        sjbbh = (pkg.findtext("PACKAGEHEAD/SJBBH") or "").strip() or None
        sblsh = (pkg.findtext("DATA/RECORD/SBLSH") or "").strip()
        others = {(r.text or "").strip() for r in pkg.iterfind("DATA/RECORD/SBLSH")} - {sblsh}
        if not sblsh or others:
            return result(INVALID, "数据校验失败: xmlData /PACKAGE/DATA/RECORD/SBLSH: one "
                                   "application per PACKAGE (every RECORD's SBLSH the same)",
                          sjbbh=sjbbh)
        try:
            receipt = await request.app[INBOUND].submit(PARTNER, sblsh, pkg, request=body,
                                                        caller=f"partner:{PARTNER}")
        except Invalid as e:
            return result(INVALID, f"数据校验失败: {e.text()}", sjbbh=sjbbh)
        except Forbidden as e:
            return result(FORBIDDEN, f"无权提交: {e}", sjbbh=sjbbh)
        except StoreError as e:
            log.error("tianjin inbound case not stored: %s", e)
            return result(BUSY, "系统繁忙 (the gateway could not store the case)", sjbbh=sjbbh)
        return result(OK, "接收成功" + ("(重复提交, 原受理编号)" if receipt.duplicate else ""),
                      slbh=receipt.receipt_no, sjbbh=sjbbh)


__all__ = ["PATH", "TianjinCasesEndpoint", "result"]
