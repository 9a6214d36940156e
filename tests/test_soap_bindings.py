"""A WSDL without ``wsdl:service`` (the binding chosen by option ``binding``, the URL from
configuration), and the runtime WSDL loader resolving standard imports (soap-encoding over http)
through the offline catalog as the tools do (issue 16, "The SOAP styles are data, not code")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.outcome import OutcomeKind
from gateway.protocols import soap, soap_typed

NS = "urn:example:bare"


def wsdl(import_location: str = "http://schemas.xmlsoap.org/soap/encoding/") -> str:
    def binding(name: str, wsdl_soap: str, action: str) -> str:
        return f"""
  <wsdl:binding name="{name}" type="tns:BarePort">
    <s:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"
               xmlns:s="{wsdl_soap}"/>
    <wsdl:operation name="Submit">
      <s:operation soapAction="{action}" xmlns:s="{wsdl_soap}"/>
      <wsdl:input><s:body use="literal" xmlns:s="{wsdl_soap}"/></wsdl:input>
      <wsdl:output><s:body use="literal" xmlns:s="{wsdl_soap}"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="Bare" targetNamespace="{NS}" xmlns:tns="{NS}"
    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <wsdl:types>
    <xsd:schema targetNamespace="{NS}" elementFormDefault="qualified">
      <xsd:import namespace="http://schemas.xmlsoap.org/soap/encoding/"
                  schemaLocation="{import_location}"/>
      <xsd:element name="Submit"><xsd:complexType><xsd:sequence>
        <xsd:element name="note" type="soapenc:string"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="SubmitResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="code" type="xsd:string"/>
      </xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </wsdl:types>
  <wsdl:message name="In"><wsdl:part name="parameters" element="tns:Submit"/></wsdl:message>
  <wsdl:message name="Out"><wsdl:part name="parameters" element="tns:SubmitResponse"/></wsdl:message>
  <wsdl:portType name="BarePort">
    <wsdl:operation name="Submit">
      <wsdl:input message="tns:In"/><wsdl:output message="tns:Out"/>
    </wsdl:operation>
  </wsdl:portType>
  {binding("Bare11", "http://schemas.xmlsoap.org/wsdl/soap/", "urn:bare:Submit11")}
  {binding("Bare12", "http://schemas.xmlsoap.org/wsdl/soap12/", "urn:bare:Submit12")}
