"""The case view's bundle tells the truth while parts are not delivered (issue 10, point 5).

A real gateway on SQLite sends the ten-item 京津冀 bundle to the three real simulators. Tianjin
answers HTTP 500 until told otherwise (its parts keep retrying) and Hebei rejects its message
(dead-lettered); the national platform accepts. The bundle must name every part its partner
has not accepted, with delivery id, partner, items, delivery state and last reason, and list
the two items handled in Beijing as handed to the home platform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.harness import Gateway, Simulator, default_partner_path, settings_for, wait_until

PARTNERS = ("national", "tianjin", "hebei")
UNACCEPTED = {"pending", "in_flight", "retrying", "dead"}


def _delivery(d: dict[str, Any]) -> str:
    """What the bundle must call a delivery, from the delivery's own record in the view."""
    if d["state"] == "pending":
        return "retrying" if d["attempts"] > 0 else "pending"
    return str(d["state"])


async def _order(sim: Simulator, **behaviour: Any) -> None:
    """Queue a misbehaviour the way the demo and operators do: over the control API."""
    async with aiohttp.ClientSession() as http:
        async with http.post(sim.url("/__sim/behaviour"), json=behaviour) as r:
            assert r.status == 200, await r.text()


async def test_bundle_names_every_part_not_accepted_and_the_home_items(
        tmp_path: Path, samples: dict[str, Any]) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    case = samples["20-bundle-ten-items-jingjinji"]
    sims = {p: Simulator(p) for p in PARTNERS}
    for s in sims.values():
        await s.__aenter__()
    try:
        await _order(sims["tianjin"], mode="http500", count=-1)  # until reset: keeps retrying
        await _order(sims["hebei"], mode="business_error", code="2001", message="事项编码不存在")
        urls = {p: s.url(default_partner_path(p)) for p, s in sims.items()}
        async with Gateway(settings_for(tmp_path, db_url, urls)) as gw:
            status, first = await gw.post_case(case)
            assert status == 202, first

            async def snapshot() -> dict[str, Any] | None:
                status, doc = await gw.get(f"/api/v1/cases/{first['id']}")
                assert status == 200, doc
                by = {p: [d for d in doc["deliveries"] if d["partner"] == p] for p in PARTNERS}
                ready = (all(d["state"] == "delivered" for d in by["national"])
                         and all(d["state"] == "dead" for d in by["hebei"])
                         and any(_delivery(d) == "retrying" for d in by["tianjin"]))
                return doc if ready else None

            doc = await wait_until(snapshot, timeout=30, interval=0.02,
                                   what="national delivered, Hebei dead, Tianjin retrying")
    finally:
        for s in sims.values():
            await s.__aexit__()

    # at intake every part is pending and named; the home items are there from the start
    assert first["bundle"]["status"] == "SUBMITTED" and not first["bundle"]["delivered"]
    assert [b["key"] for b in first["bundle"]["blocking"]] == [d["id"] for d in first["deliveries"]]
    # pending, or in flight when intake handed it straight to the worker (issue 12)
    assert {b["delivery"] for b in first["bundle"]["blocking"]} <= {"pending", "in_flight"}
    assert [h["itemNos"] for h in first["bundle"]["home"]] == [["1"], ["2"]]

    bundle, deliveries = doc["bundle"], doc["deliveries"]
    assert doc["homeItems"] == ["1", "2"]
    assert bundle["status"] == "SUBMITTED" and not bundle["terminal"]
    assert bundle["delivered"] is False

    # every part not accepted by its partner is named, in delivery order, and nothing else
    unaccepted = [d for d in deliveries if d["partner"] in ("tianjin", "hebei")]
    assert unaccepted and all(d["state"] != "delivered" for d in unaccepted)
    assert [b["key"] for b in bundle["blocking"]] == [d["id"] for d in unaccepted]
    assert bundle["pending"] == [d["id"] for d in unaccepted]
    for b, d in zip(bundle["blocking"], unaccepted, strict=True):
        assert (b["partner"], b["itemNos"], b["region"]) == (d["partner"], d["items"], d["region"])
        assert b["delivery"] == _delivery(d) and b["delivery"] in UNACCEPTED
        assert (b["attempts"], b["lastOutcome"], b["lastCode"]) == (
            d["attempts"], d["lastOutcome"], d["lastCode"])
        assert b["lastMessage"] == (d["lastMessage"] or None)
        assert b["status"] == "SUBMITTED"
    retrying = [b for b in bundle["blocking"] if b["delivery"] == "retrying"]
    assert retrying and all(b["partner"] == "tianjin" for b in retrying)
    for b in retrying:
        assert b["waitingFor"] == "delivery" and b["lastOutcome"] == "retryable"
        assert b["attempts"] >= 1 and b["nextAttemptAt"] is not None
        assert "500" in b["lastMessage"]
    dead = [b for b in bundle["blocking"] if b["partner"] == "hebei"]
    assert dead and all(b["delivery"] == "dead" and b["waitingFor"] == "operator"
                        and b["lastOutcome"] == "permanent" and b["lastCode"] == "2001"
                        and b["deadLetter"] for b in dead)
    assert bundle["needsAttention"]
    assert [a["key"] for a in bundle["attention"]] == [b["key"] for b in dead]

    # the parts the national platform accepted are not blocking; all deliveries are children
    national = [d["id"] for d in deliveries if d["partner"] == "national"]
    assert national and not set(national) & {b["key"] for b in bundle["blocking"]}
    assert [c["key"] for c in bundle["children"]] == [d["id"] for d in deliveries]
    assert {c["delivery"] for c in bundle["children"] if c["key"] in national} == {"delivered"}

    # the items handled in Beijing: in the bundle and among the items, handed to the home platform
    assert [(h["key"], h["partner"], h["itemNos"], h["delivery"], h["status"])
            for h in bundle["home"]] == [("home:1", "home", ["1"], "handed_to_home", "SUBMITTED"),
                                         ("home:2", "home", ["2"], "handed_to_home", "SUBMITTED")]
    items = doc["items"]
    assert list(items) == [str(n) for n in range(1, 11)]
    for no in ("1", "2"):
        assert items[no]["home"] and items[no]["status"] == "SUBMITTED"
        assert [p["delivery"] for p in items[no]["parts"]] == ["handed_to_home"]
        assert items[no]["blocking"] == []
    for no, item in items.items():
        carrying = [d["id"] for d in deliveries if no in d["items"]]
        assert [p["key"] for p in item["parts"] if p["partner"] != "home"] == carrying
        assert item["blocking"] == [k for k in carrying if k not in national], no
