"""``/soap/hebei/status``: Hebei's status notification (``schemas/hebei/StatusNotify.wsdl``,
served at ``?wsdl`` with ``case.xsd`` at ``?xsd=case.xsd``): SOAP 1.2 ``NotifyStatus``, the body
``hb:NotifyStatusRequest/caseStatus`` (case.xsd), the notification's id in
``hb:MessageHeader/messageId``, under a WS-Security UsernameToken digest.

The token is verified before the body is looked at (:class:`gateway.protocols.wsse.
UsernameTokenVerifier`: the configured password, ``Created`` at most ``inbound.max_age`` old and
``inbound.max_ahead`` ahead (default ``wsse_window`` each), a ``wsu:Timestamp``'s ``Expires``,
each nonce once in the database's nonce store, so on every instance). With ``inbound.scheme:
hmac-sha256`` the HTTP request's HMAC headers are checked instead, before the body is parsed
(:mod:`gateway.statuses.inbound_auth`). Refusals are SOAP 1.2 faults, as the WSDL
says: a bad token ``env:Sender`` with the WS-Security subcode (``wsse:FailedAuthentication``,
``wsu:MessageExpired`` …; Hebei stops), a body that fails case.xsd ``env:Sender``
``hb:InvalidMessage`` naming the line, a store that cannot take it ``env:Receiver`` (Hebei
resends later with the same messageId). A notification kept, also one the gateway already has
or cannot map yet, is ``resultCode 0000``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from lxml import etree

from gateway.api.auth import NONCES
from gateway.config import InboundSettings
from gateway.errors import StoreError
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.hmac_auth import HmacError
from gateway.protocols.wsse import SECURITY, WSU_NS, UsernameTokenVerifier, WsseError
from gateway.statuses.body import TooLarge, read_body
from gateway.statuses.documents import ServedWsdl
from gateway.statuses.inbound_auth import HmacInbound, limits, scheme_of
from gateway.statuses.receive import RECEIVER, RawStatus

log = logging.getLogger("gateway.statuses")
PATH = "/soap/hebei/status"
PARTNER = "hebei"
HB = "http://zwfw.hebei.example/exchange/v1"
_NS = {"hb": HB}
_UNDERSTOOD = {SECURITY.text, f"{{{HB}}}MessageHeader"}
_PREFIXES = {"wsse": SECURITY.namespace, "wsu": WSU_NS}


def fault(code: str, reason: str, subcode: str) -> web.Response:
    """A SOAP 1.2 fault; ``subcode`` ``prefix:Local`` (``wsse:``/``wsu:``, else Hebei's own
    namespace). HTTP 400 for the caller's mistakes (Sender, VersionMismatch), 500 only for
    Receiver: the gateway's own failure (its database), never an input."""
    prefix, _, local = subcode.rpartition(":")
    body = soap.build_fault(soap.SOAP12, code, reason[:1000],
                            subcode=etree.QName(_PREFIXES.get(prefix, HB), local))
    return web.Response(status=500 if code == "Receiver" else 400, body=body,
                        content_type="application/soap+xml", charset="utf-8")


def answer(code: str, message: str) -> web.Response:
    r = etree.Element(etree.QName(HB, "NotifyStatusResponse"), nsmap={"hb": HB})
    etree.SubElement(r, etree.QName(HB, "resultCode")).text = code
    etree.SubElement(r, etree.QName(HB, "resultMessage")).text = message
    return web.Response(body=soap.build_envelope(soap.SOAP12, r),
                        content_type="application/soap+xml", charset="utf-8")


def _must_understand(env: soap.Envelope) -> str | None:
    """The first header block the caller requires us to understand that we do not."""
    flag = f"{{{soap.SOAP12_NS}}}mustUnderstand"
    for h in env.headers:
        if h.get(flag, "").strip() in ("1", "true") and h.tag not in _UNDERSTOOD:
            return str(h.tag)
    return None


def busy(what: str, e: StoreError) -> web.Response:
    """The database failed (a nonce not checked, a message not stored): never accept unchecked
    or unstored, ask Hebei to send again later."""
    log.error("hebei %s: %s", what, e)
    return fault("Receiver", "the gateway could not take the message now; send it again later",
                 "hb:ServiceBusy")


@dataclass(frozen=True)
class Opened:
    """A Hebei request that passed the gate: its exact bytes, envelope and operation element."""

    raw: bytes
    envelope: soap.Envelope
    call: etree._Element


