"""The case's timeline on both engines: a case sent twice (a retryable failure, then delivered),
then status events (one applied, a duplicate flagged, the 办结 with its result), each change
pushed to the city platform (one push delivered with the platform's receipt): the view lists
intake, routing, each attempt, each event and each push in time order, in +08:00, without
bodies or partner message texts; ``gateway case show --timeline`` prints it as a table."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from click.testing import CliRunner

from gateway.cli import main
from gateway.status import CaseStatus, Result
from gateway.store import DeliveryState, Source, StatusEvent, StatusEvents, Store
from gateway.store.timeline import read_timeline
from gateway.views import case_doc
from tests.test_store import new_case

T0 = datetime.fromisoformat("2026-12-01T09:00:00+08:00")
APP = "BJ-20261201-0042"
SECRET = "申请人 测试甲 110105199003071239"   # what must never reach the timeline


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def lived(store: Store) -> str:
    """The case's life: returns its id."""
    await store.submit_case(new_case(APP), now=at(0))
    [c] = await store.claim_due("w", limit=1, lease_seconds=30, now=at(1))
    assert await store.finish_attempt(c, worker="w", started_at=at(1), outcome="retryable",
                                      state=DeliveryState.PENDING, next_attempt_at=at(2),
                                      partner_code="50001", http_status=200,
                                      message=f"busy: {SECRET}", now=at(1.1))
    [c] = await store.claim_due("w", limit=1, lease_seconds=30, now=at(3))
    assert await store.finish_attempt(c, worker="w", started_at=at(3), outcome="delivered",
                                      state=DeliveryState.DELIVERED, next_attempt_at=None,
                                      receipt_no="QG-42", partner_code="0", http_status=200,
                                      message="ok", now=at(3.1))
    events = StatusEvents(store)

    def ev(status: CaseStatus, minutes: int, **kw: object) -> StatusEvent:
        return StatusEvent(partner="national", source=Source.CALLBACK, status=status,
                           partner_code=str(status), receipt_no="QG-42",
                           occurred_at=at(minutes), message=SECRET, **kw)  # type: ignore[arg-type]
    first = await events.apply(ev(CaseStatus.ACCEPTED, 10), push_to="city", now=at(11))
    dup = await events.apply(ev(CaseStatus.ACCEPTED, 12), push_to="city", now=at(13))
    done = await events.apply(
        StatusEvent(partner="national", source=Source.POLL, status=CaseStatus.FINISHED,
                    partner_code="FINISHED", receipt_no="QG-42", result=Result.APPROVED,
                    occurred_at=at(20)), push_to="city", now=at(21))
    assert first.push_id and done.push_id and dup.flag == "duplicate" and dup.push_id is None
    # the first push is claimed and delivered to the city platform with its receipt
    [p] = await store.claim_due("w", limit=1, lease_seconds=30, now=at(15))
    assert p.delivery.id == first.push_id
    assert await store.finish_attempt(p, worker="w", started_at=at(15), outcome="delivered",
                                      state=DeliveryState.DELIVERED, next_attempt_at=None,
                                      receipt_no="CITY-7", partner_code="0", http_status=200,
                                      message="ok", now=at(15.1))
    return c.delivery.case_id


async def test_the_timeline_in_order_with_every_step(store: Store) -> None:
    case_id = await lived(store)
    case = await store.get_case(case_id, with_history=True)
    assert case is not None
    doc = case_doc(case, timeline=await read_timeline(store, case_id))
    tl = doc["timeline"]
    assert [e["kind"] for e in tl] == ["intake", "routed", "attempt", "attempt", "status",
                                       "push", "status", "status", "push"]
    assert [e["at"] for e in tl] == sorted(e["at"] for e in tl)
    assert all(e["at"].endswith("+08:00") for e in tl)
    intake, routed, a1, a2, s1, p1, s2, s3, p2 = tl
    assert intake["at"] == "2026-12-01T09:00:00+08:00" and intake["applicationNo"] == APP
    assert (routed["partner"], routed["route"], routed["items"]) == ("national", "r", ["0"])
    assert (a1["attempt"], a1["outcome"], a1["code"], a1["httpStatus"]) == (1, "retryable",
                                                                            "50001", 200)
    assert (a2["attempt"], a2["outcome"]) == (2, "delivered")
    assert a1["at"] == "2026-12-01T09:01:00+08:00" and a2["at"] == "2026-12-01T09:03:00+08:00"
    assert (s1["source"], s1["status"], s1["applied"], s1["flag"]) == ("callback", "ACCEPTED",
                                                                       True, None)
    assert s1["partnerTime"] == "2026-12-01T09:10:00+08:00"
    assert s1["receivedAt"] == "2026-12-01T09:11:00+08:00"
    assert (s2["applied"], s2["flag"], s2["pushEventId"]) == (False, "duplicate", None)
    assert (s3["source"], s3["status"], s3["result"]) == ("poll", "FINISHED", "APPROVED")
    assert (p1["to"], p1["state"], p1["attempts"], p1["receiptNo"]) == ("city", "delivered",
                                                                        1, "CITY-7")
    assert p1["eventId"] == s1["pushEventId"] and p2["eventId"] == s3["pushEventId"]
    assert (p2["state"], p2["attempts"], p2["receiptNo"]) == ("pending", 0, None)
    assert SECRET not in str(tl) and "busy" not in str(tl)
    # the case's own deliveries stay its own: the pushes are in the timeline only
    assert [d["partner"] for d in doc["deliveries"]] == ["national"]


async def test_without_status_data_the_timeline_still_has_the_sends(store: Store) -> None:
    case_id = await lived(store)
    case = await store.get_case(case_id, with_history=True)
    assert case is not None
    assert [e["kind"] for e in case_doc(case)["timeline"]] == ["intake", "routed", "attempt",
                                                                "attempt"]


async def test_case_show_prints_the_timeline(store: Store, db_url: str) -> None:
    await lived(store)
    res = await asyncio.to_thread(CliRunner().invoke, main, [
        "case", "show", APP, "--timeline", "--database-url", db_url])
    assert res.exit_code == 0, res.output
    out = res.stdout
    for text in ("2026-12-01T09:00:00+08:00", "received " + APP, "attempt 1: retryable",
                 "(code 50001, httpStatus 200)", "callback: ACCEPTED", "not applied: duplicate",
                 "poll: FINISHED/APPROVED", "receipt CITY-7"):
        assert text in out, text
    assert out.index("attempt 1") < out.index("attempt 2") < out.index("FINISHED/APPROVED")
    res = await asyncio.to_thread(CliRunner().invoke, main, [
        "case", "show", APP, "--database-url", db_url])
    assert res.exit_code == 0 and '"timeline"' in res.stdout
