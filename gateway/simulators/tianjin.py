"""Tianjin simulator: SOAP 1.1 ``submitCase(authCode, xmlData)`` with a GBK inner document,
``queryStatus(authCode, xmlData)`` and ``notifyStatus`` callbacks (``schemas/tianjin/``).

Speaks the contract of ``schemas/tianjin/`` the way such services behave: almost everything is an
HTTP 200 whose embedded RESULT carries the verdict (``CODE`` 0 ok, -1 bad authCode, -2 invalid
inner document, -3 unknown collaboration number, -9 busy); only a broken envelope or an internal
error is a SOAP fault. Dedupes on ``PACKAGEHEAD/SJBBH``.

Statuses (:mod:`gateway.simulators.statuses`): a case starts at ``BLZT`` 26 (已接件); the control
API moves it in Tianjin's vendor numeric codes (26, 28, 30, 90, 97, 98, 99; ``BJJG`` 1 准予 /
2 不予). ``queryStatus`` answers by ``SLBH`` or ``SJBBH`` (CODE -4 for a case it does not hold);
with a callback URL configured, every status change is posted to it as ``notifyStatus``
(StatusNotify.wsdl) with the configured ``auth_code``.

Beijing's notifications (issue 15): ``notifyStatus(authCode, xmlData)`` at ``notify_path``
(``/tianjin/StatusNotify``, StatusNotify.wsdl served at ``?wsdl`` with this address), the inner
PACKAGE checked against status-notify.xsd, deduped on ``PACKAGEHEAD/TZBH``; what arrived is
``notifications`` in ``/__sim/state`` (``received``, ``unique``, ``duplicates``, ``records``).

Extra ``/__sim/behaviour`` modes: ``business_error`` (``code``/``message`` override -3),
``throttle`` (CODE -9), ``fault_sender`` (``soap:Client``), ``fault_receiver`` (``soap:Server``,
HTTP 500), ``malformed`` (a ``<return>`` whose document is cut off).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from lxml import etree

from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.soap_xml_string import encode_inner
from gateway.simulators.base import (
    SIM_STATE,
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
    plain_time,
)

SCHEMAS = soap.PROJECT_ROOT / "schemas" / "tianjin"
WSDL = SCHEMAS / "ExchangeService.wsdl"
NOTIFY_WSDL = SCHEMAS / "StatusNotify.wsdl"
TNS = "http://exchange.zwfw.tj.example/"
DEFAULT_AUTH_CODE = "TJ-DEMO-AUTHCODE-0001"
DEFAULT_COLLABORATIONS = ("BJTJ-XZ-2024-001",)
MAX_BODY = 2 * 1024 * 1024
#: what Tianjin sends as authCode when it calls the receiver (the receiver issues it)
DEFAULT_CALLBACK_AUTH_CODE = "TJ-NOTIFY-AUTHCODE-0001"
#: a Tianjin licensing body's USCC (synthetic, valid GB 32100 check character)
ISSUER_USCC = "11120000000012345M"

CONFIG = web.AppKey("tianjin_config", dict)


def create_app(*, auth_code: str = DEFAULT_AUTH_CODE,
               collaboration_numbers: tuple[str, ...] | list[str] = DEFAULT_COLLABORATIONS,
               path: str = "/tianjin/ExchangeService", receipt_prefix: str = "TJSL",
               allowed_ips: tuple[str, ...] | list[str] | None = None,
               callback_url: str | None = None, callback_auth: Mapping[str, Any] | None = None,
               dedupe: bool = True, notify_path: str = "/tianjin/StatusNotify",
               **_: Any) -> web.Application:
    """The simulator application; keyword options only (same style as every simulator).

    ``allowed_ips`` plays the IP allow-list Tianjin keeps in front of the service (HTTP 403
    for anyone else); ``None`` allows every caller. ``callback_url``/``callback_auth``
    (``{"auth_code"}``) and ``dedupe`` are the start-up values of ``/__sim/config``.
    """
    app = web.Application(client_max_size=MAX_BODY)
    app[CONFIG] = {
        "allowed_ips": frozenset(allowed_ips) if allowed_ips is not None else None,
        "auth_code": auth_code,
        "collaborations": frozenset(collaboration_numbers),
        "schema": safexml.load_schema(SCHEMAS / "package.xsd"),
        "query_schema": safexml.load_schema(SCHEMAS / "status-query.xsd"),
        "wsdl": WSDL.read_bytes(),
        "notify_schema": safexml.load_schema(SCHEMAS / "status-notify.xsd"),
        "notify_wsdl": NOTIFY_WSDL.read_bytes(),
    }
    config = StatusConfig(callback_url, dict(callback_auth or {}), dedupe=dedupe)
    add_control_routes(app, NotifiedState("tianjin", receipt_prefix, profile=PROFILE,
                                         config=config))
    app.router.add_get(path, _wsdl)
    app.router.add_post(path, _submit)
    app.router.add_get(notify_path, _notify_wsdl)
    app.router.add_post(notify_path, _notified)
    return app


async def _notify_wsdl(request: web.Request) -> web.Response:
    if "wsdl" not in {k.lower() for k in request.query}:
        return web.Response(status=404, text="append ?wsdl")
    return web.Response(body=served_wsdl(request.app[CONFIG]["notify_wsdl"],
                                         str(request.url.with_query(None))),
                        content_type="text/xml", charset="utf-8")


async def _notified(request: web.Request) -> web.StreamResponse:
    """``notifyStatus`` from Beijing: RESULT CODE 0 taken (a resend of a TZBH too), -1 a wrong
    authCode, -2 an inner document that is not status-notify.xsd's (naming the line)."""
    state = request.app[SIM_STATE]
    cfg = request.app[CONFIG]
    opened = await soap_request(request, state,
                             too_large=lambda: _fault("Sender", f"报文过大: 超过 {MAX_BODY} 字节"),
                             malformed=lambda why: _fault("Sender", f"报文格式错误: {why}"))
    if isinstance(opened, web.StreamResponse):
        return opened
    b, env = opened
    if env.version is not soap.SOAP11:
        return _fault("VersionMismatch", "only SOAP 1.1 is supported")
    if b.mode == "throttle":
        return _result(result_document(int(b.code or -9), b.message or "系统繁忙，请稍后重试"),
                       "notifyStatus")
    call = env.body[0] if env.body else None
    if call is None or call.tag != f"{{{TNS}}}notifyStatus":
        return _fault("Sender", "unknown operation")
    if (call.findtext("authCode") or "") != cfg["auth_code"]:
        return _result(result_document(-1, "授权码无效"), "notifyStatus")
    data = call.findtext("xmlData") or ""
    try:
        pkg = safexml.parse_text(data)
    except safexml.XmlError as e:
        return _result(result_document(-2, f"通知报文不是合法的XML: {e.reason}"), "notifyStatus")
    errors = safexml.schema_errors(cfg["notify_schema"], pkg)
    if errors:
        return _result(result_document(-2, "数据校验失败: " + "; ".join(errors)), "notifyStatus")
    tzbh = pkg.findtext("PACKAGEHEAD/TZBH") or ""
    assert isinstance(state, NotifiedState)
    duplicate = state.notified(tzbh, {"TZBH": tzbh, "xmlData": data, "records": records(pkg)})
    return _result(result_document(0, "重复通知，已接收" if duplicate else "接收成功"),
                   "notifyStatus")


