"""The hostile XML corpus of issue 9, three ways: (a) at the hardened parser, (b) at every SOAP
endpoint the simulators serve, (c) as partner replies to the gateway's SOAP clients.

Every document gets a clear rejection in the caller's protocol, and the FIFO that each of its
DTDs, entities and XIncludes names is never opened (see ``tests/hostile_xml.py``). Each run
starts with the genuine document the variants are made from, and checks that it succeeds: a
rejection is then the attack's doing, not the harness's. The gateway serves no SOAP endpoint of
its own yet (inbound SOAP is a later issue), so (b) covers the simulators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from gateway.config import PartnerSettings, load_settings
from gateway.outcome import OutcomeKind
from gateway.protocols import create_client, soap
from gateway.protocols import xml as safexml
from gateway.simulators import hebei, tianjin
from tests.hostile_xml import DTD_REFUSED, NAMES, TOKEN, FifoTrap, corpus, fifo_trap
from tests.harness import TEST_SECRETS


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[FifoTrap]:
    """A FIFO that tells whether anything opened it for reading (``tests/hostile_xml.py``)."""
    yield from fifo_trap(tmp_path)


ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "soap"
HB = hebei.HB
TJ_PATH, HB_PATH = "/tianjin/ExchangeService", "/hebei/CaseExchange"
XI = "{http://www.w3.org/2001/XInclude}include"
FORBIDDEN = {DTD_REFUSED, "attributes", "namespace declarations"}  # attack-shaped, not just broken


def partner(name: str, url: str) -> PartnerSettings:
    """The shipped configuration's partner entry, pointed at ``url``."""
    env = {**TEST_SECRETS, f"GATEWAY_PARTNER_{name.upper()}_URL": url}
    return load_settings(ROOT / "config" / "gateway.yaml", env=env).partners[name]


def tianjin_package() -> etree._Element:
    return safexml.parse((FIX / "tianjin-package.xml").read_bytes())


def hebei_request() -> etree._Element:
    return safexml.parse((FIX / "hebei-request.xml").read_bytes())


def tianjin_reply() -> bytes:
    wrapper = etree.Element(etree.QName(tianjin.TNS, "submitCaseResponse"), nsmap={"ns2": tianjin.TNS})
    etree.SubElement(wrapper, "return").text = tianjin.result_document(
        0, "接收成功", sjbbh="k-genuine", slbh="TJSL000001")
    return soap.build_envelope(soap.SOAP11, wrapper)


def hebei_reply() -> bytes:
    r = etree.Element(etree.QName(HB, "SubmitCaseResponse"), nsmap={"hb": HB})
    for name, value in (("resultCode", "0000"), ("resultMessage", "受理成功"),
                        ("receiptNo", "HBSL000001"), ("acceptedAt", "2026-11-30T10:02:31+08:00")):
        etree.SubElement(r, etree.QName(HB, name)).text = value
    return soap.build_envelope(soap.SOAP12, r)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


# ---- (a) the parser ------------------------------------------------------------------------------

def test_corpus_covers_the_issue():
    assert set(NAMES) >= {
        "xxe-file", "xxe-url", "xxe-parameter-entity", "billion-laughs", "quadratic-blowup",
        "external-dtd", "xinclude", "deep-nesting", "attributes-100k", "namespace-bomb",
        "size-60mb", "invalid-utf8", "gbk-declared-utf8-sent", "utf16le-doctype",
        "utf16be-doctype", "utf32-doctype", "two-bodies", "two-roots", "wrong-soap-version",
        "xxe-inner-string"}


@pytest.mark.parametrize("base, slot, version", [
    (tianjin_reply, "return", soap.SOAP11), (hebei_reply, "resultCode", soap.SOAP12)])
def test_parser_refuses_the_corpus_or_leaves_it_inert(fifo: FifoTrap, base: Callable[[], bytes],
                                                      slot: str, version: soap.SoapVersion):
    answers: dict[str, Any] = {}
    for h in corpus(base(), slot, fifo.url, inner_string=slot == "return"):
        try:
            answers[h.name] = (h, safexml.parse(h.data))
        except safexml.XmlError as e:
            answers[h.name] = (h, e)
    fifo.assert_never_opened()
    for name, (h, got) in answers.items():
        if h.refusal is not None:
            assert isinstance(got, safexml.XmlError) and h.refusal in got.reason, (name, got)
            assert got.forbidden == (h.refusal in FORBIDDEN), name
        else:
            assert isinstance(got, etree._Element), (name, got)
    # what the parser leaves inert is refused one layer up
    assert not any(TOKEN.decode() in (t or "") for t in answers["xinclude"][1].itertext())
    assert answers["xinclude"][1].find(f".//{XI}") is not None
    with pytest.raises(soap.SoapError, match="one Body"):
        soap.parse_envelope(answers["two-bodies"][0].data)
    assert soap.parse_envelope(answers["wrong-soap-version"][0].data).version is not version
    if "xxe-inner-string" in answers:
        inner = answers["xxe-inner-string"][1].findtext(".//return")
        with pytest.raises(safexml.XmlError) as refused:
            safexml.parse_text(inner)
        assert refused.value.forbidden


# ---- (b) every SOAP endpoint the simulators serve -----------------------------------------------

async def _post(http: aiohttp.ClientSession, url: Any, data: bytes, version: soap.SoapVersion,
                action: str) -> tuple[int, bytes]:
    async with http.post(url, data=data, headers=version.http_headers(action)) as r:
        return r.status, await r.read()


