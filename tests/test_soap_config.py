"""The partner entries proposed for config/gateway.yaml load, build clients, and deliver."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from gateway.config import load_settings
from gateway.mapping import MappingRegistry
from gateway.outcome import OutcomeKind
from gateway.protocols import soap_typed, soap_xml_string
from gateway.simulators import hebei, tianjin

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = Path(__file__).parent / "fixtures" / "soap" / "partners.yaml"
STYLES = {"soap-xml-string": soap_xml_string.create_client, "soap-typed": soap_typed.create_client}


@pytest.fixture
def settings(tmp_path):
    cfg = tmp_path / "config" / "gateway.yaml"
    cfg.parent.mkdir()
    cfg.write_text(SNIPPET.read_text(encoding="utf-8"), encoding="utf-8")
    return load_settings(cfg, env={})


def test_entries_validate_and_build_clients(settings):
    assert set(settings.partners) == {"tianjin", "hebei"}
    for name, p in settings.partners.items():
        client = STYLES[p.protocol](name, p, None)  # type: ignore[arg-type]
        assert client.url == p.url


def test_registered_styles_when_the_lead_adds_them():
    from gateway.protocols import FACTORIES
    for style in STYLES:
        if style in FACTORIES:
            module, _, attr = FACTORIES[style].partition(":")
            assert f"{module}:{attr}" in {"gateway.protocols.soap_xml_string:create_client",
                                          "gateway.protocols.soap_typed:create_client"}


@pytest.mark.parametrize("partner,sim,sample", [
    ("tianjin", tianjin, "12-person-tianjin-rare-character-name.json"),
    ("hebei", hebei, "11-company-hebei-branch-filing.json"),
])
async def test_configured_partner_delivers_a_sample(settings, aiohttp_server, partner, sim,
                                                    sample):
    server = await aiohttp_server(sim.create_app())
    p = settings.partners[partner]
    p = p.model_copy(update={"url": str(server.make_url(urlsplit(p.url).path))})
    reg = MappingRegistry.load(ROOT / "mappings", ROOT / "schemas")
    m = reg.get(p.mapping)
    case = json.loads((ROOT / "samples" / "cases" / sample).read_text(encoding="utf-8"))
    payload = m.render(case, {"caseId": "C1", "deliveryId": "D1", "idempotencyKey": "D1",
                              "partner": partner, "now": "2026-11-30T10:00:00+08:00"})
    async with aiohttp.ClientSession() as http:
        out = await STYLES[p.protocol](partner, p, http).send(payload, idempotency_key="D1",
                                                              correlation_id="C1")
    assert out.kind is OutcomeKind.DELIVERED, out


CONTRACT_VALUES = {"authCode", "xmlData", "PACKAGEHEAD/SJBBH", "SJBBH", "SLBH", "MSG", "resultCode",
                   "resultMessage", "receiptNo", "messageId", "correlationId", "sentAt", "0000",
                   "9001", "-9", "GBK", "hb", "tj"}


def test_no_contract_value_in_the_protocol_code():
    """Field names, codes, encodings and namespace prefixes of the Tianjin and Hebei contracts
    live in configuration; the styles' code holds none of them (docstrings may mention them)."""
    import ast

    found = []
    for path in sorted((ROOT / "gateway" / "protocols").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef
                                    | ast.AsyncFunctionDef)
                      and n.body and isinstance(n.body[0], ast.Expr)
                      and isinstance(n.body[0].value, ast.Constant)}
        found += [f"{path.name}:{n.lineno} {n.value!r}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str)
                  and id(n) not in docstrings and n.value in CONTRACT_VALUES]
    assert not found, found


async def test_envelope_prefixes_are_not_the_partners(settings):
    """The body and header blocks carry the WSDL's namespaces under prefixes lxml chooses."""
    from lxml import etree

    from gateway.protocols import soap
    from gateway.protocols import xml as safexml

    fix = Path(__file__).parent / "fixtures" / "soap"
    hb = soap_typed.create_client("hebei", settings.partners["hebei"], None)  # type: ignore[arg-type]
    env = safexml.parse(hb.build_request(safexml.parse((fix / "hebei-request.xml").read_bytes()),
                                         "k", "c"))
    header = env.find(f"{{{soap.SOAP12_NS}}}Header/{{{hb.operation.input_qname.namespace}}}"
                      "MessageHeader")
    assert header is not None and header.prefix != "hb"
    assert header.findtext(f"{{{hb.operation.input_qname.namespace}}}messageId") == "k"
    tj = soap_xml_string.create_client("tianjin", settings.partners["tianjin"], None)  # type: ignore[arg-type]
    env = safexml.parse(tj.build_request(safexml.parse((fix / "tianjin-package.xml").read_bytes()),
                                         "k", "c"))
    wrapper = env.find(f"{{{soap.SOAP11_NS}}}Body")[0]
    assert etree.QName(wrapper) == tj.operation.input_qname and wrapper.prefix != "tj"
