"""Status events on both engines: kept, applied through the state machine, absorbed when they are
duplicates or old news, flagged when unmapped or about an unknown case, and a push row queued in
the delivery outbox exactly once per change (also under concurrent appliers)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from gateway.status import CaseStatus, Result
from gateway.store import (
    DeliveryRecord,
    DeliveryState,
    Flag,
    Source,
    StatusEvent,
    StatusEvents,
    Store,
    create_engine,
)
from gateway.store.dlq import DeadLetterFilter, DeadLetters
from gateway.store.migrate import upgrade
from gateway.store.models import deliveries
from gateway.store.statuses import EVENT_NAMESPACE, push_event_id
from gateway.store.types import utcnow
from tests.test_store import new_case

S = CaseStatus
T0 = datetime.fromisoformat("2026-12-01T09:00:00+08:00")
APP, B = "BJ-20261201-0001", "BJ-20261201-0002"  # application numbers (the city's pattern)
LICENCE = {"licenceId": "1.2.156.3005.2.11110000000012343B001.11110105000012343Q.0001",
           "typeCode": "11110000000012343B001", "name": "食品经营许可证"}


async def _delivered(store: Store, no: str, n: int = 1,
                     at: datetime | None = None) -> list[DeliveryRecord]:
    """Submit case ``no`` with ``n`` deliveries to national and record each one delivered with
    receipt ``R-<no>-<i>``."""
    await store.submit_case(new_case(no, n), now=at)
    claims = await store.claim_due("w", limit=n, lease_seconds=30, now=at)
    assert len(claims) == n
    for c in claims:
        i = c.delivery.idempotency_key.rsplit("-", 1)[1]
        assert await store.finish_attempt(c, worker="w", started_at=at or utcnow(),
                                          outcome="delivered", state=DeliveryState.DELIVERED,
                                          next_attempt_at=None, receipt_no=f"R-{no}-{i}", now=at)
    case = await store.find_case_by_application_no(no)
    assert case is not None
    return sorted(case.deliveries, key=lambda d: d.idempotency_key)


def ev(status: CaseStatus | None, minutes: int, receipt: str = f"R-{APP}-0", **kw: object) -> StatusEvent:
    fields: dict[str, object] = {"partner": "national", "source": Source.CALLBACK,
                                 "status": status, "partner_code": str(status or "77"),
                                 "receipt_no": receipt,
                                 "occurred_at": T0 + timedelta(minutes=minutes), **kw}
    return StatusEvent(**fields)


async def _row(store: Store, delivery_id: str) -> dict[str, object]:
    async with store.engine.connect() as conn:
        r = (await conn.execute(select(deliveries).where(deliveries.c.id == delivery_id))).one()
    return dict(r._mapping)


async def _pushes(store: Store) -> list[dict[str, object]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(deliveries).where(deliveries.c.kind == "status_push")
                                   .order_by(deliveries.c.created_at))).all()
    return [dict(r._mapping) for r in rows]


async def test_events_in_order_move_the_delivery_and_each_change_queues_one_push(
        store: Store) -> None:
    [d] = await _delivered(store, APP)
    events = StatusEvents(store)
    steps = [(S.RECEIVED, None), (S.ACCEPTED, None), (S.IN_REVIEW, None),
             (S.FINISHED, Result.APPROVED)]
    for n, (status, result) in enumerate(steps, 1):
        got = await events.apply(ev(status, n, result=result,
                                    elicences=(LICENCE,) if result else ()),
                                 push_to="city", now=utcnow() + timedelta(seconds=n))
        assert got.applied and not got.duplicate and got.flag is None
        assert got.delivery_id == d.id and got.case_id == d.case_id
        assert got.status is status and got.push_id is not None
    row = await _row(store, d.id)
    assert row["partner_status"] == "FINISHED" and row["result"] == "APPROVED"
    assert row["status_at"] == T0 + timedelta(minutes=4)
    assert row["status_checked_at"] is not None and row["kind"] == "case"

    history = await events.history(d.case_id)
    assert [h.status for h in history] == [s for s, _ in steps]
    assert all(h.applied and h.flag is None and h.source is Source.CALLBACK for h in history)
    assert history[-1].elicences == [LICENCE] and history[-1].result is Result.APPROVED

    pushes = await _pushes(store)
    assert len(pushes) == 4
    for h, p in zip(history, pushes, strict=True):
        assert h.push is not None and h.push.id == p["id"]
        assert h.push.state is DeliveryState.PENDING
        event_id = str(uuid.uuid5(EVENT_NAMESPACE, h.id))
        assert p["idempotency_key"] == event_id == h.push_event_id
        assert p["partner"] == "city" and p["mapping"] == "city/status-push"
        assert p["state"] == "pending" and p["case_id"] == d.case_id
        payload = p["payload"]
        assert isinstance(payload, dict)
        assert payload["eventId"] == event_id and payload["status"] == h.status
        assert payload["applicationNo"] == APP and payload["itemNos"] == ["0"]
        assert payload["partner"] == "national" and payload["partnerCaseNo"] == f"R-{APP}-0"
        assert payload["occurredAt"].endswith("+08:00")
        assert payload["receivedAt"].endswith("+08:00")
    last = pushes[-1]["payload"]
    assert isinstance(last, dict)
    assert last["previousStatus"] == "IN_REVIEW" and last["result"] == "APPROVED"
    assert last["elicences"] == [LICENCE]
    assert last["bundleStatus"] == {"status": "FINISHED", "result": "APPROVED", "terminal": True}
    assert last["occurredAt"] == "2026-12-01T09:04:00+08:00"
    first = pushes[0]["payload"]
    assert isinstance(first, dict)
    assert first["previousStatus"] == "SUBMITTED"
    assert first["bundleStatus"] == {"status": "RECEIVED", "result": None, "terminal": False}
    assert "result" not in first and "message" not in first  # no value: left out


async def test_a_repeated_callback_is_absorbed_and_changes_nothing(store: Store) -> None:
    [d] = await _delivered(store, APP)
    events = StatusEvents(store)
    first = await events.apply(ev(S.ACCEPTED, 1), push_to="city")
    before = await _row(store, d.id)
    again = await events.apply(ev(S.ACCEPTED, 1), push_to="city")
    assert again.duplicate and not again.applied and again.event_id == first.event_id
    assert await _row(store, d.id) == before  # not even status_checked_at moved
    # the partner's own event id decides, whatever else differs
    by_id = await events.apply(ev(S.IN_REVIEW, 2, event_id="EV-1"), push_to="city")
    resent = await events.apply(ev(S.IN_REVIEW, 9, event_id="EV-1"), push_to="city")
    assert by_id.applied and resent.duplicate and resent.event_id == by_id.event_id
    # a new report of what the delivery already says: kept, flagged, no push
    same = await events.apply(ev(S.IN_REVIEW, 3), push_to="city")
    assert not same.duplicate and not same.applied and same.flag is Flag.DUPLICATE
    history = await events.history(d.case_id)
    assert [(h.status, h.flag) for h in history] == [
        (S.ACCEPTED, None), (S.IN_REVIEW, None), (S.IN_REVIEW, Flag.DUPLICATE)]
    assert history[2].push is None
    assert len(await _pushes(store)) == 2


async def test_old_news_is_kept_as_a_regression_and_never_moves_the_case_back(
        store: Store) -> None:
    [d] = await _delivered(store, APP)
    events = StatusEvents(store)
    assert (await events.apply(ev(S.IN_REVIEW, 5), push_to="city")).applied
    late = await events.apply(ev(S.ACCEPTED, 2), push_to="city")  # older, arrives later
    assert not late.applied and late.flag is Flag.REGRESSION
    assert late.previous is S.IN_REVIEW and late.status is S.IN_REVIEW and late.push_id is None
    row = await _row(store, d.id)
    assert row["partner_status"] == "IN_REVIEW" and row["status_at"] == T0 + timedelta(minutes=5)
    history = await events.history(d.case_id)
    assert [(h.status, h.applied, h.flag) for h in history] == [
        (S.IN_REVIEW, True, None), (S.ACCEPTED, False, Flag.REGRESSION)]
    assert len(await _pushes(store)) == 1


async def test_a_terminal_status_never_changes(store: Store) -> None:
    [d] = await _delivered(store, APP)
    events = StatusEvents(store)
    assert (await events.apply(ev(S.FINISHED, 5, result=Result.DENIED), push_to="city")).applied
    for status, minute in ((S.WITHDRAWN, 6), (S.IN_REVIEW, 7), (S.SUPPLEMENT_REQUIRED, 8)):
        got = await events.apply(ev(status, minute), push_to="city")
        assert not got.applied and got.flag is Flag.REGRESSION and got.status is S.FINISHED
    again = await events.apply(ev(S.FINISHED, 9, result=Result.APPROVED), push_to="city")
    assert not again.applied and again.flag is Flag.DUPLICATE and again.result is Result.DENIED
    row = await _row(store, d.id)
    assert (row["partner_status"], row["result"]) == ("FINISHED", "DENIED")
    assert len(await events.history(d.case_id)) == 5 and len(await _pushes(store)) == 1


async def test_a_result_that_comes_after_its_status_is_a_change(store: Store) -> None:
    [d] = await _delivered(store, APP)
    events = StatusEvents(store)
    assert (await events.apply(ev(S.FINISHED, 5), push_to="city")).applied
    got = await events.apply(ev(S.FINISHED, 6, result=Result.APPROVED, elicences=(LICENCE,)),
                             push_to="city")
    assert got.applied and got.result is Result.APPROVED
    row = await _row(store, d.id)
    assert row["result"] == "APPROVED" and row["status_at"] == T0 + timedelta(minutes=5)
    pushes = await _pushes(store)
    assert [p["payload"].get("result") for p in pushes] == [None, "APPROVED"]


async def test_an_unmapped_code_is_kept_flagged_and_moves_nothing(store: Store) -> None:
    [d] = await _delivered(store, APP)
    events = StatusEvents(store)
    now = utcnow()
    got = await events.apply(ev(None, 1, partner_code="77", message="新状态"), push_to="city",
                             now=now)
    assert not got.applied and got.flag is Flag.UNMAPPED and got.delivery_id == d.id
    row = await _row(store, d.id)
    assert row["partner_status"] == "SUBMITTED" and row["status_checked_at"] == now
    [h] = await events.history(d.case_id)
    assert h.status is None and h.partner_code == "77" and h.message == "新状态"
    assert await _pushes(store) == []


async def test_an_event_about_an_unknown_case_is_kept_flagged(store: Store) -> None:
    [d] = await _delivered(store, APP)
    events = StatusEvents(store)
    lost = await events.apply(ev(S.ACCEPTED, 1, receipt="R-NOBODY"), push_to="city")
    assert lost.flag is Flag.UNKNOWN_CASE and lost.case_id is None and lost.delivery_id is None
    # a known application, but no delivery of this partner carries that item
    stray = await events.apply(ev(S.ACCEPTED, 1, receipt=None, application_no=APP, item_no="9"))
    assert stray.flag is Flag.UNKNOWN_CASE and stray.case_id == d.case_id
    assert stray.delivery_id is None
    # another partner's report of national's receipt number matches nothing either
    other = await events.apply(ev(S.ACCEPTED, 1, partner="tianjin"))
    assert other.flag is Flag.UNKNOWN_CASE and other.case_id is None
    unmatched = await events.unmatched()
    assert [(u.partner, u.case_ref) for u in unmatched] == [
        ("national", "receipt:R-NOBODY"), ("national", f"application:{APP}/9"),
        ("tianjin", f"receipt:R-{APP}-0")]
    assert [u.case_ref for u in await events.unmatched("tianjin")] == [f"receipt:R-{APP}-0"]
    assert (await _row(store, d.id))["partner_status"] == "SUBMITTED"
    assert await _pushes(store) == []
    # the same lost callback again is still absorbed, though no delivery row was locked
    assert (await events.apply(ev(S.ACCEPTED, 1, receipt="R-NOBODY"))).duplicate


async def test_the_case_is_found_by_idempotency_key_or_application_and_item(
        store: Store) -> None:
    d0, d1 = await _delivered(store, B, 2)
    events = StatusEvents(store)
    by_key = await events.apply(ev(S.RECEIVED, 1, receipt=None, idempotency_key=f"k-{B}-1"))
    assert by_key.delivery_id == d1.id and by_key.applied
    by_item = await events.apply(ev(S.ACCEPTED, 2, receipt=None, application_no=B, item_no="0"))
    assert by_item.delivery_id == d0.id and by_item.applied
    # two deliveries of the case and no item named: which one is unknown, so nothing moves
    vague = await events.apply(ev(S.IN_REVIEW, 3, receipt=None, application_no=B))
    assert vague.flag is Flag.UNKNOWN_CASE and vague.case_id == d0.case_id
    assert (await _row(store, d0.id))["partner_status"] == "ACCEPTED"
    assert (await _row(store, d1.id))["partner_status"] == "RECEIVED"


async def test_no_push_without_a_city_platform(store: Store) -> None:
    [d] = await _delivered(store, APP)
    got = await StatusEvents(store).apply(ev(S.ACCEPTED, 1))
    assert got.applied and got.push_id is None
    assert (await _row(store, d.id))["partner_status"] == "ACCEPTED"
    assert await _pushes(store) == []


async def test_the_bundle_status_in_a_push_is_derived_from_every_part(store: Store) -> None:
    await _delivered(store, B, 2)
    events = StatusEvents(store)
    await events.apply(ev(S.FINISHED, 1, receipt=f"R-{B}-0", result=Result.APPROVED),
                       push_to="city")
    await events.apply(ev(S.IN_REVIEW, 2, receipt=f"R-{B}-1"), push_to="city")
    await events.apply(ev(S.FINISHED, 3, receipt=f"R-{B}-1", result=Result.APPROVED),
                       push_to="city")
    bundle = [(p["payload"]["status"], p["payload"]["bundleStatus"]["status"],
               p["payload"]["bundleStatus"]["result"]) for p in await _pushes(store)]
    assert bundle == [("FINISHED", "SUBMITTED", None), ("IN_REVIEW", "IN_REVIEW", None),
                      ("FINISHED", "FINISHED", "APPROVED")]


def _storm() -> list[StatusEvent]:
    """Every step of a case three times over (resent callbacks), then shuffled."""
    steps = [(S.PRECHECK_PASSED, None), (S.RECEIVED, None), (S.ACCEPTED, None),
             (S.IN_REVIEW, None), (S.FINISHED, Result.APPROVED)]
    out = [ev(s, n, result=r) for n, (s, r) in enumerate(steps, 1) for _ in range(3)]
    random.Random(13).shuffle(out)
    return out


async def _check_after_storm(store: Store, delivery: DeliveryRecord) -> None:
    row = await _row(store, delivery.id)
    assert (row["partner_status"], row["result"]) == ("FINISHED", "APPROVED")
    assert row["status_at"] == T0 + timedelta(minutes=5)
    history = await StatusEvents(store).history(delivery.case_id)
    assert len(history) == 5  # each distinct event once
    applied = [h for h in history if h.applied]
    pushes = await _pushes(store)
    assert len(pushes) == len(applied) >= 1
    assert {p["idempotency_key"] for p in pushes} == {h.push_event_id for h in applied}
    # the pushes, in the order they were queued, tell one story: each one's previous status is
    # the status the push before it announced, from the receipt to the end
    chain = [(p["payload"]["previousStatus"], p["payload"]["status"]) for p in pushes]
    assert [prev for prev, _ in chain] == ["SUBMITTED"] + [cur for _, cur in chain[:-1]]
    assert chain[-1][1] == "FINISHED"
    assert all(h.flag in (Flag.REGRESSION, None) for h in history)


async def test_concurrent_appliers_end_in_one_state_with_one_push_per_change(
        store: Store) -> None:
    [d] = await _delivered(store, APP)
    events = StatusEvents(store)
    results = await asyncio.gather(*(events.apply(e, push_to="city") for e in _storm()))
    assert sum(r.duplicate for r in results) == 10
    await _check_after_storm(store, d)
    # about no known case there is no row to lock: the unique event key absorbs the race
    lost = await asyncio.gather(*(events.apply(ev(S.ACCEPTED, 1, receipt="R-NOBODY"))
                                  for _ in range(6)))
    assert sum(not r.duplicate for r in lost) == 1 and len({r.event_id for r in lost}) == 1
    assert len(await events.unmatched()) == 1


async def test_two_instances_applying_at_once_serialise_per_delivery(db_url: str) -> None:
    engines = [create_engine(db_url) for _ in range(2)]
    await upgrade(engines[0])
    one, two = (Store(e) for e in engines)
    try:
        [d] = await _delivered(one, APP)
        appliers = (StatusEvents(one), StatusEvents(two))
        storm = _storm()
        results = await asyncio.gather(*(appliers[i % 2].apply(e, push_to="city")
                                         for i, e in enumerate(storm)))
        assert sum(r.duplicate for r in results) == 10
        await _check_after_storm(two, d)
    finally:
        await one.close()
        await two.close()


async def test_stale_lists_delivered_unfinished_parts_nobody_heard_of(store: Store) -> None:
    old = utcnow() - timedelta(hours=2)
    quiet, finished, heard = await _delivered(store, "P", 3, at=old)
    await store.submit_case(new_case("UNSENT"))  # pending: nothing to ask about
    events = StatusEvents(store)
    await events.apply(ev(S.FINISHED, 1, receipt=finished.receipt_no or ""), now=old)
    await events.apply(ev(S.ACCEPTED, 1, receipt=heard.receipt_no or ""))
    cutoff = utcnow() - timedelta(hours=1)
    [s] = await events.stale("national", cutoff)
    assert (s.id, s.application_no, s.receipt_no, s.idempotency_key, s.item_nos) == (
        quiet.id, "P", "R-P-0", "k-P-0", ["0"])
    assert s.partner_status is S.SUBMITTED and s.status_checked_at is None
    assert await events.stale("tianjin", cutoff) == []
    assert await events.touch_checked([s.id]) == 1
    assert await events.stale("national", cutoff) == []
    # least recently heard of first: ``heard`` spoke before ``quiet`` was asked about
    assert [x.id for x in await events.stale("national", utcnow() + timedelta(seconds=1))] == [
        heard.id, quiet.id]


async def test_a_push_row_goes_through_the_delivery_outbox(store: Store) -> None:
    """Claimed by the worker's query, dead-lettered and replayed like any delivery."""
    await _delivered(store, APP)
    got = await StatusEvents(store).apply(ev(S.ACCEPTED, 1), push_to="city")
    [claim] = await store.claim_due("w", limit=5, lease_seconds=30, partners=["city"])
    assert claim.delivery.id == got.push_id and claim.delivery.mapping == "city/status-push"
    assert claim.delivery.idempotency_key == push_event_id(got.event_id)
    assert await store.finish_attempt(claim, worker="w", started_at=utcnow(),
                                      outcome="permanent", state=DeliveryState.DEAD,
                                      next_attempt_at=None, partner_code="401")
    dlq = DeadLetters(store)
    assert [x.delivery.id for x in await dlq.find(DeadLetterFilter(partner="city"))] == [
        got.push_id]
    assert await dlq.replay(DeadLetterFilter(ids=(got.push_id or "",)), actor="ops",
                            reason="token rotated") == [got.push_id]
    [again] = await store.claim_due("w", limit=5, lease_seconds=30, partners=["city"])
    assert again.delivery.id == got.push_id


