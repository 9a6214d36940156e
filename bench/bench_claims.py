"""What a claim round costs as the outbox grows (issue 12, "how cost grows").

Every claim round of the worker asks the store two things: which partners have due deliveries
(:meth:`Store.due_partners`), then, for each, to lease up to n of them
(:meth:`Store.claim_for_partners`). Neither should cost more when the table holds a year of
delivered history, or when another partner has a backlog that is not being sent. This script
fills a fresh database with ``--history`` delivered rows (spread over three partners) and
``--backlog`` due rows of a partner the rounds never claim, then times ``--rounds`` rounds, each
claiming 8 of ``national``'s pending deliveries, per history size; the first size is the
baseline the others are compared with.

``--tree`` imports the gateway package (and its migrations) of another checkout, e.g. a git
worktree of an earlier commit, so the same script measures before and after a change:

    .venv/bin/python bench/bench_claims.py                                # SQLite, ~1 minute
    .venv/bin/python bench/bench_claims.py --engine postgres
    git worktree add --detach /tmp/base HEAD~1
    .venv/bin/python bench/bench_claims.py --tree /tmp/base
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARTNERS = ("national", "tianjin", "hebei")
CLAIM = 8


def rows(start: int, count: int, partner: str, state: str, now: Any) -> list[dict[str, Any]]:
    return [dict(  # noqa: C408 - the columns, as keywords
        id=f"d{start + i:09d}", case_id="c0", partner=partner, item_nos=["1"],
        region="310115000000", route_rule="r", mapping="national/case-submit",
        mapping_version=None, idempotency_key=f"k{start + i:09d}", state=state, attempts=1,
        next_attempt_at=now - timedelta(seconds=60) + timedelta(microseconds=i),
        created_at=now, updated_at=now, attempts_base=0, replays=0, kind="case")
        for i in range(count)]


async def one_size(url: str, history: int,
                   args: argparse.Namespace) -> list[tuple[float, float]]:
    import sqlalchemy as sa

    from gateway.store import Store, create_engine
    from gateway.store.migrate import upgrade
    from gateway.store.models import cases, deliveries
    from gateway.store.types import utcnow
    engine = create_engine(url)
    await upgrade(engine)
    store = Store(engine)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(cases), [{
                "id": "c0", "application_no": "BENCH0", "body": {"applicationNo": "BENCH0"},
                "body_hash": "h", "correlation_id": "c", "home_items": [], "received_at": now}])
            n = 0
            for chunk in range(0, history, 5000):
                size = min(5000, history - chunk)
                await conn.execute(sa.insert(deliveries),
                                   rows(n, size, PARTNERS[chunk // 5000 % 3], "delivered", now))
                n += size
            if args.backlog:
                await conn.execute(sa.insert(deliveries),
                                   rows(n, args.backlog, "hebei", "pending", now))
                n += args.backlog
            await conn.execute(sa.insert(deliveries),
                               rows(n, args.rounds * CLAIM, "national", "pending", now))
        if engine.dialect.name == "postgresql":
            async with engine.connect() as conn:
                await conn.execute(sa.text("ANALYZE deliveries"))
        times: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            due = await store.due_partners()
            t1 = time.perf_counter()
            assert "national" in due
            got = await store.claim_for_partners("bench", {"national": CLAIM}, lease_seconds=60)
            times.append((t1 - t0, time.perf_counter() - t1))
            assert len(got["national"]) == CLAIM, len(got["national"])
        return times
    finally:
        await store.close()


async def main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(args.tree))
    sys.path.insert(1, str(ROOT))
    from runinfo import code_version  # bench/
    from tests.conftest import create_pg_database, drop_pg_database
    tmp = Path(tempfile.mkdtemp(prefix="bench-claims-"))
    print(f"engine={args.engine} tree={args.tree} ({code_version() if args.tree == ROOT else 'other tree'}); "
          f"backlog of another partner: {args.backlog} due rows; {args.rounds} rounds of "
          f"due partners + a claim of {CLAIM}")
    base: float | None = None
    for history in args.history:
        if args.engine == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp / f'h{history}.db'}"
        else:
            url = await create_pg_database()
        try:
            times = await one_size(url, history, args)
        finally:
            if args.engine == "postgres":
                await drop_pg_database(url)
        rounds = sorted(a + b for a, b in times)
        med = statistics.median(rounds) * 1e3
        base = base or med
        print(f"  history {history:>8,} delivered rows: round p50 {med:6.2f} ms "
              f"(due partners {statistics.median(a for a, _ in times) * 1e3:5.2f}, claim "
              f"{statistics.median(b for _, b in times) * 1e3:5.2f}), "
              f"p90 {rounds[int(len(rounds) * 0.9)] * 1e3:6.2f} ms; "
              f"{med / base:.2f}× the first size", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--history", type=int, nargs="+", default=[0, 20_000, 100_000])
    ap.add_argument("--backlog", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="the checkout whose gateway package is measured")
    return ap.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
