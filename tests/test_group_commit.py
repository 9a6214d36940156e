"""Group commit on both engines: concurrent writes share transactions, each caller is answered
only after its own transaction committed, and one bad item never takes the others down."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.errors import StoreError
from gateway.store import DeliveryState, NewCase, NewDelivery, Store
from gateway.store.batching import GroupCommit
from gateway.store.models import attempts, cases, deliveries
from gateway.store.types import utcnow

S = DeliveryState


def new_case(no: str, key: str | None = None, n: int = 1) -> NewCase:
    return NewCase(application_no=no, body={"applicationNo": no}, body_hash=f"h-{no}",
                   correlation_id=f"c-{no}", home_items=(),
                   deliveries=tuple(NewDelivery("national", (str(i),), "310115000000", "r",
                                                "national/case-submit", None,
                                                key or f"k-{no}-{i}") for i in range(n)))


async def count(store: Store, table: Any) -> int:
    async with store.db.read("count") as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_concurrent_submissions_share_transactions_and_all_commit(store: Store) -> None:
    results = await asyncio.gather(*(store.submit_case(new_case(f"G{i}", n=2))
                                     for i in range(200)))
    assert all(r.created for r in results)
    assert len({r.case.id for r in results}) == 200
    w = store._case_writes
    assert w.items == 200 and w.batches < 200  # gathered: fewer transactions than cases
    assert await count(store, cases) == 200 and await count(store, deliveries) == 400
    # every answer is what is stored
    stored = await store.get_case(results[17].case.id)
    assert stored is not None and stored.application_no == "G17"
    assert sorted(d.idempotency_key for d in stored.deliveries) == ["k-G17-0", "k-G17-1"]


async def test_the_same_application_twice_in_one_batch_is_one_case(store: Store) -> None:
    results = await asyncio.gather(*(store.submit_case(new_case("DUP", n=3)) for _ in range(6)),
                                   *(store.submit_case(new_case(f"O{i}")) for i in range(6)))
    dup = results[:6]
    assert sum(r.created for r in dup) == 1
    assert len({r.case.id for r in dup}) == 1
    assert all(len(r.case.deliveries) == 3 for r in dup)
    assert all(r.created for r in results[6:])
    assert await count(store, cases) == 7 and await count(store, deliveries) == 3 + 6


async def test_one_refused_case_fails_alone_and_the_rest_of_its_batch_commits(
        store: Store) -> None:
    await store.submit_case(new_case("FIRST", key="shared-key"))
    # a different case reusing an idempotency key (a bug upstream): refused by the unique key
    results = await asyncio.gather(
        *(store.submit_case(new_case(f"OK{i}")) for i in range(5)),
        store.submit_case(new_case("CLASH", key="shared-key")),
        *(store.submit_case(new_case(f"OK{i}")) for i in range(5, 10)),
        return_exceptions=True)
    clash = results[5]
    assert isinstance(clash, StoreError) and clash.operation == "store case"
    ok = [r for i, r in enumerate(results) if i != 5]
    assert all(not isinstance(r, BaseException) and r.created for r in ok)
    assert await count(store, cases) == 11  # FIRST + 10; CLASH stored nothing
    assert await store.find_case_by_application_no("CLASH") is None


async def test_a_caller_that_stops_waiting_does_not_lose_its_case(store: Store) -> None:
    tasks = [asyncio.create_task(store.submit_case(new_case(f"CX{i}"))) for i in range(20)]
    await asyncio.sleep(0)  # all queued
    for t in tasks[::2]:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for _ in range(100):  # the batch goes on without the cancelled callers
        if await count(store, cases) == 20:
            break
        await asyncio.sleep(0.02)
    assert await count(store, cases) == 20


async def test_batched_results_keep_the_lease_fence_per_delivery(store: Store) -> None:
    for i in range(6):
        await store.submit_case(new_case(f"R{i}"))
    now = utcnow()
    claims = await store.claim_due("w1", limit=6, lease_seconds=30, now=now)
    assert len(claims) == 6
    # two of them are taken over by another worker after their lease "expired"
    from datetime import timedelta
    stolen_ids = {claims[0].delivery.id, claims[3].delivery.id}
    async with store.db.write("expire") as conn:
        from sqlalchemy import update
        await conn.execute(update(deliveries).where(deliveries.c.id.in_(stolen_ids))
                           .values(lease_expires_at=now - timedelta(seconds=1)))
    taken = await store.claim_due("w2", limit=6, lease_seconds=30, now=now)
    assert {c.delivery.id for c in taken} == stolen_ids
    results = await asyncio.gather(*(store.finish_attempt(
        c, worker="w1", started_at=now, outcome="delivered", state=S.DELIVERED,
        next_attempt_at=None, receipt_no=f"RCPT-{i}") for i, c in enumerate(claims)))
    assert results == [c.delivery.id not in stolen_ids for c in claims]
    assert store._result_writes.batches < 6
    assert await count(store, attempts) == 4  # the fenced-out results recorded nothing
    counts = await store.delivery_counts()
    assert counts == {("national", S.DELIVERED): 4, ("national", S.IN_FLIGHT): 2}
    for c in claims:
        case = await store.get_case(c.delivery.case_id, with_history=True)
        assert case is not None
        d = case.deliveries[0]
        if c.delivery.id in stolen_ids:
            assert d.lease_owner == "w2" and d.history == []
        else:
            assert d.receipt_no and d.receipt_no.startswith("RCPT-")
            assert [h["attempt_no"] for h in d.history] == [1]


async def test_group_commit_retries_a_failed_batch_item_by_item() -> None:
    seen: list[list[int]] = []

    async def commit(batch: Sequence[int]) -> list[int]:
        seen.append(list(batch))
        if 13 in batch:
            raise ValueError("refused")
        await asyncio.sleep(0.01)
        return [x * 2 for x in batch]

    gc: GroupCommit[int, int] = GroupCommit(commit, max_batch=8)
    results = await asyncio.gather(*(gc.submit(i) for i in range(10, 20)),
                                   return_exceptions=True)
    assert [r for r in results if not isinstance(r, BaseException)] == [
        x * 2 for x in range(10, 20) if x != 13]
    assert isinstance(results[3], ValueError)
    assert seen[0] == list(range(10, 18)) and [13] in seen  # a batch, then one by one
    assert max(len(b) for b in seen) == 8


async def test_group_commit_sends_the_first_write_at_once_when_idle() -> None:
    started: list[float] = []
    loop = asyncio.get_running_loop()

    async def commit(batch: Sequence[int]) -> list[int]:
        started.append(loop.time())
        return list(batch)

    gc: GroupCommit[int, int] = GroupCommit(commit)
    t0 = loop.time()
    assert await gc.submit(1) == 1
    assert started[0] - t0 < 0.005
    with pytest.raises(ValueError):
        GroupCommit(commit, max_batch=0)
