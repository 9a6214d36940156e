"""Every timestamp an answer shows (API and command line) is ISO 8601 in Beijing time, +08:00,
like the cases themselves; the store keeps UTC, so the instant is the same."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aiohttp import web
from click.testing import CliRunner

from gateway.api import cases
from gateway.api.keys import CONTRACTS, STORE
from gateway.cli import main
from gateway.config import load_settings
from gateway.contracts import ContractsHolder, load_contracts
from gateway.retry.breaker import BreakerSnapshot, BreakerState
from gateway.store import Store, create_engine
from gateway.store.dlq import DeadLetters
from gateway.store.migrate import upgrade
from gateway.store.states import DeliveryState
from gateway.views import breaker_doc, case_doc
from gateway.security.callers import LOCAL
from tests.harness import DEFAULT_CONFIG
from tests.test_store import new_case

BJ = timezone(timedelta(hours=8))
RECEIVED = datetime(2026, 11, 30, 1, 59, 58, tzinfo=UTC)  # 09:59:58 in Beijing
STARTED = datetime(2026, 11, 30, 16, 30, 0, tzinfo=UTC)   # past midnight in Beijing: the date moves
FINISHED = STARTED + timedelta(seconds=1)
RETRY_AT = datetime(2026, 11, 30, 17, 0, 0, 250000, tzinfo=UTC)


def _times(doc: Any, path: str = "") -> dict[str, str]:
    """Every string in ``doc`` that parses as an ISO 8601 date-time, by JSON path."""
    out: dict[str, str] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.update(_times(v, f"{path}/{k}"))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.update(_times(v, f"{path}/{i}"))
    elif isinstance(doc, str) and len(doc) >= 19 and doc[4] == "-" and doc[10] in "T ":
        try:
            datetime.fromisoformat(doc)
        except ValueError:
            return out
        out[path] = doc
    return out


def _assert_beijing(doc: Any, expected_paths: set[str]) -> None:
    times = _times(doc)
    assert expected_paths <= set(times), (expected_paths - set(times), times)
    bad = {p: t for p, t in times.items() if not t.endswith("+08:00") or " " in t}
    assert not bad, bad


async def _retrying_case(store: Store, no: str) -> str:
    """A case received at RECEIVED whose one delivery failed once and waits until RETRY_AT."""
    res = await store.submit_case(new_case(no), now=RECEIVED)
    [c] = await store.claim_due("w", limit=1, lease_seconds=30, now=STARTED)
    assert await store.finish_attempt(c, worker="w", started_at=STARTED, outcome="retryable",
                                      state=DeliveryState.PENDING, next_attempt_at=RETRY_AT,
                                      partner_code="50001", message="busy", now=FINISHED)
    return res.case.id


async def test_case_view_shows_beijing_time(store: Store) -> None:
    case_id = await _retrying_case(store, "TZ1")
    found = await store.get_case(case_id, with_history=True)
    assert found is not None and found.received_at == RECEIVED  # UTC kept inside
    doc = case_doc(found)
    assert doc["receivedAt"] == "2026-11-30T09:59:58+08:00"
    [d] = doc["deliveries"]
    assert d["nextAttemptAt"] == "2026-12-01T01:00:00.250000+08:00"
    [h] = d["history"]
    assert (h["started_at"], h["finished_at"]) == ("2026-12-01T00:30:00+08:00",
                                                   "2026-12-01T00:30:01+08:00")
    # the bundle view renders its own times (gateway.status): in +08:00 too
    [blocking] = doc["bundle"]["blocking"]
    assert blocking["nextAttemptAt"] == "2026-12-01T01:00:00.250000+08:00"
    _assert_beijing(doc, {"/receivedAt", "/deliveries/0/nextAttemptAt",
                          "/bundle/blocking/0/nextAttemptAt"})
    # same instants as stored
    assert datetime.fromisoformat(doc["receivedAt"]) == RECEIVED


async def test_api_answer_shows_beijing_time(store: Store, aiohttp_client: Any) -> None:
    case_id = await _retrying_case(store, "TZ2")
    @web.middleware
    async def as_local_operator(request: web.Request, handler: Any) -> web.StreamResponse:
        request["caller"] = LOCAL  # what gateway/api/auth.py sets; the handler needs a caller
        return await handler(request)
    app = web.Application(middlewares=[as_local_operator])
    app[STORE] = store
    app[CONTRACTS] = ContractsHolder(load_contracts(load_settings(DEFAULT_CONFIG)))
    cases.add_routes(app)
    client = await aiohttp_client(app)
    r = await client.get(f"/api/v1/cases/{case_id}")
    assert r.status == 200
    doc = await r.json()
    assert doc["receivedAt"] == "2026-11-30T09:59:58+08:00"
    assert doc["deliveries"][0]["history"][0]["finished_at"] == "2026-12-01T00:30:01+08:00"
    _assert_beijing(doc, {"/receivedAt", "/deliveries/0/nextAttemptAt"})


def test_breaker_snapshot_times_in_beijing_time() -> None:
    snap = BreakerSnapshot(state=BreakerState.OPEN, opened_at=STARTED,
                           open_until=STARTED + timedelta(seconds=30)).to_dict()
    assert snap["opened_at"].endswith("+00:00")  # as stored and shared between instances
    doc = breaker_doc(snap)
    assert doc is not None
    assert doc["opened_at"] == "2026-12-01T00:30:00+08:00"
    assert doc["open_until"] == "2026-12-01T00:30:30+08:00"
    assert doc["probe_started_at"] is None and doc["state"] == "open"


def test_command_line_shows_beijing_time(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"

    async def setup() -> tuple[str, str]:
        engine = create_engine(url)
        await upgrade(engine)
        store = Store(engine)
        case_id = await _retrying_case(store, "TZ3")
        await store.submit_case(new_case("TZ4"), now=RECEIVED)
        claims = await store.claim_due("w", limit=5, lease_seconds=30, now=STARTED)
        [c] = claims  # TZ3 waits until RETRY_AT
        assert await store.finish_attempt(c, worker="w", started_at=STARTED, outcome="permanent",
                                          state=DeliveryState.DEAD, next_attempt_at=None,
                                          partner_code="40003", message="rejected", now=FINISHED)
        dlq = DeadLetters(store)
        await dlq.record(actor="ops", action="note", target=c.delivery.id, detail={})
        await store.close()
        return case_id, c.delivery.id
    case_id, dead_id = asyncio.run(setup())

    res = CliRunner().invoke(main, ["case", "show", case_id, "--database-url", url])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["receivedAt"] == "2026-11-30T09:59:58+08:00"
    _assert_beijing(doc, {"/receivedAt", "/deliveries/0/nextAttemptAt",
                          "/deliveries/0/history/0/started_at"})

    res = CliRunner().invoke(main, ["dlq", "show", dead_id, "--database-url", url])
    assert res.exit_code == 0, res.output
    [shown] = json.loads(res.output)
    assert shown["history"][0]["started_at"] == "2026-12-01T00:30:00+08:00"
    _assert_beijing(shown, {"/history/0/finished_at", "/operatorActions/0/at"})
