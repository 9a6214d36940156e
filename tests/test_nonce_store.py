"""The shared anti-replay store (issue 14): first use True, a replay False, on either engine and
from a second store on the same database (another instance); expired rows are pruned."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.store import Store, create_engine
from gateway.store.nonces import DbNonceStore
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
