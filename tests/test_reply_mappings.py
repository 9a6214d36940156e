"""Replies read by a mapping (issue 16, "The SOAP styles are data, not code"): instead of a field
or an XPath, ``reply_mapping`` names an inbound mapping of the reply's output element to
``{code, message, receipt}`` — a partner whose code is split over two attributes and whose
receipt must be assembled is configuration. The same option reads a SOAP status query's answer.
Partners are aiohttp servers answering hand-written SOAP 1.2 replies to Hebei's WSDL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.outcome import OutcomeKind
from gateway.protocols import create_client
from gateway.protocols import xml as safexml
from gateway.protocols.status_query import AnswerKind, CaseRef, status_query_of
from tests.soap_contracts import contract_options

ROOT = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures" / "soap"
HB = "http://zwfw.hebei.example/exchange/v1"
S12 = "http://www.w3.org/2003/05/soap-envelope"
NO_FIELDS = dict(code_field=None, message_field=None, receipt_field=None)
REPLY_MAPPING = """\
version: "1"
direction: inbound
description: a Hebei-like reply whose code is two attributes → {code, message, receipt}
target: {kind: json}
fields:
  code: {concat: [outcome.status.@major, outcome.status.@minor], sep: ""}
  message: "outcome.status.#text"
  receipt: {concat: [{const: "HB-"}, outcome.refs.receipt], sep: ""}
"""


def reply(element: str, major: str, minor: str, text: str, receipt: str | None) -> bytes:
    ref = f"<hb:receipt>{receipt}</hb:receipt>" if receipt else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{S12}"><env:Body>'
            f'<hb:{element} xmlns:hb="{HB}"><hb:outcome><hb:status major="{major}" '
            f'minor="{minor}">{text}</hb:status><hb:refs>{ref}</hb:refs></hb:outcome>'
            f'</hb:{element}></env:Body></env:Envelope>').encode()


@pytest.fixture
def registry(tmp_path: Path) -> MappingRegistry:
    (tmp_path / "hebei").mkdir()
    (tmp_path / "hebei" / "reply.yaml").write_text(REPLY_MAPPING, encoding="utf-8")
    (tmp_path / "hebei" / "case-submit.yaml").write_text(
        (ROOT / "mappings" / "hebei" / "case-submit.yaml").read_text(encoding="utf-8"),
        encoding="utf-8")
    (tmp_path / "codes").mkdir()
    for table in (ROOT / "mappings" / "codes").glob("*.yaml"):
        (tmp_path / "codes" / table.name).write_text(table.read_text(encoding="utf-8"),
                                                     encoding="utf-8")
    return MappingRegistry.load(tmp_path, ROOT / "schemas")


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def partner(aiohttp_server: Any, body: bytes) -> str:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/soap+xml", charset="utf-8")
    app = web.Application()
    app.router.add_post("/svc", answer)
    return str((await aiohttp_server(app)).make_url("/svc"))


def settings(url: str, options: dict[str, Any], status_query: dict[str, Any] | None = None
             ) -> PartnerSettings:
    return PartnerSettings(protocol="soap-typed", url=url, mapping="hebei/case-submit", timeout=2,
                           credentials={"username": "BJ-GATEWAY", "password": "pw-synthetic"},
                           options=options, status_query=status_query)


async def test_send_reads_the_reply_through_a_mapping(aiohttp_server: Any, http: Any,
                                                      registry: MappingRegistry) -> None:
    options = contract_options("hebei", **NO_FIELDS, reply_mapping={"mapping": "hebei/reply"})
    url = await partner(aiohttp_server, reply("SubmitCaseResponse", "00", "00", "受理成功", "R-7"))
    client = create_client("hebei", settings(url, options), http, registry.get)
    request = safexml.parse((FIX / "hebei-request.xml").read_bytes())
    out = await client.send(request, idempotency_key="k-1", correlation_id="c-1")
    assert out.kind is OutcomeKind.DELIVERED, out
    assert (out.partner_code, out.message, out.receipt_no) == ("0000", "受理成功", "HB-R-7")
    url = await partner(aiohttp_server, reply("SubmitCaseResponse", "90", "01", "忙", None))
    client = create_client("hebei", settings(url, options), http, registry.get)
    out = await client.send(request, idempotency_key="k-2", correlation_id="c-2")
    assert out.kind is OutcomeKind.RETRYABLE and out.partner_code == "9001", out


async def test_status_query_reads_the_answer_through_a_mapping(aiohttp_server: Any, http: Any,
                                                               registry: MappingRegistry) -> None:
    url = await partner(aiohttp_server, reply("QueryStatusResponse", "00", "00", "已受理", "Q-1"))
    block = {"operation": "QueryStatus", "receipt_request_field": "receiptNo",
             "key_request_field": "messageId", "found_codes": ["0000"],
             "not_found_codes": ["3001"], "reply_mapping": {"mapping": "hebei/reply"}}
    client = create_client("hebei", settings(url, contract_options("hebei"), block), http,
                           registry.get)
    query = status_query_of(client)
    assert query is not None
    got = await query.query_status(CaseRef("k-1", "HBSL-1"))
    assert got.kind is AnswerKind.FOUND, got
    assert (got.code, got.message, got.receipt_no) == ("0000", "已受理", "HB-Q-1")


def test_reply_mapping_config_errors(http: Any, registry: MappingRegistry) -> None:
    both = contract_options("hebei", reply_mapping={"mapping": "hebei/reply"})
    with pytest.raises(ConfigError) as e:
        create_client("hebei", settings("http://127.0.0.1:9/", both), http, registry.get)
    assert e.value.key == "partners.hebei.options.reply_mapping" and "not both" in e.value.reason
    unknown = contract_options("hebei", **NO_FIELDS, reply_mapping={"mapping": "hebei/nope"})
    with pytest.raises(ConfigError) as e:
        create_client("hebei", settings("http://127.0.0.1:9/", unknown), http, registry.get)
    assert e.value.key == "partners.hebei.options.reply_mapping.mapping"
    xml = contract_options("hebei", **NO_FIELDS, reply_mapping={"mapping": "hebei/case-submit"})
    with pytest.raises(ConfigError, match="target.kind: json"):
        create_client("hebei", settings("http://127.0.0.1:9/", xml), http, registry.get)
