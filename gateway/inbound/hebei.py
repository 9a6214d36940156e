"""``/soap/hebei/cases``: Hebei submits a case to Beijing (``schemas/hebei/InboundService.wsdl``,
served at ``?wsdl`` with ``case.xsd`` at ``?xsd=case.xsd``): SOAP 1.2 ``SubmitCase``, the typed
``hb:SubmitCaseRequest/case`` (case.xsd, the same case Beijing sends Hebei), under a WS-Security
UsernameToken digest (or ``inbound.scheme: hmac-sha256``), as Hebei's status callback is
checked (:mod:`gateway.statuses.hebei`: the same verifier, the shared nonce store).

Answers: ``SubmitCaseResponse`` ``resultCode 0000`` with ``receiptNo`` (Beijing's receipt; a
resend of the same ``caseNo`` gets the first one). Refusals are SOAP 1.2 faults, as the WSDL
says: a bad token ``env:Sender`` with the WS-Security subcode; a body that fails case.xsd or
cannot become a Beijing case ``env:Sender`` ``hb:InvalidMessage`` naming the field; an item or
region Hebei may not submit ``env:Sender`` ``hb:NotPermitted``; a store that cannot take it
``env:Receiver`` ``hb:ServiceBusy`` (Hebei sends again later).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from lxml import etree

from gateway.config import InboundSettings
from gateway.errors import StoreError
from gateway.inbound.service import INBOUND, Forbidden, Invalid
from gateway.intake.accept import BEIJING
from gateway.protocols import soap
from gateway.statuses.documents import ServedWsdl
from gateway.statuses.hebei import HB, HebeiGate, busy, fault

PATH = "/soap/hebei/cases"
PARTNER = "hebei"
_NS = {"hb": HB}


def answer(receipt_no: str, message: str) -> web.Response:
    r = etree.Element(etree.QName(HB, "SubmitCaseResponse"), nsmap={"hb": HB})
    etree.SubElement(r, etree.QName(HB, "resultCode")).text = "0000"
    etree.SubElement(r, etree.QName(HB, "resultMessage")).text = message
    etree.SubElement(r, etree.QName(HB, "receiptNo")).text = receipt_no
    etree.SubElement(r, etree.QName(HB, "acceptedAt")).text = \
        datetime.now(BEIJING).isoformat(timespec="seconds")
    return web.Response(body=soap.build_envelope(soap.SOAP12, r),
                        content_type="application/soap+xml", charset="utf-8")


class HebeiCasesEndpoint:
    def __init__(self, inbound: InboundSettings | None, wsdl: ServedWsdl,
                 schema: etree.XMLSchema, max_body: int) -> None:
        self.wsdl = wsdl
        self.gate = HebeiGate(inbound, schema, max_body)  # as the status callback checks

    async def documents(self, request: web.Request) -> web.Response:
        return self.wsdl.answer(request)

    async def handle(self, request: web.Request) -> web.Response:
        opened = await self.gate.open(request, "SubmitCase", "InboundService.wsdl",
                                      "inbound case")
        if isinstance(opened, web.Response):
            return opened
        raw_body, call = opened.raw, opened.call
        case_no = (call.findtext("hb:case/hb:caseNo", namespaces=_NS) or "").strip()
        try:
            receipt = await request.app[INBOUND].submit(PARTNER, case_no, call, request=raw_body,
                                                        caller=f"partner:{PARTNER}")
        except Invalid as e:
            return fault("Sender", f"not a case Beijing can take: {e.text()}",
                         "hb:InvalidMessage")
        except Forbidden as e:
            return fault("Sender", str(e), "hb:NotPermitted")
        except StoreError as e:
            return busy("inbound case not stored", e)
        return answer(receipt.receipt_no,
                      "接收成功" + ("(重复提交, 原受理编号)" if receipt.duplicate else ""))


__all__ = ["PATH", "HebeiCasesEndpoint"]