async def _wsdl(request: web.Request) -> web.Response:
    if "wsdl" not in {k.lower() for k in request.query}:
        return web.Response(status=404, text="append ?wsdl")
    return web.Response(body=served_wsdl(request.app[CONFIG]["wsdl"], str(request.url.with_query(None))),
                        content_type="text/xml", charset="utf-8")


def served_wsdl(wsdl: bytes, address: str) -> bytes:
    """The vendored WSDL with its endpoint address pointing at this server."""
    root = safexml.parse(wsdl)
    for addr in root.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address",
                          "{http://schemas.xmlsoap.org/wsdl/soap12/}address"):
        addr.set("location", address)
    return safexml.to_bytes(root)


def _reply(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="text/xml", charset="utf-8")


def _fault(code: str, reason: str) -> web.Response:
    status = 500  # SOAP 1.1 over HTTP: every fault is a 500
    return _reply(status, soap.build_fault(soap.SOAP11, code, reason))


def result_document(code: int, msg: str, *, sjbbh: str | None = None, slbh: str | None = None) -> str:
    """The RESULT document as the text that goes inside ``<return>`` (declared GBK)."""
    r = etree.Element("RESULT")
    etree.SubElement(r, "CODE").text = str(code)
    etree.SubElement(r, "MSG").text = msg
    if sjbbh:
        etree.SubElement(r, "SJBBH").text = sjbbh
    if slbh:
        etree.SubElement(r, "SLBH").text = slbh
    return encode_inner(r, "GBK", reject_rare=False)