async def test_migration_0003_upgrades_a_database_holding_0002_rows(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine, "0002")
        store = Store(engine)
        await _rows_of_0002(engine, new_case("OLD", 2))  # today's store writes later columns
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT kind, payload, result, status_checked_at FROM deliveries"))).all()
            n = (await conn.execute(text("SELECT count(*) FROM status_events"))).scalar_one()
        assert [tuple(r) for r in rows] == [("case", None, None, None)] * 2 and n == 0
        [d0, _] = await _claim_and_deliver_all(store)
        got = await StatusEvents(store).apply(ev(S.ACCEPTED, 1, receipt=f"R-{d0}"),
                                              push_to="city")
        assert got.applied and got.push_id is not None
    finally:
        await engine.dispose()


async def _rows_of_0002(engine: Any, new: Any) -> None:
    """A case and its deliveries as the store of revision 0002 wrote them (its columns only)."""
    now = utcnow()
    case_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO cases (id, application_no, body, body_hash, correlation_id, home_items,"
            " received_at) VALUES (:id, :no, '{}', 'h', 'c', '[]', :at)"),
            {"id": case_id, "no": new.application_no, "at": now.replace(tzinfo=None)})
        for d in new.deliveries:
            await conn.execute(text(
                "INSERT INTO deliveries (id, case_id, partner, item_nos, region, route_rule,"
                " mapping, idempotency_key, state, attempts, next_attempt_at, created_at,"
                " updated_at) VALUES (:id, :case, :partner, :items, :region, 'r', :mapping,"
                " :key, 'pending', 0, :at, :at, :at)"),
                {"id": str(uuid.uuid4()), "case": case_id, "partner": d.partner,
                 "items": json.dumps(list(d.item_nos)), "region": d.region,
                 "mapping": d.mapping, "key": d.idempotency_key, "at": now.replace(tzinfo=None)})


