"""The store on both engines: migrations, idempotent submission, claims, leases, fencing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.store import DeliveryState, NewCase, NewDelivery, Store, create_engine
from gateway.store.migrate import current_revision, head_revision, upgrade
from gateway.store.models import metadata
from gateway.store.types import utcnow

S = DeliveryState


def new_case(no: str, n_deliveries: int = 1, body: dict | None = None) -> NewCase:
    return NewCase(
        application_no=no, body=body or {"applicationNo": no}, body_hash=f"h-{no}",
        correlation_id=f"c-{no}", home_items=(),
        deliveries=tuple(NewDelivery(partner="national", item_nos=(str(i),), region="310115000000",
                                     route_rule="r", mapping="national/case-submit",
                                     mapping_version=None, idempotency_key=f"k-{no}-{i}")
                         for i in range(n_deliveries)))


async def test_migrations_produce_the_declared_schema(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # a second run is a no-op
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), metadata))
        assert diff == []
    finally:
        await engine.dispose()


async def test_submit_is_idempotent_on_application_number(store: Store) -> None:
    first = await store.submit_case(new_case("A1", 2))
    again = await store.submit_case(new_case("A1", 2))
    assert first.created and not again.created
    assert again.case.id == first.case.id
    assert len(again.case.deliveries) == 2
    assert (await store.delivery_counts()) == {("national", S.PENDING): 2}


async def test_a_delivery_state_is_stored_and_read_as_its_plain_string(store: Store) -> None:
    from sqlalchemy import text

    from gateway.retry.policy import Decision
    from gateway.status import Delivery
    assert [s.value for s in S] == ["pending", "in_flight", "delivered", "dead", "discarded"]
    assert {S.after(d) for d in Decision} == {S.DELIVERED, S.PENDING, S.DEAD}
    assert {s.value for s in S} <= {v.value for v in Delivery}  # the bundle view knows each
    await store.submit_case(new_case("ST1"))
    async with store.engine.connect() as conn:
        raw = (await conn.execute(text("SELECT state FROM deliveries"))).scalar_one()
    assert type(raw) is str and raw == "pending"
    case = await store.find_case_by_application_no("ST1")
    assert case is not None and case.deliveries[0].state is S.PENDING


async def test_concurrent_identical_submissions_store_one_case(store: Store) -> None:
    results = await asyncio.gather(*(store.submit_case(new_case("RACE", 1)) for _ in range(8)))
    assert sum(r.created for r in results) == 1
    assert len({r.case.id for r in results}) == 1
    assert (await store.delivery_counts()) == {("national", S.PENDING): 1}


async def test_claims_never_hand_one_delivery_to_two_workers(store: Store) -> None:
    for i in range(10):
        await store.submit_case(new_case(f"C{i}", 3))
    batches = await asyncio.gather(*(store.claim_due(f"w{i}", limit=7, lease_seconds=30)
                                     for i in range(6)))
    ids = [c.delivery.id for b in batches for c in b]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert not await store.claim_due("late", limit=10, lease_seconds=30)
    owners = {c.delivery.lease_owner for b in batches for c in b}
    assert owners <= {f"w{i}" for i in range(6)}


async def test_expired_lease_is_claimed_again_and_fences_the_old_worker(store: Store) -> None:
    await store.submit_case(new_case("L1"))
    now = utcnow()
    [old] = await store.claim_due("dead-worker", limit=1, lease_seconds=5, now=now)
    assert not await store.claim_due("other", limit=1, lease_seconds=5, now=now + timedelta(seconds=4))
    [new] = await store.claim_due("other", limit=1, lease_seconds=5, now=now + timedelta(seconds=6))
    assert new.delivery.id == old.delivery.id and new.lease_token != old.lease_token
    stale = await store.finish_attempt(old, worker="dead-worker", started_at=now, outcome="delivered",
                                       state=S.DELIVERED, next_attempt_at=None, receipt_no="X")
    assert stale is False
    assert await store.finish_attempt(new, worker="other", started_at=now, outcome="delivered",
                                      state=S.DELIVERED, next_attempt_at=None, receipt_no="R1")
    case = await store.get_case(new.delivery.case_id, with_history=True)
    assert case is not None
    [d] = case.deliveries
    assert (d.state, d.receipt_no, d.attempts) == (S.DELIVERED, "R1", 1)
    assert [h["worker"] for h in d.history] == ["other"]


async def test_retry_schedule_and_dead_letter_are_recorded(store: Store) -> None:
    await store.submit_case(new_case("R1"))
    now = utcnow()
    [c] = await store.claim_due("w", limit=1, lease_seconds=30, now=now)
    later = now + timedelta(seconds=60)
    assert await store.finish_attempt(c, worker="w", started_at=now, outcome="retryable",
                                      state=S.PENDING, next_attempt_at=later, partner_code="50001",
                                      message="busy", http_status=200)
    assert not await store.claim_due("w", limit=1, lease_seconds=30, now=now + timedelta(seconds=59))
    [c2] = await store.claim_due("w", limit=1, lease_seconds=30, now=later)
    assert c2.delivery.attempts == 1 and c2.delivery.state == S.IN_FLIGHT
    assert await store.finish_attempt(c2, worker="w", started_at=later, outcome="permanent",
                                      state=S.DEAD, next_attempt_at=None, partner_code="40003",
                                      message="unknown item")
    case = await store.get_case(c.delivery.case_id, with_history=True)
    assert case is not None
    [d] = case.deliveries
    assert (d.state, d.attempts, d.last_code) == (S.DEAD, 2, "40003")
    assert [(h["outcome"], h["partner_code"]) for h in d.history] == [
        ("retryable", "50001"), ("permanent", "40003")]
    assert d.first_attempt_at == now


async def test_release_returns_a_claim_untouched(store: Store) -> None:
    await store.submit_case(new_case("REL"))
    [c] = await store.claim_due("w", limit=1, lease_seconds=30)
    assert await store.release(c)
    [again] = await store.claim_due("w2", limit=1, lease_seconds=30)
    assert again.delivery.id == c.delivery.id and again.delivery.attempts == 0


async def test_due_partners_names_only_partners_with_work_due(store: Store) -> None:
    assert await store.due_partners() == set()
    await store.submit_case(new_case("DP1"))
    now = utcnow()
    assert await store.due_partners(now) == {"national"}
    [c] = await store.claim_due("w", limit=1, lease_seconds=5, now=now, check_first=False)
    assert await store.due_partners(now) == set()
    assert await store.due_partners(now + timedelta(seconds=6)) == {"national"}  # lease expired
    assert c.delivery.partner == "national"