def _result(text: str, operation: str = "submitCase") -> web.Response:
    wrapper = etree.Element(etree.QName(TNS, f"{operation}Response"), nsmap={"ns2": TNS})
    etree.SubElement(wrapper, "return").text = text
    return _reply(200, soap.build_envelope(soap.SOAP11, wrapper))


async def _submit(request: web.Request) -> web.StreamResponse:
    state = request.app[SIM_STATE]
    cfg = request.app[CONFIG]
    if cfg["allowed_ips"] is not None and request.remote not in cfg["allowed_ips"]:
        return web.Response(status=403, text="403 Forbidden: address not on the allow-list")
    opened = await soap_request(request, state,
                             too_large=lambda: _fault("Sender", f"报文过大: 超过 {MAX_BODY} 字节"),
                             malformed=lambda why: _fault("Sender", f"报文格式错误: {why}"))
    if isinstance(opened, web.StreamResponse):
        return opened
    b, env = opened
    if env.version is not soap.SOAP11:
        return _fault("VersionMismatch", "only SOAP 1.1 is supported")
    if b.mode == "fault_sender":
        return _fault("Sender", b.message or "请求参数错误")
    if b.mode == "fault_receiver":
        return _fault("Receiver", b.message or "服务内部错误")
    if b.mode == "throttle":
        return _result(result_document(int(b.code or -9), b.message or "系统繁忙，请稍后重试"))
    if b.mode == "malformed":
        return _result(result_document(0, "接收成功")[:60])
    call = env.body[0] if env.body else None
    if call is not None and call.tag == f"{{{TNS}}}queryStatus":
        return _query(state, cfg, call)
    if call is None or call.tag != f"{{{TNS}}}submitCase":
        return _fault("Sender", "unknown operation")
    auth = call.findtext("authCode") or ""
    data = call.findtext("xmlData") or ""
    if auth != cfg["auth_code"]:
        return _result(result_document(-1, "授权码无效"))
    try:
        pkg = safexml.parse_text(data)
    except safexml.XmlError as e:
        return _result(result_document(-2, f"数据包不是合法的XML: {e.reason}"))
    errors = safexml.schema_errors(cfg["schema"], pkg)
    if errors:
        return _result(result_document(-2, "数据校验失败: " + "; ".join(errors)))
    key = pkg.findtext("PACKAGEHEAD/SJBBH") or ""
    if pkg.findtext("PACKAGEHEAD/XZBH") not in cfg["collaborations"]:
        return _result(result_document(-3, "协作编号不存在", sjbbh=key))
    if b.mode == "business_error":
        return _result(result_document(int(b.code or -3), b.message or "协作编号不存在", sjbbh=key))
    first = pkg.find("DATA/RECORD")
    refs = {k: first.findtext(k) for k in ("SBLSH", "SXBM")} if first is not None else {}
    with state.handling(key):
        got = state.accept(key, payload={"records": records(pkg), "xmlData": data},
                           headers={"X-Correlation-Id": request.headers.get("X-Correlation-Id", "")},
                           refs=refs)
    msg = "重复数据包，已受理" if got.duplicate else "接收成功"
    return _result(result_document(0, msg, sjbbh=key, slbh=got.receipt_no))


