"""End-to-end: the ``soap-typed`` client (SOAP 1.2, WS-Security) against the Hebei simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.outcome import OutcomeKind
from gateway.protocols import soap_typed
from gateway.protocols import xml as safexml
from gateway.simulators import hebei
from tests.soap_contracts import contract_options

FIX = Path(__file__).parent / "fixtures" / "soap"
PATH = "/hebei/CaseExchange"
HB = "http://zwfw.hebei.example/exchange/v1"
RARE = "测试\U00020BB7"


def request_doc(name: str | None = None) -> etree._Element:
    root = safexml.parse((FIX / "hebei-request.xml").read_bytes())
    if name is not None:
        root.find(f"{{{HB}}}case/{{{HB}}}applicant/{{{HB}}}name").text = name
    return root


CREDS = {"username": "BJ-GATEWAY", "password": "hebei-demo-secret"}


def settings(url: str, *, timeout: float = 2.0, credentials: dict[str, str] | None = None,
             **opts: Any) -> PartnerSettings:
    return PartnerSettings(
        protocol="soap-typed", url=url, mapping="hebei/case-submit", timeout=timeout,
        credentials=CREDS if credentials is None else credentials,
        options=contract_options("hebei", **opts))


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def sim(aiohttp_server):
    return await aiohttp_server(hebei.create_app())


def client(sim, http, **kw: Any) -> soap_typed.TypedSoapClient:
    return soap_typed.create_client("hebei", settings(str(sim.make_url(PATH)), **kw), http)


async def behave(http, sim, **b: Any) -> None:
    async with http.post(sim.make_url("/__sim/behaviour"), json=b) as r:
        assert r.status == 200


async def sim_state(http, sim) -> dict[str, Any]:
    async with http.get(sim.make_url("/__sim/state")) as r:
        return await r.json()


async def test_success(sim, http):
    out = await client(sim, http).send(request_doc(), idempotency_key="hb-1", correlation_id="c1")
    assert out.kind is OutcomeKind.DELIVERED, out
    assert out.receipt_no.startswith("HBSL") and out.partner_code == "0000"
    msg = (await sim_state(http, sim))["messages"][0]
    assert msg["idempotency_key"] == "hb-1" and msg["headers"]["user"] == "BJ-GATEWAY"
    assert msg["payload"]["items"] == ["11130100MB2E34567Z000105002000001"]


async def test_dict_payload_rendered_by_zeep(sim, http):
    case = {"caseNo": "BJ2026113000000012", "submitTime": "2026-11-30T10:02:31+08:00",
            "channel": "WEB", "receivingRegion": "110105000000",
            "applicant": {"applicantType": "1", "name": "测试甲", "certType": "111",
                          "certNo": "110105199003071239"},
            "items": {"item": [{"itemNo": "1", "basicCode": "000134023000",
                                "implementationCode": "11130100MB2C12345X000134023000001",
                                "itemName": "养老保险关系转移接续申请",
                                "handlingRegion": "130100000000"}]}}
    out = await client(sim, http).send({"case": case}, idempotency_key="hb-d", correlation_id="c")
    assert out.kind is OutcomeKind.DELIVERED, out
    assert (await sim_state(http, sim))["messages"][0]["payload"]["caseNo"] == "BJ2026113000000012"


async def test_duplicates_are_deduped(sim, http):
    c = client(sim, http)
    a = await c.send(request_doc(), idempotency_key="hb-dup", correlation_id="c")
    b = await c.send(request_doc(), idempotency_key="hb-dup", correlation_id="c")
    assert a.kind is b.kind is OutcomeKind.DELIVERED and a.receipt_no == b.receipt_no
    st = await sim_state(http, sim)
    assert (st["unique"], st["duplicates"]) == (1, 1)


async def test_rare_character_round_trip(sim, http):
    out = await client(sim, http).send(request_doc(RARE), idempotency_key="hb-r", correlation_id="c")
    assert out.kind is OutcomeKind.DELIVERED, out
    assert (await sim_state(http, sim))["messages"][0]["payload"]["applicantName"] == RARE


async def test_business_rejection(sim, http):
    await behave(http, sim, mode="business_error")
    out = await client(sim, http).send(request_doc(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.partner_code, out.message) == (OutcomeKind.PERMANENT, "2001", "事项编码不存在")


@pytest.mark.parametrize("mode,kind,code,status", [
    ("fault_sender", OutcomeKind.PERMANENT, "1099", 400),
    ("fault_receiver", OutcomeKind.RETRYABLE, "5001", 500),
])
async def test_soap12_faults(sim, http, mode, kind, code, status):
    await behave(http, sim, mode=mode)
    out = await client(sim, http).send(request_doc(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.partner_code, out.http_status) == (kind, code, status)
    assert out.message.startswith("SOAP fault " + ("Sender" if status == 400 else "Receiver"))


async def test_throttle_is_retryable_with_retry_after(sim, http):
    await behave(http, sim, mode="throttle", delay=7)
    out = await client(sim, http).send(request_doc(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.http_status, out.retry_after) == (OutcomeKind.RETRYABLE, 503, 7.0)


async def test_bad_credentials_are_a_sender_fault(sim, http):
    out = await client(sim, http, credentials={"username": "BJ-GATEWAY", "password": "nope"}).send(
        request_doc(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.partner_code) == (OutcomeKind.PERMANENT, "FailedAuthentication")
    assert (await sim_state(http, sim))["received"] == 0


async def test_missing_security_header(sim, http):
    out = await client(sim, http, wsse="none").send(request_doc(), idempotency_key="k",
                                                    correlation_id="c")
    assert (out.kind, out.partner_code) == (OutcomeKind.PERMANENT, "InvalidSecurity")


async def test_schema_error_not_sent(sim, http):
    doc = request_doc()
    doc.find(f"{{{HB}}}case/{{{HB}}}channel").text = "FAX"
    out = await client(sim, http).send(doc, idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.PERMANENT and "schema" in out.message
    assert (await sim_state(http, sim))["requests"] == 0


async def test_malformed_timeout_reset(sim, http):
    c = client(sim, http, timeout=0.3)
    await behave(http, sim, mode="malformed")
    out = await c.send(request_doc(), idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.RETRYABLE and "malformed" in out.message
    await behave(http, sim, mode="delay", delay=2.0)
    out = await c.send(request_doc(), idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.RETRYABLE and "timed out" in out.message
    await behave(http, sim, mode="reset")
    out = await c.send(request_doc(), idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.RETRYABLE
    await behave(http, sim, mode="http500")
    out = await c.send(request_doc(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.http_status) == (OutcomeKind.RETRYABLE, 500)
    out = await c.send(request_doc(), idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.DELIVERED


async def test_wrong_payload_element(sim, http):
    out = await client(sim, http).send(etree.Element("x"), idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.PERMANENT and "SubmitCaseRequest" in out.message


async def test_sim_rejects_unsigned_raw_post(sim, http):
    async with http.post(sim.make_url(PATH), data=b"<x/>",
                         headers={"Content-Type": "application/soap+xml"}) as r:
        assert r.status == 400


@pytest.mark.parametrize("change,key", [
    (dict(credentials={"username": "u"}), "partners.hebei.credentials.password"),
    (dict(wsse="x509"), "partners.hebei.options.wsse"),
    (dict(header_fields={"colour": "blue"}), "partners.hebei.options.header_fields"),
    (dict(header_fields={"messageId": 7}), "partners.hebei.options.header_fields.messageId"),
    (dict(header_fields=None), "partners.hebei.options.header_fields"),  # the WSDL declares one
    (dict(operation="Nope"), "partners.hebei.options.operation"),
    (dict(wsdl="schemas/hebei/missing.wsdl"), "partners.hebei.options.wsdl"),
    (dict(body_schema="schemas/hebei/missing.xsd"), "partners.hebei.options.body_schema"),
    (dict(code_field=None), "partners.hebei.options.code_field"),
    (dict(message_field=None), "partners.hebei.options.message_field"),
    (dict(receipt_field=None), "partners.hebei.options.receipt_field"),
    (dict(success_codes=None), "partners.hebei.options.success_codes"),
])
def test_config_errors_name_the_key(change, key):
    creds = change.pop("credentials", None)
    with pytest.raises(ConfigError) as e:
        soap_typed.create_client("hebei", settings("http://127.0.0.1:1/", credentials=creds,
                                                   **change), None)  # type: ignore[arg-type]
    assert e.value.key == key


async def test_replayed_envelope_is_refused(sim, http):
    """The same bytes twice: the nonce cache refuses the second (an attacker's replay)."""
    c = client(sim, http)
    body = c.build_request(request_doc(), "replay-1", "c")
    headers = {"Content-Type": 'application/soap+xml; charset=utf-8; action="urn:hebei:exchange:SubmitCase"'}
    async with http.post(sim.make_url(PATH), data=body, headers=headers) as r:
        assert r.status == 200
    async with http.post(sim.make_url(PATH), data=body, headers=headers) as r:
        assert r.status == 400
        assert b"replay" in await r.read()


async def test_unknown_must_understand_header_is_refused(sim, http):
    c = client(sim, http)
    body = c.build_request(request_doc(), "mu-1", "c")
    env = safexml.parse(body)
    extra = etree.SubElement(env.find("{http://www.w3.org/2003/05/soap-envelope}Header"),
                             "{urn:x}Unknown")
    extra.set("{http://www.w3.org/2003/05/soap-envelope}mustUnderstand", "true")
    async with http.post(sim.make_url(PATH), data=etree.tostring(env),
                         headers={"Content-Type": "application/soap+xml"}) as r:
        assert r.status == 500 and b"MustUnderstand" in await r.read()  # SOAP 1.2 part 2 §7.5.1


async def test_concurrent_duplicates_get_one_receipt(sim, http):
    import asyncio
    c = client(sim, http)
    outs = await asyncio.gather(*(c.send(request_doc(), idempotency_key="same", correlation_id="c")
                                  for _ in range(5)))
    assert {o.kind for o in outs} == {OutcomeKind.DELIVERED}
    assert len({o.receipt_no for o in outs}) == 1
    st = await sim_state(http, sim)
    assert (st["unique"], st["duplicates"]) == (1, 4)


async def test_wsdl_and_xsd_served(sim, http):
    async with http.get(sim.make_url(PATH + "?wsdl")) as r:
        wsdl = safexml.parse(await r.read())
    imp = wsdl.find(".//{http://www.w3.org/2001/XMLSchema}import").get("schemaLocation")
    assert imp.endswith("?xsd=case.xsd")
    async with http.get(imp) as r:
        assert b"SubmitCaseRequest" in await r.read()


async def test_odd_correlation_id_never_fails_a_delivery(sim, http):
    out = await client(sim, http).send(request_doc(), idempotency_key="k-odd",
                                       correlation_id="办件 #42 / 测试" + "x" * 100)
    assert out.kind is OutcomeKind.DELIVERED, out
