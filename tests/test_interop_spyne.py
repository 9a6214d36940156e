"""Interop: the gateway's SOAP clients against partners built with spyne, a SOAP server stack
nobody here wrote (test-only dependency, ``pip install spyne``; spyne 2.14 runs on Python 3.11).

Each partner is a spyne ``Application`` served by wsgiref on 127.0.0.1 in a thread. The clients
are configured with the WSDL *spyne* generates (fetched from its ``?wsdl`` and saved as a file,
the way a vendored WSDL is), so they must follow another stack's conventions: spyne qualifies
parameters (the vendored Tianjin WSDL does not), sets its own soapAction, and writes its own
faults. WS-Security is checked here with hashlib directly — not with gateway.protocols.wsse —
and the inner GBK document is read with plain lxml.
"""

from __future__ import annotations

import base64
import hashlib
import socketserver
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import aiohttp
import pytest
from lxml import etree

try:  # test-only dependency; spyne 2.14 imports `cgi`, which Python 3.13 removed
    from spyne import (Application, ComplexModel, DateTime, Fault, Integer, ServiceBase,
                       Unicode, rpc)
    from spyne.protocol.soap import Soap11, Soap12
    from spyne.server.wsgi import WsgiApplication
except ImportError as e:  # pragma: no cover - depends on the environment
    pytest.skip(f"spyne unavailable: {e}", allow_module_level=True)

from gateway.config import PartnerSettings  # noqa: E402
from gateway.outcome import OutcomeKind  # noqa: E402
from gateway.protocols import soap_typed, soap_xml_string  # noqa: E402
from gateway.protocols import xml as safexml  # noqa: E402
from tests.soap_contracts import contract_options  # noqa: E402

FIX = Path(__file__).parent / "fixtures" / "soap"
TJ = "http://exchange.zwfw.tj.example/"
HB = "http://zwfw.hebei.example/exchange/v1"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
AUTH = "SPYNE-TJ-AUTH"
RARE = "吉\U00020BB7"
RECEIVED: dict[str, dict[str, str]] = {"tj": {}, "hb": {}}


# -- a Tianjin-style partner in spyne (SOAP 1.1, one string in, one string out) ----------------

def result_text(code: int, msg: str, receipt: str | None = None) -> str:
    r = etree.Element("RESULT")
    etree.SubElement(r, "CODE").text = str(code)
    etree.SubElement(r, "MSG").text = msg
    if receipt:
        etree.SubElement(r, "SLBH").text = receipt
    return etree.tostring(r, encoding="GBK", xml_declaration=True).decode("gb18030")


class ExchangeService(ServiceBase):
    @rpc(Unicode, Unicode, _returns=Unicode, _in_message_name="submitCase",
         _out_message_name="submitCaseResponse", _out_variable_name="return")
    def submitCase(ctx, authCode, xmlData):  # noqa: N802,N803 - the partner's names
        if authCode != AUTH:
            return result_text(-1, "授权码无效")
        parser = etree.XMLParser(encoding="gb18030", resolve_entities=False, no_network=True)
        pkg = etree.fromstring(xmlData.encode("gb18030"), parser)
        name = pkg.findtext("DATA/RECORD/SQRMC")
        if name == "FAULT-SERVER":
            raise Fault("Server", "下游系统不可用")
        if name == "FAULT-CLIENT":
            raise Fault("Client", "参数错误")
        if pkg.findtext("PACKAGEHEAD/XZBH") != "BJTJ-XZ-2024-001":
            return result_text(-3, "协作编号不存在")
        key = pkg.findtext("PACKAGEHEAD/SJBBH")
        seen = RECEIVED["tj"]
        receipt = seen.setdefault(key, f"SPYNE-TJ-{len(seen) + 1:04d}")
        seen[key + ":name"] = name
        return result_text(0, "接收成功", receipt)


# -- a Hebei-style partner in spyne (SOAP 1.2, typed, WS-Security) -----------------------------

class Person(ComplexModel):
    __namespace__ = HB
    _type_info = [("name", Unicode), ("certType", Unicode), ("certNo", Unicode),
                  ("phone", Unicode)]


class Applicant(ComplexModel):
    __namespace__ = HB
    _type_info = [("applicantType", Unicode), ("name", Unicode), ("certType", Unicode),
                  ("certNo", Unicode), ("phone", Unicode), ("address", Unicode),
                  ("legalRepresentative", Person)]


