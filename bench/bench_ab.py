"""Intake (or end to end) before and after a change, alternating on one machine (issue 12).

On this shared 2-core machine the same code's rate moves by ±30 % within an hour, so a figure
measured before a change and one measured after it, an hour apart, say little. This script puts
both versions side by side: a git worktree of ``--base`` (default ``HEAD~1``) and this checkout's
working tree, each started as its own ``gateway serve`` (fresh database, its own
``config/gateway.yaml``, mappings and schemas), fed the same number of x-tif-signed sample cases
by the load generator of ``bench_wire.py``, in turn, ``--pairs`` times.

* By default the gateway's worker is off and each run reports the rate of durable 202s, p50/p99
  and the gateway's CPU per case (``/proc``).
* ``--e2e``: the worker on (as ``bench_wire.py`` configures it: 32 sends at once, no rate
  limit) and the REST+SOAP mix of samples 01/10/11; each run is timed until the store holds every
  delivery as ``delivered`` and reports deliveries/s and CPU per delivery. ``--history N`` first
  adds N delivered rows to the database (SQLite; copies of a delivered row over the three
  partners), as a gateway that has run for a while has.

The summary gives the medians and the after/before ratios per pair.

    .venv/bin/python bench/bench_ab.py --base 92d6b97            # 3 pairs of 5,000 cases, ~3 min
    .venv/bin/python bench/bench_ab.py --base HEAD~3 --engine postgres --pairs 5
    .venv/bin/python bench/bench_ab.py --base c1b941f --e2e --cases 1500 --history 100000
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_wire as bw  # noqa: E402 - after the path above
from procstat import cpu_seconds  # noqa: E402

ROOT = bw.ROOT


def side_config(tree: Path, tmp: Path, tag: str, db: str, sims: dict[str, str],
                worker: bool = False) -> Path:
    """``tree``'s own shipped configuration, pointed at ``db`` and the simulators; the worker
    off, or on as ``bench_wire.py`` runs it (32 sends at once, no rate limit)."""
    import yaml
    raw = yaml.safe_load((tree / "config" / "gateway.yaml").read_text(encoding="utf-8"))
    raw["database"]["url"] = db
    raw["mappings_dir"], raw["schemas_dir"] = str(tree / "mappings"), str(tree / "schemas")
    raw["worker"].update({"enabled": worker} if not worker else {
        "enabled": True, "poll_interval": 0.05, "concurrency": 32, "batch_size": 32})
    for name, p in raw["partners"].items():
        if name in sims:
            p["url"] = sims[name] + bw.SIM_PATHS[name]
            if worker:
                p["limits"] = {"max_concurrency": 32}
    cfg = tmp / f"{tag}.yaml"
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return cfg


def serve(tree: Path, cfg: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``gateway serve`` of ``tree`` with ``cfg`` (cwd: ``python -m gateway`` imports the
    gateway package of that tree): the process and its base URL."""
    port = bw.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--log-level", "WARNING", "serve",
                             "--config", str(cfg), "--port", str(port)], cwd=tree)
    return proc, f"http://127.0.0.1:{port}"


def add_history(db: str, rows: int) -> None:
    """``rows`` delivered deliveries more in the SQLite database ``db``: copies of one delivered
    row, over the three partners, with their own ids and keys."""
    con = sqlite3.connect(db.split("///", 1)[1], timeout=30)
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(deliveries)")]
        expr = {"id": "'h' || i", "idempotency_key": "'hk' || i", "state": "'delivered'",
                "partner": "CASE i % 3 WHEN 0 THEN 'national' WHEN 1 THEN 'tianjin' "
                           "ELSE 'hebei' END",
                "lease_owner": "NULL", "lease_token": "NULL", "lease_expires_at": "NULL"}
        con.execute(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
            f"INSERT INTO deliveries ({', '.join(cols)}) "
            f"SELECT {', '.join(expr.get(c, 't.' + c) for c in cols)} FROM n, "
            "(SELECT * FROM deliveries WHERE state = 'delivered' LIMIT 1) AS t")
        con.commit()
    finally:
        con.close()


