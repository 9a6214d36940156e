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

import logging

from aiohttp import web
from lxml import etree

from gateway.config import InboundSettings
from gateway.errors import StoreError
from gateway.inbound.service import INBOUND, Forbidden, Invalid
from gateway.protocols import soap
from gateway.protocols.soap_xml_string import encode_inner
from gateway.statuses.documents import ServedWsdl
from gateway.statuses.tianjin import TianjinGate

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
        self.wsdl = wsdl
        self.gate = TianjinGate(inbound, schema, max_body)  # as the status callback checks

    async def documents(self, request: web.Request) -> web.Response:
        return self.wsdl.answer(request)

    async def handle(self, request: web.Request) -> web.Response:
        opened = await self.gate.open(request, "submitCase", "InboundService.wsdl",
                                      "inbound case", result)
        if isinstance(opened, web.Response):
            return opened
        body, pkg = opened.raw, opened.package
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
