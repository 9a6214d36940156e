"""Dead letters: list, replay (fresh budget, optional current mapping), discard, audit; CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.store import DeliveryState, Store, create_engine
from gateway.store.dlq import DeadLetterFilter, DeadLetters
from gateway.store.migrate import upgrade
from gateway.store.types import utcnow
from tests.test_store import new_case

S = DeliveryState


async def _park(store: Store, no: str, code: str, partner_version: str = "1") -> str:
    await store.submit_case(new_case(no))
    [c] = await store.claim_due("w", limit=1, lease_seconds=30)
    assert await store.finish_attempt(c, worker="w", started_at=utcnow(), outcome="permanent",
                                      state=S.DEAD, next_attempt_at=None, partner_code=code,
                                      message="rejected", mapping_version=partner_version)
    return c.delivery.id


async def test_replay_gives_a_fresh_budget_and_keeps_history(store: Store) -> None:
    a = await _park(store, "D1", "40003")
    b = await _park(store, "D2", "40100")
    dlq = DeadLetters(store)
    assert {x.delivery.id for x in await dlq.find()} == {a, b}
    assert [x.delivery.id for x in await dlq.find(DeadLetterFilter(code="40100"))] == [b]
    assert await dlq.replay(DeadLetterFilter(ids=(a,)), actor="ops1", reason="item code fixed",
                            current_mapping=True) == [a]
    [claim] = await store.claim_due("w2", limit=5, lease_seconds=30)
    d = claim.delivery
    assert d.id == a and d.attempts == 1 and d.attempts_base == 1 and d.replays == 1
    assert d.mapping_version is None  # rebuilt with the current mapping version
    assert d.first_attempt_at is None
    [action] = await dlq.actions(a)
    assert (action["actor"], action["action"]) == ("ops1", "replay")
    assert action["detail"] == {"reason": "item code fixed", "currentMapping": True}
    # replaying something that is not dead does nothing
    assert await dlq.replay(DeadLetterFilter(ids=(a,)), actor="ops1", reason="again") == []


async def test_replay_keeps_the_recorded_mapping_version_by_default(store: Store) -> None:
    a = await _park(store, "V1", "40003", partner_version="3")
    await DeadLetters(store).replay(DeadLetterFilter(everything=True), actor="o", reason="r")
    [claim] = await store.claim_due("w", limit=1, lease_seconds=30)
    assert claim.delivery.id == a and claim.delivery.mapping_version == "3"


async def test_discard_keeps_the_delivery_and_needs_a_filter(store: Store) -> None:
    a = await _park(store, "X1", "40003")
    dlq = DeadLetters(store)
    with pytest.raises(ValueError):
        await dlq.discard(DeadLetterFilter(), actor="o", reason="r")
    assert await dlq.discard(DeadLetterFilter(partner="national"), actor="o", reason="dup") == [a]
    case = await store.find_case_by_application_no("X1")
    assert case is not None
    [d] = case.deliveries
    assert (d.state, d.partner_status) == (S.DISCARDED, "VOIDED")
    assert await dlq.find() == []


def test_cli_list_replay_discard(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"

    async def setup() -> tuple[str, str]:
        engine = create_engine(url)
        await upgrade(engine)
        store = Store(engine)
        ids = (await _park(store, "CLI1", "40003"), await _park(store, "CLI2", "50001"))
        await store.close()
        return ids
    a, b = asyncio.run(setup())
    run = CliRunner().invoke
    res = run(main, ["dlq", "list", "--database-url", url, "--json"])
    assert res.exit_code == 0, res.output
    assert {x["id"] for x in json.loads(res.output)} == {a, b}
    res = run(main, ["dlq", "replay", "--database-url", url, "--reason", "x"])
    assert res.exit_code == 2 and "--all" in res.output
    res = run(main, ["dlq", "replay", "--database-url", url, "--code", "40003",
                     "--reason", "fixed", "--actor", "ops"])
    assert res.exit_code == 0 and f"replayed 1 delivery(ies)\n  {a}" in res.output
    res = run(main, ["dlq", "show", "--database-url", url, b])
    assert res.exit_code == 0
    [shown] = json.loads(res.output)
    assert shown["applicationNo"] == "CLI2" and shown["history"][0]["partner_code"] == "50001"
    res = run(main, ["dlq", "discard", "--database-url", url, "--all", "--reason", "gone"])
    assert res.exit_code == 0 and b in res.output

    async def states() -> dict[str, str]:
        store = Store(create_engine(url))
        out = {}
        for no in ("CLI1", "CLI2"):
            c = await store.find_case_by_application_no(no)
            assert c is not None
            out[no] = c.deliveries[0].state
        await store.close()
        return out
    assert asyncio.run(states()) == {"CLI1": S.PENDING, "CLI2": S.DISCARDED}