def _verdict(status: int, body: bytes, version: soap.SoapVersion) -> str:
    """How the endpoint rejected the request, or an AssertionError if it did not."""
    assert b"Traceback" not in body and b"File \"" not in body, body[:500]
    env = soap.parse_envelope(body)
    assert env.version is version, f"answered in SOAP {env.version.name}"
    if env.fault is not None:
        assert status >= 400 and env.fault.reason, (status, env.fault)
        return f"fault {env.fault.code} ({status}): {env.fault.reason}"
    assert status == 200 and version is soap.SOAP11, status  # Tianjin's RESULT document
    result = safexml.parse_text(env.body[0].findtext("return") or "")
    code = int(result.findtext("CODE") or "0")
    assert code < 0, f"accepted: {etree.tostring(result, encoding='unicode')}"
    return f"RESULT {code}: {result.findtext('MSG')}"


async def test_tianjin_endpoint_rejects_the_corpus(aiohttp_server, http, fifo: FifoTrap):
    server = await aiohttp_server(tianjin.create_app())
    url = server.make_url(TJ_PATH)
    client = create_client("tianjin", partner("tianjin", str(url)), http)
    action = client.operation.action  # type: ignore[attr-defined]

    def genuine() -> bytes:
        return client.build_request(tianjin_package(), "k-genuine", "c")  # type: ignore[attr-defined]

    status, body = await _post(http, url, genuine(), soap.SOAP11, action)
    ok = safexml.parse_text(soap.parse_envelope(body).body[0].findtext("return"))
    assert status == 200 and ok.findtext("CODE") == "0", ok.findtext("MSG")
    verdicts = {h.name: _verdict(*await _post(http, url, h.data, soap.SOAP11, action), soap.SOAP11)
                for h in corpus(genuine, "xmlData", fifo.url, inner_string=True)}
    fifo.assert_never_opened()
    assert set(verdicts) == set(NAMES)
    assert verdicts["xxe-inner-string"].startswith("RESULT -2")
    assert "VersionMismatch" in verdicts["wrong-soap-version"]
    assert "one Body" in verdicts["two-bodies"] and "报文过大" in verdicts["size-60mb"]


async def test_hebei_endpoint_rejects_the_corpus(aiohttp_server, http, fifo: FifoTrap):
    server = await aiohttp_server(hebei.create_app())
    url = server.make_url(HB_PATH)
    client = create_client("hebei", partner("hebei", str(url)), http)
    action = client.operation.action  # type: ignore[attr-defined]
    n = iter(range(10**6))

    def genuine() -> bytes:  # a fresh WS-Security nonce and message id for every variant
        return client.build_request(hebei_request(), f"k-{next(n)}", "c")  # type: ignore[attr-defined]

    status, body = await _post(http, url, genuine(), soap.SOAP12, action)
    ok = soap.parse_envelope(body).body[0]
    assert status == 200 and ok.findtext(f"{{{HB}}}resultCode") == "0000"
    verdicts = {h.name: _verdict(*await _post(http, url, h.data, soap.SOAP12, action), soap.SOAP12)
                for h in corpus(genuine, "caseNo", fifo.url)}
    fifo.assert_never_opened()
    assert set(verdicts) == set(NAMES) - {"xxe-inner-string"}
    assert all(v.startswith("fault") for v in verdicts.values()), verdicts
    assert "VersionMismatch" in verdicts["wrong-soap-version"]
    assert "one Body" in verdicts["two-bodies"]
    assert "caseNo" in verdicts["xinclude"]  # parsed, then refused by the schema: not expanded


# ---- (c) as partner replies -------------------------------------------------------------------------

REPLY = web.AppKey("reply", dict)


async def _replying(request: web.Request) -> web.Response:
    r = request.app[REPLY]
    await request.read()
    return web.Response(status=200, body=r["body"], content_type=r["type"])


@pytest.mark.parametrize("name, payload, base, slot, media", [
    ("tianjin", tianjin_package, tianjin_reply, "return", "text/xml"),
    ("hebei", hebei_request, hebei_reply, "resultCode", "application/soap+xml"),
])
async def test_gateway_clients_fail_cleanly_on_hostile_replies(
        aiohttp_server, http, fifo: FifoTrap, name: str, payload: Callable[[], etree._Element],
        base: Callable[[], bytes], slot: str, media: str):
    app = web.Application()
    app[REPLY] = {"body": base(), "type": media}
    app.router.add_post("/{tail:.*}", _replying)
    server = await aiohttp_server(app)
    client = create_client(name, partner(name, str(server.make_url("/partner"))), http)

    async def send(key: str) -> Any:
        return await client.send(payload(), idempotency_key=key, correlation_id="c-hostile")

    genuine = await send("k-genuine")
    assert genuine.kind is OutcomeKind.DELIVERED, genuine
    outcomes = {}
    for h in corpus(base(), slot, fifo.url, inner_string=name == "tianjin"):
        app[REPLY]["body"] = h.data
        outcomes[h.name] = await send(f"k-{h.name}")
    fifo.assert_never_opened()
    for variant, out in outcomes.items():
        assert out.kind in (OutcomeKind.RETRYABLE, OutcomeKind.PERMANENT), (variant, out)
        assert out.message and out.message.isprintable(), (variant, out)
        assert "Traceback" not in out.message and TOKEN.decode() not in out.message, variant
    assert "DOCTYPE" in outcomes["utf16le-doctype"].message
    assert "SOAP 1." in outcomes["wrong-soap-version"].message
    assert "one Body" in outcomes["two-bodies"].message
