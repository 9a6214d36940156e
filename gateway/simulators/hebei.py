"""Hebei simulator: SOAP 1.2 document/literal wrapped ``SubmitCase`` and ``QueryStatus`` with
WS-Security, and ``NotifyStatus`` callbacks (``schemas/hebei/``).

Behaves as a WS-* stack would: a broken envelope, bad credentials, a stale or replayed token,
a body that fails ``case.xsd`` or a missing ``hb:MessageHeader`` is an ``env:Sender`` fault
(HTTP 400); its own trouble is an ``env:Receiver`` fault, and ``MustUnderstand`` /
``VersionMismatch`` faults are HTTP 500 (SOAP 1.2 part 2, §7.5.1). A business rejection is a
normal reply with a non-``0000`` ``resultCode``. Dedupes on ``MessageHeader/messageId``.

Beijing's notifications (issue 15): ``NotifyStatus`` at ``notify_path`` (``/hebei/StatusNotify``,
StatusNotify.wsdl at ``?wsdl``), under the same WS-Security digest, body checked against case.xsd,
deduped on ``MessageHeader/messageId``; ``/__sim/state`` shows them as ``notifications``.

Extra ``/__sim/behaviour`` modes: ``business_error`` (``code``/``message``, default 2001
事项编码不存在), ``throttle`` (HTTP 503, ``Retry-After``, Receiver fault ``hb:ServerBusy``),
``fault_sender``, ``fault_receiver``, ``malformed`` (a reply cut off mid-element).

Statuses (:mod:`gateway.simulators.statuses`): a case starts ``RECEIVED``; the control API moves
it in Hebei's codes (README.md; result ``GRANTED``/``REFUSED``). ``QueryStatus`` answers by
``receiptNo`` or ``messageId`` (``resultCode`` 3001 for a case it does not hold); with a callback
URL configured, every status change is posted to it as ``NotifyStatus`` (StatusNotify.wsdl) under
a WS-Security UsernameToken digest of the configured ``username``/``password``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from lxml import etree

from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.soap_typed import CST
from gateway.protocols.wsse import SECURITY, UsernameToken, UsernameTokenVerifier, WsseError
from gateway.simulators.base import (
    SIM_STATE,
    Behaviour,
    NotifiedState,
    SimulatorState,
    add_control_routes,
    soap_request,
)
from gateway.simulators.statuses import (
    CallbackRequest,
    SimCase,
    StatusConfig,
    StatusEvent,
    StatusProfile,
    now,
)

SCHEMAS = soap.PROJECT_ROOT / "schemas" / "hebei"
HB = "http://zwfw.hebei.example/exchange/v1"
DEFAULT_USERS = {"BJ-GATEWAY": "hebei-demo-secret"}
MAX_BODY = 2 * 1024 * 1024
UNDERSTOOD = {SECURITY.text, f"{{{HB}}}MessageHeader"}
#: the credentials Hebei signs its NotifyStatus calls with (issued by the receiver)
DEFAULT_CALLBACK_AUTH = {"username": "HEBEI-EXCHANGE", "password": "hebei-notify-secret"}
NOTIFY_ACTION = "urn:hebei:exchange:NotifyStatus"
NOT_FOUND = "3001"
#: a Hebei licensing body's USCC (synthetic, valid GB 32100 check character)
ISSUER_USCC = "11130000000012346W"

CONFIG = web.AppKey("hebei_config", dict)
VERIFIER = web.AppKey("hebei_verifier", UsernameTokenVerifier)


def create_app(*, users: dict[str, str] | None = None, path: str = "/hebei/CaseExchange",
               receipt_prefix: str = "HBSL", wsse_window: float = 300.0,
               callback_url: str | None = None, callback_auth: Mapping[str, Any] | None = None,
               dedupe: bool = True, notify_path: str = "/hebei/StatusNotify",
               **_: Any) -> web.Application:
    """The simulator application; keyword options only (same style as every simulator).
    ``callback_url``/``callback_auth`` (``{"username", "password"}``) and ``dedupe`` are the
    start-up values of ``/__sim/config``."""
    app = web.Application(client_max_size=MAX_BODY)
    app[CONFIG] = {
        "schema": safexml.load_schema(SCHEMAS / "case.xsd"),
        "wsdl": (SCHEMAS / "CaseExchange.wsdl").read_bytes(),
        "xsd": (SCHEMAS / "case.xsd").read_bytes(),
        "notify_wsdl": (SCHEMAS / "StatusNotify.wsdl").read_bytes(),
    }
    app[VERIFIER] = UsernameTokenVerifier(dict(users or DEFAULT_USERS), window=wsse_window)
    config = StatusConfig(callback_url, dict(callback_auth or {}), dedupe=dedupe)
    add_control_routes(app, NotifiedState("hebei", receipt_prefix, profile=PROFILE,
                                          config=config))
    app.router.add_get(path, _documents)
    app.router.add_post(path, _submit)
    app.router.add_get(notify_path, _documents)
    app.router.add_post(notify_path, _notified)
    return app


async def _documents(request: web.Request) -> web.Response:
    """``?wsdl`` (address and schema location pointing here) and ``?xsd=case.xsd``."""
    cfg = request.app[CONFIG]
    here = request.url.with_query(None)
    if request.query.get("xsd") == "case.xsd":
        return web.Response(body=cfg["xsd"], content_type="text/xml", charset="utf-8")
    if "wsdl" not in {k.lower() for k in request.query}:
        return web.Response(status=404, text="append ?wsdl")
    root = safexml.parse(cfg["notify_wsdl" if "StatusNotify" in request.path else "wsdl"])
    for addr in root.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}address"):
        addr.set("location", str(here))
    for imp in root.iter("{http://www.w3.org/2001/XMLSchema}import"):
        imp.set("schemaLocation", str(here.with_query({"xsd": "case.xsd"})))
    return web.Response(body=safexml.to_bytes(root), content_type="text/xml", charset="utf-8")


def _reply(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, headers=headers,
                        content_type="application/soap+xml", charset="utf-8")


def _fault(code: str, reason: str, subcode: str, *, error_code: str | None = None,
           status: int | None = None, headers: dict[str, str] | None = None) -> web.Response:
    ns, _, local = subcode.rpartition(":")
    sub = etree.QName({"wsse": SECURITY.namespace, "wsu": "http://docs.oasis-open.org/wss/2004/"
                       "01/oasis-200401-wss-wssecurity-utility-1.0.xsd"}.get(ns, HB), local)
    detail = None
    if error_code:
        detail = etree.Element(etree.QName(HB, "FaultDetail"), nsmap={"hb": HB})
        etree.SubElement(detail, etree.QName(HB, "errorCode")).text = error_code
        etree.SubElement(detail, etree.QName(HB, "errorMessage")).text = reason
    body = soap.build_fault(soap.SOAP12, code, reason, subcode=sub, detail=detail)
    return _reply(status or (400 if code == "Sender" else 500), body, headers)


def _result(code: str, message: str, receipt: str | None = None) -> web.Response:
    """The SubmitCase answer."""
    r = etree.Element(etree.QName(HB, "SubmitCaseResponse"), nsmap={"hb": HB})
    etree.SubElement(r, etree.QName(HB, "resultCode")).text = code
    etree.SubElement(r, etree.QName(HB, "resultMessage")).text = message
    if receipt:
        etree.SubElement(r, etree.QName(HB, "receiptNo")).text = receipt
        etree.SubElement(r, etree.QName(HB, "acceptedAt")).text = \
            datetime.now(CST).replace(microsecond=0).isoformat()
    return _reply(200, soap.build_envelope(soap.SOAP12, r))


def _not_understood(env: soap.Envelope) -> str | None:
    for h in env.headers:
        mu = h.get(f"{{{soap.SOAP12_NS}}}mustUnderstand", "false").strip()
        if mu in {"1", "true"} and h.tag not in UNDERSTOOD:
            return etree.QName(h).text
    return None


async def _authenticated(request: web.Request, state: SimulatorState
                         ) -> tuple[Behaviour, soap.Envelope, str] | web.StreamResponse:
    """What both of Hebei's operations check first: a whole SOAP 1.2 envelope, its
    mustUnderstand headers understood, its WS-Security token good. The behaviour, the envelope
    and the token's user, or the SOAP fault to answer."""
    opened = await soap_request(
        request, state,
        too_large=lambda: _fault("Sender", f"message larger than {MAX_BODY} bytes",
                                 "hb:MalformedMessage", status=413),
        malformed=lambda why: _fault("Sender", f"malformed message: {why}", "hb:MalformedMessage"))
    if isinstance(opened, web.StreamResponse):
        return opened
    b, env = opened
    if env.version is not soap.SOAP12:
        return _fault("VersionMismatch", "SOAP 1.2 required", "hb:VersionMismatch")
    if (tag := _not_understood(env)) is not None:
        return _fault("MustUnderstand", f"header {tag} not understood", "hb:MustUnderstand")
    try:
        user = await request.app[VERIFIER].verify(env.header(SECURITY))
    except WsseError as e:
        return _fault("Sender", e.message, e.code)
    return b, env, user


