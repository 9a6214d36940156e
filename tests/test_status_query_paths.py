"""The SOAP status query locates the answer's code, message and receipt by configured XPaths, as
the SOAP styles' sends do (issue 16, "The SOAP styles are data, not code"): a partner whose
status answer keeps them deeper, or carries no receipt, is configuration. The partner is an
aiohttp server answering a hand-written SOAP 1.2 reply to Hebei's QueryStatus operation."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.protocols import status_query_soap
from gateway.protocols import xml as safexml
from gateway.protocols.status_query import AnswerKind, CaseRef
from tests.soap_contracts import contract_options

HB = "http://zwfw.hebei.example/exchange/v1"
S12 = "http://www.w3.org/2003/05/soap-envelope"
BLOCK: dict[str, Any] = {
    "operation": "QueryStatus", "receipt_request_field": "receiptNo",
    "key_request_field": "messageId", "found_codes": ["0000"], "not_found_codes": ["3001"],
    "retryable_codes": ["9001"], "namespaces": {"h": HB},
    "code_path": "h:outcome/h:status/@code", "message_path": "string(h:outcome/h:status)",
    "receipt_path": "h:outcome/h:refs/h:ref[@kind='receipt']"}


def reply(code: str, text: str, receipt: str | None) -> bytes:
    ref = f'<hb:ref kind="receipt">{receipt}</hb:ref>' if receipt else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{S12}"><env:Body>'
            f'<hb:QueryStatusResponse xmlns:hb="{HB}"><hb:outcome>'
            f'<hb:status code="{code}">{text}</hb:status><hb:refs><hb:ref kind="other">X-1'
            f'</hb:ref>{ref}</hb:refs></hb:outcome></hb:QueryStatusResponse>'
            f'</env:Body></env:Envelope>').encode()


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


async def ask(aiohttp_server: Any, http: aiohttp.ClientSession, body: bytes,
              **block: Any) -> tuple[Any, list[bytes]]:
    seen: list[bytes] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(body=body, content_type="application/soap+xml", charset="utf-8")

    app = web.Application()
    app.router.add_post("/svc", answer)
    server = await aiohttp_server(app)
    settings = PartnerSettings(
        protocol="soap-typed", url=str(server.make_url("/svc")), mapping="hebei/case-submit",
        timeout=2, credentials={"username": "BJ-GATEWAY", "password": "pw-synthetic"},
        options=contract_options("hebei"), status_query={**BLOCK, **block})
    query = status_query_soap.create_typed("hebei", settings, http)
    return await query.query_status(CaseRef("k-1", "HBSL-1")), seen


async def test_found_with_the_status_deeper_in_the_answer(aiohttp_server: Any,
                                                          http: aiohttp.ClientSession) -> None:
    got, seen = await ask(aiohttp_server, http, reply("0000", "已受理", "HBSL-9"))
    assert got.kind is AnswerKind.FOUND, got
    assert (got.code, got.message, got.receipt_no) == ("0000", "已受理", "HBSL-9")
    sent = safexml.parse(seen[0])
    assert sent.findtext(f".//{{{HB}}}receiptNo") == "HBSL-1"     # asked by receipt


async def test_not_found_and_retryable_codes_at_the_path(aiohttp_server: Any,
                                                         http: aiohttp.ClientSession) -> None:
    got, _ = await ask(aiohttp_server, http, reply("3001", "办件不存在", None))
    assert got.kind is AnswerKind.NOT_FOUND and got.code == "3001"
    got, _ = await ask(aiohttp_server, http, reply("9001", "忙", None))
    assert got.kind is AnswerKind.FAILED and got.outcome.partner_code == "9001"


async def test_no_code_at_the_path_is_a_malformed_answer(aiohttp_server: Any,
                                                         http: aiohttp.ClientSession) -> None:
    body = reply("0000", "x", None).replace(b' code="0000"', b"")
    got, _ = await ask(aiohttp_server, http, body)
    assert got.kind is AnswerKind.FAILED and "malformed status answer" in got.outcome.message


async def test_an_answer_without_receipts(aiohttp_server: Any,
                                          http: aiohttp.ClientSession) -> None:
    got, _ = await ask(aiohttp_server, http, reply("0000", "ok", "IGNORED"), receipt_path=None)
    assert got.kind is AnswerKind.FOUND and got.receipt_no is None


async def test_a_bad_path_names_the_status_query_key(aiohttp_server: Any,
                                                     http: aiohttp.ClientSession) -> None:
    with pytest.raises(ConfigError) as e:
        await ask(aiohttp_server, http, b"", code_path="q:nope")
    assert "partners.hebei.status_query.code_path" in str(e.value)
    with pytest.raises(ConfigError) as e:
        await ask(aiohttp_server, http, b"", code_path=None, code_field=None)
    assert "partners.hebei.status_query.code_field" in str(e.value)
