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

import logging
from datetime import datetime

from aiohttp import web
from lxml import etree

from gateway.api.auth import NONCES
from gateway.config import InboundSettings
from gateway.errors import StoreError
from gateway.inbound.service import INBOUND, Forbidden, Invalid
from gateway.intake.accept import BEIJING
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.hmac_auth import HmacError
from gateway.protocols.wsse import SECURITY, UsernameTokenVerifier, WsseError
from gateway.statuses.body import TooLarge, read_body
from gateway.statuses.documents import ServedWsdl
from gateway.statuses.hebei import HB, fault
from gateway.statuses.inbound_auth import HmacInbound, limits, scheme_of

log = logging.getLogger("gateway.inbound")
PATH = "/soap/hebei/cases"
PARTNER = "hebei"
_NS = {"hb": HB}
_UNDERSTOOD = {SECURITY.text, f"{{{HB}}}MessageHeader"}


def answer(receipt_no: str, message: str) -> web.Response:
    r = etree.Element(etree.QName(HB, "SubmitCaseResponse"), nsmap={"hb": HB})
    etree.SubElement(r, etree.QName(HB, "resultCode")).text = "0000"
    etree.SubElement(r, etree.QName(HB, "resultMessage")).text = message
    etree.SubElement(r, etree.QName(HB, "receiptNo")).text = receipt_no
    etree.SubElement(r, etree.QName(HB, "acceptedAt")).text = \
        datetime.now(BEIJING).isoformat(timespec="seconds")
    return web.Response(body=soap.build_envelope(soap.SOAP12, r),
                        content_type="application/soap+xml", charset="utf-8")


def _not_understood(env: soap.Envelope) -> str | None:
    """The first header block the caller requires us to understand that we do not."""
    flag = f"{{{soap.SOAP12_NS}}}mustUnderstand"
    for h in env.headers:
        if h.get(flag, "").strip() in ("1", "true") and h.tag not in _UNDERSTOOD:
            return str(h.tag)
    return None


def _busy(what: str, e: StoreError) -> web.Response:
    log.error("hebei inbound case: %s: %s", what, e)
    return fault("Receiver", "the gateway could not take the case now; send it again later",
                 "hb:ServiceBusy")


class HebeiCasesEndpoint:
    def __init__(self, inbound: InboundSettings | None, wsdl: ServedWsdl,
                 schema: etree.XMLSchema, max_body: int) -> None:
        self.wsdl = wsdl
        self.schema = schema
        self.max_body = max_body
        users = {} if inbound is None or not inbound.username or inbound.password is None \
            else {inbound.username: inbound.password}
        max_age, max_ahead = limits(inbound)
        self.scheme = scheme_of(PARTNER, inbound, ("wsse-digest",))
        self.hmac = HmacInbound.of(PARTNER, inbound) \
            if self.scheme == "hmac-sha256" and inbound is not None else None
        self.verifier = UsernameTokenVerifier(users, max_age=max_age, max_ahead=max_ahead,
                                              scope=PARTNER)

    async def documents(self, request: web.Request) -> web.Response:
        return self.wsdl.answer(request)

    async def handle(self, request: web.Request) -> web.Response:
        try:
            raw_body = await read_body(request, self.max_body)
        except TooLarge as e:
            return fault("Sender", str(e), "hb:InvalidMessage")
        if self.hmac is not None:
            try:
                await self.hmac.verify(request, raw_body, request.app[NONCES])
            except HmacError as e:
                return fault("Sender", e.message, "wsu:MessageExpired"
                             if e.code == "stale_timestamp" else "wsse:FailedAuthentication")
            except StoreError as e:
                return _busy("nonce not checked", e)
        try:
            env = soap.parse_envelope(raw_body, max_bytes=self.max_body)
        except safexml.XmlError as e:
            return fault("Sender", f"unreadable request: {e.reason}", "hb:InvalidMessage")
        if env.version is not soap.SOAP12:
            return fault("VersionMismatch", "SubmitCase is SOAP 1.2 (InboundService.wsdl)",
                         "hb:VersionMismatch")
        if (tag := _not_understood(env)) is not None:
            return fault("MustUnderstand", f"header {tag} is not understood here",
                         "hb:MustUnderstand")
        if self.scheme == "wsse-digest":
            try:
                await self.verifier.verify(env.header(SECURITY), nonces=request.app[NONCES])
            except WsseError as e:
                return fault("Sender", e.message, e.code)
            except StoreError as e:
                return _busy("nonce not checked", e)
        call = env.body[0] if env.body else None
        if call is None or call.tag != f"{{{HB}}}SubmitCaseRequest":
            return fault("Sender", f"unknown operation "
                         f"{str(call.tag) if call is not None else '(empty Body)'}; this service "
                         "has SubmitCase", "hb:InvalidMessage")
        if errors := safexml.schema_errors(self.schema, call):
            return fault("Sender", "invalid SubmitCaseRequest: " + "; ".join(errors),
                         "hb:InvalidMessage")
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
            return _busy("not stored", e)
        return answer(receipt.receipt_no,
                      "接收成功" + ("(重复提交, 原受理编号)" if receipt.duplicate else ""))


__all__ = ["PATH", "HebeiCasesEndpoint"]
