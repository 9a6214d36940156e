"""An inbound case's statuses flow back to the partner that submitted it (issue 15), on both
engines, with real sockets: Tianjin submits a case (raw SOAP 1.1 submitCase), the city platform
reports ACCEPTED then FINISHED/APPROVED (then the same event again, then an older ACCEPTED) on
``POST /api/v1/inbound-cases/{receiptNo}/status``, and Tianjin's simulator receives each change
exactly once as ``notifyStatus(authCode, xmlData)``, the inner PACKAGE valid by its
status-notify.xsd. A national case's statuses reach the national simulator once each as the
platform's status callback (envelope, data per status-callback.schema.json), a Hebei case's
(submitted by zeep under WS-Security) Hebei's simulator as NotifyStatus (SOAP 1.2, WS-Security
digest, caseStatus valid by case.xsd, Hebei's status codes), and Tianjin's notifications also
reach a notifyStatus service built with spyne from the WSDL spyne generates. A caller without
``inbound.status`` is refused (403), an unknown receipt is 404, a bad event names its field (400).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from lxml import etree

from gateway.config import load_settings
from gateway.protocols.tif import TifSigner
from tests.harness import Gateway, Simulator, db_rows, signed_headers, wait_until, write_config
from tests.test_inbound import (
    HB_PASSWORD,
    SERVED,
    hebei_case,
    national_data,
    national_envelope,
    post_national,
    raw_submit,
    tianjin_envelope,
    tianjin_package,
)

CITY_PATH = "/api/v1/inbound-cases"
STATUS_CALLER = TifSigner("BJ-CITY-STATUS", "city-status-caller-token-for-tests")
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "tianjin"


@dataclass
class Env:
    gw: Gateway
    tianjin: Simulator
    national: Simulator
    hebei: Simulator
    http: aiohttp.ClientSession
    db_url: str

    def url(self, path: str, query: str = "") -> str:
        return str(self.gw.server.make_url(path)) + query

    async def report(self, receipt: str, event: dict[str, Any],
                     signer: TifSigner = STATUS_CALLER) -> tuple[int, dict[str, Any]]:
        async with self.http.post(self.url(f"{CITY_PATH}/{receipt}/status"),
                                  data=json.dumps(event), headers={
                                      "Content-Type": "application/json",
                                      **signer.headers()}) as r:
            doc: dict[str, Any] = await r.json(content_type=None)
            return r.status, doc

    async def notifications(self, sim: Simulator | None = None) -> dict[str, Any]:
        async with self.http.get((sim or self.tianjin).url("/__sim/state")) as r:
            got: dict[str, Any] = (await r.json())["notifications"]
            return got


@asynccontextmanager
async def status_env(tmp_path: Path, db_url: str, edit: Any = None) -> AsyncIterator[Env]:
    async with Simulator("city") as city, Simulator("tianjin") as tj, \
            Simulator("national") as nat, Simulator("hebei") as hb:
        path = write_config(tmp_path, db_url, {
            "city-inbound": city.url(CITY_PATH), "tianjin": tj.url("/tianjin/ExchangeService"),
            "tianjin-status": tj.url("/tianjin/StatusNotify"), "national": nat.url(),
            "national-status": nat.url("/api/v1/cross-province/status/callback"),
            "hebei": hb.url("/hebei/CaseExchange"), "hebei-status": hb.url("/hebei/StatusNotify")})
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["callers"]["city-status"] = {
            "paasid": STATUS_CALLER.paasid, "token": STATUS_CALLER.token,
            "permissions": ["inbound.status"]}
        if edit is not None:
            edit(raw)
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        async with Gateway(load_settings(path)) as gw, aiohttp.ClientSession() as http:
            yield Env(gw, tj, nat, hb, http, db_url)


def event(event_id: str, status: str, at: str, **extra: Any) -> dict[str, Any]:
    return {"eventId": event_id, "status": status, "occurredAt": at, **extra}


async def _all_sent(env: Env) -> bool:
    rows = await db_rows(env.db_url, "SELECT state FROM deliveries WHERE kind = 'inbound_status'")
    return bool(rows) and all(r[0] == "delivered" for r in rows)


async def test_city_statuses_reach_tianjin_once_each_in_its_contract(tmp_path: Path,
                                                                    db_url: str) -> None:
    async with status_env(tmp_path, db_url) as env:
        _, answer = await raw_submit(env, tianjin_envelope(tianjin_package()))  # type: ignore[arg-type]
        assert answer is not None and answer.findtext("CODE") == "0"
        receipt = answer.findtext("SLBH") or ""

        status, doc = await env.report(receipt, event("EV-1", "ACCEPTED",
                                                      "2026-12-02T09:00:00+08:00"))
        assert status == 200 and doc["data"]["applied"] is True, doc
        status, doc = await env.report(receipt, event(
            "EV-2", "FINISHED", "2026-12-02T10:30:00+08:00", result="APPROVED", message="准予许可"))
        assert (status, doc["data"]["status"], doc["data"]["applied"]) == (200, "FINISHED", True)
        # the same event again, then an older one: kept, nothing moves, nothing is sent
        status, doc = await env.report(receipt, event(
            "EV-2", "FINISHED", "2026-12-02T10:30:00+08:00", result="APPROVED"))
        assert status == 200 and doc["data"]["duplicate"] is True
        status, doc = await env.report(receipt, event("EV-0", "ACCEPTED",
                                                      "2026-12-02T08:00:00+08:00"))
        assert status == 200 and doc["data"] == {
            "receiptNo": receipt, "status": "FINISHED", "applied": False, "duplicate": False,
            "flag": "regression", "notSent": None}

        await wait_until(lambda: _all_sent(env), 10, "the notifications delivered")
        got = await env.notifications()
        assert (got["received"], got["unique"], got["duplicates"]) == (2, 2, 0)
        schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "status-notify.xsd")))
        records = {}
        for n in got["records"]:
            inner = etree.fromstring(n["xmlData"].encode("gb18030"),
                                     etree.XMLParser(encoding="gb18030", resolve_entities=False))
            assert schema.validate(inner), schema.error_log
            assert n["xmlData"].startswith('<?xml version="1.0" encoding="GBK"?>')
            [rec] = n["records"]
            records[rec["BLZT"]] = rec
        assert records["30"]["SLBH"] == receipt and records["30"]["SBLSH"] == "TJ2026120100000001"
        assert records["30"]["BLSJ"] == "2026-12-02 09:00:00" and "BJJG" not in records["30"]
        assert (records["90"]["BJJG"], records["90"]["BLYJ"], records["90"]["BLSJ"]) == \
            ("1", "准予许可", "2026-12-02 10:30:00")
        rows = await db_rows(db_url, "SELECT event_id, applied, flag FROM inbound_status_events "
                                     "ORDER BY received_at")
        assert sorted(tuple(r) for r in rows) == [("EV-0", False, "regression"),
                                                  ("EV-1", True, None), ("EV-2", True, None)]
        assert await db_rows(db_url, "SELECT status, status_result FROM inbound_cases") == \
            [("FINISHED", "APPROVED")]


async def test_city_statuses_reach_the_national_platform_in_its_callback(tmp_path: Path,
                                                                        db_url: str) -> None:
    async with status_env(tmp_path, db_url) as env:
        answer = await post_national(env, national_envelope(national_data()))  # type: ignore[arg-type]
        assert answer["code"] == "0", answer
        receipt = answer["data"]["receiptNo"]
        for e in (event("N-1", "IN_REVIEW", "2026-12-02T09:00:00+08:00"),
                  event("N-2", "FINISHED", "2026-12-02T11:00:00+08:00", result="DENIED",
                        message="材料不符合要求"),
                  event("N-2", "FINISHED", "2026-12-02T11:00:00+08:00", result="DENIED")):
            status, doc = await env.report(receipt, e)
            assert status == 200, doc
        await wait_until(lambda: _all_sent(env), 10, "the notifications delivered")
        got = await env.notifications(env.national)
        assert (got["received"], got["unique"]) == (2, 2)
        # the simulator checked each against status-callback.schema.json before taking it
        by_status = {n["data"]["proStatus"]: n["data"] for n in got["records"]}
        assert by_status["IN_REVIEW"] == {
            "projectNo": "12TJ2026120100000001", "localProjectNo": "TJ2026120100000001",
            "taskCode": "11120116MB1A23456X000134023000001", "areaCode": "110105000000",
            "proStatus": "IN_REVIEW", "statusTime": "2026-12-02 09:00:00"}
        assert (by_status["FINISHED"]["resultCode"], by_status["FINISHED"]["opinion"]) == \
            ("2", "材料不符合要求")


async def test_city_statuses_reach_hebei_under_ws_security(tmp_path: Path, db_url: str) -> None:
    import zeep
    from zeep.wsse.username import UsernameToken

    from gateway.domain.checkdigits import uscc_check_char
    cert_no = "91130100MA0CXXXX4" + uscc_check_char("91130100MA0CXXXX4")
    async with status_env(tmp_path, db_url) as env:
        def submit() -> Any:
            client = zeep.Client(env.url("/soap/hebei/cases", "?wsdl"), settings=SERVED,
                                 wsse=UsernameToken("HEBEI-EXCHANGE", HB_PASSWORD,
                                                    use_digest=True))
            return client.bind("InboundService", "InboundSoap12Port").SubmitCase(
                case=hebei_case(cert_no=cert_no), _soapheaders={"header": {
                    "messageId": "HB-IN-1", "senderCode": "HEBEI-EXCHANGE",
                    "sentAt": "2026-12-01T09:00:00+08:00"}})

        ok = await asyncio.to_thread(submit)
        assert ok.resultCode == "0000", ok
        for e in (event("H-1", "ACCEPTED", "2026-12-02T09:00:00+08:00"),
                  event("H-2", "IN_REVIEW", "2026-12-02T10:00:00+08:00"),
                  event("H-3", "FINISHED", "2026-12-02T11:00:00+08:00", result="DENIED")):
            status, doc = await env.report(ok.receiptNo, e)
            assert status == 200 and doc["data"]["notSent"] is None, doc
        await wait_until(lambda: _all_sent(env), 10, "the notifications delivered")
        got = await env.notifications(env.hebei)
        assert (got["received"], got["unique"]) == (3, 3)
        # the simulator checked each body against case.xsd and the WS-Security digest
        seen = sorted((n["caseStatus"]["statusTime"], n["caseStatus"]["status"],
                       n["caseStatus"].get("result")) for n in got["records"])
        assert [s[1:] for s in seen] == [("ACCEPTED", None), ("UNDER_REVIEW", None),
                                         ("COMPLETED", "REFUSED")]
        assert {n["caseStatus"]["caseNo"] for n in got["records"]} == {"HB2026120100000001"}


async def test_refusals_name_what_is_wrong(tmp_path: Path, db_url: str) -> None:
    async with status_env(tmp_path, db_url) as env:
        _, answer = await raw_submit(env, tianjin_envelope(tianjin_package()))  # type: ignore[arg-type]
        receipt = answer.findtext("SLBH") if answer is not None else ""
        ok = event("EV-1", "ACCEPTED", "2026-12-02T09:00:00+08:00")
        # the harness's test caller has every other permission, not this one
        async with env.http.post(env.url(f"{CITY_PATH}/{receipt}/status"), data=json.dumps(ok),
                                 headers={"Content-Type": "application/json",
                                          **signed_headers()}) as r:
            doc = await r.json(content_type=None)
            assert r.status == 403 and doc["permission"] == "inbound.status"
        async with env.http.post(env.url(f"{CITY_PATH}/{receipt}/status"), data=json.dumps(ok),
                                 headers={"Content-Type": "application/json"}) as r:
            assert r.status == 401
        status, doc = await env.report("BJSL" + "0" * 28, ok)
        assert status == 404 and "BJSL" in doc["detail"]
        for bad, field in ((event("EV-1", "DONE", "2026-12-02T09:00:00+08:00"), "/status"),
                           (event("EV 1", "ACCEPTED", "2026-12-02T09:00:00+08:00"), "/eventId"),
                           (event("EV-1", "ACCEPTED", "2026-12-02 09:00"), "/occurredAt"),
                           (event("EV-1", "ACCEPTED", "2026-12-02T09:00:00+08:00",
                                  result="APPROVED"), "/result")):
            status, doc = await env.report(receipt or "", bad)
            assert status == 400 and doc["errors"][0]["path"] == field, doc
        assert await db_rows(db_url, "SELECT count(*) FROM inbound_status_events") == [(0,)]
        # a status Tianjin's contract has no code for moves the case but is not sent (nor
        # queued to be dead-lettered): the answer says why
        status, doc = await env.report(receipt or "", event("EV-1", "IN_REVIEW",
                                                            "2026-12-02T09:00:00+08:00"))
        assert status == 200 and doc["data"]["applied"] is True, doc
        assert "tianjin/status-notify-out" in doc["data"]["notSent"]
        assert "IN_REVIEW" in doc["data"]["notSent"]
        assert await db_rows(db_url, "SELECT count(*) FROM deliveries "
                                     "WHERE kind = 'inbound_status'") == [(0,)]


# -- a second SOAP stack: Tianjin's notifyStatus served by spyne ----------------------------------

async def test_tianjin_notifications_reach_a_spyne_server(tmp_path: Path, db_url: str) -> None:
    """The same notifications, received by a notifyStatus service built with spyne (a stack
    nobody here wrote; test-only dependency) from the WSDL spyne generates, as
    tests/test_interop_spyne.py does for submitCase."""
    spyne = pytest.importorskip("spyne")
    from spyne.protocol.soap import Soap11

    from tests.test_interop_spyne import fetch_wsdl, result_text, serve
    tj = "http://exchange.zwfw.tj.example/"
    got: list[str] = []
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "status-notify.xsd")))

    class StatusNotify(spyne.ServiceBase):  # type: ignore[misc]
        @spyne.rpc(spyne.Unicode, spyne.Unicode, _returns=spyne.Unicode,
                   _in_message_name="notifyStatus", _out_message_name="notifyStatusResponse",
                   _out_variable_name="return")
        def notifyStatus(ctx, authCode, xmlData):  # type: ignore[no-untyped-def]  # noqa: N802,N803
            if authCode != "TJ-DEMO-AUTHCODE-0001":
                return result_text(-1, "授权码无效")
            inner = etree.fromstring(xmlData.encode("gb18030"), etree.XMLParser(
                encoding="gb18030", resolve_entities=False, no_network=True))
            if not schema.validate(inner):
                return result_text(-2, "数据校验失败")
            got.append(xmlData)
            return result_text(0, "接收成功")

    app = spyne.Application([StatusNotify], tj, name="StatusNotify",
                            in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
    servers = serve(app)
    url = next(servers)
    try:
        wsdl = await asyncio.to_thread(fetch_wsdl, url, tmp_path / "spyne-notify.wsdl")

        def to_spyne(raw: dict[str, Any]) -> None:
            p = raw["partners"]["tianjin-status"]
            p["url"], p["options"]["wsdl"] = url, wsdl
            p["options"].pop("result_schema", None)
            # the spyne thread shares this process's GIL with the gateway: in the full suite one
            # of its answers has taken seconds (cause not found), so its sends get room
            p["timeout"] = 20
            raw["worker"]["lease_seconds"] = 30  # a send ends before its lease does

        async with status_env(tmp_path, db_url, to_spyne) as env:
            _, answer = await raw_submit(env, tianjin_envelope(tianjin_package()))  # type: ignore[arg-type]
            receipt = answer.findtext("SLBH") if answer is not None else ""
            for e in (event("S-1", "ACCEPTED", "2026-12-02T09:00:00+08:00"),
                      event("S-2", "FINISHED", "2026-12-02T10:00:00+08:00", result="APPROVED")):
                status, doc = await env.report(receipt or "", e)
                assert status == 200 and doc["data"]["applied"], doc
            await wait_until(lambda: _all_sent(env), 60, "the notifications delivered")
        statuses = sorted(etree.fromstring(x.encode("gb18030"), etree.XMLParser(
            encoding="gb18030")).findtext("DATA/RECORD/BLZT") or "" for x in got)
        assert statuses == ["30", "90"]
    finally:
        next(servers, None)
