"""The circuit breaker end to end: two partners, one failing. Its breaker opens (visible in the
case view and in /metrics), the other partner's deliveries keep flowing, after each cool-down
exactly one probe goes, and once the partner recovers everything is delivered.

``national-b`` is a second rest-json partner (a second national simulator); items handled in
Jiangsu (``32``) are routed to it, everything else to ``national``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from gateway.config import load_settings
from tests.harness import (
    Gateway,
    LiveSimulator,
    SendLog,
    db_rows,
    edit_config,
    numbered_case,
    wait_until,
    write_config,
)

COOL_DOWN = 2.0  # only ever a lower bound below: a slow machine makes the gaps longer
THRESHOLD = 3
B_CASES = 5
A_CASES = 5


def _two_partners(b_url: str) -> Any:
    def edit(raw: dict[str, Any]) -> None:
        a = raw["partners"]["national"]
        a["retry"].update({"max_attempts": 50})
        b = copy.deepcopy(a)
        b["url"] = b_url
        b["breaker"] = {"failure_threshold": THRESHOLD, "min_calls": 100, "cool_down": COOL_DOWN,
                        "cool_down_multiplier": 2, "max_cool_down": 30, "probe_timeout": 30}
        b["limits"] = {"max_concurrency": 4}
        raw["partners"]["national-b"] = b
        raw["routes"].insert(0, {"name": "jiangsu-via-b", "match": {"handling_region": "32"},
                                 "target": "national-b"})
    return edit


async def test_one_partner_down_opens_its_breaker_probes_once_and_recovers(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    template = samples["01-person-shanghai-social-security"]
    sim_b = LiveSimulator("national")
    sends = SendLog().install(sim_b)
    async with LiveSimulator("national") as sim_a, sim_b:
        cfg = edit_config(write_config(tmp_path, db_url, {"national": sim_a.url()}),
                          _two_partners(sim_b.url()))
        sim_b.misbehave("http500", count=-1)
        async with Gateway(load_settings(cfg)) as gw:
            async def gauge(partner: str) -> str | None:
                _, text = await gw.get("/metrics")
                for line in text.splitlines():
                    if line.startswith(f'gateway_breaker_state{{partner="{partner}"}}'):
                        return line.split()[-1]
                return None

            b_ids = []
            for n in range(B_CASES):
                status, doc = await gw.post_case(
                    numbered_case(template, n, prefix="BRKB", handling_region="320102"))
                assert status == 202 and doc["deliveries"][0]["partner"] == "national-b"
                b_ids.append(doc["id"])

            async def b_open() -> bool:
                # visible to operators in /metrics and in the case view
                _, view = await gw.get(f"/api/v1/cases/{b_ids[0]}")
                return (await gauge("national-b") == "2.0"
                        and view["deliveries"][0]["partnerBreaker"] == "open")
            await wait_until(b_open, timeout=30, what="national-b's breaker to open")

            async def b_quiet() -> bool:
                return all(e["end"] is not None for e in sends.entries)
            await wait_until(b_quiet, timeout=30, what="national-b's last sends to finish")

            assert await gauge("national") == "0.0"  # a partner that never tripped shows too

            # meanwhile the other partner's deliveries flow (national-b still down, held back)
            a_ids = []
            for n in range(A_CASES):
                status, doc = await gw.post_case(numbered_case(template, n, prefix="BRKA"))
                assert status == 202 and doc["deliveries"][0]["partner"] == "national"
                a_ids.append(doc["id"])
            a_finals = [await gw.wait_final(i, timeout=30) for i in a_ids]
            assert all(f["deliveries"][0]["state"] == "delivered" for f in a_finals)
            assert a_finals[0]["deliveries"][0]["partnerBreaker"] == "closed"

            # the partner stays down for at least one probe (the breaker opens a second time),
            # then answers (slowly) again
            async def a_probe_failed() -> bool:
                return (await _breaker(db_url, "national-b"))["trips"] >= 2
            await wait_until(a_probe_failed, timeout=30, what="a probe to national-b to fail")
            sim_b.state.behaviours.clear()
            sim_b.misbehave("delay", count=1, delay=0.8)

            # recovery: everything to national-b is delivered
            b_finals = [await gw.wait_final(i, timeout=60) for i in b_ids]
            assert await gauge("national-b") == "0.0"
            assert b_finals[0]["deliveries"][0]["partnerBreaker"] == "closed"
    assert all(f["deliveries"][0]["state"] == "delivered" for f in b_finals)
    # national's cases went through while national-b was held back
    assert max(f["deliveries"][0]["deliveredAt"] for f in a_finals) \
        < min(f["deliveries"][0]["deliveredAt"] for f in b_finals)
    assert sim_a.state.summary(False)["unique"] == A_CASES
    assert sim_b.state.summary(False)["unique"] == B_CASES

    # what national-b saw: failures until the breaker opened, then probes one at a time. The
    # breaker counts its openings (trips): the first, and one per failed probe, so the last
    # `trips` sends up to the first success are the probes; what came before opened it.
    breaker = await _breaker(db_url, "national-b")
    assert breaker["state"] == "closed"
    log = sorted(sends.entries, key=lambda e: e["start"])
    first_success = next(i for i, e in enumerate(log) if e["status"] == 200)
    opening = log[:first_success + 1 - breaker["trips"]]
    probes = log[first_success + 1 - breaker["trips"]:first_success + 1]
    assert len(opening) >= THRESHOLD
    assert all(e["status"] == 500 for e in opening)
    assert len(probes) >= 2 and probes[-1]["status"] == 200
    assert all(p["status"] == 500 for p in probes[:-1])
    # each probe went alone, a cool-down after the previous one failed (doubling each time);
    # a send let through while the breaker was open would count among `opening` and end too
    # late for the first probe's gap
    previous_end = max(e["end"] for e in opening)
    wait = COOL_DOWN
    for p in probes:
        assert p["start"] - previous_end >= wait * 0.9, (p, previous_end, wait)
        previous_end, wait = p["end"], wait * 2
    # nothing else went to national-b while the successful probe was out
    success = probes[-1]
    assert all(e["start"] >= success["end"] for e in log[first_success + 1:])


async def _breaker(db_url: str, partner: str) -> dict[str, Any]:
    """The shared breaker row of ``partner`` (closed and never tripped when there is none)."""
    import json
    rows = await db_rows(db_url, "SELECT snapshot FROM partner_breakers WHERE partner = :p",
                         p=partner)
    if not rows:
        return {"state": "closed", "trips": 0}
    v = rows[0][0]
    return v if isinstance(v, dict) else json.loads(v)
