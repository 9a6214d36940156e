"""Several SOAP header blocks, each rendered by a mapping (issue 16, "The SOAP styles are data,
not code"): option ``headers: [{mapping: name}]``. The partner is an aiohttp server that keeps
what it receives and answers a hand-written success reply."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.outcome import OutcomeKind
from gateway.protocols import create_client, soap, soap_typed, soap_xml_string
from gateway.protocols import xml as safexml
from tests.soap_contracts import contract_options

FIX = Path(__file__).parent / "fixtures" / "soap"
HB = "http://zwfw.hebei.example/exchange/v1"
TJ = "http://exchange.zwfw.tj.example/"
X = "urn:example:headers"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NAMES = ("Routing", "Trace", "Tenant", "Audit", "Priority")

HEADERS_XSD = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{X}"
           xmlns:x="{X}" elementFormDefault="qualified">
  <xs:complexType name="Block">
    <xs:sequence>
      <xs:element name="value" type="xs:string"/>
      <xs:element name="messageId" type="xs:string"/>
      <xs:element name="correlationId" type="xs:string" minOccurs="0"/>
    </xs:sequence>
    <xs:attribute name="seq" type="xs:int" use="required"/>
  </xs:complexType>
  {"".join(f'<xs:element name="{n}" type="x:Block"/>' for n in NAMES)}
</xs:schema>
"""