#: RECORD children that hold a list of like elements (materials, e-licences, form fields)
_LISTS = ("CLXX", "DZZZXX", "BDXX")


def records(pkg: etree._Element) -> list[dict[str, Any]]:
    """RECORDs as dicts for tests and the demo: simple fields as text; CLXX (materials), DZZZXX
    (e-licences) and BDXX (form fields) as lists of dicts; LBXX (多地联办: lead region and
    department, and LBDQ, every joint region with SFBD 1 for Tianjin's own) as a dict whose LBDQ
    is a list."""
    out = []
    for rec in pkg.iterfind("DATA/RECORD"):
        d: dict[str, Any] = {}
        for f in rec:
            if f.tag in _LISTS:
                d[f.tag] = [{c.tag: c.text for c in el} for el in f]
            elif f.tag == "LBXX":
                joint: dict[str, Any] = {"LBDQ": []}
                for c in f:
                    if c.tag == "LBDQ":
                        joint["LBDQ"].append({x.tag: x.text for x in c})
                    else:
                        joint[str(c.tag)] = c.text  # parsed: a tag is always text
                d["LBXX"] = joint
            else:
                d[str(f.tag)] = f.text
        out.append(d)
    return out


# -- statuses: queryStatus, notifyStatus ---------------------------------------------------------

def _query(state: SimulatorState, cfg: dict[str, Any], call: etree._Element) -> web.Response:
    """``queryStatus``: the case named by SLBH or SJBBH, CODE -4 when Tianjin holds none."""
    def answer(text: str) -> web.Response:
        return _result(text, "queryStatus")

    if (call.findtext("authCode") or "") != cfg["auth_code"]:
        return answer(status_result(-1, "授权码无效"))
    try:
        query = safexml.parse_text(call.findtext("xmlData") or "")
    except safexml.XmlError as e:
        return answer(status_result(-2, f"查询报文不是合法的XML: {e.reason}"))
    errors = safexml.schema_errors(cfg["query_schema"], query)
    if errors:
        return answer(status_result(-2, "数据校验失败: " + "; ".join(errors)))
    if query.findtext("XZBH") not in cfg["collaborations"]:
        return answer(status_result(-3, "协作编号不存在"))
    case = state.book.find(receipt=query.findtext("SLBH"), key=query.findtext("SJBBH"))
    if case is None:
        return answer(status_result(-4, "办件不存在"))
    return answer(status_result(0, "查询成功", case))


def status_result(code: int, msg: str, case: SimCase | None = None) -> str:
    """The queryStatus reply (status-result.xsd) as the text that goes inside ``<return>``."""
    r = etree.Element("RESULT")
    etree.SubElement(r, "CODE").text = str(code)
    etree.SubElement(r, "MSG").text = msg
    if case is not None:
        status_fields(r, case, case.current)
        history = etree.SubElement(r, "LSJL")
        for e in case.history:
            jl = etree.SubElement(history, "JL")
            etree.SubElement(jl, "BLZT").text = e.status
            etree.SubElement(jl, "BLSJ").text = plain_time(e.at)
            if e.message:
                etree.SubElement(jl, "BLYJ").text = e.message
    return encode_inner(r, "GBK", reject_rare=False)