</wsdl:definitions>
"""


@pytest.fixture
def bare(tmp_path) -> Path:
    path = tmp_path / "Bare.wsdl"
    path.write_text(wsdl(), encoding="utf-8")
    return path


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


def settings(url: str, path: Path, **opts: Any) -> PartnerSettings:
    options: dict[str, Any] = {"wsdl": str(path), "operation": "Submit", "binding": "Bare12",
                               "namespaces": {"b": NS}, "code_path": "b:code",
                               "message_path": None, "receipt_path": None,
                               "success_codes": ["OK"], **opts}
    return PartnerSettings(protocol="soap-typed", url=url, mapping="bare/submit", timeout=2,
                           options={k: v for k, v in options.items() if v != "-"})


def test_binding_without_service_and_catalog_import(bare):
    """soapenc (imported by its http URL) comes from the catalog, offline; no wsdl:service."""
    op = soap.load_operation(bare, "Submit", binding="Bare12")
    assert (op.version, op.action, op.address) == (soap.SOAP12, "urn:bare:Submit12", "")
    assert op.input_qname == etree.QName(NS, "Submit")
    assert soap.load_operation(bare, "Submit", binding=f"{{{NS}}}Bare11").version is soap.SOAP11
    # not chosen: the first binding that has the operation
    assert soap.load_operation(bare, "Submit").action == "urn:bare:Submit11"


async def test_sends_to_the_configured_url(aiohttp_server, http, bare):
    got: list[tuple[str, bytes]] = []

    async def answer(request: web.Request) -> web.Response:
        got.append((request.headers["Content-Type"], await request.read()))
        reply = (f'<env:Envelope xmlns:env="{soap.SOAP12_NS}"><env:Body><b:SubmitResponse '
                 f'xmlns:b="{NS}"><b:code>OK</b:code></b:SubmitResponse></env:Body>'
                 f'</env:Envelope>').encode()
        return web.Response(body=reply, content_type="application/soap+xml")
    app = web.Application()
    app.router.add_post("/bare", answer)
    server = await aiohttp_server(app)
    c = soap_typed.create_client("bare", settings(str(server.make_url("/bare")), bare), http)
    body = etree.Element(f"{{{NS}}}Submit")
    etree.SubElement(body, f"{{{NS}}}note").text = "hello"
    out = await c.send(body, idempotency_key="k", correlation_id="c")
    # no message and no receipt configured: delivered on the code alone
    assert out.kind is OutcomeKind.DELIVERED and out.receipt_no is None, out
    content_type, sent = got[0]
    assert 'action="urn:bare:Submit12"' in content_type
    assert soap.parse_envelope(sent).body[0].findtext(f"{{{NS}}}note") == "hello"


@pytest.mark.parametrize("opts,key", [
    (dict(binding="Nope"), "partners.bare.options.binding"),
    (dict(port="BarePort"), "partners.bare.options.binding"),  # binding, or service/port
    (dict(operation="Other"), "partners.bare.options.operation"),
    (dict(binding="-", port="Nowhere"), "partners.bare.options.operation"),
])
def test_config_errors_name_the_option(bare, opts, key):
    with pytest.raises(ConfigError) as e:
        soap_typed.create_client("bare", settings("http://127.0.0.1:9/", bare, **opts),
                                 None)  # type: ignore[arg-type]
    assert e.value.key == key, e.value


def test_imports_outside_the_catalog_are_still_refused(tmp_path):
    path = tmp_path / "Far.wsdl"
    path.write_text(wsdl("http://attacker.example/evil.xsd"), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        soap_typed.create_client("bare", settings("http://127.0.0.1:9/", path),
                                 None)  # type: ignore[arg-type]
    assert e.value.key == "partners.bare.options.wsdl"
    assert "refusing to fetch http://attacker.example/evil.xsd" in str(e.value)


# -- the WSDL-reading tool: gateway mapping scaffold --binding / --port -------------------------

def scaffold(*args: str) -> Any:
    from click.testing import CliRunner

    from gateway.cli.mapping import mapping
    return CliRunner().invoke(mapping, ["scaffold", *args])


def test_scaffold_chooses_the_binding(bare):
    r = scaffold("--schema", str(bare), "--binding", "Bare12")
    assert r.exit_code == 0, r.output
    assert "SOAP 1.2" in r.output and "binding Bare12" in r.output
    assert "urn:bare:Submit12" in r.output
    r = scaffold("--schema", str(bare), "--binding", f"{{{NS}}}Bare11")
    assert r.exit_code == 0 and "SOAP 1.1" in r.output and "binding Bare11" in r.output
    r = scaffold("--schema", str(bare))  # no service, no choice: the first binding
    assert r.exit_code == 0 and "binding Bare11" in r.output


def test_scaffold_names_what_exists(bare):
    r = scaffold("--schema", str(bare), "--binding", "Nope")
    assert r.exit_code != 0 and "bindings: Bare11, Bare12" in r.output
    assert "Traceback" not in r.output
    r = scaffold("--schema", str(bare), "--port", "P")
    assert r.exit_code != 0 and "no port 'P'" in r.output and "choose --binding" in r.output


def test_scaffold_chooses_the_port():
    hebei = Path(__file__).resolve().parent.parent / "schemas" / "hebei" / "CaseExchange.wsdl"
    port = etree.parse(str(hebei)).find(
        ".//{http://schemas.xmlsoap.org/wsdl/}service/{http://schemas.xmlsoap.org/wsdl/}port")
    r = scaffold("--schema", str(hebei), "--port", port.get("name"), "--operation", "SubmitCase")
    assert r.exit_code == 0, r.output
    assert "SOAP 1.2" in r.output
