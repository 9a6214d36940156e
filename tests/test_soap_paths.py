"""Result code, message and receipt located by configured XPaths (issue 16, "The SOAP styles are
data, not code"): a partner whose reply keeps its status deeper, or issues no receipt, is
configuration. Each test's partner is an aiohttp server answering a hand-written SOAP reply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree
from xml.sax.saxutils import escape

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.outcome import OutcomeKind
from gateway.protocols import soap_typed, soap_xml_string
from gateway.protocols import xml as safexml
from tests.soap_contracts import contract_options

FIX = Path(__file__).parent / "fixtures" / "soap"
HB = "http://zwfw.hebei.example/exchange/v1"
S12 = "http://www.w3.org/2003/05/soap-envelope"
S11 = "http://schemas.xmlsoap.org/soap/envelope/"
TJ = "http://exchange.zwfw.tj.example/"
NO_FIELDS = dict(code_field=None, message_field=None, receipt_field=None)
DEEP = dict(NO_FIELDS, namespaces={"h": HB}, code_path="h:outcome/h:status/@code",
            message_path="h:outcome/h:status/h:text",
            receipt_path="h:outcome/h:refs/h:ref[@kind='receipt']")


def hebei_reply(inner: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{S12}"><env:Body>'
            f'<hb:SubmitCaseResponse xmlns:hb="{HB}">{inner}</hb:SubmitCaseResponse>'
            f'</env:Body></env:Envelope>').encode()


def deep(code: str, text: str, receipt: str | None) -> bytes:
    ref = f'<hb:ref kind="receipt">{receipt}</hb:ref>' if receipt else ""
    return hebei_reply(f'<hb:outcome><hb:status code="{code}"><hb:text>{text}</hb:text>'
                       f'</hb:status><hb:refs><hb:ref kind="other">X-1</hb:ref>{ref}</hb:refs>'
                       f'</hb:outcome>')


async def partner(aiohttp_server: Any, body: bytes, media: str) -> str:
    """A partner answering every POST with ``body``; its URL."""
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type=media, charset="utf-8")
    app = web.Application()
    app.router.add_post("/svc", answer)
    server = await aiohttp_server(app)
    return str(server.make_url("/svc"))


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


def hebei(url: str, http: aiohttp.ClientSession, **opts: Any) -> soap_typed.TypedSoapClient:
    s = PartnerSettings(protocol="soap-typed", url=url, mapping="hebei/case-submit", timeout=2,
                        credentials={"username": "BJ-GATEWAY", "password": "pw-synthetic"},
                        options=contract_options("hebei", **opts))
    return soap_typed.create_client("hebei", s, http)


def hebei_request() -> etree._Element:
    return safexml.parse((FIX / "hebei-request.xml").read_bytes())


async def send_hebei(aiohttp_server: Any, http: aiohttp.ClientSession, reply: bytes,
                     **opts: Any) -> Any:
    url = await partner(aiohttp_server, reply, "application/soap+xml")
    return await hebei(url, http, **opts).send(hebei_request(), idempotency_key="k-1",
                                               correlation_id="c-1")


async def test_status_deeper_in_the_reply(aiohttp_server, http):
    out = await send_hebei(aiohttp_server, http, deep("0000", "受理成功", "HBSL-DEEP-1"), **DEEP)
    assert out.kind is OutcomeKind.DELIVERED, out
    assert (out.receipt_no, out.partner_code, out.message) == ("HBSL-DEEP-1", "0000", "受理成功")


async def test_deep_rejection_and_retryable_codes(aiohttp_server, http):
    out = await send_hebei(aiohttp_server, http, deep("2001", "材料不全", None), **DEEP)
    assert out.kind is OutcomeKind.PERMANENT and out.partner_code == "2001"
    assert out.message == "材料不全"
    out = await send_hebei(aiohttp_server, http, deep("9001", "忙", None), **DEEP)
    assert out.kind is OutcomeKind.RETRYABLE and out.partner_code == "9001"


async def test_deep_success_without_the_receipt_is_malformed(aiohttp_server, http):
    out = await send_hebei(aiohttp_server, http, deep("0000", "ok", None), **DEEP)
    assert out.kind is OutcomeKind.RETRYABLE
    assert "success without h:outcome/h:refs/h:ref[@kind='receipt']" in out.message


async def test_no_code_at_the_path_is_malformed(aiohttp_server, http):
    out = await send_hebei(aiohttp_server, http, hebei_reply("<hb:outcome/>"), **DEEP)
    assert out.kind is OutcomeKind.RETRYABLE and "no h:outcome/h:status/@code" in out.message


async def test_partner_without_receipts(aiohttp_server, http):
    """``receipt_path: null``: a success is delivered on its code alone."""
    url = await partner(aiohttp_server, deep("0000", "ok", None), "application/soap+xml")
    options = contract_options("hebei", **NO_FIELDS, namespaces={"h": HB},
                               code_path=DEEP["code_path"], message_path=DEEP["message_path"])
    options["receipt_path"] = None  # explicitly null (contract_options drops None values)
    s = PartnerSettings(protocol="soap-typed", url=url, mapping="hebei/case-submit", timeout=2,
                        credentials={"username": "BJ-GATEWAY", "password": "pw-synthetic"},
                        options=options)
    out = await soap_typed.create_client("hebei", s, http).send(
        hebei_request(), idempotency_key="k-2", correlation_id="c-2")
    assert out.kind is OutcomeKind.DELIVERED and out.receipt_no is None, out
    assert out.partner_code == "0000"


async def test_shipped_fields_still_read_children(aiohttp_server, http):
    reply = hebei_reply("<hb:resultCode>0000</hb:resultCode><hb:resultMessage>ok</hb:resultMessage>"
                        "<hb:receiptNo>HBSL-FIELD-1</hb:receiptNo>")
    out = await send_hebei(aiohttp_server, http, reply)
    assert out.kind is OutcomeKind.DELIVERED and out.receipt_no == "HBSL-FIELD-1"
    # and without a receipt, as today, a success is malformed
    reply = hebei_reply("<hb:resultCode>0000</hb:resultCode><hb:resultMessage>ok</hb:resultMessage>")
    out = await send_hebei(aiohttp_server, http, reply)
    assert out.kind is OutcomeKind.RETRYABLE and "success without receiptNo" in out.message


async def test_paths_and_fields_mix(aiohttp_server, http):
    """A path for the code only; the message and receipt stay fields."""
    reply = hebei_reply('<hb:resultCode>ignored</hb:resultCode><hb:meta code="0000"/>'
                        "<hb:resultMessage>ok</hb:resultMessage><hb:receiptNo>HBSL-M</hb:receiptNo>")
    out = await send_hebei(aiohttp_server, http, reply, code_field=None,
                           code_path="string(*[local-name()='meta']/@code)")
    assert out.kind is OutcomeKind.DELIVERED and out.receipt_no == "HBSL-M"


# -- the string style: paths in the result document ---------------------------------------------

def tianjin_reply(document: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{S11}"><soap:Body>'
            f'<tj:submitCaseResponse xmlns:tj="{TJ}"><return>{escape(document)}</return>'
            f'</tj:submitCaseResponse></soap:Body></soap:Envelope>').encode()


def tianjin_package() -> etree._Element:
    return safexml.parse((FIX / "tianjin-package.xml").read_bytes())


async def test_string_style_paths_in_the_inner_document(aiohttp_server, http):
    doc = ('<?xml version="1.0" encoding="UTF-8"?><r:REPLY xmlns:r="urn:example:reply">'
           '<r:HEAD><r:STATUS>0</r:STATUS><r:NOTE>已受理</r:NOTE></r:HEAD>'
           '<r:BODY><r:CASE><r:SLBH>TJSL-DEEP-7</r:SLBH></r:CASE></r:BODY></r:REPLY>')
    url = await partner(aiohttp_server, tianjin_reply(doc), "text/xml")
    s = PartnerSettings(
        protocol="soap-xml-string", url=url, mapping="tianjin/case-submit", timeout=2,
        credentials={"auth_code": "TJ-SYNTHETIC-0001"},
        options=contract_options("tianjin", **NO_FIELDS, result_schema=None,
                                 namespaces={"r": "urn:example:reply"},
                                 code_path="/r:REPLY/r:HEAD/r:STATUS", message_path="r:HEAD/r:NOTE",
                                 receipt_path="r:BODY/r:CASE/r:SLBH"))
    out = await soap_xml_string.create_client("tianjin", s, http).send(
        tianjin_package(), idempotency_key="k-3", correlation_id="c-3")
    assert out.kind is OutcomeKind.DELIVERED, out
    assert (out.receipt_no, out.partner_code, out.message) == ("TJSL-DEEP-7", "0", "已受理")


# -- configuration errors name the option -------------------------------------------------------

@pytest.mark.parametrize("change,key", [
    (dict(code_path="x"), "partners.hebei.options.code_path"),  # and code_field: not both
    (dict(code_field=None), "partners.hebei.options.code_field"),
    (dict(receipt_field=None), "partners.hebei.options.receipt_field"),
    (dict(code_field=None, code_path="h:a/[["), "partners.hebei.options.code_path"),
    (dict(code_field=None, code_path="q:a"), "partners.hebei.options.code_path"),  # undeclared
    (dict(namespaces=["h"]), "partners.hebei.options.namespaces"),
])
def test_config_errors_name_the_option(change, key):
    opts: dict[str, Any] = {"namespaces": {"h": HB}, **change}
    with pytest.raises(ConfigError) as e:
        hebei("http://127.0.0.1:9/svc", None, **opts)  # type: ignore[arg-type]
    assert e.value.key == key, e.value


def test_config_error_says_how_to_declare_no_receipt():
    with pytest.raises(ConfigError) as e:
        hebei("http://127.0.0.1:9/svc", None, receipt_field=None)  # type: ignore[arg-type]
    assert "receipt_path: null" in str(e.value)


def test_the_example_configuration_is_valid():
    """config/examples/soap-partner-as-data.yaml: its options parse and its paths compile."""
    import yaml

    from gateway.protocols.options import parse_options
    from gateway.protocols.soap_client import ResultPaths

    example = Path(__file__).resolve().parent.parent / "config" / "examples" / \
        "soap-partner-as-data.yaml"
    entry = yaml.safe_load(example.read_text(encoding="utf-8"))["partners"]["acme"]
    options = parse_options(soap_typed.TypedOptions, "acme", entry["options"])
    paths = ResultPaths.of("acme", options)
    assert paths.receipt is None and paths.code.xpath is not None
    assert [h.mapping for h in options.headers][0] == "acme/header-routing"
    assert options.binding == "CasesSoap12Binding"
    reply = etree.fromstring(
        b'<a:SubmitResponse xmlns:a="urn:example:acme:cases"><a:outcome>'
        b'<a:status code="OK"><a:text>accepted</a:text></a:status></a:outcome></a:SubmitResponse>')
    got = paths.read(reply, lambda el, name: "")
    assert (got.code, got.message, got.receipt) == ("OK", "accepted", None)