class Item(ComplexModel):
    __namespace__ = HB
    _type_info = [("itemNo", Unicode), ("basicCode", Unicode), ("implementationCode", Unicode),
                  ("itemName", Unicode), ("handlingRegion", Unicode), ("department", Unicode)]


class Items(ComplexModel):
    __namespace__ = HB
    _type_info = [("item", Item.customize(max_occurs="unbounded"))]


class Material(ComplexModel):
    __namespace__ = HB
    _type_info = [("materialCode", Unicode), ("name", Unicode),
                  ("itemNo", Unicode.customize(max_occurs="unbounded")), ("fileRef", Unicode),
                  ("pages", Integer)]


class Materials(ComplexModel):
    __namespace__ = HB
    _type_info = [("material", Material.customize(max_occurs="unbounded"))]


class Case(ComplexModel):
    __namespace__ = HB
    _type_info = [("caseNo", Unicode), ("submitTime", DateTime), ("channel", Unicode),
                  ("receivingRegion", Unicode), ("crossRegionMode", Unicode),
                  ("applicant", Applicant), ("items", Items), ("materials", Materials)]


class MessageHeader(ComplexModel):
    __namespace__ = HB
    _type_info = [("messageId", Unicode), ("correlationId", Unicode), ("senderCode", Unicode),
                  ("sentAt", Unicode)]


def check_username_token(ctx: Any) -> None:
    """WS-Security UsernameToken digest, written from the OASIS profile with hashlib."""
    sec = next((h for h in ctx.in_header_doc or [] if h.tag == f"{{{WSSE}}}Security"), None)
    if sec is None:
        raise Fault("Client.InvalidSecurity", "no wsse:Security")
    tok = sec.find(f"{{{WSSE}}}UsernameToken")
    nonce = base64.b64decode(tok.findtext(f"{{{WSSE}}}Nonce"))
    created = tok.findtext(f"{{{WSU}}}Created")
    want = base64.b64encode(hashlib.sha1(nonce + created.encode() + b"spyne-secret").digest())
    if tok.findtext(f"{{{WSSE}}}Username") != "BJ-GATEWAY" or \
            tok.findtext(f"{{{WSSE}}}Password").encode() != want:
        raise Fault("Client.FailedAuthentication", "authentication failed")


class CaseExchange(ServiceBase):
    __in_header__ = MessageHeader

    @rpc(Case, _returns=(Unicode, Unicode, Unicode),
         _out_variable_names=("resultCode", "resultMessage", "receiptNo"),
         _in_message_name="SubmitCaseRequest", _out_message_name="SubmitCaseResponse")
    def SubmitCase(ctx, case):  # noqa: N802 - the partner's operation name
        check_username_token(ctx)
        if case.applicant.name == "FAULT-RECEIVER":
            raise Fault("Server.Unavailable", "审批系统维护中")
        if case.items.item[0].implementationCode == "UNKNOWN":
            return "2001", "事项编码不存在", None
        key = ctx.in_header.messageId
        seen = RECEIVED["hb"]
        receipt = seen.setdefault(key, f"SPYNE-HB-{len(seen) + 1:04d}")
        seen[key + ":name"] = case.applicant.name
        return "0000", "受理成功", receipt


# -- serving -------------------------------------------------------------------------------------

class _Quiet(WSGIRequestHandler):
    timeout = 30  # a connection that never completes its request cannot hold a thread forever

    def log_message(self, *args: Any) -> None:
        pass


