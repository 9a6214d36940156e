"""Statuses come in end to end, on both engines (issue 13): a case is accepted and delivered to
the three partner simulators, each simulator walks its part through a realistic status path and
calls the gateway back in its own contract (its own callback feature, not a test client), the
gateway applies every event, the case view shows the partner status, and the city-platform
simulator receives every change exactly once (it dedupes on the event id and counts repeats).

Tianjin resends every callback once (duplicates absorbed), Hebei's callbacks arrive in reverse
order (older news never moves a finished case back), the national platform's in order.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from gateway.store.statuses import StatusEvents, push_event_id
from tests.harness import Gateway, Simulator, default_partner_path, settings_for, wait_until

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "cases"
CALLBACK_PATHS = {"national": "/api/v1/partners/national/status",
                  "tianjin": "/soap/tianjin/status", "hebei": "/soap/hebei/status"}
CITY_PATH = "/api/v1/status-events"


def sample(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return doc


async def post(http: aiohttp.ClientSession, url: str, doc: dict[str, Any]) -> Any:
    async with http.post(url, json=doc) as r:
        body = await r.json(content_type=None)
        assert r.status == 200, body
        return body


def inbound_auth(gw: Gateway, partner: str) -> dict[str, str]:
    """The credentials the gateway expects, as the simulator's callback_auth."""
    i = gw.settings.partners[partner].inbound
    assert i is not None
    return {"national": {"app_id": i.app_id}, "tianjin": {"auth_code": i.auth_code},
            "hebei": {"username": i.username, "password": i.password}}[partner]  # type: ignore[return-value]


async def test_callbacks_from_every_simulator_reach_the_case_and_the_city_once(
        tmp_path: Path, db_url: str) -> None:
    sims = {p: Simulator(p) for p in ("national", "tianjin", "hebei", "city")}
    for s in sims.values():
        await s.__aenter__()
    try:
        urls = {p: s.url(default_partner_path(p)) for p, s in sims.items()}
        settings = settings_for(tmp_path, db_url, urls)
        assert "city" in settings.partners
        async with Gateway(settings) as gw, aiohttp.ClientSession() as http:
            base = str(gw.server.make_url(""))
            for p in CALLBACK_PATHS:
                await post(http, sims[p].url("/__sim/config"),
                           {"callback_url": base + CALLBACK_PATHS[p],
                            "callback_auth": inbound_auth(gw, p),
                            "callback_repeat": 1 if p == "tianjin" else 0})
            cases = {}
            for name in ("01-person-shanghai-social-security", "13-bundle-tianjin-hebei-enterprise"):
                status, accepted = await gw.post_case(sample(name))
                assert status == 202, accepted
                cases[name] = await gw.wait_final(accepted["id"])
            deliveries = {d["partner"]: (c, d) for c in cases.values() for d in c["deliveries"]}
            assert sorted(deliveries) == ["hebei", "national", "tianjin"]
            assert all(d["state"] == "delivered" for _, d in deliveries.values())
            assert sims["city"].state.summary()["statusEvents"]["received"] == 0  # no case went there

            walks = {"national": {"path": "approved"},
                     "tianjin": {"path": "approved"},
                     "hebei": {"path": "denied", "order": "reverse"}}
            for p, walk in walks.items():
                walked = await post(http, sims[p].url("/__sim/walk"),
                                    {"receipt": deliveries[p][1]["receiptNo"], **walk})
                assert walked["callbacks"] and all(c["ok"] for c in walked["callbacks"]), walked

            # every delivery ends FINISHED in the case view, with the partner's result
            async def finished() -> bool:
                for c in cases.values():
                    _, doc = await gw.get(f"/api/v1/cases/{c['id']}")
                    if any(d["partnerStatus"] != "FINISHED" for d in doc["deliveries"]):
                        return False
                return True
            await wait_until(finished, 15, "every delivery FINISHED in the case view")

            events = StatusEvents(gw.app[_store_key()])
            applied: dict[str, list[tuple[str, str | None]]] = {}
            keys = set()
            for c in cases.values():
                for e in await events.history(c["id"]):
                    if e.applied:
                        applied.setdefault(e.partner, []).append((str(e.status), e.result))
                        keys.add(push_event_id(e.id))
            assert applied == {
                "national": [("ACCEPTED", None), ("IN_REVIEW", None), ("FINISHED", "APPROVED")],
                "tianjin": [("ACCEPTED", None), ("FINISHED", "APPROVED")],
                # reverse order: the final word first, older news kept but not applied
                "hebei": [("FINISHED", "DENIED")]}

            async def city_has_all() -> bool:
                got = sims["city"].state.summary()["statusEvents"]
                return bool(got["unique"] >= len(keys))
            await wait_until(city_has_all, 20, "every push at the city platform")
            # the API's case view tells the whole story in time order (issue 13 timeline)
            _, view = await gw.get(f"/api/v1/cases/{cases['01-person-shanghai-social-security']['id']}")
            kinds = [e["kind"] for e in view["timeline"]]
            assert kinds[:2] == ["intake", "routed"] and "attempt" in kinds
            assert kinds.count("status") == 3 and kinds.count("push") == 3
            assert [e["at"] for e in view["timeline"]] == sorted(e["at"] for e in view["timeline"])
            await asyncio.sleep(0.3)  # a late duplicate would show now
            summary = sims["city"].state.summary()
            assert summary["statusEvents"] == {"received": 6, "unique": 6, "duplicates": 0}
            assert summary["rejected"] == {} and summary["conflicts"] == 0
            received = {m.idempotency_key.removeprefix("event:")
                        for m in sims["city"].state.messages}
            assert received == keys  # none lost, none invented
            shanghai = sample("01-person-shanghai-social-security")["applicationNo"]
            item = summary["cases"][shanghai]["items"]["1"]
            assert (item["status"], item["result"], item["partner"]) == \
                ("FINISHED", "APPROVED", "national")
            bundle = sample("13-bundle-tianjin-hebei-enterprise")["applicationNo"]
            assert {k: (v["status"], v["result"]) for k, v in
                    summary["cases"][bundle]["items"].items()} == \
                {"1": ("FINISHED", "APPROVED"), "2": ("FINISHED", "DENIED")}
            # each simulator heard "taken" for every callback, the repeats included
            tj = (await (await http.get(sims["tianjin"].url("/__sim/callbacks"))).json())
            assert len(tj["callbacks"]) == 4 and all(c["ok"] for c in tj["callbacks"])
    finally:
        for s in sims.values():
            await s.__aexit__(None, None, None)


def _store_key() -> Any:
    from gateway.api.keys import STORE
    return STORE

