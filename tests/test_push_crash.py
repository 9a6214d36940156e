"""The city platform hears every status change exactly once across a gateway kill -9 (issue 13).

A real ``gateway serve`` process; the national simulator delivers, then walks each case to
FINISHED and calls the gateway back; the city-platform simulator answers slowly, so the pushes
are on the wire when the gateway is killed with SIGKILL. After a restart the pushes whose
outcome was lost are sent again (the city platform dedupes on the event id, as its contract
says): every applied change arrives, none is invented, none is missing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.harness import (signed_session,
    GatewayProcess,
    LiveSimulator,
    db_rows,
    default_partner_path,
    free_port,
    numbered_case,
    wait_until,
    write_config,
)

CASES = 4


async def post(http: aiohttp.ClientSession, url: str, doc: Any) -> Any:
    async with http.post(url, json=doc) as r:
        body = await r.json(content_type=None)
        assert r.status in (200, 202), body
        return body


async def test_every_status_change_reaches_the_city_once_across_a_kill(
        tmp_path: Path, db_url: str, samples: dict[str, Any]) -> None:
    async with LiveSimulator("national") as national, LiveSimulator("city") as city, \
            signed_session() as http:
        config = write_config(tmp_path, db_url, {
            "national": national.url(default_partner_path("national")),
            "city": city.url(default_partner_path("city"))}, lease_seconds=3)
        gw = GatewayProcess(config, free_port(), tmp_path / "gateway.log")
        await gw.start()
        try:
            import yaml
            app_id = yaml.safe_load(config.read_text())["partners"]["national"]["inbound"]["app_id"]
            await post(http, national.url("/__sim/config"), {
                "callback_url": gw.base + "/api/v1/partners/national/status",
                "callback_auth": {"app_id": app_id}})
            receipts = []
            for i in range(CASES):
                doc = await post(http, gw.base + "/api/v1/cases", numbered_case(
                    samples["01-person-shanghai-social-security"], i, prefix="PK"))

                async def delivered(case_id: str = doc["id"]) -> Any:
                    async with http.get(f"{gw.base}/api/v1/cases/{case_id}") as r:
                        d = (await r.json())["deliveries"][0]
                        return d["receiptNo"] if d["state"] == "delivered" else None
                receipts.append(await wait_until(delivered, 20, "the case delivered"))

            # the city platform is slow: every push is still on the wire at the kill
            await post(http, city.url("/__sim/behaviour"), {"mode": "delay", "delay": 1.0,
                                                            "count": CASES * 3})
            for r in receipts:
                walked = await post(http, national.url("/__sim/walk"),
                                    {"receipt": r, "path": "approved"})
                assert walked["callbacks"] and all(c["ok"] for c in walked["callbacks"]), walked

            async def on_the_wire() -> bool:
                return bool(city.state.summary(False)["requests"] >= 1)
            await wait_until(on_the_wire, 10, "a push on the wire")
            gw.kill()
            await gw.start()

            applied = await db_rows(db_url, "SELECT id FROM status_events WHERE applied = :t",
                                    t=True)
            assert len(applied) == CASES * 3  # ACCEPTED, IN_REVIEW, FINISHED per case

            async def all_pushed() -> bool:
                rows = await db_rows(db_url, "SELECT count(*) FROM deliveries WHERE kind = "
                                             "'status_push' AND state = 'delivered'")
                return bool(rows[0][0] == len(applied))
            await wait_until(all_pushed, 40, "every push delivered after the restart")
            await asyncio.sleep(0.3)
        finally:
            gw.stop()
        keys = {r[0] for r in await db_rows(
            db_url, "SELECT idempotency_key FROM deliveries WHERE kind = 'status_push'")}
        received = {m.idempotency_key.removeprefix("event:") for m in city.state.messages}
        assert len(keys) == CASES * 3
        assert received == keys  # every change arrived; none invented
        summary = city.state.summary(False)["statusEvents"]
        assert summary["unique"] == len(keys)  # once each: a resend was recognised as one
        sends = await db_rows(db_url, "SELECT count(*) FROM attempts a JOIN deliveries d ON "
                                      "d.id = a.delivery_id WHERE d.kind = 'status_push'")
        # the kill cut pushes on the wire: more requests reached the city than events it holds
        assert city.state.summary(False)["requests"] > len(keys)
        print(f"\npushes across kill -9: {summary}, push attempts recorded {sends[0][0]}, "
              f"city requests {city.state.summary(False)['requests']}")
