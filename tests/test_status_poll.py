"""Statuses are asked for (issue 13): each partner's status query as configured, over real
sockets against the partner simulators, and the poller that repairs a lost callback.

A case goes to each partner through an in-process gateway; the simulator then moves the case's
status *without* calling back (a lost callback). The poller, with its clock moved one interval on,
asks, maps the answer with the partner's status-query mapping and applies it: the case view shows
the new status and a push to the city platform is queued. Quiet hours and an open breaker stop
polls; two pollers on one database do not ask about one delivery twice in one interval.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone, UTC
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.api.keys import STORE, WORKER
from gateway.config import load_settings
from gateway.protocols.status_query import AnswerKind, CaseRef, status_query_of
from gateway.retry.breaker import BreakerSnapshot, BreakerState
from gateway.statuses.poller import POLLER, Poller, quiet
from gateway.store.types import utcnow
from tests.harness import TEST_SECRETS, Gateway, Simulator, default_partner_path, edit_config, \
    numbered_case, write_config

BEIJING = timezone(timedelta(hours=8))
SAMPLES = {"national": "01-person-shanghai-social-security",
           "tianjin": "10-person-tianjin-social-security",
           "hebei": "11-company-hebei-branch-filing"}
#: the partner's own code for ACCEPTED (受理, mappings/codes/)
ACCEPTED = {"national": "ACCEPTED", "tianjin": "30", "hebei": "ACCEPTED"}


async def sim_post(sim: Simulator, path: str, doc: dict[str, Any]) -> Any:
    async with aiohttp.ClientSession() as s, s.post(sim.url(path), json=doc) as r:
        assert r.status == 200, await r.text()
        return await r.json()


def config(tmp_path: Path, db_url: str, sims: dict[str, Simulator], **poll: Any) -> Path:
    cfg = write_config(tmp_path, db_url,
                       {n: s.url(default_partner_path(n)) for n, s in sims.items()})

    def tune(raw: dict[str, Any]) -> None:
        for name in sims:
            raw["partners"][name]["poll"].update({"quiet_hours": [], "interval": 60, **poll})
    return edit_config(cfg, tune)


async def delivered(gw: Gateway, template: dict[str, Any], n: int) -> dict[str, Any]:
    status, doc = await gw.post_case(numbered_case(template, n, prefix="POLL"))
    assert status == 202, doc
    final = await gw.wait_final(doc["id"], timeout=30)
    assert [d["state"] for d in final["deliveries"]] == ["delivered"], final
    return final


@pytest.fixture
async def sims() -> Any:
    started = {n: Simulator(n) for n in SAMPLES}
    for s in started.values():
        await s.__aenter__()
    yield started
    for s in started.values():
        await s.__aexit__(None, None, None)


async def test_each_partners_status_query_finds_by_receipt_and_key_and_says_not_found(
        db_url: str, tmp_path: Path, samples: dict[str, Any], sims: dict[str, Simulator]) -> None:
    settings = load_settings(config(tmp_path, db_url, sims))
    async with Gateway(settings) as gw:
        for n, (partner, sample) in enumerate(SAMPLES.items()):
            case = await delivered(gw, samples[sample], n)
            [d] = case["deliveries"]
            query = status_query_of(gw.app[WORKER].clients[partner])
            assert query is not None, partner
            by_key = await query.query_status(CaseRef(d["idempotencyKey"]), correlation_id="t")
            by_receipt = await query.query_status(CaseRef("unused-key", d["receiptNo"]),
                                                  correlation_id="t")
            for answer in (by_key, by_receipt):
                assert answer.kind is AnswerKind.FOUND, (partner, answer)
                assert answer.receipt_no == d["receiptNo"], (partner, answer)
            missing = await query.query_status(CaseRef("BJGW-" + "0" * 40), correlation_id="t")
            assert missing.kind is AnswerKind.NOT_FOUND, (partner, missing)
            assert missing.code == {"national": "40400", "tianjin": "-4", "hebei": "3001"}[partner]
            # the found document is what the partner's status-query mapping reads
            mapping = gw.app[WORKER].contracts.current.mappings.get(
                settings.partners[partner].poll.mapping)
            event = mapping.render(by_key.document, {"partner": partner})
            assert event["status"] == "RECEIVED", (partner, event)


async def test_polling_repairs_a_lost_callback_and_queues_the_push(
        db_url: str, tmp_path: Path, samples: dict[str, Any], sims: dict[str, Simulator]) -> None:
    city = Simulator("city")
    async with city:
        cfg = config(tmp_path, db_url, sims)

        def with_city(raw: dict[str, Any]) -> None:
            shipped = load_settings(None).partners.get("city")
            assert shipped is not None, "the shipped configuration names the city platform"
            raw["partners"]["city"] = {**shipped.model_dump(mode="json", exclude_none=True),
                                       "url": city.url(default_partner_path("city")),
                                       "timeout": 4.0}
        edit_config(cfg, with_city)
        env = {**TEST_SECRETS, "GATEWAY_CITY_TIF_TOKEN": "t" * 32}
        async with Gateway(load_settings(cfg, env=env)) as gw:
            cases = {}
            for n, (partner, sample) in enumerate(SAMPLES.items()):
                cases[partner] = await delivered(gw, samples[sample], n)
                d = cases[partner]["deliveries"][0]
                # the partner moves the case and its callback is lost (none is sent)
                await sim_post(sims[partner], "/__sim/status",
                               {"receipt": d["receiptNo"], "status": ACCEPTED[partner],
                                "notify": False})
            poller: Poller = gw.app[POLLER]
            poller.clock = lambda: utcnow() + timedelta(minutes=2)
            for partner in SAMPLES:
                report = await poller.poll_once(partner)
                assert (report.asked, report.found, report.changed, report.pushed) == (1, 1, 1, 1), \
                    report
                status, view = await gw.get(f"/api/v1/cases/{cases[partner]['id']}")
                assert status == 200
                assert view["deliveries"][0]["partnerStatus"] == "ACCEPTED", (partner, view)
                # asked once per interval: the same round again finds nothing due
                again = await poller.poll_once(partner)
                assert (again.stale, again.asked) == (0, 0), again
            # the pushes reach the city platform (the worker sends them like any delivery)

            async def pushed() -> bool:
                async with aiohttp.ClientSession() as s, \
                        s.get(city.url("/__sim/state")) as r:
                    state = await r.json()
                return int(state.get("unique", 0)) >= 3
            for _ in range(200):
                if await pushed():
                    break
                await asyncio.sleep(0.1)
            assert await pushed()


async def test_quiet_hours_and_an_open_breaker_stop_polls(
        db_url: str, tmp_path: Path, samples: dict[str, Any], sims: dict[str, Simulator]) -> None:
    national = {"national": sims["national"]}
    cfg = config(tmp_path, db_url, national, quiet_hours=["22:00-06:00"])
    async with Gateway(load_settings(cfg)) as gw:
        case = await delivered(gw, samples[SAMPLES["national"]], 7)
        before = sims["national"].state.summary(False)
        poller: Poller = gw.app[POLLER]
        night = datetime(2026, 12, 3, 23, 30, tzinfo=BEIJING)  # 23:30 Beijing: quiet
        poller.clock = lambda: night
        report = await poller.poll_once("national")
        assert (report.skipped, report.asked) == ("quiet hours", 0)
        assert quiet(datetime(2026, 12, 3, 5, 59, tzinfo=BEIJING), ("22:00-06:00",))
        assert not quiet(datetime(2026, 12, 3, 6, 0, tzinfo=BEIJING), ("22:00-06:00",))
        # 22:30 UTC is 06:30 in Beijing: the quiet hours are Beijing's
        assert not quiet(datetime(2026, 12, 3, 22, 30, tzinfo=UTC), ("22:00-06:00",))

        # an open breaker: no query reaches the partner
        gate = gw.app[WORKER].gates.gates["national"]
        gate.snap = BreakerSnapshot(state=BreakerState.OPEN, opened_at=utcnow(),
                                    open_until=utcnow() + timedelta(minutes=5))
        noon = datetime(2026, 12, 4, 12, 0, tzinfo=BEIJING)  # days after the delivery
        poller.clock = lambda: noon
        report = await poller.poll_once("national")
        assert (report.skipped, report.asked) == ("breaker open", 0)
        after = sims["national"].state.summary(False)
        assert after["received"] == before["received"]
        rows = await gw.app[STORE].get_case(case["id"])
        assert rows is not None and rows.deliveries[0].status_checked_at is None

        # a poll failure counts for the breaker like a delivery failure
        gate.snap = BreakerSnapshot()
        sims["national"].misbehave("http500", count=-1)
        report = await poller.poll_once("national")
        assert (report.asked, report.failed) == (1, 1)
        assert gate.snap.consecutive_failures == 1 and "500" in (gate.snap.last_failure or "")


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_instances_on_postgresql_never_poll_one_delivery_twice_in_an_interval(
        db_url: str, tmp_path: Path, samples: dict[str, Any], sims: dict[str, Simulator]) -> None:
    sim = sims["national"]
    settings = load_settings(config(tmp_path, db_url, {"national": sim}, batch_size=1000))
    async with Gateway(settings) as a, Gateway(settings) as b:
        template = samples[SAMPLES["national"]]
        ids = set()
        for n in range(24):
            gw = a if n % 2 else b
            case = await delivered(gw, template, 100 + n)
            ids.add(case["deliveries"][0]["id"])
        asked_before = sim.state.requests
        pollers: list[Poller] = [a.app[POLLER], b.app[POLLER]]
        for p in pollers:
            p.clock = lambda: utcnow() + timedelta(minutes=2)
        first, second = await asyncio.gather(*(p.poll_once("national") for p in pollers))
        # both found the same stale rows, each asked about its own share, none twice
        assert first.stale == second.stale == len(ids)
        assert set(first.ids).isdisjoint(second.ids)
        assert set(first.ids) | set(second.ids) == ids
        assert sim.state.requests - asked_before == len(ids)
        # and within the interval nobody asks again; one interval later they are due again
        again = await asyncio.gather(*(p.poll_once("national") for p in pollers))
        assert [r.asked for r in again] == [0, 0]
        for p in pollers:
            p.clock = lambda: utcnow() + timedelta(minutes=4)
        later = await asyncio.gather(*(p.poll_once("national") for p in pollers))
        assert sum(r.asked for r in later) == len(ids)
        assert set(later[0].ids).isdisjoint(later[1].ids)
