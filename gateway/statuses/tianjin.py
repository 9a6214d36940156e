"""``/soap/tianjin/status``: Tianjin's status notification (``schemas/tianjin/StatusNotify.wsdl``,
served at ``?wsdl``): SOAP 1.1 ``notifyStatus(authCode, xmlData)``, the inner document
``PACKAGE`` (status-notify.xsd) carried as a string and declared GBK.

Answers in Tianjin's terms, the escaped ``RESULT`` (result.xsd) in ``<return>``: ``CODE 0`` taken
(also a notification the gateway already has, or cannot map yet: kept flagged); ``-1`` wrong
authCode; ``-2`` the inner document is not readable or not valid (MSG names the line and the
field; also a request too large or not readable as XML at all, answered in the same terms so a
vendor system that reads only CODE learns why); ``-9`` the gateway is busy (Tianjin resends,
same TZBH). A readable request that is not notifyStatus over SOAP 1.1 (another SOAP version,
another operation) is a SOAP fault: it is not this contract's conversation at all. The inner
document is parsed only by the hardened parser (:func:`gateway.protocols.xml.parse_text`),
whatever its declared encoding. With ``inbound.scheme: hmac-sha256`` the request's HMAC headers
are checked instead of ``authCode``, before the body is parsed (:mod:`gateway.statuses.
inbound_auth`; a refusal is ``-1`` naming the header, a nonce that cannot be checked ``-9``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from lxml import etree

from gateway.api.auth import NONCES
from gateway.config import InboundSettings
from gateway.errors import StoreError
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.hmac_auth import HmacError
from gateway.protocols.soap_xml_string import encode_inner
from gateway.statuses.body import TooLarge, read_body
from gateway.statuses.documents import ServedWsdl
from gateway.statuses.inbound_auth import HmacInbound, scheme_of
from gateway.statuses.receive import RECEIVER, RawStatus

log = logging.getLogger("gateway.statuses")
PATH = "/soap/tianjin/status"
PARTNER = "tianjin"
TNS = "http://exchange.zwfw.tj.example/"


def result(code: int, msg: str) -> web.Response:
    """The ``notifyStatusResponse`` with RESULT/CODE, MSG as GBK-declared text in ``return``."""
    r = etree.Element("RESULT")
    etree.SubElement(r, "CODE").text = str(code)
    etree.SubElement(r, "MSG").text = msg[:1000]
    wrapper = etree.Element(etree.QName(TNS, "notifyStatusResponse"), nsmap={"ns2": TNS})
    etree.SubElement(wrapper, "return").text = encode_inner(r, "GBK", reject_rare=False)
    return web.Response(body=soap.build_envelope(soap.SOAP11, wrapper),
                        content_type="text/xml", charset="utf-8")


def fault(reason: str, code: str = "Sender") -> web.Response:
    """A SOAP 1.1 fault for a caller's mistake (another operation or SOAP version). HTTP 400,
    not SOAP 1.1's customary 500: no input of a caller may look like a failure of the gateway."""
    return web.Response(status=400, body=soap.build_fault(soap.SOAP11, code, reason[:1000]),
                        content_type="text/xml", charset="utf-8")


@dataclass(frozen=True)
class Opened:
    """A Tianjin request that passed the gate: its exact bytes and the inner PACKAGE."""

    raw: bytes
    package: etree._Element