def header_mapping(n: int, name: str, value: str) -> str:
    return f"""version: "1"
description: header block {name} (test)
context: [correlation]
target:
  kind: xml
  schema: headers.xsd
  element: "{{{X}}}{name}"
fields:
  "@seq": {{const: "{n}"}}
  value: {value}
  messageId: $idempotencyKey
  correlationId: $correlation
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> MappingRegistry:
    root = tmp_path_factory.mktemp("headers")
    (root / "schemas").mkdir()
    (root / "schemas" / "headers.xsd").write_text(HEADERS_XSD, encoding="utf-8")
    folder = root / "mappings" / "hdr"
    folder.mkdir(parents=True)
    values = ["case.caseNo", "{const: T-1}", "$partner", "{const: A-1}", "{const: HIGH}"]
    for n, (name, value) in enumerate(zip(NAMES, values, strict=True)):
        (folder / f"{name.lower()}.yaml").write_text(header_mapping(n, name, value),
                                                    encoding="utf-8")
    # one that needs a value the message lacks
    (folder / "broken.yaml").write_text(header_mapping(9, "Audit", "{from: nothing, required: true}"),
                                        encoding="utf-8")
    # one whose target is JSON: not a header block
    (folder / "json.yaml").write_text('version: "1"\ntarget: {kind: json}\nfields: {a: b}\n',
                                      encoding="utf-8")
    return MappingRegistry.load(root / "mappings", root / "schemas")


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


SUCCESS = (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{soap.SOAP12_NS}">'
           f'<env:Body><hb:SubmitCaseResponse xmlns:hb="{HB}"><hb:resultCode>0000</hb:resultCode>'
           f'<hb:resultMessage>ok</hb:resultMessage><hb:receiptNo>HBSL-H-1</hb:receiptNo>'
           f'</hb:SubmitCaseResponse></env:Body></env:Envelope>').encode()


async def partner(aiohttp_server: Any, reply: bytes, media: str) -> tuple[str, list[bytes]]:
    got: list[bytes] = []

    async def answer(request: web.Request) -> web.Response:
        got.append(await request.read())
        return web.Response(body=reply, content_type=media, charset="utf-8")
    app = web.Application()
    app.router.add_post("/svc", answer)
    server = await aiohttp_server(app)
    return str(server.make_url("/svc")), got


def hebei_settings(url: str, headers: list[dict[str, str]]) -> PartnerSettings:
    return PartnerSettings(protocol="soap-typed", url=url, mapping="hebei/case-submit", timeout=2,
                           credentials={"username": "BJ-GATEWAY", "password": "pw-synthetic"},
                           options=contract_options("hebei", headers=headers))


def five() -> list[dict[str, str]]:
    return [{"mapping": f"hdr/{n.lower()}"} for n in NAMES]


async def test_five_headers_arrive_in_order_each_valid(aiohttp_server, http, registry):
    url, got = await partner(aiohttp_server, SUCCESS, "application/soap+xml")
    # built as the application builds it: through gateway.protocols.create_client
    c = create_client("hebei", hebei_settings(url, five()), http, registry.get)
    request = safexml.parse((FIX / "hebei-request.xml").read_bytes())
    out = await c.send(request, idempotency_key="k-h1", correlation_id="corr 1")
    assert out.kind is OutcomeKind.DELIVERED, out
    env = soap.parse_envelope(got[0])
    tags = [etree.QName(h) for h in env.headers]
    # WS-Security first, then the header the WSDL declares, then the five, in order
    assert [(q.namespace, q.localname) for q in tags] == [
        (WSSE, "Security"), (HB, "MessageHeader"), *((X, n) for n in NAMES)]
    schema = etree.XMLSchema(etree.fromstring(HEADERS_XSD.encode()))
    blocks = env.headers[2:]
    for n, block in enumerate(blocks):
        schema.assertValid(etree.fromstring(etree.tostring(block)))  # as the partner reads it
        assert block.get("seq") == str(n)
        assert block.findtext(f"{{{X}}}messageId") == "k-h1"
        assert block.findtext(f"{{{X}}}correlationId") == "corr-1"
    assert [b.findtext(f"{{{X}}}value") for b in blocks] == [
        "BJ2026113000000011", "T-1", "hebei", "A-1", "HIGH"]


async def test_string_style_header_reads_the_inner_document(aiohttp_server, http, tmp_path):
    result = ('<?xml version="1.0" encoding="UTF-8"?><RESULT><CODE>0</CODE><MSG>ok</MSG>'
              '<SLBH>TJSL-H-1</SLBH></RESULT>')
    reply = (f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{soap.SOAP11_NS}">'
             f'<soap:Body><tj:submitCaseResponse xmlns:tj="{TJ}"><return>{escape(result)}'
             f'</return></tj:submitCaseResponse></soap:Body></soap:Envelope>').encode()
    url, got = await partner(aiohttp_server, reply, "text/xml")
    # the Routing mapping reads case.caseNo; the inner document has PACKAGEHEAD/SJBBH instead
    (mdir := tmp_path / "m" / "hdr").mkdir(parents=True)
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "headers.xsd").write_text(HEADERS_XSD, encoding="utf-8")
    (mdir / "routing.yaml").write_text(header_mapping(0, "Routing", "PACKAGEHEAD.SJBBH"),
                                       encoding="utf-8")
    reg = MappingRegistry.load(tmp_path / "m", tmp_path / "s")
    s = PartnerSettings(protocol="soap-xml-string", url=url, mapping="tianjin/case-submit",
                        timeout=2, credentials={"auth_code": "TJ-SYNTHETIC-0001"},
                        options=contract_options("tianjin", result_schema=None,
                                                 headers=[{"mapping": "hdr/routing"}]))
    c = soap_xml_string.create_client("tianjin", s, http, reg.get)
    package = safexml.parse((FIX / "tianjin-package.xml").read_bytes())
    out = await c.send(package, idempotency_key="k-h2", correlation_id="c")
    assert out.kind is OutcomeKind.DELIVERED, out
    (block,) = soap.parse_envelope(got[0]).headers
    assert block.findtext(f"{{{X}}}value") == "k-h2"  # SJBBH carries the idempotency key


async def test_a_header_that_cannot_be_rendered_is_not_sent(aiohttp_server, http, registry):
    url, got = await partner(aiohttp_server, SUCCESS, "application/soap+xml")
    c = soap_typed.create_client("hebei", hebei_settings(
        url, [{"mapping": "hdr/routing"}, {"mapping": "hdr/broken"}]), http, registry.get)
    request = safexml.parse((FIX / "hebei-request.xml").read_bytes())
    out = await c.send(request, idempotency_key="k-h3", correlation_id="c")
    assert out.kind is OutcomeKind.PERMANENT and "header 1 (hdr/broken)" in out.message, out
    assert got == []


@pytest.mark.parametrize("headers,key", [
    ([{"mapping": "hdr/nope"}], "partners.hebei.options.headers.0.mapping"),
    ([{"mapping": "hdr/routing"}, {"mapping": "hdr/json"}],
     "partners.hebei.options.headers.1.mapping"),
    ([{"mapping": "hdr/routing", "version": "7"}], "partners.hebei.options.headers.0.mapping"),
    ([{"mapping": "hdr/routing", "colour": "blue"}], "partners.hebei.options.headers.0.colour"),
    ([{}], "partners.hebei.options.headers.0.mapping"),
])
def test_config_errors_name_the_header(registry, headers, key):
    with pytest.raises(ConfigError) as e:
        soap_typed.create_client("hebei", hebei_settings("http://127.0.0.1:9/", headers),
                                 None, registry.get)  # type: ignore[arg-type]
    assert e.value.key == key, e.value


def test_headers_need_the_registry():
    with pytest.raises(ConfigError) as e:
        soap_typed.create_client("hebei", hebei_settings("http://127.0.0.1:9/", five()),
                                 None)  # type: ignore[arg-type]
    assert e.value.key == "partners.hebei.options.headers"