async def _claim_and_deliver_all(store: Store) -> list[str]:
    claims = await store.claim_due("w", limit=10, lease_seconds=30)
    for c in claims:
        assert await store.finish_attempt(c, worker="w", started_at=utcnow(),
                                          outcome="delivered", state=DeliveryState.DELIVERED,
                                          next_attempt_at=None, receipt_no=f"R-{c.delivery.id}")
    return [c.delivery.id for c in claims]


async def test_a_canonical_event_document_is_kept_and_its_push_renders_for_the_city(
        store: Store) -> None:
    """The inbound mapping's canonical event in, the push mapping's city document out: the
    payload a push row holds renders with ``mappings/city/status-push.yaml`` and validates
    against the city platform's schema."""
    from gateway.mapping.registry import MappingRegistry
    from tests.conftest import ROOT

    [d] = await _delivered(store, APP)
    doc = {"applicationNo": APP, "nationalCaseNo": "11BJ20261201000099",
           "implementationCode": "11110105000012343Q4000000000000001", "region": "110105",
           "status": "FINISHED", "result": "APPROVED", "occurredAt": "2026-12-03T16:05:09+08:00",
           "department": "朝阳区市场监督管理局", "message": "准予许可", "elicences": [LICENCE]}
    event = StatusEvent.from_document("national", Source.CALLBACK, doc, partner_code="90",
                                      receipt_no=None)
    assert (event.status, event.result, event.application_no) == (S.FINISHED, Result.APPROVED,
                                                                 APP)
    got = await StatusEvents(store).apply(event, push_to="city")
    assert got.applied and got.delivery_id == d.id  # found by application number (one part)
    [h] = await StatusEvents(store).history(d.case_id)
    assert h.detail == {"nationalCaseNo": "11BJ20261201000099", "region": "110105",
                        "implementationCode": "11110105000012343Q4000000000000001",
                        "department": "朝阳区市场监督管理局"}
    assert h.partner_code == "90" and h.elicences == [LICENCE] and h.message == "准予许可"
    [push] = await _pushes(store)
    payload = push["payload"]
    assert isinstance(payload, dict)
    mapping = MappingRegistry.load(ROOT / "mappings", ROOT / "schemas").get("city/status-push")
    city = mapping.render(payload, {"partner": "city", "now": "2026-12-03T16:05:12+08:00"})
    mapping.validate_output(city, payload)
    assert city["eventId"] == push["idempotency_key"] == h.push_event_id
    assert (city["status"], city["result"], city["partnerTime"]) == (
        "FINISHED", "APPROVED", "2026-12-03T16:05:09+08:00")
    assert city["nationalCaseNo"] == "11BJ20261201000099" and city["handlingRegion"] == "110105000000"
    assert city["elicences"] == [LICENCE]
    assert city["bundleStatus"] == {"status": "FINISHED", "result": "APPROVED", "terminal": True}
    # a status no table maps: None, the raw code kept
    unknown = StatusEvent.from_document("national", Source.POLL, {**doc, "status": "X9"})
    assert unknown.status is None and unknown.partner_code == "X9"


async def test_the_national_case_number_finds_a_delivery_whose_receipt_it_is(
        store: Store) -> None:
    [d] = await _delivered(store, APP)
    got = await StatusEvents(store).apply(ev(S.ACCEPTED, 1, receipt=None,
                                             national_case_no=f"R-{APP}-0"))
    assert got.applied and got.delivery_id == d.id