class HebeiGate:
    """What every Hebei SOAP 1.2 endpoint of the gateway checks before its operation runs (the
    status callback here, case submission in :mod:`gateway.inbound.hebei`): the body's size,
    ``inbound.scheme`` (hmac-sha256 over the raw bytes, or the WS-Security UsernameToken digest
    with the shared nonce store), SOAP 1.2, mustUnderstand headers, the one expected operation
    and its schema (case.xsd). Refusals are the WSDL's SOAP 1.2 faults."""

    def __init__(self, inbound: InboundSettings | None, schema: etree.XMLSchema,
                 max_body: int) -> None:
        self.schema = schema
        self.max_body = max_body
        users = {} if inbound is None or not inbound.username or inbound.password is None \
            else {inbound.username: inbound.password}
        max_age, max_ahead = limits(inbound)
        self.scheme = scheme_of(PARTNER, inbound, ("wsse-digest",))
        self.hmac = HmacInbound.of(PARTNER, inbound) \
            if self.scheme == "hmac-sha256" and inbound is not None else None
        #: nonces go to the app's shared store (NONCES), so a replay fails on every instance
        self.verifier = UsernameTokenVerifier(users, max_age=max_age, max_ahead=max_ahead,
                                              scope=PARTNER)

    async def open(self, request: web.Request, operation: str, wsdl: str,
                   what: str) -> Opened | web.Response:
        """The request as :class:`Opened`, or the fault refusing it; ``operation`` is the local
        name of the one operation (``NotifyStatus``), ``wsdl`` its file (for the messages)."""
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
                return busy(f"{what}: nonce not checked", e)
        try:
            env = soap.parse_envelope(raw_body, max_bytes=self.max_body)
        except safexml.XmlError as e:
            return fault("Sender", f"unreadable request: {e.reason}", "hb:InvalidMessage")
        if env.version is not soap.SOAP12:
            return fault("VersionMismatch", f"{operation} is SOAP 1.2 ({wsdl})",
                         "hb:VersionMismatch")
        if (tag := _must_understand(env)) is not None:
            return fault("MustUnderstand", f"header {tag} is not understood here",
                         "hb:MustUnderstand")
        if self.scheme == "wsse-digest":
            try:
                await self.verifier.verify(env.header(SECURITY), nonces=request.app[NONCES])
            except WsseError as e:
                return fault("Sender", e.message, e.code)
            except StoreError as e:
                return busy(f"{what}: nonce not checked", e)
        call = env.body[0] if env.body else None
        if call is None or call.tag != f"{{{HB}}}{operation}Request":
            return fault("Sender", f"unknown operation "
                         f"{str(call.tag) if call is not None else '(empty Body)'}; this service "
                         f"has {operation}", "hb:InvalidMessage")
        if errors := safexml.schema_errors(self.schema, call):
            return fault("Sender", f"invalid {operation}Request: " + "; ".join(errors),
                         "hb:InvalidMessage")
        return Opened(raw_body, env, call)


class HebeiEndpoint:
    def __init__(self, inbound: InboundSettings | None,
                 wsdl: ServedWsdl, schema: etree.XMLSchema, max_body: int) -> None:
        self.wsdl = wsdl
        self.gate = HebeiGate(inbound, schema, max_body)

    async def documents(self, request: web.Request) -> web.Response:
        return self.wsdl.answer(request)

    async def handle(self, request: web.Request) -> web.Response:
        receiver = request.app[RECEIVER]
        opened = await self.gate.open(request, "NotifyStatus", "StatusNotify.wsdl",
                                      "status callback")
        if isinstance(opened, web.Response):
            return opened
        env, call = opened.envelope, opened.call
        header = env.header(f"{{{HB}}}MessageHeader")
        message_id = header.findtext("hb:messageId", namespaces=_NS) if header is not None \
            else None
        cs = call.find("hb:caseStatus", _NS)
        assert cs is not None  # required by case.xsd, validated above
        raw = RawStatus(code=cs.findtext("hb:status", namespaces=_NS),
                        receipt_no=cs.findtext("hb:receiptNo", namespaces=_NS),
                        idempotency_key=cs.findtext("hb:messageId", namespaces=_NS),
                        application_no=cs.findtext("hb:caseNo", namespaces=_NS),
                        occurred_at=cs.findtext("hb:statusTime", namespaces=_NS))
        event = receiver.event(PARTNER, call, raw,
                                    event_id=(message_id or "").strip()[:128] or None)
        try:
            await receiver.apply(event)
        except StoreError as e:
            return busy("status callback not stored", e)
        return answer("0000", "接收成功")
