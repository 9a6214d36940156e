"""The status contracts as data: the callback WSDLs work for an independent client (zeep calls
notifyStatus / NotifyStatus on a receiver written from the contracts), the code tables read every
partner code as one canonical status, an unknown code is a clear, catchable error, and the
national status schemas stay in step with the status push they extend.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from gateway.errors import PermanentError
from gateway.mapping import MappingError, MappingRegistry
from gateway.mapping.golden import DEFAULT_CONTEXT
from gateway.status import TERMINAL, CaseStatus
from tests.status_receivers import HB, RECEIVED, TIANJIN_AUTH, receiver
from tests.test_interop_zeep import SETTINGS, result_of

ROOT = Path(__file__).resolve().parent.parent
WSDLS = {
    "tianjin/ExchangeService.wsdl": {"submitCase", "queryStatus"},
    "tianjin/StatusNotify.wsdl": {"notifyStatus"},
    "hebei/CaseExchange.wsdl": {"SubmitCase", "QueryStatus"},
    "hebei/StatusNotify.wsdl": {"NotifyStatus"},
}


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load(ROOT / "mappings", ROOT / "schemas")


@pytest.mark.parametrize("wsdl", sorted(WSDLS))
def test_zeep_loads_every_status_wsdl_with_hardened_settings(wsdl: str) -> None:
    client = zeep.Client(str(ROOT / "schemas" / wsdl), settings=SETTINGS)
    ops = {name for b in client.wsdl.bindings.values() for name in b._operations}
    assert ops == WSDLS[wsdl]


def notify_package(blzt: str = "30", tzbh: str = "TJ-EV-1") -> str:
    """A notifyStatus document built with plain lxml (not the simulator's code)."""
    pkg = etree.Element("PACKAGE")
    head = etree.SubElement(pkg, "PACKAGEHEAD")
    for tag, value in (("TZBH", tzbh), ("XZBH", "BJTJ-XZ-2024-001"), ("FSFBM", "120000000000"),
                       ("JSFBM", "110000000000"), ("FSSJ", "20261201090000"), ("JLS", "1")):
        etree.SubElement(head, tag).text = value
    rec = etree.SubElement(etree.SubElement(pkg, "DATA"), "RECORD")
    for tag, value in (("SLBH", "TJSL00000001"), ("SJBBH", "BJGW-key-1"),
                       ("SBLSH", "BJ2026113000000010"), ("BLZT", blzt),
                       ("BLSJ", "2026-12-01 09:00:00"), ("BLBM", "天津市滨海新区行政审批局")):
        etree.SubElement(rec, tag).text = value
    return etree.tostring(pkg, encoding="GBK", xml_declaration=True).decode("gb18030")


async def test_zeep_calls_tianjin_notify_status_on_a_receiver(aiohttp_server, registry):
    sink = await aiohttp_server(receiver())
    address = str(sink.make_url("/tianjin"))

    def calls() -> tuple[str, str, str]:
        svc = zeep.Client(str(ROOT / "schemas/tianjin/StatusNotify.wsdl"), settings=SETTINGS) \
            .create_service("{http://exchange.zwfw.tj.example/}StatusNotifySoapBinding", address)
        return (svc.notifyStatus(authCode=TIANJIN_AUTH, xmlData=notify_package()),
                svc.notifyStatus(authCode="stolen", xmlData=notify_package()),
                svc.notifyStatus(authCode=TIANJIN_AUTH, xmlData=notify_package(blzt="3O")))

    ok, bad_auth, invalid = await asyncio.to_thread(calls)
    assert result_of(ok).findtext("CODE") == "0"
    assert result_of(bad_auth).findtext("CODE") == "-1"
    assert result_of(invalid).findtext("CODE") == "-2"     # BLZT is two digits
    got = sink.app[RECEIVED][0]
    event = registry.get("tianjin/status-callback").render(
        got["document"].find("DATA/RECORD"), dict(DEFAULT_CONTEXT, partner="tianjin"))
    assert event == {"applicationNo": "BJ2026113000000010", "idempotencyKey": "BJGW-key-1",
                     "partnerCaseNo": "TJSL00000001", "status": "ACCEPTED",
                     "occurredAt": "2026-12-01T09:00:00+08:00", "department": "天津市滨海新区行政审批局"}


async def test_zeep_calls_hebei_notify_status_under_ws_security(aiohttp_server, registry):
    sink = await aiohttp_server(receiver())
    address = str(sink.make_url("/hebei"))
    header = {"messageId": "HB-EV-1", "senderCode": "HEBEI-EXCHANGE",
              "sentAt": "2026-12-01T09:00:00+08:00"}
    status = {"receiptNo": "HBSL00000001", "messageId": "BJGW-key-2", "caseNo": "BJ2026113000000011",
              "status": "COMPLETED", "statusTime": "2026-12-03T07:45:30Z", "result": "REFUSED",
              "opinion": "不符合设立条件"}

    def service(password: str) -> Any:
        client = zeep.Client(str(ROOT / "schemas/hebei/StatusNotify.wsdl"), settings=SETTINGS,
                             wsse=UsernameToken("HEBEI-EXCHANGE", password, use_digest=True))
        return client.create_service(
            "{http://zwfw.hebei.example/exchange/v1/notify/wsdl}StatusNotifySoap12Binding", address)

    def calls() -> tuple[Any, Fault]:
        ok = service("hebei-notify-secret").NotifyStatus(caseStatus=status,
                                                         _soapheaders={"header": header})
        with pytest.raises(Fault) as refused:
            service("guess").NotifyStatus(caseStatus=status, _soapheaders={"header": header})
        return ok, refused.value

    ok, refused = await asyncio.to_thread(calls)
    assert ok.resultCode == "0000"
    assert refused.code.endswith("Sender") and any(
        str(s).endswith("FailedAuthentication") for s in (refused.subcodes or []))
    got = sink.app[RECEIVED][0]
    assert got["id"] == "HB-EV-1" and got["user"] == "HEBEI-EXCHANGE"
    event = registry.get("hebei/status-callback").render(got["document"],
                                                         dict(DEFAULT_CONTEXT, partner="hebei"))
    assert (event["status"], event["result"], event["occurredAt"]) == \
        ("FINISHED", "DENIED", "2026-12-03T15:45:30+08:00")


# -- unknown codes ------------------------------------------------------------------------------

TJ_RECORD = ("<RECORD><SLBH>TJSL00000001</SLBH><BLZT>{code}</BLZT>"
             "<BLSJ>2026-12-01 09:00:00</BLSJ></RECORD>")
HB_STATUS = (f'<hb:NotifyStatusRequest xmlns:hb="{HB}"><hb:caseStatus><hb:receiptNo>HBSL1'
             "</hb:receiptNo><hb:status>{code}</hb:status><hb:statusTime>2026-12-01T09:00:00+08:00"
             "</hb:statusTime></hb:caseStatus></hb:NotifyStatusRequest>")


@pytest.mark.parametrize(("mapping", "source", "code", "table"), [
    ("tianjin/status-callback", TJ_RECORD, "27", "status-vendor-numeric"),
    ("tianjin/status-query", "<RESULT><CODE>0</CODE><MSG>ok</MSG>" + TJ_RECORD[8:-9] + "</RESULT>",
     "50", "status-vendor-numeric"),
    ("hebei/status-callback", HB_STATUS, "ARCHIVED", "hebei-status"),
    ("hebei/status-query", HB_STATUS.replace("NotifyStatusRequest", "QueryStatusResponse"),
     "ARCHIVED", "hebei-status"),
])
def test_a_status_code_without_a_table_entry_is_a_clear_catchable_error(
        registry: MappingRegistry, mapping: str, source: str, code: str, table: str) -> None:
    m = registry.get(mapping)
    with pytest.raises(MappingError) as e:
        m.render(source.format(code=code), dict(DEFAULT_CONTEXT))
    assert isinstance(e.value, PermanentError)       # what the gateway catches to flag the event
    assert f"'{code}'" in str(e.value) and table in str(e.value) and "status" in str(e.value)
    # and a known code passes the same way
    known = {"status-vendor-numeric": "26", "hebei-status": "RECEIVED"}[table]
    assert m.render(source.format(code=known), dict(DEFAULT_CONTEXT))["status"] == "RECEIVED"


def test_hebei_and_tianjin_code_tables_read_every_code_as_one_canonical_status(
        registry: MappingRegistry) -> None:
    hb = registry.tables["hebei-status"]
    assert set(hb.forward) == {s.value for s in CaseStatus}      # Hebei has a code for each
    assert hb.reverse is not None and len(hb.reverse) == len(CaseStatus)   # one-to-one
    for status, code in hb.forward.items():
        assert hb.decode(code) == status
    assert {hb.encode(s) for s in TERMINAL} == {"COMPLETED", "REJECTED", "WITHDRAWN", "TERMINATED"}
    for name, codes in (("hebei-result", {"GRANTED", "REFUSED"}), ("tianjin-result", {"1", "2"})):
        t = registry.tables[name]
        assert set(t.forward) == {"APPROVED", "DENIED"} and set(t.forward.values()) == codes
    from gateway.simulators import hebei, tianjin
    assert hebei.PROFILE.codes == set(hb.forward.values())         # the simulator speaks it
    assert tianjin.PROFILE.codes == set(registry.tables["status-vendor-numeric"].forward.values())


def test_national_status_record_and_export_extend_the_status_push() -> None:
    def load(name: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((ROOT / "schemas/national" / name).read_text("utf-8"))
        return doc

    push, record = load("status-callback.schema.json"), load("status-record.schema.json")
    export = load("status-export.schema.json")
    assert record["properties"] == {**{k: record["properties"][k]
                                       for k in ("receiptNo", "idempotencyKey")},
                                    **push["properties"]}
    assert set(push["required"]) <= set(record["required"])
    assert export["$defs"]["record"] == {k: v for k, v in record.items()
                                         if k in ("type", "additionalProperties", "required",
                                                  "properties")}
