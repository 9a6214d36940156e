"""End-to-end: the ``soap-xml-string`` client against the Tianjin simulator on real sockets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from lxml import etree

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.outcome import OutcomeKind
from gateway.protocols import soap_xml_string
from gateway.protocols import xml as safexml
from gateway.simulators import tianjin
from tests.soap_contracts import contract_options

FIX = Path(__file__).parent / "fixtures" / "soap"
PATH = "/tianjin/ExchangeService"
RARE = "吉\U00020BB7祥"  # 𠮷 U+20BB7 lies outside GBK


def package(**record: str) -> etree._Element:
    root = safexml.parse((FIX / "tianjin-package.xml").read_bytes())
    rec = root.find("DATA/RECORD")
    for k, v in record.items():
        el = rec.find(k)
        if v is None:
            rec.remove(el)
        else:
            el.text = v
    return root


def settings(url: str, *, timeout: float = 2.0, credentials: dict[str, str] | None = None,
             **opts: Any) -> PartnerSettings:
    return PartnerSettings(
        protocol="soap-xml-string", url=url, mapping="tianjin/case-submit", timeout=timeout,
        credentials={"auth_code": tianjin.DEFAULT_AUTH_CODE} if credentials is None else credentials,
        options=contract_options("tianjin", **opts))


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def sim(aiohttp_server):
    return await aiohttp_server(tianjin.create_app())


def client(sim, http, **kw: Any) -> soap_xml_string.XmlStringClient:
    return soap_xml_string.create_client("tianjin", settings(str(sim.make_url(PATH)), **kw), http)


async def behave(http, sim, **b: Any) -> None:
    async with http.post(sim.make_url("/__sim/behaviour"), json=b) as r:
        assert r.status == 200


async def sim_state(http, sim) -> dict[str, Any]:
    async with http.get(sim.make_url("/__sim/state")) as r:
        return await r.json()


async def test_success_carries_receipt_and_key(sim, http):
    out = await client(sim, http).send(package(), idempotency_key="k-0001", correlation_id="c1")
    assert out.kind is OutcomeKind.DELIVERED, out
    assert out.receipt_no.startswith("TJSL") and out.partner_code == "0"
    st = await sim_state(http, sim)
    assert st["unique"] == 1
    msg = st["messages"][0]
    assert msg["idempotency_key"] == "k-0001" and msg["headers"]["X-Correlation-Id"] == "c1"
    assert msg["payload"]["records"][0]["SQRMC"] == "测试甲"
    assert msg["payload"]["xmlData"].startswith('<?xml version="1.0" encoding="GBK"?>')


async def test_duplicates_are_deduped(sim, http):
    c = client(sim, http)
    a = await c.send(package(), idempotency_key="dup-1", correlation_id="c")
    b = await c.send(package(), idempotency_key="dup-1", correlation_id="c")
    assert a.kind is b.kind is OutcomeKind.DELIVERED and a.receipt_no == b.receipt_no
    st = await sim_state(http, sim)
    assert (st["unique"], st["duplicates"]) == (1, 1)


async def test_rare_character_survives_as_reference(sim, http):
    out = await client(sim, http).send(package(SQRMC=RARE), idempotency_key="rare-1",
                                       correlation_id="c")
    assert out.kind is OutcomeKind.DELIVERED, out
    msg = (await sim_state(http, sim))["messages"][0]
    assert msg["payload"]["records"][0]["SQRMC"] == RARE
    assert "&#134071;" in msg["payload"]["xmlData"]  # numeric reference, never "?"
    assert "?" not in msg["payload"]["records"][0]["SQRMC"]


async def test_rare_character_rejected_loudly_when_configured(sim, http):
    out = await client(sim, http, rare_chars="reject").send(
        package(SQRMC=RARE), idempotency_key="rare-2", correlation_id="c")
    assert out.kind is OutcomeKind.PERMANENT and "U+20BB7" in out.message
    assert (await sim_state(http, sim))["requests"] == 0


async def test_gb18030_declared_inner_document(sim, http):
    out = await client(sim, http, inner_encoding="GB18030").send(
        package(SQRMC=RARE), idempotency_key="rare-3", correlation_id="c")
    assert out.kind is OutcomeKind.DELIVERED, out
    msg = (await sim_state(http, sim))["messages"][0]
    assert msg["payload"]["records"][0]["SQRMC"] == RARE
    assert "&#134071;" not in msg["payload"]["xmlData"]


async def test_business_rejection_unknown_collaboration(sim, http):
    pkg = package()
    pkg.find("PACKAGEHEAD/XZBH").text = "NO-SUCH-XZ"
    out = await client(sim, http).send(pkg, idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.PERMANENT
    assert (out.partner_code, out.message) == ("-3", "协作编号不存在")


async def test_business_error_on_command(sim, http):
    await behave(http, sim, mode="business_error", code="-7", message="事项编码不存在")
    out = await client(sim, http).send(package(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.partner_code, out.message) == (OutcomeKind.PERMANENT, "-7", "事项编码不存在")


async def test_bad_auth_code(sim, http):
    out = await client(sim, http, credentials={"auth_code": "wrong"}).send(
        package(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.partner_code) == (OutcomeKind.PERMANENT, "-1")


async def test_throttle_code_is_retryable(sim, http):
    await behave(http, sim, mode="throttle")
    out = await client(sim, http).send(package(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.partner_code) == (OutcomeKind.RETRYABLE, "-9")


@pytest.mark.parametrize("mode,kind,code", [
    ("fault_sender", OutcomeKind.PERMANENT, "Client"),
    ("fault_receiver", OutcomeKind.RETRYABLE, "Server"),
])
async def test_soap_faults(sim, http, mode, kind, code):
    await behave(http, sim, mode=mode)
    out = await client(sim, http).send(package(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.partner_code, out.http_status) == (kind, code, 500)


async def test_malformed_reply_is_retryable_then_recovers(sim, http):
    await behave(http, sim, mode="malformed")
    c = client(sim, http)
    out = await c.send(package(), idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.RETRYABLE and "malformed" in out.message
    again = await c.send(package(), idempotency_key="k", correlation_id="c")
    assert again.kind is OutcomeKind.DELIVERED


async def test_timeout(sim, http):
    await behave(http, sim, mode="delay", delay=2.0)
    out = await client(sim, http, timeout=0.3).send(package(), idempotency_key="k",
                                                    correlation_id="c")
    assert out.kind is OutcomeKind.RETRYABLE and "timed out" in out.message


async def test_reset_and_http500(sim, http):
    c = client(sim, http)
    await behave(http, sim, mode="reset")
    out = await c.send(package(), idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.RETRYABLE and "disconnected" in out.message
    await behave(http, sim, mode="http500")
    out = await c.send(package(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.http_status) == (OutcomeKind.RETRYABLE, 500)


async def test_schema_error_is_permanent_and_not_sent(sim, http):
    out = await client(sim, http).send(package(SQRZJHM=None), idempotency_key="k",
                                       correlation_id="c")
    assert out.kind is OutcomeKind.PERMANENT and "schema" in out.message
    assert (await sim_state(http, sim))["requests"] == 0


async def test_payload_is_not_mutated(sim, http):
    pkg = package()
    before = etree.tostring(pkg)
    await client(sim, http).send(copy.deepcopy(pkg), idempotency_key="k", correlation_id="c")
    await client(sim, http).send(pkg, idempotency_key="k2", correlation_id="c")
    assert etree.tostring(pkg) == before


async def test_connection_refused(http):
    c = soap_xml_string.create_client("tianjin", settings("http://127.0.0.1:9/x"), http)
    out = await c.send(package(), idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.RETRYABLE


@pytest.mark.parametrize("change,key", [
    (dict(credentials={}), "partners.tianjin.credentials.auth_code"),
    (dict(operation="nope"), "partners.tianjin.options.operation"),
    (dict(wsdl="schemas/tianjin/missing.wsdl"), "partners.tianjin.options.wsdl"),
    (dict(data_field="payload"), "partners.tianjin.options.data_field"),
    (dict(rare_chars="drop"), "partners.tianjin.options.rare_chars"),
    (dict(colour="blue"), "partners.tianjin.options.colour"),
    (dict(inner_encoding="klingon"), "partners.tianjin.options.inner_encoding"),
    (dict(inner_encoding="base64"), "partners.tianjin.options.inner_encoding"),
    (dict(inner_schema="schemas/tianjin/missing.xsd"), "partners.tianjin.options.inner_schema"),
    (dict(success_codes=[0]), "partners.tianjin.options.success_codes.0"),
    (dict(success_codes=[]), "partners.tianjin.options.success_codes"),
    (dict(wsse="digest"), "partners.tianjin.credentials.username"),
    # what the contract names has no default in Python: each is required
    (dict(auth_field=None), "partners.tianjin.options.auth_field"),
    (dict(data_field=None), "partners.tianjin.options.data_field"),
    (dict(idempotency_element=None), "partners.tianjin.options.idempotency_element"),
    (dict(code_field=None), "partners.tianjin.options.code_field"),
    (dict(message_field=None), "partners.tianjin.options.message_field"),
    (dict(receipt_field=None), "partners.tianjin.options.receipt_field"),
    (dict(success_codes=None), "partners.tianjin.options.success_codes"),
])
def test_config_errors_name_the_key(change, key):
    creds = change.pop("credentials", None)
    s = settings("http://127.0.0.1:1/", credentials=creds, **change)
    with pytest.raises(ConfigError) as e:
        soap_xml_string.create_client("tianjin", s, None)  # type: ignore[arg-type]
    assert e.value.key == key


async def test_wsdl_is_served_with_local_address(sim, http):
    async with http.get(sim.make_url(PATH + "?wsdl")) as r:
        root = safexml.parse(await r.read())
    loc = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    assert loc == str(sim.make_url(PATH))


async def test_accepts_wrapper_or_text_from_a_document_mapping(sim, http):
    """A mapping may render the submitCase wrapper with xmlData as text (``document:``)."""
    c = client(sim, http)
    text = etree.tostring(package(SQRMC=RARE), encoding="GBK", xml_declaration=True).decode("gb18030")
    wrapper = etree.Element("{http://exchange.zwfw.tj.example/}submitCase")
    etree.SubElement(wrapper, "authCode").text = "from-the-mapping-ignored"
    etree.SubElement(wrapper, "xmlData").text = text
    a = await c.send(wrapper, idempotency_key="w-1", correlation_id="c")
    b = await c.send(text, idempotency_key="w-2", correlation_id="c")
    assert a.kind is b.kind is OutcomeKind.DELIVERED, (a, b)
    names = [m["payload"]["records"][0]["SQRMC"] for m in (await sim_state(http, sim))["messages"]]
    assert names == [RARE, RARE]
    bad = await c.send("<PACKAGE>", idempotency_key="w-3", correlation_id="c")
    assert bad.kind is OutcomeKind.PERMANENT and "not usable XML" in bad.message


async def test_ip_allow_list(aiohttp_server, http):
    blocked = await aiohttp_server(tianjin.create_app(allowed_ips=["10.12.0.8"]))
    out = await client(blocked, http).send(package(), idempotency_key="k", correlation_id="c")
    assert (out.kind, out.http_status) == (OutcomeKind.PERMANENT, 403)
    allowed = await aiohttp_server(tianjin.create_app(allowed_ips=["127.0.0.1"]))
    out = await client(allowed, http).send(package(), idempotency_key="k", correlation_id="c")
    assert out.kind is OutcomeKind.DELIVERED


async def test_odd_correlation_id_never_fails_a_delivery(sim, http):
    out = await client(sim, http).send(package(), idempotency_key="k-odd", correlation_id="办件 #42")
    assert out.kind is OutcomeKind.DELIVERED, out
    assert (await sim_state(http, sim))["messages"][0]["headers"]["X-Correlation-Id"] == "42"


def reply_with(return_xml: bytes) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="'
            b'http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ns2:submitCaseResponse '
            b'xmlns:ns2="http://exchange.zwfw.tj.example/">' + return_xml +
            b"</ns2:submitCaseResponse></soap:Body></soap:Envelope>")


@pytest.mark.parametrize("ret,kind,code", [
    # escaped, GBK-declared (the contract)
    (b"<return>&lt;?xml version=\"1.0\" encoding=\"GBK\"?&gt;&lt;RESULT&gt;&lt;CODE&gt;0&lt;/CODE&gt;"
     b"&lt;MSG&gt;ok&lt;/MSG&gt;&lt;SLBH&gt;R1&lt;/SLBH&gt;&lt;/RESULT&gt;</return>",
     OutcomeKind.DELIVERED, "0"),
    # CDATA instead of escaping, UTF-8 declaration, rare character by reference
    (b"<return><![CDATA[<?xml version=\"1.0\" encoding=\"UTF-8\"?><RESULT><CODE>-3</CODE>"
     b"<MSG>\xe5\x8d\x8f&#134071;</MSG></RESULT>]]></return>", OutcomeKind.PERMANENT, "-3"),
    # no declaration at all, surrounding whitespace
    (b"<return>\n  &lt;RESULT&gt;&lt;CODE&gt;-9&lt;/CODE&gt;&lt;MSG&gt;busy&lt;/MSG&gt;&lt;/RESULT&gt;\n"
     b"</return>", OutcomeKind.RETRYABLE, "-9"),
    (b"<return>&lt;RESULT&gt;&lt;MSG&gt;no code&lt;/MSG&gt;&lt;/RESULT&gt;</return>",
     OutcomeKind.RETRYABLE, None),
    (b"<return/>", OutcomeKind.RETRYABLE, None),
])
def test_reply_variants(ret, kind, code):
    from gateway.protocols import soap
    c = soap_xml_string.create_client("tianjin", settings("http://127.0.0.1:1/"), None)  # type: ignore[arg-type]
    env = soap.parse_envelope(reply_with(ret))
    out = c.interpret(env, 200)
    assert (out.kind, out.partner_code) == (kind, code), out
    if code == "-3":
        assert out.message == "协\U00020BB7"
    if kind is OutcomeKind.DELIVERED:
        assert out.receipt_no == "R1"
