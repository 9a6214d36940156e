"""rpc/literal on the wire (issue 16): the soap-typed style sends an rpc/literal operation — the
wrapper named after the operation in the binding's soap:body namespace, one unqualified accessor
per message part — from a mapping whose target is that wrapper (gateway/protocols/wsdl_types.py
writes its schema from the WSDL). zeep is the independent reference: the body the gateway sends
is structurally the one zeep's client builds from the same values, and the partner (an aiohttp
server) reads the request with zeep's rpc message parser, strictly. rpc/encoded is refused by
name at start-up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.mapping.golden import DEFAULT_CONTEXT
from gateway.outcome import OutcomeKind
from gateway.protocols import create_client, soap
from gateway.protocols import xml as safexml

CORPUS = Path(__file__).parent / "corpus"
WSDL = CORPUS / "rpc-literal" / "CaseRpc.wsdl"
NS = "urn:corpus:rpclit"
S11 = "http://schemas.xmlsoap.org/soap/envelope/"
OPTIONS = {"wsdl": str(WSDL), "operation": "submitCase", "code_field": "code",
           "receipt_field": "receipt", "message_path": None, "success_codes": ["0"]}


def structure(el: Any) -> Any:
    return (el.tag, (el.text or "").strip(),
            tuple(structure(c) for c in el if isinstance(c.tag, str)))


@pytest.fixture
def rendered(tmp_path: Path) -> etree._Element:
    (tmp_path / "corpus").mkdir()
    shutil.copy(CORPUS / "rpc-literal" / "mapping.yaml", tmp_path / "corpus" / "rpc.yaml")
    m = MappingRegistry.load(tmp_path, CORPUS).get("corpus/rpc")
    source = json.loads((CORPUS / "rpc-literal" / "source.json").read_text(encoding="utf-8"))
    element: etree._Element = m.render(source, dict(DEFAULT_CONTEXT, partner="corpus"))
    m.validate_output(element, source)
    return element


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_rpc_literal_request_is_what_zeep_builds_and_reads(
        aiohttp_server: Any, http: aiohttp.ClientSession, rendered: etree._Element) -> None:
    op = soap.load_operation(WSDL, "submitCase")
    zclient = op.zeep_client
    message = next(iter(zclient.wsdl.bindings.values()))._operations["submitCase"].input
    seen: list[Any] = []

    async def partner(request: web.Request) -> web.Response:
        env = safexml.parse(await request.read())
        seen.append(message.deserialize(env))                   # zeep, strict
        return web.Response(text=f'<s:Envelope xmlns:s="{S11}"><s:Body><r:submitCaseResponse '
                                 f'xmlns:r="{NS}"><code>0</code><receipt>RPC-1</receipt>'
                                 f'</r:submitCaseResponse></s:Body></s:Envelope>',
                            content_type="text/xml")

    app = web.Application()
    app.router.add_post("/rpc", partner)
    url = str((await aiohttp_server(app)).make_url("/rpc"))
    client = create_client("rpcpartner", PartnerSettings(
        protocol="soap-typed", url=url, mapping="corpus/rpc", timeout=3, options=OPTIONS), http)
    out = await client.send(rendered, idempotency_key="k-1", correlation_id="c-1")
    assert out.kind is OutcomeKind.DELIVERED and out.receipt_no == "RPC-1", out
    (got,) = seen
    assert got.caseNo == "R-12" and got.applicant.name == "Test Person"

    # zeep's client builds the same body from the same values
    built = zclient.create_message(zclient.bind(port_name="CaseRpcPort"), "submitCase",
                                   caseNo="R-12", applicant={"name": "Test Person",
                                                             "phone": "010-0000"})
    zbody = built.find(f"{{{S11}}}Body")[0]
    assert etree.QName(rendered).text == f"{{{NS}}}submitCase"
    assert [c.tag for c in rendered] == ["caseNo", "applicant"]     # unqualified accessors
    assert structure(zbody) == structure(rendered)


def test_rpc_encoded_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as e:
        soap.load_operation(CORPUS / "rpc-encoded" / "LegacyService.wsdl", "push")
    assert "rpc/encoded" in e.value.reason and e.value.key == "options.operation"