async def e2e_run(srv: bw.Servers, tree: Path, tag: str, cases: bw.Cases,
                  args: argparse.Namespace) -> dict[str, float]:
    """The mix through a gateway of ``tree`` with its worker on, until every delivery is
    ``delivered``: deliveries/s and the gateway's CPU per delivery."""
    db = await srv.database(tag)
    cfg = side_config(tree, srv.tmp, tag, db, srv.sims, worker=True)
    proc, base = serve(tree, cfg)
    try:
        await bw.wait_http(base + "/readyz")
        wire = bw.Wire(cfg)
        warm = cases.make(bw.MIX, 150)
        await asyncio.to_thread(bw.run_load, bw.case_requests(base, warm), args.concurrency,
                                probe="/readyz")
        while await bw.delivered_count(db) < sum(len(wire.plan(x)) for x in warm):
            await asyncio.sleep(0.05)
        if args.history:
            await asyncio.to_thread(add_history, db, args.history)
        mix = cases.make(bw.MIX, args.cases)
        expect = sum(len(wire.plan(x)) for x in mix)
        before = await bw.delivered_count(db)
        cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        res = await asyncio.to_thread(bw.run_load, bw.case_requests(base, mix), args.concurrency,
                                      probe="/readyz")
        deadline = time.monotonic() + 600
        while await bw.delivered_count(db) - before < expect:
            if time.monotonic() > deadline:
                raise SystemExit(f"{tag}: not all delivered within 600 s")
            await asyncio.sleep(0.02)
        took = time.perf_counter() - t0
        return {"rate": expect / took, "intake": args.cases / res["elapsed"],
                "p50": bw.pct(res["latency"], 0.5) * 1e3, "p99": bw.pct(res["latency"], 0.99) * 1e3,
                "cpu_ms": (cpu_seconds(proc.pid) - cpu0) / expect * 1e3}
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)


async def one_run(srv: bw.Servers, tree: Path, tag: str, cases: bw.Cases,
                  args: argparse.Namespace) -> dict[str, float]:
    if args.e2e:
        return await e2e_run(srv, tree, tag, cases, args)
    db = await srv.database(tag)
    cfg = side_config(tree, srv.tmp, tag, db, srv.sims)
    proc, base = serve(tree, cfg)
    try:
        await bw.wait_http(base + "/readyz")
        stem = [bw.MIX[0]]
        await asyncio.to_thread(bw.run_load, bw.case_requests(base, cases.make(stem, 300)),
                                args.concurrency, probe="/readyz")
        reqs = bw.case_requests(base, cases.make(stem, args.cases))
        cpu0 = cpu_seconds(proc.pid)
        res = await asyncio.to_thread(bw.run_load, reqs, args.concurrency, probe="/readyz")
        out = bw.figure(res, args.cases)
        out["cpu_ms"] = (cpu_seconds(proc.pid) - cpu0) / args.cases * 1e3
        return out
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    base_tree = tmp / "base"
    rev = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), rev], cwd=ROOT,
                   check=True)
    srv = bw.Servers(tmp, args.engine)
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    unit, one = ("deliveries", "delivery") if args.e2e else ("cases", "case")
    try:
        await srv.start_partners()
        cases = bw.Cases()
        for pair in range(args.pairs):
            for side, tree in (("before", base_tree), ("after", ROOT)):
                r = await one_run(srv, tree, f"{side}{pair}", cases, args)
                results[side].append(r)
                print(f"pair {pair + 1} {side:6}: {r['rate']:7,.0f} {unit}/s  p50 {r['p50']:5.1f} "
                      f"p99 {r['p99']:5.1f} ms  gateway CPU {r['cpu_ms']:.3f} ms per {one}"
                      + (f"  (intake {r['intake']:,.0f} cases/s)" if "intake" in r else ""),
                      flush=True)
    finally:
        await srv.close()
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT,
                       check=False)
    print(f"\nengine={args.engine} cases={args.cases} concurrency={args.concurrency} "
          f"pairs={args.pairs}{' e2e, history ' + str(args.history) if args.e2e else ''}; "
          f"before = {rev} (worktree), after = {head} + working tree")
    med = {s: {k: statistics.median(r[k] for r in rs) for k in ("rate", "p99", "cpu_ms")}
           for s, rs in results.items()}
    ratios = [a["rate"] / b["rate"] for b, a in zip(results["before"], results["after"],
                                                    strict=True)]
    cpu = [a["cpu_ms"] / b["cpu_ms"] for b, a in zip(results["before"], results["after"],
                                                     strict=True)]
    for s in ("before", "after"):
        print(f"  {s:6} median: {med[s]['rate']:7,.0f} {unit}/s, p99 {med[s]['p99']:.1f} ms, "
              f"{med[s]['cpu_ms']:.3f} ms CPU per {one}")
    print(f"  after / before, per pair: rate {', '.join(f'{x:.2f}×' for x in ratios)}; "
          f"CPU per {one} {', '.join(f'{x:.2f}×' for x in cpu)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD~1", help="the revision measured as 'before'")
    ap.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--cases", type=int, default=5000, help="cases per run (after 300 warm-up)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--e2e", action="store_true",
                    help="worker on, the REST+SOAP mix, timed until delivered")
    ap.add_argument("--history", type=int, default=0,
                    help="with --e2e on SQLite: delivered rows added before the timed run")
    args = ap.parse_args(argv)
    if args.history and not (args.e2e and args.engine == "sqlite"):
        ap.error("--history needs --e2e and --engine sqlite")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
