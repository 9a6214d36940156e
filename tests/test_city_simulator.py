"""The city-platform simulator on a real socket: x-tif signatures (computed here with hashlib,
not with the gateway's signer), dedupe on eventId and the idempotency key, schema refusals
naming the field, behaviour modes, the per-case status view, and ``gateway simulate city``."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.simulators import simulator_factory
from gateway.simulators.base import SIM_STATE, Behaviour
from gateway.simulators.city import DEMO_PAASID, DEMO_TOKEN, INBOUND_CASES, STATUS_EVENTS

from .harness import free_port

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "mappings" / "tests" / "city" / "status-push"


def tif_headers(token: str = DEMO_TOKEN, *, paasid: str = DEMO_PAASID, at: float | None = None,
                nonce: str | None = None) -> dict[str, str]:
    """x-tif headers built straight from DESIGN.md §3, independently of gateway.protocols.tif."""
    ts = str(int(time.time() if at is None else at))
    nonce = nonce or secrets.token_urlsafe(12)
    sig = hashlib.sha256((ts + token + nonce + ts).encode()).hexdigest().upper()
    return {"x-tif-paasid": paasid, "x-tif-timestamp": ts, "x-tif-nonce": nonce,
            "x-tif-signature": sig}


def event(n: int = 1, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "eventId": f"evt-test-{n:04d}", "applicationNo": "BJ2026113000000001", "itemNos": ["1"],
        "status": "ACCEPTED", "partner": "national",
        "partnerTime": "2026-12-01T09:30:00+08:00", "receivedAt": "2026-12-01T09:30:02+08:00",
        "bundleStatus": {"status": "ACCEPTED", "terminal": False}}
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


class City:
    def __init__(self, **options: Any) -> None:
        self.app = simulator_factory("city")(**options)
        self.state = self.app[SIM_STATE]
        self.server = TestServer(self.app, host="127.0.0.1")
        self.http: aiohttp.ClientSession | None = None

    async def post(self, path: str, doc: Any, headers: dict[str, str] | None = None,
                   raw: bytes | None = None) -> tuple[int, Any, aiohttp.ClientResponse]:
        assert self.http is not None
        body = raw if raw is not None else json.dumps(doc, ensure_ascii=False).encode()
        h = {"Content-Type": "application/json", **(tif_headers() if headers is None else headers)}
        async with self.http.post(self.server.make_url(path), data=body, headers=h) as r:
            text = await r.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return r.status, parsed, r

    async def event(self, doc: dict[str, Any], headers: dict[str, str] | None = None
                    ) -> tuple[int, Any]:
        status, body, _ = await self.post(STATUS_EVENTS, doc, headers)
        return status, body

    async def sim_state(self) -> dict[str, Any]:
        assert self.http is not None
        async with self.http.get(self.server.make_url("/__sim/state")) as r:
            doc: dict[str, Any] = await r.json()
            return doc


@pytest.fixture
async def city() -> AsyncIterator[City]:
    c = City()
    await c.server.start_server()
    c.http = aiohttp.ClientSession()
    try:
        yield c
    finally:
        await c.http.close()
        await c.server.close()


async def test_a_signed_event_is_accepted_with_a_receipt(city: City) -> None:
    status, body = await city.event(event(), tif_headers())
    assert status == 200 and body["code"] == "0", body
    assert body["data"]["eventId"] == "evt-test-0001" and body["data"]["duplicate"] is False
    assert body["data"]["receiptNo"].startswith("BJSJ")
    st = await city.sim_state()
    assert st["statusEvents"] == {"received": 1, "unique": 1, "duplicates": 0}
    assert st["messages"][0]["headers"]["x-tif-paasid"] == DEMO_PAASID
    assert st["cases"]["BJ2026113000000001"]["items"]["1"]["status"] == "ACCEPTED"
    assert st["cases"]["BJ2026113000000001"]["bundle"]["status"] == "ACCEPTED"


async def test_a_resent_event_gets_the_first_receipt_and_counts_as_duplicate(city: City) -> None:
    _, first = await city.event(event(), tif_headers())
    status, again = await city.event(event(), tif_headers())  # new nonce, same eventId
    assert status == 200 and again["data"]["duplicate"] is True
    assert again["data"]["receiptNo"] == first["data"]["receiptNo"]
    _, other = await city.event(event(2), tif_headers())
    assert other["data"]["receiptNo"] != first["data"]["receiptNo"]
    st = await city.sim_state()
    assert st["statusEvents"] == {"received": 3, "unique": 2, "duplicates": 1}
    assert st["conflicts"] == 0
    assert st["cases"]["BJ2026113000000001"]["events"] == 2


async def test_an_event_id_reused_for_another_body_is_a_conflict(city: City) -> None:
    await city.event(event(), tif_headers())
    status, body = await city.event(event(status="FINISHED", result="APPROVED"), tif_headers())
    assert status == 200 and body["data"]["duplicate"] is True
    st = await city.sim_state()
    assert st["conflicts"] == 1
    assert st["cases"]["BJ2026113000000001"]["items"]["1"]["status"] == "ACCEPTED"  # first wins


@pytest.mark.parametrize("change,code,header", [
    (lambda h: h.pop("x-tif-signature"), "missing_header", "x-tif-signature"),
    (lambda h: h.pop("x-tif-nonce"), "missing_header", "x-tif-nonce"),
    (lambda h: h.update(tif_headers("wrong-token")), "bad_signature", "x-tif-signature"),
    (lambda h: h.update(tif_headers(paasid="NOT-REGISTERED")), "bad_signature",
     "x-tif-signature"),
    (lambda h: h.update(tif_headers(at=time.time() - 600)), "stale_timestamp", "x-tif-timestamp"),
    (lambda h: h.update({"x-tif-timestamp": str(int(time.time() * 1000))}), "malformed_header",
     "x-tif-timestamp"),
])
async def test_refused_signatures_are_401_problems_and_nothing_is_stored(
        city: City, change: Any, code: str, header: str) -> None:
    h = tif_headers()
    change(h)
    status, body = await city.event(event(), h)
    assert status == 401
    assert body["type"] == "urn:gateway:problem:tif" and body["status"] == 401
    assert (body["code"], body["header"]) == (code, header), body
    assert DEMO_TOKEN not in json.dumps(body)
    st = await city.sim_state()
    assert st["received"] == 0 and st["cases"] == {}
    assert st["rejected"] == {code: 1}


async def test_a_replayed_request_is_refused(city: City) -> None:
    h = tif_headers()
    assert (await city.event(event(), h))[0] == 200
    status, body = await city.event(event(), h)  # byte for byte the same request
    assert status == 401 and body["code"] == "reused_nonce"
    status, body = await city.event(event(2), h)  # a new body under a captured signature
    assert status == 401 and body["code"] == "reused_nonce"
    st = await city.sim_state()
    assert st["statusEvents"]["received"] == 1 and st["rejected"] == {"reused_nonce": 2}


async def test_clock_skew_is_judged_by_the_simulators_clock() -> None:
    c = City(clock=lambda: 1_796_000_000.0, window=180)
    async with TestServer(c.app, host="127.0.0.1") as server:
        c.server = server
        async with aiohttp.ClientSession() as c.http:
            assert (await c.event(event(1), tif_headers(at=1_796_000_000 - 180)))[0] == 200
            assert (await c.event(event(2), tif_headers(at=1_796_000_000 + 180)))[0] == 200
            status, body = await c.event(event(3), tif_headers(at=1_796_000_000 + 181))
            assert status == 401 and body["code"] == "stale_timestamp"


async def test_callers_are_configurable() -> None:
    c = City(callers={"OTHER-PAAS": "other-token"})
    async with TestServer(c.app, host="127.0.0.1") as server:
        c.server = server
        async with aiohttp.ClientSession() as c.http:
            assert (await c.event(event(), tif_headers()))[0] == 401
            h = tif_headers("other-token", paasid="OTHER-PAAS")
            assert (await c.event(event(), h))[0] == 200


async def test_schema_refusals_name_every_field(city: City) -> None:
    bad = event(status="DONE", partnerTime="2026-12-01 09:30:00", eventId=None)
    status, body = await city.event(bad, tif_headers())
    assert status == 422 and body["type"] == "urn:gateway:problem:validation"
    paths = {e["path"]: e["message"] for e in body["errors"]}
    assert set(paths) == {"/eventId", "/status", "/partnerTime"}, paths
    assert "required" in paths["/eventId"]
    assert "SUBMITTED" in paths["/status"]
    assert "Beijing time" in paths["/partnerTime"]
    assert body["detail"].startswith("/eventId: ")
    st = await city.sim_state()
    assert st["received"] == 0 and st["rejected"] == {"invalid": 1}


async def test_a_body_that_is_not_json_is_400(city: City) -> None:
    status, body, _ = await city.post(STATUS_EVENTS, None, raw=b'{"eventId": NaN}')
    assert status == 400 and body["title"] == "Not JSON"
    status, body, _ = await city.post(STATUS_EVENTS, None, raw=b"\xff\xfe")
    assert status == 400


async def test_every_golden_push_of_the_mapping_is_accepted(city: City) -> None:
    outputs = sorted(GOLDEN.glob("*.expected.json"))
    assert len(outputs) >= 3
    for p in outputs:
        status, body = await city.event(json.loads(p.read_text(encoding="utf-8")), tif_headers())
        assert status == 200 and body["code"] == "0", (p.name, body)
    st = await city.sim_state()
    assert st["cases"]["BJ2026113000000004"]["bundle"]["result"] == "APPROVED"
    assert set(st["cases"]["BJ2026113000000020"]["items"]) == {"5", "6"}


async def test_the_case_view_keeps_the_latest_status_by_partner_time(city: City) -> None:
    finished = event(2, status="FINISHED", result="APPROVED",
                     partnerTime="2026-12-03T16:05:09+08:00",
                     bundleStatus={"status": "FINISHED", "result": "APPROVED", "terminal": True})
    accepted = event(1, partnerTime="2026-12-01T09:30:00+08:00")
    await city.event(finished, tif_headers())
    await city.event(accepted, tif_headers())  # arrives late: older partner time
    case = (await city.sim_state())["cases"]["BJ2026113000000001"]
    assert case["items"]["1"]["status"] == "FINISHED" and case["items"]["1"]["result"] == "APPROVED"
    assert case["bundle"] == {"status": "FINISHED", "result": "APPROVED", "terminal": True,
                              "eventId": "evt-test-0002"}


async def test_outage_modes(city: City) -> None:
    city.state.push(Behaviour(mode="http500"))
    assert (await city.event(event(), tif_headers()))[0] == 500
    city.state.push(Behaviour(mode="reset"))
    with pytest.raises(aiohttp.ClientError):
        await city.event(event(), tif_headers())
    city.state.push(Behaviour(mode="delay", delay=0.3))
    t0 = time.monotonic()
    assert (await city.event(event(), tif_headers()))[0] == 200
    assert time.monotonic() - t0 >= 0.3
    city.state.push(Behaviour(mode="throttle", delay=7))
    status, body, resp = await city.post(STATUS_EVENTS, event(2))
    assert status == 429 and resp.headers["Retry-After"] == "7"
    city.state.push(Behaviour(mode="business_error", code="40009", message="暂停服务"))
    status, body = await city.event(event(2), tif_headers())
    assert status == 200 and body == {"code": "40009", "msg": "暂停服务"}
    city.state.push(Behaviour(mode="malformed"))
    status, body, _ = await city.post(STATUS_EVENTS, event(2))
    assert status == 200 and "502 Bad Gateway" in body
    st = await city.sim_state()
    assert st["statusEvents"] == {"received": 1, "unique": 1, "duplicates": 0}
    assert st["requests"] == 6


async def test_behaviours_over_http_and_reset(city: City) -> None:
    assert city.http is not None
    async with city.http.post(city.server.make_url("/__sim/behaviour"),
                              json={"mode": "http500", "count": 2}) as r:
        assert r.status == 200
    assert (await city.event(event(), tif_headers()))[0] == 500
    assert (await city.event(event(), tif_headers()))[0] == 500
    assert (await city.event(event(), tif_headers()))[0] == 200
    async with city.http.post(city.server.make_url("/__sim/reset")) as r:
        assert r.status == 200
    st = await city.sim_state()
    assert st["received"] == 0 and st["cases"] == {} and st["rejected"] == {}


async def test_inbound_cases_dedupe_on_the_idempotency_key(
        city: City, samples: dict[str, dict[str, Any]]) -> None:
    case = samples["10-person-tianjin-social-security"]
    h1 = {**tif_headers(), "X-Idempotency-Key": "inbound-tj-0001"}
    status, first, _ = await city.post(INBOUND_CASES, case, h1)
    assert status == 200 and first["code"] == "0", first
    assert first["data"]["applicationNo"] == case["applicationNo"]
    h2 = {**tif_headers(), "X-Idempotency-Key": "inbound-tj-0001"}
    status, again, _ = await city.post(INBOUND_CASES, case, h2)
    assert again["data"] == {**first["data"], "duplicate": True}
    other = copy.deepcopy(case)
    other["applicationNo"] = "TJ2026120100000002"
    status, body, _ = await city.post(INBOUND_CASES, other)  # no key: its applicationNo
    assert status == 200 and body["data"]["duplicate"] is False
    st = await city.sim_state()
    assert st["inboundCases"] == {"received": 3, "unique": 2, "duplicates": 1}
    assert st["statusEvents"]["received"] == 0


async def test_an_inbound_case_outside_the_unified_format_is_422(
        city: City, samples: dict[str, dict[str, Any]]) -> None:
    case = copy.deepcopy(samples["10-person-tianjin-social-security"])
    del case["items"][0]["itemName"]
    status, body, _ = await city.post(INBOUND_CASES, case)
    assert status == 422
    assert [e["path"] for e in body["errors"]] == ["/items/0/itemName"]
    status, body, _ = await city.post(INBOUND_CASES, case, {"X-Idempotency-Key": "k"})
    assert status == 401 and body["code"] == "missing_header"


async def test_gateway_simulate_city_runs_the_simulator() -> None:
    port = free_port()
    env = {**os.environ, "GATEWAY_CITY_TIF_PAASID": "CLI-PAAS", "GATEWAY_CITY_TIF_TOKEN": "cli-tok"}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "simulate", "city", "--port",
                             str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}{STATUS_EVENTS}"
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.post(url, json=event(),
                                         headers=tif_headers("cli-tok", paasid="CLI-PAAS")) as r:
                        status, body = r.status, await r.json(content_type=None)
                    break
                except aiohttp.ClientConnectorError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("gateway simulate city did not start listening")
            assert status == 200 and body["code"] == "0", body
            async with http.post(url, json=event(), headers=tif_headers()) as r:
                assert r.status == 401  # the demo caller is not the one configured
    finally:
        proc.terminate()
        proc.wait(timeout=20)
