"""kill -9 soak: the crash harness of ``tests/test_crash.py`` in long form.

A client posts unique cases concurrently over HTTP to a ``gateway serve`` child process while
the gateway is killed with SIGKILL at moments drawn from a seeded RNG (about half of them while
the partner is slow, so sends are on the wire) and restarted, ``--cycles`` times. Then the last
instance drains the queue and the database and the partner are checked against each other:
every accepted case stored once and delivered (one unique idempotency key per planned delivery
at the partner, with the receipt recorded), none lost; the resends the partner had to dedupe
are counted. The audit log is checked against the same database (results and intakes are
appended in their group-commit batches): its hash chain intact, exactly one ``intake`` record per
stored case, and one ``attempt`` record per recorded attempt (none missing, none doubled by a
batch replayed item by item or by a kill). Exit status 1 if anything was lost, stored twice, or
the audit log disagrees.

    .venv/bin/python bench/crash_soak.py --cycles 200 --cases 1000 --engine sqlite --seed 7
    .venv/bin/python bench/crash_soak.py --cycles 50 --engine postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.harness as harness  # noqa: E402
from tests.harness import TEST_SECRETS, run_crash_load  # noqa: E402

# the shipped config reads its secrets from the environment (issue 14): the tests' values, unless
# set, inherited by every gateway this starts (without them no gateway starts at all)
for _name, _value in TEST_SECRETS.items():
    os.environ.setdefault(_name, _value)


def patient_starts(seconds: float) -> None:
    """Give every (re)start of the gateway at least ``seconds`` to answer ``/readyz``: the
    harness allows 60 s, and on a 2-core machine shared with other suites (load 10–15) a start
    (imports, contracts) took 25–70 s, which ended soaks at their first slow restart."""
    base = harness.GatewayProcess

    class Patient(base):  # type: ignore[misc,valid-type]
        async def start(self, timeout: float = 20.0) -> None:
            await super().start(timeout=max(timeout, seconds))
    harness.GatewayProcess = Patient  # type: ignore[misc]


async def audit_check(db_url: str) -> dict[str, int | str]:
    """The audit log against the rows it records: chain verdict and the counts that must agree."""
    from sqlalchemy import text

    from gateway.store import audit, create_engine
    engine = create_engine(db_url)
    attempt_no = ("detail->>'attempt'" if engine.dialect.name == "postgresql"
                  else "json_extract(detail, '$.attempt')")
    try:
        async with engine.connect() as conn:
            verdict = await audit.verify(conn)

            async def one(sql: str) -> int:
                return int((await conn.execute(text(sql))).scalar_one())
            return {
                "audit_chain": "intact" if verdict.ok else f"BROKEN: {verdict.problem}",
                "audit_records": verdict.count,
                "cases": await one("SELECT count(*) FROM cases"),
                "audit_intake": await one("SELECT count(*) FROM audit_log WHERE kind = 'intake'"),
                "audit_intake_distinct": await one(
                    "SELECT count(DISTINCT case_id) FROM audit_log WHERE kind = 'intake'"),
                "attempts": await one("SELECT count(*) FROM attempts"),
                "audit_attempt": await one(
                    "SELECT count(*) FROM audit_log WHERE kind = 'attempt'"),
                # an attempt number recorded twice for one delivery (a batch written twice)
                "audit_attempt_doubled": await one(
                    f"SELECT count(*) FROM (SELECT delivery_id, {attempt_no} FROM audit_log "
                    f"WHERE kind = 'attempt' GROUP BY delivery_id, {attempt_no} "
                    "HAVING count(*) > 1) AS d"),
            }
    finally:
        await engine.dispose()


def audit_ok(a: dict[str, int | str]) -> bool:
    return (a["audit_chain"] == "intact" and a["audit_intake"] == a["audit_intake_distinct"]
            == a["cases"] and a["audit_attempt"] == a["attempts"]
            and a["audit_attempt_doubled"] == 0)


async def main(args: argparse.Namespace) -> int:
    patient_starts(args.start_timeout)
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
            audited = await audit_check(db_url)
        finally:
            if pg_url is not None:
                from tests.conftest import drop_pg_database
                await drop_pg_database(pg_url)
    print(report.summary())
    print("\n".join(f"{k:>26}: {v}" for k, v in audited.items()))
    ok = (not report.problems and report.lost == 0 and report.stored_twice == 0
          and report.accepted == report.cases == report.delivered
          and report.partner_unique == report.cases and audit_ok(audited))
    print("RESULT:", "nothing lost, nothing stored twice, audit log agrees" if ok else "FAILED")
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
    p.add_argument("--start-timeout", type=float, default=180,
                   help="seconds a (re)started gateway may take to be ready")
    sys.exit(asyncio.run(main(p.parse_args())))
