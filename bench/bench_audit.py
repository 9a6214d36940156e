"""What the hash-chained audit log and sealing at rest cost intake (issue 14): interleaved A/B.

In one process, on one database per variant: the gateway's own intake (``Intake.submit``: parse,
validate, route, render every delivery, group commit) takes bursts of ``--cases`` distinct cases
(sample 01 renumbered) from ``--concurrency`` concurrent submitters, for three variants in turn,
``--rounds`` times, the order rotating each round:

* ``plain``   audit records off (``audit.append`` replaced by a no-op: the baseline), no sealing
* ``audit``   as shipped: every stored case appends its record in the same transaction
* ``sealed``  as shipped, with case bodies sealed at rest (AES-256-GCM, a fresh key)

Printed: the median cases/s per variant, CPU µs per case (process time / cases), and the ratios
against ``plain``. HTTP is left out on purpose, so the store's share is not drowned in it; the
worker is not started (deliveries stay pending).

    .venv/bin/python bench/bench_audit.py                        # SQLite, ~1 minute
    .venv/bin/python bench/bench_audit.py --engine postgres
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.config import load_settings  # noqa: E402
from gateway.contracts import ContractsHolder, load_contracts  # noqa: E402
from gateway.intake.accept import Intake  # noqa: E402
from gateway.intake.validation import CaseValidator  # noqa: E402
from gateway.store import Store, audit, create_engine, sealing  # noqa: E402
from gateway.observability.logs import configure  # noqa: E402
from gateway.store.migrate import upgrade  # noqa: E402
from tests.harness import TEST_SECRETS, numbered_case, write_config  # noqa: E402

SAMPLE = ROOT / "samples" / "cases" / "01-person-shanghai-social-security.json"
VARIANTS = ("plain", "audit", "sealed")


@contextmanager
def variant(name: str) -> Iterator[None]:
    """The process-wide switches of one variant: the audit append and the sealing keyring."""
    append, append_async = audit.append, audit.append_async
    if name == "plain":
        audit.append = lambda *a, **k: None

        async def nothing(*a: Any, **k: Any) -> None:
            return None
        audit.append_async = nothing
    keyring = sealing.Keyring.parse([("bench", base64.b64encode(os.urandom(32)).decode())],
                                    "bench") if name == "sealed" else None
    sealing.activate(keyring)
    try:
        yield
    finally:
        audit.append, audit.append_async = append, append_async
        sealing.activate(None)


async def _database(engine_name: str, folder: Path, name: str) -> tuple[str, Callable[[], Any]]:
    if engine_name == "sqlite":
        return f"sqlite+aiosqlite:///{folder / (name + '.db')}", lambda: None
    from tests.conftest import create_pg_database, drop_pg_database
    url = await create_pg_database()
    return url, lambda: drop_pg_database(url)


async def burst(intake: Intake, template: dict[str, Any], start: int, n: int,
                concurrency: int) -> tuple[float, float]:
    """Submit cases ``start … start+n-1``; (wall seconds, process CPU seconds)."""
    bodies = [json.dumps(numbered_case(template, i, prefix="AU")).encode() for i in
              range(start, start + n)]
    queue = iter(bodies)

    async def submitter() -> None:
        for raw in queue:
            accepted = await intake.submit(raw, correlation_id=uuid.uuid4().hex)
            assert accepted.result.created
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(submitter() for _ in range(concurrency)))
    return time.perf_counter() - t0, time.process_time() - c0


async def main(args: argparse.Namespace) -> None:
    configure("WARNING")  # the case-life events at INFO would be most of the CPU measured
    for k, v in TEST_SECRETS.items():
        os.environ.setdefault(k, v)
    template = json.loads(SAMPLE.read_text(encoding="utf-8"))
    folder = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    intakes: dict[str, tuple[Intake, Store]] = {}
    cleanups = []
    for name in VARIANTS:
        url, cleanup = await _database(args.engine, folder, name)
        cleanups.append(cleanup)
        (folder / name).mkdir()
        settings = load_settings(write_config(folder / name, url,
                                              {"national": "http://127.0.0.1:9/unused"}))
        engine = create_engine(url)
        await upgrade(engine)
        store = Store(engine)
        validator = CaseValidator(settings.path(settings.schemas_dir) / "beijing" /
                                  "case.schema.json")
        intakes[name] = (Intake(store, validator, ContractsHolder(load_contracts(settings))),
                         store)
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    next_no = 1
    try:
        for name, (intake, _) in intakes.items():  # warm-up: imports, caches, first pages
            with variant(name):
                await burst(intake, template, next_no, 50, args.concurrency)
            next_no += 50
        for r in range(args.rounds):
            order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
            for name in order:
                with variant(name):
                    wall, cpu = await burst(intakes[name][0], template, next_no, args.cases,
                                            args.concurrency)
                next_no += args.cases
                results[name].append((args.cases / wall, cpu / args.cases * 1e6))
                print(f"round {r + 1} {name:6s} {args.cases / wall:8.0f} cases/s "
                      f"{cpu / args.cases * 1e6:6.0f} µs CPU/case", flush=True)
    finally:
        for _, store in intakes.values():
            await store.close()
        for cleanup in cleanups:
            done = cleanup()
            if done is not None:
                await done
    base_rate = statistics.median(x for x, _ in results["plain"])
    base_cpu = statistics.median(c for _, c in results["plain"])
    print(f"\n{args.engine}, {args.cases} cases × {args.rounds} rounds, "
          f"{args.concurrency} concurrent submitters (medians)")
    for name in VARIANTS:
        rate = statistics.median(x for x, _ in results[name])
        cpu = statistics.median(c for _, c in results[name])
        print(f"  {name:6s} {rate:8.0f} cases/s  {rate / base_rate:5.2f}× plain   "
              f"{cpu:6.0f} µs CPU/case  ({cpu - base_cpu:+.0f} µs)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--cases", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=64)
    asyncio.run(main(ap.parse_args()))
