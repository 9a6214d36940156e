"""The shared anti-replay store (issue 14): first use True, a replay False, on either engine and
from a second store on the same database (another instance); expired rows are pruned. A case
submission's nonce is written in the case's own transaction (issue 12): a replay there, in one
batch or across instances, stores nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.store import NewCase, NewDelivery, Store, create_engine
from gateway.store.nonces import DbNonceStore, PendingNonce, ReplayedNonce
from tests.harness import db_rows


async def test_first_use_then_replay_also_from_another_instance(store: Any, db_url: str) -> None:
    nonces = DbNonceStore(store)
    exp = time.time() + 180
    assert await nonces.remember("city", "n-000000001", expires_at=exp) is True
    assert await nonces.remember("city", "n-000000001", expires_at=exp) is False
    assert await nonces.remember("other", "n-000000001", expires_at=exp) is True  # own scope
    other = Store(create_engine(db_url))  # a second instance: its own engine and batches
    try:
        assert await DbNonceStore(other).remember("city", "n-000000001", expires_at=exp) is False
    finally:
        await other.close()


async def test_concurrent_checks_share_transactions_and_one_wins(store: Any) -> None:
    nonces = DbNonceStore(store)
    exp = time.time() + 180
    answers = await asyncio.gather(*(nonces.remember("city", f"n-{i % 50:09d}", expires_at=exp)
                                     for i in range(200)))
    assert sum(answers) == 50  # each of 50 nonces accepted exactly once


async def test_expired_nonce_is_pruned_and_may_be_used_again(store: Any, db_url: str) -> None:
    nonces = DbNonceStore(store, prune_every=0)
    past = time.time() - 1
    assert await nonces.remember("city", "n-old000001", expires_at=past) is True
    assert await nonces.remember("city", "n-old000001", expires_at=time.time() + 60) is True
    await nonces.remember("city", "n-old000002", expires_at=past)
    await nonces.remember("city", "n-new000003", expires_at=time.time() + 60)  # prunes
    rows = await db_rows(db_url, "SELECT nonce FROM nonces ORDER BY nonce")
    assert [r[0] for r in rows] == ["n-new000003", "n-old000001"]
    assert nonces.pruned >= 1


def _pending(nonce: str, scope: str = "city", ttl: float = 180) -> PendingNonce:
    return PendingNonce(scope, nonce, datetime.fromtimestamp(time.time() + ttl, UTC))


def _case(no: str, nonce: PendingNonce | None) -> NewCase:
    return NewCase(application_no=no, body={"applicationNo": no}, body_hash=f"h-{no}",
                   correlation_id=f"c-{no}", home_items=(), nonce=nonce,
                   deliveries=(NewDelivery(partner="p", item_nos=("1",), region="110000000000",
                                           route_rule="r", mapping="m", mapping_version="1",
                                           idempotency_key=f"k-{no}"),))


async def test_a_submission_nonce_is_stored_with_its_case_and_a_replay_stores_nothing(
        store: Any, db_url: str) -> None:
    """The nonce row is written by the case's own transaction (no separate nonce commit); the
    same nonce again, with another case, on this instance or a second one, is refused and that
    case is not stored; a nonce spent on another request (a GET) refuses a submission too."""
    nonces = DbNonceStore(store)
    first = await store.submit_case(_case("BJ-N-1", _pending("n-case00001")))
    assert first.created
    assert nonces._writes.items == 0  # noqa: SLF001 - nothing went the separate way
    rows = await db_rows(db_url, "SELECT scope, nonce FROM nonces")
    assert [tuple(r) for r in rows] == [("city", "n-case00001")]
    with pytest.raises(ReplayedNonce):
        await store.submit_case(_case("BJ-N-2", _pending("n-case00001")))
    other = Store(create_engine(db_url))  # another instance
    try:
        with pytest.raises(ReplayedNonce):
            await other.submit_case(_case("BJ-N-3", _pending("n-case00001")))
        assert (await other.submit_case(_case("BJ-N-3", _pending("n-case00003")))).created
    finally:
        await other.close()
    assert await nonces.remember("city", "n-get000001", expires_at=time.time() + 60)
    with pytest.raises(ReplayedNonce):
        await store.submit_case(_case("BJ-N-4", _pending("n-get000001")))
    # the nonce of a case answered as an earlier one is spent as well
    again = await store.submit_case(_case("BJ-N-1", _pending("n-case00005")))
    assert not again.created
    assert await nonces.remember("city", "n-case00005", expires_at=time.time() + 60) is False
    nos = await db_rows(db_url, "SELECT application_no FROM cases ORDER BY application_no")
    assert [r[0] for r in nos] == ["BJ-N-1", "BJ-N-3"]
    assert int((await db_rows(db_url, "SELECT count(*) FROM deliveries"))[0][0]) == 2


async def test_one_nonce_twice_in_one_batch_admits_one_case(store: Any, db_url: str) -> None:
    """Concurrent submissions share a transaction: one nonce there admits exactly one case,
    while distinct nonces in the same batch are all admitted."""
    subs = [store.submit_case(_case(f"BJ-B-{i:03d}", _pending(f"n-dup{i % 10:06d}")))
            for i in range(40)]
    answers = await asyncio.gather(*subs, return_exceptions=True)
    assert sum(isinstance(a, ReplayedNonce) for a in answers) == 30
    assert sum(not isinstance(a, BaseException) and a.created for a in answers) == 10
    assert store._case_writes.batches < 40  # noqa: SLF001 - they did share transactions
    assert int((await db_rows(db_url, "SELECT count(*) FROM cases"))[0][0]) == 10
    assert int((await db_rows(db_url, "SELECT count(*) FROM nonces"))[0][0]) == 10


async def test_an_expired_submission_nonce_is_pruned_by_a_case_transaction(
        store: Any, db_url: str) -> None:
    await store.submit_case(_case("BJ-E-1", _pending("n-exp000001", ttl=-5)))
    await store.submit_case(_case("BJ-E-2", _pending("n-exp000002", ttl=-5)))  # within 60 s
    store._nonces_pruned = float("-inf")  # noqa: SLF001 - as if a minute had passed
    await store.submit_case(_case("BJ-E-3", _pending("n-new000003")))
    rows = await db_rows(db_url, "SELECT nonce FROM nonces")
    assert [r[0] for r in rows] == ["n-new000003"]
