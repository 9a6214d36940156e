"""Reconcile N cases against the national simulator's generated paged export (issue 13).

    .venv/bin/python bench/bench_reconcile.py                       # 1,000,000 cases, SQLite
    .venv/bin/python bench/bench_reconcile.py --engine postgres
    .venv/bin/python bench/bench_reconcile.py --records 100000      # quicker

1. A fresh database (migrated) is filled with the gateway's side of the export
   (:mod:`reconcile_population`: bulk inserts from ``generated_record``, drift injected every
   ``--drift-every`` records: missing at partner, behind, ahead, unknown).
2. ``gateway simulate national`` runs in its own process, serving ``--records`` generated records.
3. **Baseline**: a fresh process reads the whole export alone (the reconciler's own page reader,
   same page size), nothing else.
4. **Reconcile**: a fresh process runs ``Reconciler.run_all`` with repairs (missed updates
   applied and pushed, lost cases re-delivered) and checks every count against what was injected.

Each phase runs in its own process so its peak RSS (``VmHWM``) is its own; RSS is also sampled
every 0.25 s to show it is flat (first vs last quarter of the phase). Exit status 1 if a count is
wrong or the reconcile takes longer than ``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from procstat import rss_kib  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class RssSampler:
    """VmRSS of this process every ``every`` seconds while a phase runs."""

    def __init__(self, every: float = 0.25) -> None:
        self.every = every
        self.samples: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.samples.append(rss_kib(os.getpid()))
            await asyncio.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.samples.append(rss_kib(os.getpid()))

    def summary(self) -> dict[str, Any]:
        s = self.samples
        q = max(1, len(s) // 4)
        return {"rss_start_mib": round(s[0] / 1024, 1), "rss_max_mib": round(max(s) / 1024, 1),
                "rss_first_quarter_mib": round(max(s[:q]) / 1024, 1),
                "rss_last_quarter_mib": round(max(s[-q:]) / 1024, 1),
                "peak_hwm_mib": round(_hwm_kib() / 1024, 1)}


def _settings(url: str, port: int, page_size: int) -> Any:
    from gateway.config import ReconcilePartnerSettings, load_settings
    s = load_settings(ROOT / "config" / "gateway.yaml")
    national = s.partners["national"].model_copy(
        update={"url": f"http://127.0.0.1:{port}/api/v1/cross-province/cases"})
    rp = ReconcilePartnerSettings(export_url="/api/v1/cross-province/status/export",
                                  mapping="national/status-callback", page_size=page_size)
    return s.model_copy(update={
        "database": s.database.model_copy(update={"url": url}),
        "partners": {**s.partners, "national": national},
        "reconcile": s.reconcile.model_copy(update={
            "push_to": "city", "grace": 0, "max_redeliveries": 100_000,
            "partners": {"national": rp}})})


async def phase_baseline(url: str, port: int, page_size: int) -> dict[str, Any]:
    import aiohttp

    from gateway.statuses.reconcile import export_endpoint
    from gateway.statuses.export_reader import ExportReader
    endpoint, _ = export_endpoint(_settings(url, port, page_size), "national")
    records = pages = 0
    async with aiohttp.ClientSession() as http:
        with RssSampler() as rss:
            t = time.perf_counter()
            async for page in ExportReader(http, endpoint).pages():
                records += len(page.records)
                pages += 1
            seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 2), "records": records, "pages": pages, **rss.summary()}


async def phase_reconcile(url: str, port: int, page_size: int) -> dict[str, Any]:
    import aiohttp

    from gateway.contracts import load_contracts
    from gateway.statuses.reconcile import Reconciler
    from gateway.store import Store, create_engine
    s = _settings(url, port, page_size)
    mappings = load_contracts(s).mappings
    store = Store(create_engine(url))
    try:
        async with aiohttp.ClientSession() as http:
            rec = Reconciler(store, s, mappings, http, examples=0, chunk=page_size)
            with RssSampler() as rss:
                t = time.perf_counter()
                [report] = await rec.run_all(["national"])
                seconds = time.perf_counter() - t
    finally:
        await store.close()
    doc = report.as_dict()
    doc.pop("examples")
    return {"seconds": round(seconds, 2), "report": doc, **rss.summary()}


def run_phase(name: str, url: str, port: int, page_size: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--phase", name, "--url", url,
                          "--port", str(port), "--page-size", str(page_size)],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def _database(engine: str, workdir: Path) -> tuple[str, Any]:
    """A fresh migrated database; returns its URL and how to drop it."""
    from gateway.store import create_engine
    from gateway.store.migrate import upgrade
    if engine == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'reconcile.db'}"
        drop = None
    else:
        sys.path.insert(0, str(ROOT))
        from tests.conftest import create_pg_database, drop_pg_database
        url = await create_pg_database()
        drop = drop_pg_database
    e = create_engine(url)
    await upgrade(e)
    await e.dispose()
    return url, drop


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"simulator did not listen on {port}")


async def main(args: argparse.Namespace) -> int:
    import aiohttp

    from reconcile_population import populate
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
        url, drop = await _database(args.engine, Path(tmp))
        sim = None
        try:
            t = time.perf_counter()
            expected = await populate(url, args.records, drift_every=args.drift_every)
            fill = time.perf_counter() - t
            print(f"gateway side: {expected.cases:,} cases written in {fill:.1f}s "
                  f"(missing {expected.missing}, behind {expected.behind}, ahead "
                  f"{expected.ahead}, unknown {expected.unknown})", flush=True)
            port = _free_port()
            sim = subprocess.Popen([sys.executable, "-m", "gateway", "--log-level", "WARNING",
                                    "simulate", "national", "--port", str(port)], cwd=ROOT)
            _wait_port(port)
            async with aiohttp.ClientSession() as http:
                r = await http.post(f"http://127.0.0.1:{port}/__sim/export",
                                    json={"generated": args.records})
                assert r.status == 200, await r.text()
            base = run_phase("baseline", url, port, args.page_size)
            print(f"baseline (export read alone): {base}", flush=True)
            got = run_phase("reconcile", url, port, args.page_size)
            print(f"reconcile: {got}", flush=True)
        finally:
            if sim is not None:
                sim.terminate()
                sim.wait(10)
            if drop is not None:
                await drop(url)
    rep = got["report"]
    want = {"missing_at_partner": expected.missing, "behind": expected.behind,
            "ahead": expected.ahead, "unknown_case": expected.unknown}
    wrong = {k: (rep["drift"].get(k, 0), v) for k, v in want.items()
             if rep["drift"].get(k, 0) != v}
    if rep["in_sync"] != expected.in_sync:
        wrong["in_sync"] = (rep["in_sync"], expected.in_sync)
    if rep["repaired"] != {k: v for k, v in (("applied", expected.behind),
                                             ("redelivered", expected.missing)) if v}:
        wrong["repaired"] = (rep["repaired"], {"applied": expected.behind,
                                               "redelivered": expected.missing})
    print()
    print("| engine | records | page | export alone | reconcile | ratio | peak RSS alone "
          "| peak RSS reconcile | RSS 1st → last quarter |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {args.engine} | {args.records:,} | {args.page_size:,} | {base['seconds']} s "
          f"| {got['seconds']} s | {got['seconds'] / base['seconds']:.1f}× "
          f"| {base['peak_hwm_mib']} MiB | {got['peak_hwm_mib']} MiB "
          f"| {got['rss_first_quarter_mib']} → {got['rss_last_quarter_mib']} MiB |")
    if wrong:
        print(f"WRONG (got, expected): {wrong}")
        return 1
    if got["seconds"] > args.budget:
        print(f"over budget: {got['seconds']} s > {args.budget} s")
        return 1
    print(f"counts as injected; drift {rep['drift']}, repaired {rep['repaired']}")
    return 0


def cli() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--page-size", type=int, default=10_000)
    ap.add_argument("--drift-every", type=int, default=997)
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--phase", choices=("baseline", "reconcile"), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        fn = phase_baseline if args.phase == "baseline" else phase_reconcile
        print(json.dumps(asyncio.run(fn(args.url, args.port, args.page_size))))
        return 0
    return asyncio.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
