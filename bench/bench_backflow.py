"""National data back-flow of N generated records into the store and the city platform (issue 15).

    .venv/bin/python bench/bench_backflow.py                        # 1,000,000 records, SQLite
    .venv/bin/python bench/bench_backflow.py --engine postgres
    .venv/bin/python bench/bench_backflow.py --records 200000       # quicker
    .venv/bin/python bench/bench_backflow.py --split                # worker in its own process

1. ``gateway simulate national`` and ``gateway simulate city`` run in their own processes; the
   national one serves ``--records`` generated back-flow records (``/__sim/backflow``: every key
   twice when ``--keys`` is half the records, some versions going backwards).
2. **Baseline**: a fresh process reads the whole export alone (the puller's page reader, same
   page size), nothing else.
3. **Back-flow**: a fresh process runs the gateway (its worker sends the batches to the city
   simulator) and the puller: pages mapped, deduplicated by version, stored with their checkpoint
   and queued as batches; the phase ends when the city simulator holds every batch. The counts
   are checked against the generating function: records, new keys, replaced, ignored, and what
   the city platform holds. With ``--split`` the worker runs in a second process and the phase's
   process only pulls (``gateway backflow run`` beside ``gateway serve``). The city platform's
   intake limits are the bench's (:data:`SINK_RATE`), printed with the result.

Each phase runs in its own process so its peak RSS (``VmHWM``) is its own; RSS is sampled every
0.25 s to show it is flat (first vs last quarter of the phase). The phase's CPU time (all its
threads, ``time.process_time``) is reported beside the wall time: records per CPU-second says
what the gateway's code costs when other work shares the machine. Exit 1 if a count is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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

from bench_reconcile import (RssSampler, _database, _free_port, _hwm_kib,  # noqa: E402
                             _wait_port, rss_kib)
from benchenv import use_bench_secrets  # noqa: E402

use_bench_secrets()

CITY_STATUS = "/api/v1/status-events"
CITY_BACKFLOW = "/api/v1/backflow-records"


#: the city platform's back-flow intake as the bench configures it (batches per second and in
#: flight, per instance): config/gateway.yaml agrees 20 batches/s (20,000 records/s) with the
#: demo city platform, a contract figure that would cap the gateway at exactly the target
SINK_RATE = float(os.environ.get("BENCH_SINK_RATE", "100"))
SINK_CONCURRENCY = int(os.environ.get("BENCH_SINK_CONCURRENCY", "4"))


def _settings(url: str, ports: dict[str, int], page_size: int, batch_size: int) -> Any:
    from gateway.config import BackflowSettings, BackflowSourceSettings, load_settings
    s = load_settings(ROOT / "config" / "gateway.yaml")
    base = {"national": f"http://127.0.0.1:{ports['national']}/api/v1/cross-province/cases",
            "city": f"http://127.0.0.1:{ports['city']}{CITY_STATUS}"}
    partners = {name: s.partners[name].model_copy(update={"url": u}) for name, u in base.items()}
    partners["city-backflow"] = partners["city"].model_copy(update={
        "url": f"http://127.0.0.1:{ports['city']}{CITY_BACKFLOW}",
        "mapping": "backflow/city-batch",
        "limits": partners["city"].limits.model_copy(update={
            "rate": SINK_RATE, "burst": max(1, int(SINK_RATE) // 4),
            "max_concurrency": SINK_CONCURRENCY})})
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


async def phase_deliver(url: str, ports: dict[str, int], page_size: int,
                        batch_size: int) -> dict[str, Any]:
    """``--split``: the gateway that delivers (``gateway serve``'s worker), in its own process,
    until SIGTERM; then its CPU seconds and peak RSS."""
    import signal

    from aiohttp import web

    from gateway.app import create_app
    app = create_app(_settings(url, ports, page_size, batch_size))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", _free_port()).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    cpu = time.process_time()
    try:
        await stop.wait()
        cpu = time.process_time() - cpu
    finally:
        await runner.cleanup()
    return {"cpu_seconds": round(cpu, 2), "peak_hwm_mib": round(_hwm_kib() / 1024, 1)}


async def phase_backflow(url: str, ports: dict[str, int], page_size: int,
                         batch_size: int, split: bool = False) -> dict[str, Any]:
    """The puller and, in the same process, the worker that delivers its batches; with
    ``split`` the worker runs in a second process (:func:`phase_deliver`) and this one only
    pulls, as ``gateway backflow run`` beside ``gateway serve``."""
    import aiohttp
    from aiohttp import web

    from gateway.app import STORE, create_app
    from gateway.backflow.pull import Puller
    from gateway.contracts import load_contracts
    from gateway.store.backflow import BackflowStore
    gc_time = [0.0, 0.0, 0]  # seconds in the collector, when the current one began, full ones

    def _gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]
            gc_time[2] += info["generation"] == 2
    gc.callbacks.append(_gc)  # what the garbage collector cost (gateway/gctuning.py)
    s = _settings(url, ports, page_size, batch_size)
    deliverer: subprocess.Popen[str] | None = None
    if split:
        s = s.model_copy(update={"worker": s.worker.model_copy(update={"enabled": False})})
        # its output to a file: a pipe nobody reads until the end would fill and stall it
        said = Path(tempfile.mkstemp(prefix="bench-deliver-", suffix=".out")[1])
        deliverer = subprocess.Popen(
            [sys.executable, __file__, "--phase", "deliver", "--url", url, "--ports",
             json.dumps(ports), "--page-size", str(page_size), "--batch-size", str(batch_size)],
            cwd=ROOT, stdout=said.open("w"), text=True)
        while "ready" not in said.read_text():
            if deliverer.poll() is not None:
                raise RuntimeError("the delivering gateway did not start")
            await asyncio.sleep(0.1)
    app = create_app(s)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", _free_port()).start()
    other_rss: list[int] = []
    try:
        store = app[STORE]
        mappings = load_contracts(s).mappings
        async with aiohttp.ClientSession() as http:
            with RssSampler() as rss:
                t, cpu = time.perf_counter(), time.process_time()
                report = await Puller(store, s, mappings, http, "national").run()
                pulled, pulled_cpu = time.perf_counter() - t, time.process_time() - cpu
                bs = BackflowStore(store)
                at_pulled = await bs.outbox("national")
                while True:
                    states = await bs.outbox("national")
                    if deliverer is not None:
                        other_rss.append(rss_kib(deliverer.pid))
                    if set(states) <= {"delivered", "dead"}:
                        break
                    await asyncio.sleep(0.05)
                seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    finally:
        await runner.cleanup()
        other: dict[str, Any] = {}
        if deliverer is not None:
            deliverer.terminate()
            deliverer.wait(60)
            other = json.loads(said.read_text().strip().splitlines()[-1])
            said.unlink()
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "pulled_seconds": round(pulled, 2), "pulled_cpu_seconds": round(pulled_cpu, 2),
            "delivered_when_pulled": at_pulled.get("delivered", 0),
            "gc_seconds": round(gc_time[0], 2), "gc_full": gc_time[2],
            "deliverer_cpu_seconds": other.get("cpu_seconds"),
            "deliverer_peak_hwm_mib": other.get("peak_hwm_mib"),
            "report": {k: v for k, v in report.__dict__.items() if k != "seconds"},
            "outbox": states, **rss.summary()}


def run_phase(name: str, url: str, ports: dict[str, int], args: argparse.Namespace
              ) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--phase", name, "--url", url,
                          "--ports", json.dumps(ports), "--page-size", str(args.page_size),
                          "--batch-size", str(args.batch_size)]
                         + (["--split"] if args.split else []),
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
    per_cpu = args.records / (got["cpu_seconds"] + (got["deliverer_cpu_seconds"] or 0))
    print()
    print("| engine | processes | records | page / batch | export alone | back-flow (store + city) "
          "| records/s | records per gateway CPU-s | ratio | peak RSS alone | peak RSS back-flow "
          "| RSS 1st → last quarter |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    procs = "2: puller, worker" if args.split else "1: puller + worker"
    print(f"| {args.engine} | {procs} | {args.records:,} | {args.page_size:,} / {args.batch_size:,} "
          f"| {base['seconds']} s | {got['seconds']} s (pulled in {got['pulled_seconds']} s) "
          f"| {rate:,.0f} | {per_cpu:,.0f} | {got['seconds'] / base['seconds']:.1f}× "
          f"| {base['peak_hwm_mib']} MiB | {got['peak_hwm_mib']} MiB"
          + (f" + {got['deliverer_peak_hwm_mib']} MiB" if args.split else "") + " "
          f"| {got['rss_first_quarter_mib']} → {got['rss_last_quarter_mib']} MiB |")
    if wrong:
        print(f"WRONG (got, expected): {wrong}")
        return 1
    print(f"garbage collector: {got['gc_seconds']} s in {got['gc_full']} full and the younger "
          "collections (server.gc_threshold, gateway/gctuning.py)")
    print(f"city platform's intake as configured here: {SINK_RATE:g} batches/s, "
          f"{SINK_CONCURRENCY} in flight (BENCH_SINK_RATE, BENCH_SINK_CONCURRENCY; "
          "config/gateway.yaml agrees 20 and 2)")
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
    ap.add_argument("--split", action="store_true",
                    help="the worker that delivers in a process of its own, the puller in "
                         "another (gateway backflow run beside gateway serve)")
    ap.add_argument("--phase", choices=("baseline", "backflow", "deliver"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--ports", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        ports = json.loads(args.ports)
        if args.phase == "backflow":
            doc = asyncio.run(phase_backflow(args.url, ports, args.page_size, args.batch_size,
                                             split=args.split))
        else:
            fn = phase_baseline if args.phase == "baseline" else phase_deliver
            doc = asyncio.run(fn(args.url, ports, args.page_size, args.batch_size))
        print(json.dumps(doc))
        return 0
    return asyncio.run(main(args))


if __name__ == "__main__":
    sys.exit(cli())
