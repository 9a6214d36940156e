"""Interop: zeep, an independent SOAP client, talks to our Tianjin and Hebei simulators.

zeep loads each simulator's WSDL from the served ``?wsdl`` URL on 127.0.0.1 (the Hebei WSDL
imports its XSD from ``?xsd=case.xsd``), with the same hardened settings the gateway uses.
zeep is synchronous, so each call runs in a worker thread while the simulator serves on the
test's event loop. The inner Tianjin document is built here with plain lxml, not with the
gateway's encoder, so both sides of the GBK convention are exercised independently.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from gateway.simulators import hebei, tianjin

FIX = Path(__file__).parent / "fixtures" / "soap"
HB = "http://zwfw.hebei.example/exchange/v1"
SETTINGS = zeep.Settings(strict=True, forbid_external=True, forbid_dtd=True, forbid_entities=True)
# forbid_external refuses the served WSDL's http import of ?xsd=case.xsd (as it should: the
# gateway vendors files). To prove the served pair is consumable, one test lifts it on loopback.
SERVED = zeep.Settings(strict=True, forbid_external=False, forbid_dtd=True, forbid_entities=True)
HEBEI_WSDL = str(Path(__file__).resolve().parent.parent / "schemas" / "hebei" / "CaseExchange.wsdl")
BINDING = "{http://zwfw.hebei.example/exchange/v1/wsdl}CaseExchangeSoap12Binding"


def inner_gbk(name: str, key: str, collaboration: str = "BJTJ-XZ-2024-001") -> str:
    root = etree.fromstring((FIX / "tianjin-package.xml").read_bytes())
    root.find("PACKAGEHEAD/SJBBH").text = key
    root.find("PACKAGEHEAD/XZBH").text = collaboration
    root.find("DATA/RECORD/SQRMC").text = name
    return etree.tostring(root, encoding="GBK", xml_declaration=True).decode("gb18030")


def result_of(text: str) -> etree._Element:
    return etree.fromstring(text.encode("gb18030"), etree.XMLParser(encoding="gb18030",
                                                                     resolve_entities=False))


async def test_zeep_client_against_tianjin_simulator(aiohttp_server):
    server = await aiohttp_server(tianjin.create_app())
    url = str(server.make_url("/tianjin/ExchangeService")) + "?wsdl"

    def calls() -> list[str]:
        client = zeep.Client(url, settings=SETTINGS)
        ok = client.service.submitCase(authCode=tianjin.DEFAULT_AUTH_CODE,
                                       xmlData=inner_gbk("吉\U00020BB7", "zeep-1"))
        dup = client.service.submitCase(authCode=tianjin.DEFAULT_AUTH_CODE,
                                        xmlData=inner_gbk("吉\U00020BB7", "zeep-1"))
        bad_auth = client.service.submitCase(authCode="nope", xmlData=inner_gbk("x", "zeep-2"))
        unknown = client.service.submitCase(authCode=tianjin.DEFAULT_AUTH_CODE,
                                            xmlData=inner_gbk("x", "zeep-3", "NO-SUCH"))
        return [ok, dup, bad_auth, unknown]

    ok, dup, bad_auth, unknown = await asyncio.to_thread(calls)
    r = result_of(ok)
    assert r.findtext("CODE") == "0" and r.findtext("SLBH").startswith("TJSL")
    assert result_of(dup).findtext("SLBH") == r.findtext("SLBH")
    assert result_of(bad_auth).findtext("CODE") == "-1"
    assert result_of(unknown).findtext("CODE") == "-3"
    import aiohttp
    async with aiohttp.ClientSession() as s:
        async with s.get(server.make_url("/__sim/state")) as resp:
            state = await resp.json()
    assert state["unique"] == 1 and state["duplicates"] == 1
    assert state["messages"][0]["payload"]["records"][0]["SQRMC"] == "吉\U00020BB7"


def hebei_case() -> dict:
    doc = etree.fromstring((FIX / "hebei-request.xml").read_bytes())
    case = doc.find(f"{{{HB}}}case")
    def plain(el: etree._Element):
        kids = [c for c in el if isinstance(c.tag, str)]
        if not kids:
            return el.text
        out: dict = {}
        for c in kids:
            k = etree.QName(c).localname
            v = plain(c)
            if k in ("item", "material"):
                out.setdefault(k, []).append(v)
            else:
                out[k] = v
        return out
    return plain(case)


def hebei_service(address: str, password: str = "hebei-demo-secret"):
    """zeep on the vendored WSDL file (hardened settings), pointed at the simulator."""
    client = zeep.Client(HEBEI_WSDL, settings=SETTINGS,
                         wsse=UsernameToken("BJ-GATEWAY", password, use_digest=True))
    return client.create_service(BINDING, address)


async def test_zeep_client_against_hebei_simulator(aiohttp_server):
    server = await aiohttp_server(hebei.create_app())
    address = str(server.make_url("/hebei/CaseExchange"))
    header = {"messageId": "zeep-hb-1", "senderCode": "ZEEP", "sentAt": "2026-11-30T10:00:00+08:00"}

    def calls():
        good = hebei_service(address)
        r1 = good.SubmitCase(case=hebei_case(), _soapheaders={"header": header})
        r2 = good.SubmitCase(case=hebei_case(), _soapheaders={"header": header})
        with pytest.raises(Fault) as auth_fault:
            hebei_service(address, "wrong").SubmitCase(case=hebei_case(),
                                                       _soapheaders={"header": header})
        return r1, r2, auth_fault.value

    r1, r2, fault = await asyncio.to_thread(calls)
    assert r1.resultCode == "0000" and r1.receiptNo.startswith("HBSL")
    assert r2.receiptNo == r1.receiptNo and r2.resultMessage == "重复报文，已受理"
    assert fault.code.endswith("Sender") and "authentication failed" in fault.message
    assert any(str(s).endswith("FailedAuthentication") for s in (fault.subcodes or []))


async def test_zeep_sees_receiver_fault_detail(aiohttp_server):
    server = await aiohttp_server(hebei.create_app())
    url = str(server.make_url("/hebei/CaseExchange")) + "?wsdl"
    import aiohttp
    async with aiohttp.ClientSession() as s:
        await s.post(server.make_url("/__sim/behaviour"), json={"mode": "fault_receiver"})

    def call():
        # the served WSDL (which imports ?xsd=case.xsd over loopback HTTP)
        c = zeep.Client(url, settings=SERVED,
                        wsse=UsernameToken("BJ-GATEWAY", "hebei-demo-secret", use_digest=True))
        with pytest.raises(Fault) as f:
            c.service.SubmitCase(case=hebei_case(),
                                 _soapheaders={"header": {"messageId": "z2", "senderCode": "Z",
                                                          "sentAt": "2026-11-30T10:00:00+08:00"}})
        return f.value

    fault = await asyncio.to_thread(call)
    assert fault.code.endswith("Receiver")
    assert fault.detail.find(f".//{{{HB}}}errorCode").text == "5001"


async def test_hardened_zeep_refuses_the_served_http_import(aiohttp_server):
    """Why the gateway vendors WSDLs as files: forbid_external blocks transitive http imports."""
    from zeep.exceptions import ExternalReferenceForbidden
    server = await aiohttp_server(hebei.create_app())
    url = str(server.make_url("/hebei/CaseExchange")) + "?wsdl"
    with pytest.raises(ExternalReferenceForbidden):
        await asyncio.to_thread(zeep.Client, url, settings=SETTINGS)