class TianjinGate:
    """What every Tianjin SOAP 1.1 endpoint of the gateway checks before its operation runs (the
    status callback here, case submission in :mod:`gateway.inbound.tianjin`): the body's size,
    ``inbound.scheme`` (hmac-sha256 over the raw bytes, or the ``authCode`` parameter), SOAP 1.1,
    the one expected operation, and ``xmlData`` parsed (hardened) and valid against the inner
    schema. Refusals are the operation's own RESULT codes (-1 auth, -2 invalid, -9 busy, built by
    the endpoint's ``result``), or a SOAP fault for another operation or SOAP version."""

    def __init__(self, inbound: InboundSettings | None, schema: etree.XMLSchema,
                 max_body: int) -> None:
        self.inbound = inbound
        self.scheme = scheme_of(PARTNER, inbound, ("auth-code",))
        self.http_auth = HmacInbound.of(PARTNER, inbound) \
            if self.scheme == "hmac-sha256" and inbound is not None else None
        self.schema = schema
        self.max_body = max_body

    def _auth_code_ok(self, given: str) -> bool:
        inbound = self.inbound
        return inbound is not None and inbound.auth_code is not None and \
            hmac.compare_digest(given.encode(), inbound.auth_code.encode())

    async def open(self, request: web.Request, operation: str, wsdl: str, what: str,
                   result: Callable[[int, str], web.Response]) -> Opened | web.Response:
        """The request as :class:`Opened`, or the answer refusing it (``operation``: the
        operation's element name, ``notifyStatus``; ``wsdl``: its file, for the messages)."""
        try:
            body = await read_body(request, self.max_body)
        except TooLarge as e:
            return result(-2, f"数据校验失败: {e}")
        if self.http_auth is not None:
            try:
                await self.http_auth.verify(request, body, request.app[NONCES])
            except HmacError as e:
                return result(-1, f"授权码无效 ({e.message})")
            except StoreError as e:
                log.error("tianjin %s: nonce not checked: %s", what, e)
                return result(-9, "系统繁忙 (the gateway could not check the request; send it "
                              "again later)")
        try:
            env = soap.parse_envelope(body, max_bytes=self.max_body)
        except safexml.XmlError as e:
            return result(-2, f"数据校验失败: unreadable request: {e.reason}")
        if env.version is not soap.SOAP11:
            return fault(f"{operation} is SOAP 1.1 ({wsdl})", "VersionMismatch")
        call = env.body[0] if env.body else None
        if call is None or call.tag != f"{{{TNS}}}{operation}":
            return fault(f"unknown operation {str(call.tag) if call is not None else '(empty Body)'}"
                         f"; this service has {operation}")
        if self.scheme == "auth-code" and not self._auth_code_ok(call.findtext("authCode") or ""):
            return result(-1, "授权码无效 (authCode refused)")
        text = call.findtext("xmlData")
        if not text:
            return result(-2, "数据校验失败: xmlData is empty")
        try:
            pkg = safexml.parse_text(text, max_bytes=self.max_body)
        except safexml.XmlError as e:
            return result(-2, f"数据校验失败: xmlData {e.reason}")
        if errors := safexml.schema_errors(self.schema, pkg):
            return result(-2, "数据校验失败: xmlData " + "; ".join(errors))
        return Opened(body, pkg)


class TianjinEndpoint:
    def __init__(self, inbound: InboundSettings | None,
                 wsdl: ServedWsdl, schema: etree.XMLSchema, max_body: int) -> None:
        self.wsdl = wsdl
        self.gate = TianjinGate(inbound, schema, max_body)

    async def documents(self, request: web.Request) -> web.Response:
        return self.wsdl.answer(request)

    async def handle(self, request: web.Request) -> web.Response:
        receiver = request.app[RECEIVER]
        opened = await self.gate.open(request, "notifyStatus", "StatusNotify.wsdl",
                                      "status callback", result)
        if isinstance(opened, web.Response):
            return opened
        pkg = opened.package
        tzbh = (pkg.findtext("PACKAGEHEAD/TZBH") or "").strip()
        records = pkg.findall("DATA/RECORD")
        events = []
        for n, rec in enumerate(records, 1):
            raw = RawStatus(code=rec.findtext("BLZT"), receipt_no=rec.findtext("SLBH"),
                            idempotency_key=rec.findtext("SJBBH"),
                            application_no=rec.findtext("SBLSH"),
                            occurred_at=rec.findtext("BLSJ"))
            # TZBH names the notification: a resend carries it again (one event per RECORD)
            event_id = tzbh if len(records) == 1 else f"{tzbh}#{n}"
            events.append(receiver.event(PARTNER, rec, raw, event_id=event_id))
        try:
            for event in events:
                await receiver.apply(event)
        except StoreError as e:
            log.error("tianjin status callback not stored: %s", e)
            return result(-9, "系统繁忙 (the gateway could not store the notification)")
        return result(0, "接收成功")
