"""kill -9 soak: the crash harness of ``tests/test_crash.py`` in long form.

A client posts unique cases concurrently over HTTP to a ``gateway serve`` child process while
the gateway is killed with SIGKILL at moments drawn from a seeded RNG (about half of them while
the partner is slow, so sends are on the wire) and restarted, ``--cycles`` times. Then the last
instance drains the queue and the database and the partner are checked against each other:
every accepted case stored once and delivered (one unique idempotency key per planned delivery
at the partner, with the receipt recorded), none lost; the resends the partner had to dedupe
are counted. Exit status 1 if anything was lost or stored twice.

    .venv/bin/python bench/crash_soak.py --cycles 200 --cases 1000 --engine sqlite --seed 7
    .venv/bin/python bench/crash_soak.py --cycles 50 --engine postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import run_crash_load  # noqa: E402


async def main(args: argparse.Namespace) -> int:
    template = json.loads((ROOT / "samples" / "cases" /
                           "01-person-shanghai-social-security.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="crash-soak-") as tmp:
        tmp_path = Path(tmp)
        pg_url = None
        if args.engine == "postgres":
            from tests.conftest import create_pg_database
            pg_url = await create_pg_database()
            db_url = pg_url
        else:
            db_url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
        try:
            report = await run_crash_load(
                tmp_path, db_url, template, cases=args.cases, cycles=args.cycles, seed=args.seed,
                lease_seconds=args.lease, slow_ratio=args.slow_ratio, clients=args.clients,
                progress=lambda c, a: print(f"  cycle {c}/{args.cycles}: {a} cases accepted",
                                            file=sys.stderr, flush=True))
        finally:
            if pg_url is not None:
                from tests.conftest import drop_pg_database
                await drop_pg_database(pg_url)
    print(report.summary())
    ok = (not report.problems and report.lost == 0 and report.stored_twice == 0
          and report.accepted == report.cases == report.delivered
          and report.partner_unique == report.cases)
    print("RESULT:", "nothing lost, nothing stored twice" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=200, help="SIGKILL + restart cycles")
    p.add_argument("--cases", type=int, default=1000, help="unique cases posted")
    p.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lease", type=float, default=2.0,
                   help="lease_seconds of the gateway (the partner timeout is 0.9 of it)")
    p.add_argument("--slow-ratio", type=float, default=0.5,
                   help="share of cycles in which the partner is made slow before the kill")
    p.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    sys.exit(asyncio.run(main(p.parse_args())))
