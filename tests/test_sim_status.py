"""The partners' statuses, as their simulators keep and report them, over real sockets.

Status queries are made by independent clients (zeep on the vendored WSDLs for Tianjin and
Hebei, plain HTTP for the national envelope) and their answers checked against the XSDs and JSON
Schemas; callbacks go to a receiver written from the contracts (tests/status_receivers.py) and
are read back through the gateway's own inbound mappings, so the whole way from a partner's
status to the canonical event is exercised. Also: the dedupe switch, and the national bulk
export paged through 10,000 generated records with and without faults.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import zeep
from jsonschema import Draft202012Validator
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from gateway.mapping import MappingRegistry
from gateway.mapping.golden import DEFAULT_CONTEXT
from gateway.protocols import xml as safexml
from gateway.simulators import hebei, national, tianjin
from gateway.simulators.export import generated_json, generated_record
from tests.status_receivers import RECEIVED, receiver
from tests.test_interop_zeep import BINDING, HEBEI_WSDL, SETTINGS, hebei_case, inner_gbk, result_of

ROOT = Path(__file__).resolve().parent.parent
TJ_WSDL = str(ROOT / "schemas" / "tianjin" / "ExchangeService.wsdl")
TJ_BINDING = "{http://exchange.zwfw.tj.example/}ExchangeServiceSoapBinding"
STATUS_RESULT = safexml.load_schema(ROOT / "schemas" / "tianjin" / "status-result.xsd")
QUERY_XSD = safexml.load_schema(ROOT / "schemas" / "tianjin" / "status-query.xsd")
NATIONAL_CASE = json.loads((ROOT / "mappings/tests/national/case-submit/"
                            "01-person-shanghai-social-security.expected.json").read_text("utf-8"))


def _json_schema(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads((ROOT / "schemas/national" / name).read_text("utf-8")))


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load(ROOT / "mappings", ROOT / "schemas")


async def post(url: str, doc: Any, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(url, json=doc, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def get(url: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return await r.json()


def envelope(data: dict[str, Any], app_id: str = "BJ-GATEWAY-DEMO") -> dict[str, Any]:
    return {"appId": app_id, "version": "1.0", "timestamp": int(time.time() * 1000),
            "nonce": "0123456789abcdef", "encType": "NONE", "signType": "NONE", "data": data}


def tj_query(**by: str) -> str:
    """A queryStatus inner document, built with plain lxml and checked against its XSD."""
    from lxml import etree
    q = etree.Element("QUERY")
    etree.SubElement(q, "XZBH").text = by.pop("XZBH", "BJTJ-XZ-2024-001")
    for k, v in by.items():
        etree.SubElement(q, k).text = v
    assert QUERY_XSD.validate(q), QUERY_XSD.error_log
    return etree.tostring(q, encoding="GBK", xml_declaration=True).decode("gb18030")


# -- status queries --------------------------------------------------------------------------

async def test_tianjin_query_status_with_zeep_by_receipt_key_and_unknown(aiohttp_server):
    server = await aiohttp_server(tianjin.create_app())
    url = str(server.make_url("/tianjin/ExchangeService"))
    auth = tianjin.DEFAULT_AUTH_CODE

    def submit_and_query() -> list[str]:
        client = zeep.Client(url + "?wsdl", settings=SETTINGS)   # the served WSDL
        ok = client.service.submitCase(authCode=auth, xmlData=inner_gbk("测试甲", "tj-q-1"))
        slbh = result_of(ok).findtext("SLBH")
        return [slbh,
                client.service.queryStatus(authCode=auth, xmlData=tj_query(SLBH=slbh)),
                client.service.queryStatus(authCode=auth, xmlData=tj_query(SJBBH="tj-q-1")),
                client.service.queryStatus(authCode=auth, xmlData=tj_query(SJBBH="never-sent")),
                client.service.queryStatus(authCode="wrong", xmlData=tj_query(SLBH=slbh)),
                client.service.queryStatus(authCode=auth,
                                           xmlData=tj_query(SLBH=slbh, XZBH="NO-SUCH"))]

    slbh, by_receipt, by_key, unknown, bad_auth, bad_xzbh = await asyncio.to_thread(submit_and_query)
    for text in (by_receipt, by_key, unknown, bad_auth):
        assert text.startswith('<?xml version="1.0" encoding="GBK"?>')
        assert STATUS_RESULT.validate(result_of(text)), STATUS_RESULT.error_log
    r = result_of(by_receipt)
    assert (r.findtext("CODE"), r.findtext("SLBH"), r.findtext("SJBBH")) == ("0", slbh, "tj-q-1")
    assert r.findtext("BLZT") == "26" and r.findtext("SBLSH") == "BJ2026113000000010"
    assert result_of(by_key).findtext("SLBH") == slbh
    assert (result_of(unknown).findtext("CODE"), result_of(unknown).findtext("MSG")) == \
        ("-4", "办件不存在")
    assert result_of(bad_auth).findtext("CODE") == "-1"
    assert result_of(bad_xzbh).findtext("CODE") == "-3"

    # walk it to approval: the query shows the end, the result, the licence and the history
    status, walked = await post(str(server.make_url("/__sim/walk")),
                                {"receipt": slbh, "path": "approved"})
    assert status == 200 and [e["status"] for e in walked["case"]["history"]] == ["26", "30", "90"]
    client = await asyncio.to_thread(lambda: zeep.Client(TJ_WSDL, settings=SETTINGS)
                                     .create_service(TJ_BINDING, url))
    done = result_of(await asyncio.to_thread(client.queryStatus, authCode=auth,
                                             xmlData=tj_query(SLBH=slbh)))
    assert STATUS_RESULT.validate(done), STATUS_RESULT.error_log
    assert (done.findtext("BLZT"), done.findtext("BJJG")) == ("90", "1")
    assert done.findtext("DZZZXX/ZZ/ZZBH").startswith("1.2.156.3005.2.11120000000012345M.")
    assert [jl.findtext("BLZT") for jl in done.iterfind("LSJL/JL")] == ["26", "30", "90"]


def hebei_client(address: str, password: str = "hebei-demo-secret") -> Any:
    client = zeep.Client(HEBEI_WSDL, settings=SETTINGS,
                         wsse=UsernameToken("BJ-GATEWAY", password, use_digest=True))
    return client.create_service(BINDING, address)


async def test_hebei_query_status_with_zeep_and_ws_security(aiohttp_server):
    server = await aiohttp_server(hebei.create_app())
    address = str(server.make_url("/hebei/CaseExchange"))
    header = {"messageId": "hb-q-1", "senderCode": "ZEEP", "sentAt": "2026-11-30T10:00:00+08:00"}

    def calls() -> tuple[Any, ...]:
        svc = hebei_client(address)
        receipt = svc.SubmitCase(case=hebei_case(), _soapheaders={"header": header}).receiptNo
        by_receipt = svc.QueryStatus(receiptNo=receipt)
        by_key = svc.QueryStatus(messageId="hb-q-1")
        unknown = svc.QueryStatus(messageId="never-sent")
        with pytest.raises(Fault) as refused:
            hebei_client(address, "wrong").QueryStatus(receiptNo=receipt)
        return receipt, by_receipt, by_key, unknown, refused.value

    receipt, by_receipt, by_key, unknown, refused = await asyncio.to_thread(calls)
    # zeep (strict) has parsed each answer against case.xsd already
    assert by_receipt.resultCode == "0000"
    assert by_receipt.caseStatus.receiptNo == receipt and by_receipt.caseStatus.status == "RECEIVED"
    assert by_receipt.caseStatus.messageId == "hb-q-1"
    assert by_key.caseStatus.receiptNo == receipt
    assert unknown.resultCode == hebei.NOT_FOUND and unknown.caseStatus is None
    assert refused.code.endswith("Sender") and "authentication failed" in refused.message

    await post(str(server.make_url("/__sim/walk")), {"key": "hb-q-1", "path": "supplement"})
    done = await asyncio.to_thread(lambda: hebei_client(address).QueryStatus(receiptNo=receipt))
    assert (done.caseStatus.status, done.caseStatus.result) == ("COMPLETED", "GRANTED")
    assert done.caseStatus.licences.licence[0].licenceId.startswith("1.2.156.3005.2.")
    assert [e.status for e in done.history.entry] == [
        "RECEIVED", "CORRECTION_REQUIRED", "ACCEPTED", "UNDER_REVIEW", "COMPLETED"]


async def test_national_status_query_by_every_name_and_unknown(aiohttp_server):
    server = await aiohttp_server(national.create_app())
    record_v = _json_schema("status-record.schema.json")
    _, sub = await post(str(server.make_url(national.PATH)), envelope(NATIONAL_CASE),
                        **{"X-Idempotency-Key": "nat-q-1"})
    receipt = sub["data"]["receiptNo"]
    q = str(server.make_url(national.QUERY_PATH))
    for by in ({"receiptNo": receipt}, {"idempotencyKey": "nat-q-1"},
               {"projectNo": NATIONAL_CASE["projectNo"]},
               {"localProjectNo": NATIONAL_CASE["localProjectNo"],
                "taskCode": NATIONAL_CASE["taskCode"]}):
        status, answer = await post(q, envelope(by))
        assert status == 200 and answer["code"] == "0", (by, answer)
        assert not list(record_v.iter_errors(answer["data"]))
        assert answer["data"]["receiptNo"] == receipt and answer["data"]["proStatus"] == "RECEIVED"
    _, unknown = await post(q, envelope({"idempotencyKey": "never-sent"}))
    assert unknown["code"] == national.NOT_FOUND
    _, two_names = await post(q, envelope({"receiptNo": receipt, "idempotencyKey": "nat-q-1"}))
    assert two_names["code"] == "40001"            # the query names exactly one case
    _, stranger = await post(q, envelope({"receiptNo": receipt}, app_id="SOMEONE"))
    assert stranger["code"] == "40100"
    got = await get(str(server.make_url(f"{national.PATH}/{receipt}")))
    assert got["data"]["idempotencyKey"] == "nat-q-1"


# -- callbacks ---------------------------------------------------------------------------------

async def submit(partner: str, server: Any, key: str) -> str:
    """One case submitted to a simulator in its contract; its receipt."""
    if partner == "national":
        _, sub = await post(str(server.make_url(national.PATH)), envelope(NATIONAL_CASE),
                            **{"X-Idempotency-Key": key})
        return str(sub["data"]["receiptNo"])
    if partner == "tianjin":
        url = str(server.make_url("/tianjin/ExchangeService"))
        svc = await asyncio.to_thread(
            lambda: zeep.Client(TJ_WSDL, settings=SETTINGS).create_service(TJ_BINDING, url))
        text = await asyncio.to_thread(svc.submitCase, authCode=tianjin.DEFAULT_AUTH_CODE,
                                       xmlData=inner_gbk("测试甲", key))
        return str(result_of(text).findtext("SLBH"))
    address = str(server.make_url("/hebei/CaseExchange"))
    header = {"messageId": key, "senderCode": "ZEEP", "sentAt": "2026-11-30T10:00:00+08:00"}
    r = await asyncio.to_thread(lambda: hebei_client(address).SubmitCase(
        case=hebei_case(), _soapheaders={"header": header}))
    return str(r.receiptNo)


SIMULATORS = {"national": national, "tianjin": tianjin, "hebei": hebei}
APPROVED = {"national": ["ACCEPTED", "IN_REVIEW", "FINISHED"], "tianjin": ["ACCEPTED", "FINISHED"],
            "hebei": ["ACCEPTED", "IN_REVIEW", "FINISHED"]}


def canonical(registry: MappingRegistry, record: dict[str, Any]) -> dict[str, Any]:
    """The receiver's document read through the gateway's inbound mapping of that partner."""
    partner = record["partner"]
    doc = record["document"]
    source = doc.find("DATA/RECORD") if partner == "tianjin" else doc
    ctx = dict(DEFAULT_CONTEXT, partner=partner)
    out: dict[str, Any] = registry.get(f"{partner}/status-callback").render(source, ctx)
    return out


@pytest.mark.parametrize("partner", ["national", "tianjin", "hebei"])
async def test_every_simulator_calls_back_in_its_contract(aiohttp_server, registry, partner):
    sink = await aiohttp_server(receiver())
    sim = await aiohttp_server(SIMULATORS[partner].create_app(
        callback_url=str(sink.make_url(f"/{partner}"))))
    receipt = await submit(partner, sim, f"{partner}-cb-1")
    status, walked = await post(str(sim.make_url("/__sim/walk")),
                                {"receipt": receipt, "path": "approved",
                                 "start": "2026-12-01T09:00:00+08:00", "step_seconds": 3600})
    assert status == 200, walked
    got = sink.app[RECEIVED]
    assert [r.get("refused") for r in got] == [None] * len(APPROVED[partner])
    assert all(c["ok"] for c in walked["callbacks"]), walked["callbacks"]
    events = [canonical(registry, r) for r in got]
    assert [e["status"] for e in events] == APPROVED[partner]
    assert [e["occurredAt"] for e in events] == [
        f"2026-12-01T{9 + n:02d}:00:00+08:00" for n in range(len(events))]
    assert events[-1]["result"] == "APPROVED"
    assert events[-1]["elicences"][0]["licenceId"].startswith("1.2.156.3005.2.")
    if partner != "national":      # the SOAP partners name the case by receipt and key
        assert {(e["partnerCaseNo"], e["idempotencyKey"]) for e in events} == {
            (receipt, f"{partner}-cb-1")}
    else:
        assert {e["applicationNo"] for e in events} == {NATIONAL_CASE["localProjectNo"]}
    assert len({r["id"] for r in got}) == len(got)      # one event id per event
    if partner == "tianjin":
        assert all(r["declaration"] == '<?xml version="1.0" encoding="GBK"?>' for r in got)
    if partner == "hebei":
        assert {r["user"] for r in got} == {"HEBEI-EXCHANGE"}
        assert 'action="urn:hebei:exchange:NotifyStatus"' in got[0]["headers"]["Content-Type"]
    state = await get(str(sim.make_url("/__sim/state?messages=0")))
    assert state["callbacks"] == len(APPROVED[partner])


@pytest.mark.parametrize(("partner", "auth", "refusal"), [
    ("tianjin", {"auth_code": "stolen"}, "-1"),
    ("hebei", {"username": "HEBEI-EXCHANGE", "password": "guess"}, "FailedAuthentication"),
    ("national", {"app_id": "SOMEONE"}, "40100"),
])
async def test_a_callback_with_wrong_credentials_is_refused_and_recorded(aiohttp_server, partner,
                                                                         auth, refusal):
    sink = await aiohttp_server(receiver())
    sim = await aiohttp_server(SIMULATORS[partner].create_app())
    status, cfg = await post(str(sim.make_url("/__sim/config")),
                             {"callback_url": str(sink.make_url(f"/{partner}")),
                              "callback_auth": auth})
    assert status == 200 and set(cfg["callback_auth"].values()) == {"***"}   # not echoed
    receipt = await submit(partner, sim, f"{partner}-bad-1")
    code = SIMULATORS[partner].PROFILE.paths["approved"][0][0]
    _, done = await post(str(sim.make_url("/__sim/status")), {"receipt": receipt, "status": code})
    [sent] = done["callbacks"]
    assert sent["ok"] is False and sent["code"] == refusal
    assert sink.app[RECEIVED][0]["refused"]


async def test_duplicate_and_out_of_order_callbacks_on_order(aiohttp_server, registry):
    sink = await aiohttp_server(receiver())
    sim = await aiohttp_server(hebei.create_app(callback_url=str(sink.make_url("/hebei"))))
    receipt = await submit("hebei", sim, "hb-order-1")
    _, walked = await post(str(sim.make_url("/__sim/walk")),
                           {"receipt": receipt, "path": "approved", "order": "reverse",
                            "repeat": 1})
    got = sink.app[RECEIVED]
    assert [canonical(registry, r)["status"] for r in got] == [
        "FINISHED", "FINISHED", "IN_REVIEW", "IN_REVIEW", "ACCEPTED", "ACCEPTED"]
    ids = [r["id"] for r in got]
    assert ids[0::2] == ids[1::2] and len(set(ids)) == 3     # a resend keeps its event id
    assert walked["case"]["status"] == "COMPLETED"          # the partner's truth is the last step
    # a callback_repeat in the configuration resends every later callback too
    await post(str(sim.make_url("/__sim/config")), {"callback_repeat": 2})
    _, again = await post(str(sim.make_url("/__sim/status")),
                          {"receipt": receipt, "status": "TERMINATED", "force": False})
    assert len(again["callbacks"]) == 3 and len({c["eventId"] for c in again["callbacks"]}) == 1


async def test_status_control_refuses_unknown_codes_and_cases_unless_forced(aiohttp_server):
    sim = await aiohttp_server(tianjin.create_app())
    receipt = await submit("tianjin", sim, "tj-ctl-1")
    url = str(sim.make_url("/__sim/status"))
    assert (await post(url, {"receipt": receipt, "status": "27"}))[0] == 400
    assert (await post(url, {"receipt": "TJSL99999999", "status": "30"}))[0] == 404
    assert (await post(url, {"key": "tj-ctl-1", "status": "90", "result": "7"}))[0] == 400
    status, forced = await post(url, {"key": "tj-ctl-1", "status": "27", "force": True,
                                      "at": "2026-12-01 08:00:00"})
    assert status == 200 and forced["case"]["history"][-1]["at"] == "2026-12-01T08:00:00+08:00"
    assert forced["callbacks"] == []                       # no callback URL configured


# -- dedupe switch ----------------------------------------------------------------------------

@pytest.mark.parametrize("partner", ["national", "tianjin", "hebei"])
async def test_dedupe_switch_makes_a_resent_submission_a_second_case(aiohttp_server, partner):
    sim = await aiohttp_server(SIMULATORS[partner].create_app())
    first = await submit(partner, sim, f"{partner}-dd-1")
    assert await submit(partner, sim, f"{partner}-dd-1") == first       # dedupe on: same receipt
    status, cfg = await post(str(sim.make_url("/__sim/config")), {"dedupe": False})
    assert status == 200 and cfg["dedupe"] is False
    third = await submit(partner, sim, f"{partner}-dd-1")
    assert third != first
    state = await get(str(sim.make_url("/__sim/state?messages=0")))
    assert (state["received"], state["duplicates"], state["cases"], state["dedupe"]) == \
        (3, 2, 2, False)
    cases = (await get(str(sim.make_url("/__sim/cases"))))["cases"]
    assert sorted(c["receipt"] for c in cases) == sorted([first, third])
    await post(str(sim.make_url("/__sim/reset")), {})
    assert (await get(str(sim.make_url("/__sim/state?messages=0"))))["dedupe"] is True


# -- bulk export --------------------------------------------------------------------------------

async def walk_export(server: Any, limit: int, retries: int = 3) -> tuple[list[dict[str, Any]],
                                                                         int, int]:
    """Every record of the export, retrying a failed page; (records, pages, HTTP 500s)."""
    url = str(server.make_url(national.EXPORT_PATH))
    records: list[dict[str, Any]] = []
    cursor, pages, failures = None, 0, 0
    async with aiohttp.ClientSession() as s:
        while True:
            data: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            for _ in range(retries):
                async with s.post(url, json=envelope(data)) as r:
                    if r.status == 500:
                        failures += 1
                        continue
                    doc = await r.json()
                    break
            assert doc["code"] == "0", doc
            pages += 1
            records += doc["data"]["records"]
            cursor = doc["data"]["nextCursor"]
            if cursor is None:
                return records, pages, failures


async def test_export_pages_through_10000_generated_records_in_order_once(aiohttp_server):
    server = await aiohttp_server(national.create_app())
    status, _ = await post(str(server.make_url("/__sim/export")), {"generated": 10_000, "seed": 3})
    assert status == 200
    records, pages, failures = await walk_export(server, limit=1000)
    assert (len(records), pages, failures) == (10_000, 10, 0)
    receipts = [r["receiptNo"] for r in records]
    assert receipts == sorted(receipts) and len(set(receipts)) == 10_000
    assert records[1234] == generated_record(1234, seed=3)     # the benchmark's other side
    for i in range(0, 10_000, 7):                              # the text is the record
        assert json.loads(generated_json(i, seed=3)) == records[i] == generated_record(i, seed=3)
    from datetime import datetime, timedelta, timezone
    epoch = datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    for i in (0, 899, 900, 1439, 1440, 9999):                  # minutes apart, across midnight
        assert records[i]["statusTime"] == f"{epoch + timedelta(minutes=i):%Y-%m-%d %H:%M:%S}"
    page_v = _json_schema("status-export.schema.json")
    assert not list(page_v.iter_errors({"records": records, "nextCursor": None}))
    statuses = {r["proStatus"] for r in records}
    assert {"RECEIVED", "ACCEPTED", "IN_REVIEW", "FINISHED", "WITHDRAWN"} <= statuses
    assert all(("resultCode" in r) == (r["proStatus"] == "FINISHED") for r in records)


async def test_export_faults_slow_page_http500_and_repeated_records(aiohttp_server):
    server = await aiohttp_server(national.create_app())
    await post(str(server.make_url("/__sim/export")),
               {"generated": 1000, "http500_pages": [2], "repeat_pages": [3], "repeat_count": 7,
                "slow_pages": [4], "slow_delay": 0.3})
    started = time.monotonic()
    records, pages, failures = await walk_export(server, limit=100)
    assert time.monotonic() - started >= 0.3
    assert (pages, failures, len(records)) == (10, 1, 1007)
    receipts = [r["receiptNo"] for r in records]
    assert len(set(receipts)) == 1000
    assert receipts[200:207] == receipts[193:200]        # page 3 began with page 2's last 7
    stats = (await get(str(server.make_url("/__sim/export"))))["stats"]
    assert {(f["kind"], f["page"]) for f in stats["faults"]} == {
        ("http500", 2), ("repeat", 3), ("slow", 4)}
    bad = await post(str(server.make_url("/__sim/export")), {"generated": 5, "pages": [1]})
    assert bad[0] == 400


async def test_export_of_the_cases_the_simulator_holds(aiohttp_server):
    server = await aiohttp_server(national.create_app())
    receipts = [(await post(str(server.make_url(national.PATH)), envelope(NATIONAL_CASE),
                            **{"X-Idempotency-Key": f"nat-ex-{n}"}))[1]["data"]["receiptNo"]
                for n in range(5)]
    await post(str(server.make_url("/__sim/walk")), {"receipt": receipts[1], "path": "denied"})
    records, pages, _ = await walk_export(server, limit=2)
    assert pages == 3 and [r["receiptNo"] for r in records] == receipts
    assert (records[1]["proStatus"], records[1]["resultCode"]) == ("FINISHED", "2")
    assert {r["proStatus"] for r in records[2:]} == {"RECEIVED"}
    _, foreign = await post(str(server.make_url(national.EXPORT_PATH)),
                            envelope({"limit": 2, "cursor": "g:4"}))
    assert foreign["code"] == "40001"           # a cursor of another export is refused


async def test_gateway_simulate_takes_callback_and_dedupe_options(tmp_path):
    """``gateway simulate`` as a child process: the options become the start-up config."""
    import socket
    import subprocess
    import sys
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "simulate", "hebei", "--port", str(port),
         "--callback-url", "http://127.0.0.1:9/hebei", "--callback-auth", "username=HB",
         "--callback-auth", "password=secret", "--no-dedupe"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                state = await get(base + "/__sim/state?messages=0")
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        assert state["dedupe"] is False
        _, cfg = await post(base + "/__sim/config", {})
        assert cfg["callback_url"] == "http://127.0.0.1:9/hebei"
        assert cfg["callback_auth"] == {"username": "***", "password": "***"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
