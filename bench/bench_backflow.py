"""National data back-flow of N generated records into the store and the city platform (issue 15).

    .venv/bin/python bench/bench_backflow.py                        # 1,000,000 records, SQLite
    .venv/bin/python bench/bench_backflow.py --engine postgres
    .venv/bin/python bench/bench_backflow.py --records 200000       # quicker

1. ``gateway simulate national`` and ``gateway simulate city`` run in their own processes; the
   national one serves ``--records`` generated back-flow records (``/__sim/backflow``: every key
   twice when ``--keys`` is half the records, some versions going backwards).
2. **Baseline**: a fresh process reads the whole export alone (the puller's page reader, same
   page size), nothing else.
3. **Back-flow**: a fresh process runs the gateway (its worker sends the batches to the city
   simulator) and the puller: pages mapped, deduplicated by version, stored with their checkpoint
   and queued as batches; the phase ends when the city simulator holds every batch. The counts
   are checked against the generating function: records, new keys, replaced, ignored, and what
   the city platform holds.

Each phase runs in its own process so its peak RSS (``VmHWM``) is its own; RSS is sampled every
0.25 s to show it is flat (first vs last quarter of the phase). The phase's CPU time (all its
threads, ``time.process_time``) is reported beside the wall time: records per CPU-second says
what the gateway's code costs when other work shares the machine. Exit 1 if a count is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reconcile import RssSampler, _database, _free_port, _wait_port  # noqa: E402

#: the secrets config/gateway.yaml reads from the environment, as the simulators expect them
#: by default (the tests' values); a value already set wins
for _k, _v in {"GATEWAY_CITY_CALLER_TOKEN": "city-caller-token-for-bench",
               "GATEWAY_CITY_TIF_TOKEN": "city-demo-tif-token",
               "GATEWAY_TIANJIN_AUTH_CODE": "TJ-DEMO-AUTHCODE-0001",
               "GATEWAY_TIANJIN_INBOUND_AUTH_CODE": "TJ-NOTIFY-AUTHCODE-0001",
               "GATEWAY_HEBEI_PASSWORD": "hebei-demo-secret",
               "GATEWAY_HEBEI_INBOUND_PASSWORD": "hebei-notify-secret"}.items():
    os.environ.setdefault(_k, _v)

CITY_STATUS = "/api/v1/status-events"
CITY_BACKFLOW = "/api/v1/backflow-records"


def _settings(url: str, ports: dict[str, int], page_size: int, batch_size: int) -> Any:
    from gateway.config import BackflowSettings, BackflowSourceSettings, load_settings
    s = load_settings(ROOT / "config" / "gateway.yaml")
    base = {"national": f"http://127.0.0.1:{ports['national']}/api/v1/cross-province/cases",
            "city": f"http://127.0.0.1:{ports['city']}{CITY_STATUS}"}
    partners = {name: s.partners[name].model_copy(update={"url": u}) for name, u in base.items()}
    partners["city-backflow"] = partners["city"].model_copy(update={
        "url": f"http://127.0.0.1:{ports['city']}{CITY_BACKFLOW}",
        "mapping": "backflow/city-batch"})
    return s.model_copy(update={
        "database": s.database.model_copy(update={"url": url}),
        "partners": partners, "routes": [],
        "backflow": BackflowSettings(first_delay=3600, sources={"national": BackflowSourceSettings(
            page_size=page_size, batch_size=batch_size)})})


async def phase_baseline(url: str, ports: dict[str, int], page_size: int,
                         batch_size: int) -> dict[str, Any]:
    import aiohttp

    from gateway.backflow.pull import endpoint
    from gateway.statuses.export_reader import ExportReader
    ep = endpoint(_settings(url, ports, page_size, batch_size), "national")
    records = pages = 0
    async with aiohttp.ClientSession() as http:
        with RssSampler() as rss:
            t = time.perf_counter()
            async for page in ExportReader(http, ep).pages():
                records += len(page.records)
                pages += 1
            seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 2), "records": records, "pages": pages, **rss.summary()}


async def phase_backflow(url: str, ports: dict[str, int], page_size: int,
                         batch_size: int) -> dict[str, Any]:
    import aiohttp
    from aiohttp import web

    from gateway.app import STORE, create_app
    from gateway.backflow.pull import Puller
    from gateway.contracts import load_contracts
    from gateway.store.backflow import BackflowStore
    s = _settings(url, ports, page_size, batch_size)
    app = create_app(s)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", _free_port()).start()
    try:
        store = app[STORE]
        mappings = load_contracts(s).mappings
        async with aiohttp.ClientSession() as http:
            with RssSampler() as rss:
                t, cpu = time.perf_counter(), time.process_time()
                report = await Puller(store, s, mappings, http, "national").run()
                pulled = time.perf_counter() - t
                bs = BackflowStore(store)
                while True:
                    states = await bs.outbox("national")
                    if set(states) <= {"delivered", "dead"}:
                        break
                    await asyncio.sleep(0.05)
                seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    finally:
        await runner.cleanup()
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "pulled_seconds": round(pulled, 2),
            "report": {k: v for k, v in report.__dict__.items() if k != "seconds"},
            "outbox": states, **rss.summary()}


def run_phase(name: str, url: str, ports: dict[str, int], args: argparse.Namespace
              ) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--phase", name, "--url", url,
                          "--ports", json.dumps(ports), "--page-size", str(args.page_size),
                          "--batch-size", str(args.batch_size)],
                         cwd=ROOT, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def expected_counts(n: int, keys: int, backwards_every: int) -> dict[str, int]:
    """New keys, replaced and ignored records of the generated export (version_of's rules)."""
    back = sum(1 for i in range(keys, n) if backwards_every and (i % keys) % backwards_every == 0)
    return {"kept": min(n, keys), "replaced": max(0, n - keys) - back, "ignored": back}


async def main(args: argparse.Namespace) -> int:
    import aiohttp
    keys = args.keys or max(1, args.records // 2)
    want = expected_counts(args.records, keys, args.backwards_every)
    with tempfile.TemporaryDirectory(prefix="bench-backflow-") as tmp:
        url, drop = await _database(args.engine, Path(tmp))
        sims: list[subprocess.Popen[bytes]] = []
        try:
            ports = {"national": _free_port(), "city": _free_port()}
            for name, port in ports.items():
                sims.append(subprocess.Popen([sys.executable, "-m", "gateway", "--log-level",
                                              "WARNING", "simulate", name, "--port", str(port)],
                                             cwd=ROOT))
                _wait_port(port, 120)  # a loaded machine starts a simulator slowly
            async with aiohttp.ClientSession() as http:
                r = await http.post(f"http://127.0.0.1:{ports['national']}/__sim/backflow",
                                    json={"generated": args.records, "keys": keys,
                                          "backwards_every": args.backwards_every})
                assert r.status == 200, await r.text()
                base = run_phase("baseline", url, ports, args)
                print(f"baseline (export read alone): {base}", flush=True)
                got = run_phase("backflow", url, ports, args)
                print(f"back-flow: {got}", flush=True)
                async with http.get(f"http://127.0.0.1:{ports['city']}/__sim/state") as r:
                    city = (await r.json())["backflow"]
        finally:
            for p in sims:
                p.terminate()
                p.wait(10)
            if drop is not None:
                await drop(url)
    rep = got["report"]
    wrong = {k: (rep[k], v) for k, v in want.items() if rep[k] != v}
    if rep["records"] != args.records:
        wrong["records"] = (rep["records"], args.records)
    if city["keys"] != want["kept"] or city["records"] != want["kept"] + want["replaced"] \
            or city["duplicateBatches"] or set(got["outbox"]) != {"delivered"}:
        wrong["city"] = (city, got["outbox"])
    rate = args.records / got["seconds"]
    per_cpu = args.records / got["cpu_seconds"]
    print()
    print("| engine | records | page / batch | export alone | back-flow (store + city) "
          "| records/s | records per gateway CPU-s | ratio | peak RSS alone | peak RSS back-flow "
          "| RSS 1st → last quarter |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {args.engine} | {args.records:,} | {args.page_size:,} / {args.batch_size:,} "
          f"| {base['seconds']} s | {got['seconds']} s (pulled in {got['pulled_seconds']} s) "
          f"| {rate:,.0f} | {per_cpu:,.0f} | {got['seconds'] / base['seconds']:.1f}× "
          f"| {base['peak_hwm_mib']} MiB | {got['peak_hwm_mib']} MiB "
          f"| {got['rss_first_quarter_mib']} → {got['rss_last_quarter_mib']} MiB |")
    if wrong:
        print(f"WRONG (got, expected): {wrong}")
        return 1
    print(f"counts as generated: {want}; city platform holds {city['keys']:,} keys from "
          f"{city['batches']:,} batches")
    return 0


def cli() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, help="distinct keys (default: half the records)")
    ap.add_argument("--backwards-every", type=int, default=11)
    ap.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--page-size", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--phase", choices=("baseline", "backflow"), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        fn = phase_baseline if args.phase == "baseline" else phase_backflow
        print(json.dumps(asyncio.run(fn(args.url, json.loads(args.ports), args.page_size,
                                        args.batch_size))))
        return 0
    return asyncio.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