def status_fields(parent: etree._Element, case: SimCase, event: StatusEvent) -> None:
    """The status fields of status-types.xsd, in their order, for one case at one event."""
    def add(tag: str, value: str | None) -> None:
        if value:
            etree.SubElement(parent, tag).text = value

    add("SLBH", case.receipt)
    add("SJBBH", case.key)
    add("SBLSH", case.refs.get("SBLSH"))
    add("SXBM", case.refs.get("SXBM"))
    add("BLZT", event.status)
    add("BLSJ", plain_time(event.at))
    add("BLBM", event.department)
    add("BLYJ", event.message)
    add("BJJG", event.result)
    if event.licences:
        box = etree.SubElement(parent, "DZZZXX")
        for lic in event.licences:
            zz = etree.SubElement(box, "ZZ")
            for tag, key in (("ZZBH", "licenceId"), ("ZZLXDM", "typeCode"), ("ZZMC", "name"),
                             ("CZZTZJHM", "holderCertNo")):
                if lic.get(key):
                    etree.SubElement(zz, tag).text = lic[key]


def notify_document(case: SimCase, event: StatusEvent) -> str:
    """The notifyStatus inner PACKAGE (status-notify.xsd), declared GBK, as text for xmlData.
    TZBH is the event's id: a resend of the same event carries the same TZBH."""
    pkg = etree.Element("PACKAGE")
    head = etree.SubElement(pkg, "PACKAGEHEAD")
    for tag, value in (("TZBH", event.event_id), ("XZBH", DEFAULT_COLLABORATIONS[0]),
                       ("FSFBM", "120000000000"), ("JSFBM", "110000000000"),
                       ("FSSJ", now().strftime("%Y%m%d%H%M%S")), ("JLS", "1")):
        etree.SubElement(head, tag).text = value
    status_fields(etree.SubElement(etree.SubElement(pkg, "DATA"), "RECORD"), case, event)
    return encode_inner(pkg, "GBK", reject_rare=False)


class Notifier:
    """Tianjin calls the receiver: SOAP 1.1 ``notifyStatus(authCode, xmlData)``."""

    def request(self, case: SimCase, event: StatusEvent,
                auth: Mapping[str, Any]) -> CallbackRequest:
        call = etree.Element(etree.QName(TNS, "notifyStatus"), nsmap={"tns": TNS})
        etree.SubElement(call, "authCode").text = str(auth.get("auth_code", ""))
        etree.SubElement(call, "xmlData").text = notify_document(case, event)
        return CallbackRequest(soap.build_envelope(soap.SOAP11, call),
                               soap.SOAP11.http_headers(""))

    def verdict(self, status: int, body: bytes) -> dict[str, Any]:
        try:
            env = soap.parse_envelope(body)
        except safexml.XmlError as e:
            return {"ok": False, "code": None, "message": f"unreadable answer: {e.reason}"}
        if env.fault is not None:
            return {"ok": False, "code": env.fault.code, "message": env.fault.reason}
        ret = env.body[0].find("return") if env.body else None
        try:
            result = safexml.parse_text((ret.text or "") if ret is not None else "")
        except safexml.XmlError as e:
            return {"ok": False, "code": None, "message": f"unreadable RESULT: {e.reason}"}
        code = (result.findtext("CODE") or "").strip()
        return {"ok": status == 200 and code == "0", "code": code,
                "message": result.findtext("MSG")}


def _licence(case: SimCase) -> dict[str, str]:
    serial = "".join(ch for ch in case.receipt if ch.isdigit())[-8:]
    return {"licenceId": f"1.2.156.3005.2.{ISSUER_USCC}.001.{serial}",
            "typeCode": f"{ISSUER_USCC}001", "name": "准予行政许可决定书"}


PROFILE = StatusProfile(
    initial="26",
    codes=frozenset({"26", "28", "30", "90", "97", "98", "99"}),
    results=frozenset({"1", "2"}),
    paths={
        "approved": (("30", None), ("90", "1")),
        "denied": (("30", None), ("90", "2")),
        "supplement": (("28", None), ("30", None), ("90", "1")),
        "not_accepted": (("97", None),),
        "withdrawn": (("30", None), ("98", None)),
        "voided": (("30", None), ("99", None)),
    },
    notifier=Notifier(),
    default_auth={"auth_code": DEFAULT_CALLBACK_AUTH_CODE},
    granted="1",
    licence=_licence,
)