async def _submit(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    cfg = request.app[CONFIG]
    opened = await _authenticated(request, state)
    if isinstance(opened, web.StreamResponse):
        return opened
    b, env, user = opened
    if b.mode == "fault_sender":
        return _fault("Sender", b.message or "请求不合法", "hb:InvalidMessage",
                      error_code=b.code or "1099")
    if b.mode == "fault_receiver":
        return _fault("Receiver", b.message or "服务暂时不可用", "hb:ServiceUnavailable",
                      error_code=b.code or "5001")
    if b.mode == "throttle":
        return _fault("Receiver", b.message or "请求过于频繁", "hb:ServerBusy", error_code="9001",
                      status=503, headers={"Retry-After": str(int(b.delay or 2))})
    if b.mode == "malformed":
        return _reply(200, soap.build_envelope(soap.SOAP12, etree.Element("x"))[:80])
    first = env.body[0] if env.body else None
    if first is not None and first.tag == f"{{{HB}}}QueryStatusRequest":
        return _query(state, cfg, first)
    hdr = env.header(f"{{{HB}}}MessageHeader")
    key = hdr.findtext(f"{{{HB}}}messageId") if hdr is not None else None
    if not key:
        return _fault("Sender", "MessageHeader/messageId is required", "hb:InvalidMessage",
                      error_code="1002")
    call = env.body[0] if env.body else None
    if call is None or call.tag != f"{{{HB}}}SubmitCaseRequest":
        return _fault("Sender", "unknown operation", "hb:InvalidMessage", error_code="1003")
    errors = safexml.schema_errors(cfg["schema"], call)
    if errors:
        return _fault("Sender", "报文校验失败: " + "; ".join(errors), "hb:InvalidMessage",
                      error_code="1001")
    if b.mode == "business_error":
        return _result(b.code or "2001", b.message or "事项编码不存在")
    seen = summary(call)
    refs = {"caseNo": seen.get("caseNo"), "itemCode": (seen.get("items") or [None])[0]}
    with state.handling(key):
        got = state.accept(key, payload=seen,
                           headers={"user": user,
                                    "X-Correlation-Id": request.headers.get("X-Correlation-Id", "")},
                           refs=refs)
    return _result("0000", "重复报文，已受理" if got.duplicate else "受理成功", got.receipt_no)


async def _notified(request: web.Request) -> web.StreamResponse:
    """``NotifyStatus`` from Beijing: ``0000`` taken (a resend of a messageId too); a bad token,
    a missing messageId or a body that fails case.xsd is a Sender fault naming it."""
    state = request.app[SIM_STATE]
    opened = await _authenticated(request, state)
    if isinstance(opened, web.StreamResponse):
        return opened
    _, env, _user = opened
    hdr = env.header(f"{{{HB}}}MessageHeader")
    key = hdr.findtext(f"{{{HB}}}messageId") if hdr is not None else None
    if not key:
        return _fault("Sender", "MessageHeader/messageId is required", "hb:InvalidMessage",
                      error_code="1002")
    call = env.body[0] if env.body else None
    if call is None or call.tag != f"{{{HB}}}NotifyStatusRequest":
        return _fault("Sender", "unknown operation", "hb:InvalidMessage", error_code="1003")
    errors = safexml.schema_errors(request.app[CONFIG]["schema"], call)
    if errors:
        return _fault("Sender", "报文校验失败: " + "; ".join(errors), "hb:InvalidMessage",
                      error_code="1001")
    status = call.find(f"{{{HB}}}caseStatus")
    fields = {etree.QName(c).localname: c.text for c in status} if status is not None else {}
    assert isinstance(state, NotifiedState)
    duplicate = state.notified(key, {"caseStatus": fields,
                                     "body": safexml.to_bytes(call).decode("utf-8")})
    r = etree.Element(etree.QName(HB, "NotifyStatusResponse"), nsmap={"hb": HB})
    etree.SubElement(r, etree.QName(HB, "resultCode")).text = "0000"
    etree.SubElement(r, etree.QName(HB, "resultMessage")).text = \
        "重复通知，已接收" if duplicate else "接收成功"
    return _reply(200, soap.build_envelope(soap.SOAP12, r))


def summary(call: etree._Element) -> dict[str, Any]:
    """What tests and the demo look at: case number, applicant, item and material codes; per
    item its handling region, department and 多地联办 part (lead, every joint region and whether
    Hebei handles it); e-licence ids, form fields and the bundle's theme."""
    ns = {"hb": HB}
    c = call.find("hb:case", ns)
    if c is None:  # schema-checked before; kept for the type checker
        return {}
    return {
        "caseNo": c.findtext("hb:caseNo", namespaces=ns),
        "applicantName": c.findtext("hb:applicant/hb:name", namespaces=ns),
        "certType": c.findtext("hb:applicant/hb:certType", namespaces=ns),
        "themeCode": c.findtext("hb:bundle/hb:themeCode", namespaces=ns),
        "items": [i.findtext("hb:implementationCode", namespaces=ns)
                  for i in c.iterfind("hb:items/hb:item", ns)],
        "itemDetails": [_item(i) for i in c.iterfind("hb:items/hb:item", ns)],
        "materials": [m.findtext("hb:materialCode", namespaces=ns)
                      for m in c.iterfind("hb:materials/hb:material", ns)],
        "elicences": [e.findtext("hb:licenceId", namespaces=ns)
                      for e in c.iterfind("hb:elicences/hb:elicence", ns)],
        "formData": {f.get("name"): f.text for f in c.iterfind("hb:formData/hb:field", ns)},
    }


def _item(item: etree._Element) -> dict[str, Any]:
    ns = {"hb": HB}
    out: dict[str, Any] = {k: item.findtext(f"hb:{k}", namespaces=ns) for k in (
        "itemNo", "implementationCode", "handlingRegion", "department")}
    joint = item.find("hb:jointHandling", ns)
    if joint is not None:
        out["jointHandling"] = {
            "leadRegion": joint.findtext("hb:leadRegion", namespaces=ns),
            "leadDepartment": joint.findtext("hb:leadDepartment", namespaces=ns),
            "regions": [{"region": r.text, "local": r.get("local") in ("true", "1")}
                        for r in joint.iterfind("hb:region", ns)],
        }
    return out


# -- statuses: QueryStatus, NotifyStatus ---------------------------------------------------------

def _query(state: SimulatorState, cfg: dict[str, Any], call: etree._Element) -> web.Response:
    """``QueryStatus``: the case named by receiptNo or messageId, 3001 when Hebei holds none."""
    errors = safexml.schema_errors(cfg["schema"], call)
    if errors:
        return _fault("Sender", "报文校验失败: " + "; ".join(errors), "hb:InvalidMessage",
                      error_code="1001")
    ns = {"hb": HB}
    case = state.book.find(receipt=call.findtext("hb:receiptNo", namespaces=ns),
                           key=call.findtext("hb:messageId", namespaces=ns))
    r = etree.Element(etree.QName(HB, "QueryStatusResponse"), nsmap={"hb": HB})
    if case is None:
        etree.SubElement(r, etree.QName(HB, "resultCode")).text = NOT_FOUND
        etree.SubElement(r, etree.QName(HB, "resultMessage")).text = "办件不存在"
        return _reply(200, soap.build_envelope(soap.SOAP12, r))
    etree.SubElement(r, etree.QName(HB, "resultCode")).text = "0000"
    etree.SubElement(r, etree.QName(HB, "resultMessage")).text = "查询成功"
    case_status(r, case, case.current)
    history = etree.SubElement(r, etree.QName(HB, "history"))
    for e in case.history:
        entry = etree.SubElement(history, etree.QName(HB, "entry"))
        etree.SubElement(entry, etree.QName(HB, "status")).text = e.status
        etree.SubElement(entry, etree.QName(HB, "statusTime")).text = e.at.isoformat()
        if e.message:
            etree.SubElement(entry, etree.QName(HB, "opinion")).text = e.message
    return _reply(200, soap.build_envelope(soap.SOAP12, r))


def case_status(parent: etree._Element, case: SimCase, event: StatusEvent) -> etree._Element:
    """``hb:caseStatus`` (CaseStatusType) of one case at one event, appended to ``parent``."""
    cs = etree.SubElement(parent, etree.QName(HB, "caseStatus"))

    def add(el: etree._Element, name: str, value: str | None) -> None:
        if value:
            etree.SubElement(el, etree.QName(HB, name)).text = value

    add(cs, "receiptNo", case.receipt)
    add(cs, "messageId", case.key)
    add(cs, "caseNo", case.refs.get("caseNo"))
    add(cs, "itemCode", case.refs.get("itemCode"))
    add(cs, "status", event.status)
    add(cs, "statusTime", event.at.isoformat())
    add(cs, "department", event.department)
    add(cs, "opinion", event.message)
    add(cs, "result", event.result)
    if event.licences:
        box = etree.SubElement(cs, etree.QName(HB, "licences"))
        for lic in event.licences:
            el = etree.SubElement(box, etree.QName(HB, "licence"))
            for name in ("licenceId", "typeCode", "name", "holderCertNo"):
                add(el, name, lic.get(name))
    return cs


class Notifier:
    """Hebei calls the receiver: SOAP 1.2 ``NotifyStatus`` under a UsernameToken digest, the
    event's id as ``MessageHeader/messageId`` (a resend keeps it)."""

    def request(self, case: SimCase, event: StatusEvent,
                auth: Mapping[str, Any]) -> CallbackRequest:
        body = etree.Element(etree.QName(HB, "NotifyStatusRequest"), nsmap={"hb": HB})
        case_status(body, case, event)
        header = etree.Element(etree.QName(HB, "MessageHeader"), nsmap={"hb": HB})
        for name, value in (("messageId", event.event_id), ("senderCode", "HEBEI-EXCHANGE"),
                            ("sentAt", now().isoformat())):
            etree.SubElement(header, etree.QName(HB, name)).text = value
        token = UsernameToken(str(auth.get("username", "")), str(auth.get("password", "")))
        return CallbackRequest(
            soap.build_envelope(soap.SOAP12, body, [token.header(soap.SOAP12_NS), header]),
            soap.SOAP12.http_headers(NOTIFY_ACTION))

    def verdict(self, status: int, body: bytes) -> dict[str, Any]:
        try:
            env = soap.parse_envelope(body)
        except safexml.XmlError as e:
            return {"ok": False, "code": None, "message": f"unreadable answer: {e.reason}"}
        if env.fault is not None:
            return {"ok": False, "code": env.fault.subcode or env.fault.code,
                    "message": env.fault.reason}
        r = env.body[0] if env.body else None
        code = r.findtext(f"{{{HB}}}resultCode") if r is not None else None
        return {"ok": status == 200 and code == "0000", "code": code,
                "message": r.findtext(f"{{{HB}}}resultMessage") if r is not None else None}


def _licence(case: SimCase) -> dict[str, str]:
    serial = "".join(ch for ch in case.receipt if ch.isdigit())[-8:]
    return {"licenceId": f"1.2.156.3005.2.{ISSUER_USCC}.002.{serial}",
            "typeCode": f"{ISSUER_USCC}002", "name": "准予行政许可决定书"}


PROFILE = StatusProfile(
    initial="RECEIVED",
    codes=frozenset({"SUBMITTED", "PREAUDIT_RETURNED", "PREAUDIT_PASSED", "RECEIVED",
                     "CORRECTION_REQUIRED", "ACCEPTED", "UNDER_REVIEW", "SPECIAL_PROCEDURE",
                     "COMPLETED", "REJECTED", "WITHDRAWN", "TERMINATED"}),
    results=frozenset({"GRANTED", "REFUSED"}),
    paths={
        "approved": (("ACCEPTED", None), ("UNDER_REVIEW", None), ("COMPLETED", "GRANTED")),
        "denied": (("ACCEPTED", None), ("UNDER_REVIEW", None), ("COMPLETED", "REFUSED")),
        "supplement": (("CORRECTION_REQUIRED", None), ("ACCEPTED", None),
                       ("UNDER_REVIEW", None), ("COMPLETED", "GRANTED")),
        "suspended": (("ACCEPTED", None), ("UNDER_REVIEW", None), ("SPECIAL_PROCEDURE", None),
                      ("UNDER_REVIEW", None), ("COMPLETED", "GRANTED")),
        "not_accepted": (("REJECTED", None),),
        "withdrawn": (("ACCEPTED", None), ("WITHDRAWN", None)),
        "voided": (("ACCEPTED", None), ("TERMINATED", None)),
    },
    notifier=Notifier(),
    default_auth=DEFAULT_CALLBACK_AUTH,
    granted="GRANTED",
    licence=_licence,
)
