"""Intake before and after a change, alternating on one machine (issue 12's third pass).

On this shared 2-core machine the same code's rate moves by ±30 % within an hour, so a figure
measured before a change and one measured after it, an hour apart, say little. This script puts
both versions side by side: a git worktree of ``--base`` (default ``HEAD~1``) and this checkout's
working tree, each started as its own intake-only ``gateway serve`` (worker off, fresh database,
its own ``config/gateway.yaml``, mappings and schemas), fed the same number of x-tif-signed
sample cases by the load generator of ``bench_wire.py``, in turn, ``--pairs`` times. Each run
reports the rate of durable 202s, p50/p99 and the gateway's CPU per case (``/proc``); the summary
gives the medians and the after/before ratios.

    .venv/bin/python bench/bench_ab.py --base 92d6b97            # 3 pairs of 5,000 cases, ~3 min
    .venv/bin/python bench/bench_ab.py --base HEAD~3 --engine postgres --pairs 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_wire as bw  # noqa: E402 - after the path above
from procstat import cpu_seconds  # noqa: E402

ROOT = bw.ROOT


def side_config(tree: Path, tmp: Path, tag: str, db: str, sims: dict[str, str]) -> Path:
    """``tree``'s own shipped configuration, pointed at ``db`` and the simulators, worker off."""
    import yaml
    raw = yaml.safe_load((tree / "config" / "gateway.yaml").read_text(encoding="utf-8"))
    raw["database"]["url"] = db
    raw["mappings_dir"], raw["schemas_dir"] = str(tree / "mappings"), str(tree / "schemas")
    raw["worker"].update({"enabled": False})
    for name, p in raw["partners"].items():
        if name in sims:
            p["url"] = sims[name] + bw.SIM_PATHS[name]
    cfg = tmp / f"{tag}.yaml"
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return cfg


async def one_run(srv: bw.Servers, tree: Path, tag: str, cases: bw.Cases,
                  args: argparse.Namespace) -> dict[str, float]:
    db = await srv.database(tag)
    cfg = side_config(tree, srv.tmp, tag, db, srv.sims)
    port = bw.free_port()
    # cwd: ``python -m gateway`` imports the gateway package of that tree
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "--log-level", "WARNING", "serve",
                             "--config", str(cfg), "--port", str(port)], cwd=tree)
    base = f"http://127.0.0.1:{port}"
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
    try:
        await srv.start_partners()
        cases = bw.Cases()
        for pair in range(args.pairs):
            for side, tree in (("before", base_tree), ("after", ROOT)):
                r = await one_run(srv, tree, f"{side}{pair}", cases, args)
                results[side].append(r)
                print(f"pair {pair + 1} {side:6}: {r['rate']:7,.0f} cases/s  p50 {r['p50']:5.1f} "
                      f"p99 {r['p99']:5.1f} ms  gateway CPU {r['cpu_ms']:.3f} ms/case",
                      flush=True)
    finally:
        await srv.close()
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT,
                       check=False)
    print(f"\nengine={args.engine} cases={args.cases} concurrency={args.concurrency} "
          f"pairs={args.pairs}; before = {rev} (worktree), after = {head} + working tree")
    med = {s: {k: statistics.median(r[k] for r in rs) for k in ("rate", "p99", "cpu_ms")}
           for s, rs in results.items()}
    ratios = [a["rate"] / b["rate"] for b, a in zip(results["before"], results["after"],
                                                    strict=True)]
    cpu = [a["cpu_ms"] / b["cpu_ms"] for b, a in zip(results["before"], results["after"],
                                                     strict=True)]
    for s in ("before", "after"):
        print(f"  {s:6} median: {med[s]['rate']:7,.0f} cases/s, p99 {med[s]['p99']:.1f} ms, "
              f"{med[s]['cpu_ms']:.3f} ms CPU per case")
    print(f"  after / before, per pair: rate {', '.join(f'{x:.2f}×' for x in ratios)}; "
          f"CPU per case {', '.join(f'{x:.2f}×' for x in cpu)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD~1", help="the revision measured as 'before'")
    ap.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--cases", type=int, default=5000, help="cases per run (after 300 warm-up)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    return ap.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