class _Threading(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per connection: on a loaded machine one slow exchange (the gateway gave up on
    it) must not hold up the next test's requests behind it."""

    daemon_threads = True


def serve(app: Application) -> Iterator[str]:
    server: WSGIServer = make_server("127.0.0.1", 0, WsgiApplication(app), server_class=_Threading,
                                     handler_class=_Quiet)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def tj_url() -> Iterator[str]:
    yield from serve(Application([ExchangeService], TJ, name="ExchangeService",
                                 in_protocol=Soap11(validator="lxml"), out_protocol=Soap11()))


@pytest.fixture(scope="module")
def hb_url() -> Iterator[str]:
    yield from serve(Application([CaseExchange], HB, name="CaseExchange",
                                 in_protocol=Soap12(validator="lxml"), out_protocol=Soap12()))


def fetch_wsdl(url: str, dest: Path) -> str:
    with urllib.request.urlopen(url + "?wsdl", timeout=30) as r:  # loopback only
        dest.write_bytes(r.read())
    return str(dest)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


def package(name: str, xzbh: str = "BJTJ-XZ-2024-001") -> etree._Element:
    root = safexml.parse((FIX / "tianjin-package.xml").read_bytes())
    root.find("DATA/RECORD/SQRMC").text = name
    root.find("PACKAGEHEAD/XZBH").text = xzbh
    return root


@pytest.fixture
def tj_client(tj_url, tmp_path, http):
    settings = PartnerSettings(
        protocol="soap-xml-string", url=tj_url, mapping="tianjin/case-submit", timeout=20,
        credentials={"auth_code": AUTH},
        options=contract_options("tianjin", wsdl=fetch_wsdl(tj_url, tmp_path / "spyne-tj.wsdl"),
                                 result_schema=None))
    return soap_xml_string.create_client("spyne-tj", settings, http)


async def test_tianjin_style_against_spyne(tj_client):
    out = await tj_client.send(package(RARE), idempotency_key="sp-1", correlation_id="c")
    assert out.kind is OutcomeKind.DELIVERED and out.receipt_no.startswith("SPYNE-TJ-"), out
    assert RECEIVED["tj"]["sp-1:name"] == RARE
    again = await tj_client.send(package(RARE), idempotency_key="sp-1", correlation_id="c")
    assert again.receipt_no == out.receipt_no


@pytest.mark.parametrize("name,xzbh,kind,code", [
    ("测试", "NO-SUCH", OutcomeKind.PERMANENT, "-3"),
    ("FAULT-CLIENT", "BJTJ-XZ-2024-001", OutcomeKind.PERMANENT, "Client"),
    ("FAULT-SERVER", "BJTJ-XZ-2024-001", OutcomeKind.RETRYABLE, "Server"),
])
async def test_tianjin_style_rejections_from_spyne(tj_client, name, xzbh, kind, code):
    out = await tj_client.send(package(name, xzbh), idempotency_key="sp-x", correlation_id="c")
    assert (out.kind, out.partner_code) == (kind, code), out


def hb_settings(url: str, wsdl: str, password: str = "spyne-secret") -> PartnerSettings:
    return PartnerSettings(
        protocol="soap-typed", url=url, mapping="hebei/case-submit", timeout=20,
        credentials={"username": "BJ-GATEWAY", "password": password},
        options=contract_options("hebei", wsdl=wsdl, body_schema=None))


def hebei_payload(name: str = RARE, implementation_code: str | None = None) -> etree._Element:
    root = safexml.parse((FIX / "hebei-request.xml").read_bytes())
    root.find(f".//{{{HB}}}applicant/{{{HB}}}name").text = name
    if implementation_code:
        root.find(f".//{{{HB}}}implementationCode").text = implementation_code
    return root


async def test_typed_style_against_spyne(hb_url, tmp_path, http):
    wsdl = fetch_wsdl(hb_url, tmp_path / "spyne-hb.wsdl")
    client = soap_typed.create_client("spyne-hb", hb_settings(hb_url, wsdl), http)
    out = await client.send(hebei_payload(), idempotency_key="sp-hb-1", correlation_id="c")
    assert out.kind is OutcomeKind.DELIVERED and out.receipt_no.startswith("SPYNE-HB-"), out
    assert RECEIVED["hb"]["sp-hb-1:name"] == RARE
    again = await client.send(hebei_payload(), idempotency_key="sp-hb-1", correlation_id="c")
    assert again.receipt_no == out.receipt_no


async def test_typed_style_outcomes_from_spyne(hb_url, tmp_path, http):
    wsdl = fetch_wsdl(hb_url, tmp_path / "spyne-hb.wsdl")
    good = soap_typed.create_client("spyne-hb", hb_settings(hb_url, wsdl), http)
    out = await good.send(hebei_payload(implementation_code="UNKNOWN"), idempotency_key="b",
                          correlation_id="c")
    assert (out.kind, out.partner_code, out.message) == (OutcomeKind.PERMANENT, "2001",
                                                        "事项编码不存在")
    out = await good.send(hebei_payload("FAULT-RECEIVER"), idempotency_key="r", correlation_id="c")
    assert (out.kind, out.partner_code) == (OutcomeKind.RETRYABLE, "Unavailable"), out
    assert out.message == "SOAP fault Receiver: 审批系统维护中"
    bad = soap_typed.create_client("spyne-hb", hb_settings(hb_url, wsdl, "wrong"), http)
    out = await bad.send(hebei_payload(), idempotency_key="a", correlation_id="c")
    # spyne answers a Sender fault with HTTP 500; the fault code, not the status, decides
    assert (out.kind, out.partner_code, out.http_status) == (
        OutcomeKind.PERMANENT, "FailedAuthentication", 500), out
