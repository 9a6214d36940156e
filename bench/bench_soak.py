"""RSS over a soak (issue 12): the gateway driven at half its peak rate for minutes, open loop,
its resident memory sampled all along; nothing may be lost.

1. **peak** (unless ``--rate`` is given): a closed-loop burst of the REST+SOAP mix (samples 01
   national, 10 Tianjin SOAP 1.1, 11 Hebei SOAP 1.2 + WS-Security, one delivery each) with 32
   connections to a ``gateway serve`` on a fresh database, timed from the first POST until every
   delivery is ``delivered``: deliveries/s;
2. **soak**: a new ``gateway serve`` on a new database, driven open loop at half that rate (a case
   sent every 1/rate s whatever the answers do) by a load generator in its own process, first for
   ``--warmup`` seconds, then for ``--minutes``. ``VmRSS`` of the gateway process is read from
   ``/proc/<pid>/status`` every ``--sample`` seconds;
3. **drain**: once the load ends, wait until every accepted case's deliveries are ``delivered``,
   then count: cases accepted (202) against stored, deliveries delivered, what the simulators
   hold. ``lost`` is an accepted case not stored plus a delivery not delivered; it must be 0.

RSS growth = (end − start) / start, start being the first sample after the warm-up and end the
last sample of the soak; the target is 10 %. Exit status 1 if anything was lost or a request
failed. ``tests/test_bench_soak.py`` runs a short version (:func:`run_soak`) in the suite.

    .venv/bin/python bench/bench_soak.py                       # SQLite, peak, then 1 + 10 min
    .venv/bin/python bench/bench_soak.py --engine postgres --minutes 10
    .venv/bin/python bench/bench_soak.py --rate 40 --minutes 0.5 --warmup 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from bench_wire import MIX, Cases, Servers, case_requests, city_signer, pct, run_load  # noqa: E402
from procstat import cpu_seconds, rss_kib  # noqa: E402


# -- the open-loop load generator (a child process) -------------------------------------------------

async def _open_loop(job: dict[str, Any], out: Any) -> dict[str, Any]:
    """Send case ``i`` at ``t0 + i/rate`` (never waiting for answers, up to ``inflight`` open
    requests) for ``seconds``; answers are counted, not awaited in order."""
    templates: list[dict[str, Any]] = job["templates"]
    rate, seconds, bases = job["rate"], job["seconds"], job["bases"]
    statuses: dict[int, int] = {}
    errors: list[str] = []
    lat: list[float] = []
    max_lag = 0.0
    sem = asyncio.Semaphore(job["inflight"])
    conn = aiohttp.TCPConnector(limit=job["inflight"], limit_per_host=0)
    signer = city_signer()  # x-tif, a fresh nonce per request (issue 14)
    async with aiohttp.ClientSession(connector=conn,
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:
        async def one(i: int) -> None:
            case = dict(templates[i % len(templates)])
            case["applicationNo"] = f"{job['prefix']}{i:08d}"
            body = json.dumps(case, ensure_ascii=False).encode("utf-8")
            t = time.perf_counter()
            try:
                async with http.post(bases[i % len(bases)] + "/api/v1/cases", data=body,
                                     headers={"Content-Type": "application/json",
                                              **signer.headers()}) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
            except (TimeoutError, aiohttp.ClientError) as e:
                errors.append(type(e).__name__)
            finally:
                lat.append(time.perf_counter() - t)
                sem.release()

        tasks = set()
        t0 = time.perf_counter()
        out.send(("started", time.time()))
        n = int(rate * seconds)
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                max_lag = max(max_lag, -delay)
            await sem.acquire()
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    return {"sent": n, "statuses": statuses, "errors": len(errors),
            "error_kinds": sorted(set(errors))[:5], "elapsed": elapsed, "max_lag": max_lag,
            "p50": pct(lat, 0.5) * 1e3 if lat else 0.0, "p99": pct(lat, 0.99) * 1e3 if lat else 0.0,
            "cpu": time.process_time()}


def _open_loop_entry(job: dict[str, Any], out: Any) -> None:
    out.send(("done", asyncio.run(_open_loop(job, out))))
    out.close()


# -- the database, as the gateway left it -------------------------------------------------------------

async def db_counts(db_url: str) -> dict[str, int]:
    """Cases stored, and the case deliveries per state (``deliveries`` = all of them). Status
    pushes to the city platform share the deliveries table (``kind``: issue 13) and are counted
    apart as ``pushes`` (no simulator takes them here, so they stay pending)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from gateway.store import create_engine
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            # submitted cases only: the anchor rows the back-flow and inbound outboxes hang
            # their batches on (gateway/store/backflow.py, inbound.py) have no body hash
            cases = int((await conn.execute(text(
                "SELECT count(*) FROM cases WHERE body_hash <> ''"))).scalar_one())
            try:
                rows = (await conn.execute(text(
                    "SELECT kind, state, count(*) FROM deliveries GROUP BY kind, state"))).all()
            except DBAPIError:  # a schema from before status pushes: every delivery is a case's
                await conn.rollback()
                rows = [("case", s, n) for s, n in (await conn.execute(text(
                    "SELECT state, count(*) FROM deliveries GROUP BY state"))).all()]
    finally:
        await engine.dispose()
    out = {"cases": cases, "deliveries": 0, "pushes": 0}
    for kind, state, n in rows:
        if kind == "case":
            out["deliveries"] += int(n)
            out[str(state)] = out.get(str(state), 0) + int(n)
        else:
            out["pushes"] += int(n)
    return out


# -- the run ----------------------------------------------------------------------------------------

@dataclass
class SoakReport:
    """What a soak measured; RSS in KiB, times in seconds."""

    engine: str
    rate: float                       # cases/s of the soak (open loop)
    peak: float | None = None         # deliveries/s of the closed-loop burst, if measured
    warmup: float = 0.0
    seconds: float = 0.0              # the measured part, after the warm-up
    sent: int = 0
    accepted: int = 0                 # 202 answers
    failed: int = 0                   # other answers and connection errors (must be 0)
    max_lag: float = 0.0              # how far the generator fell behind its schedule
    answer_p50_ms: float = 0.0
    answer_p99_ms: float = 0.0
    rss_idle: int = 0                 # once ready, before any load
    rss_start: int = 0                # first sample after the warm-up
    rss_end: int = 0                  # last sample of the soak
    rss_max: int = 0                  # over the measured part
    growth_pct: float = 0.0           # (end − start) / start
    max_growth_pct: float = 0.0       # (max − start) / start
    slope_kib_per_min: float = 0.0    # least-squares RSS trend over the measured part
    kib_per_case: float = 0.0         # that trend per case sent (a leak shows here first)
    gateway_cpu_pct: float = 0.0      # of one core, during the load
    stored: int = 0
    deliveries: int = 0
    delivered: int = 0
    lost: int = 0
    partner_unique: int = 0
    status_pushes: int = 0            # status events queued for the city platform (not sent)
    drain_seconds: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)  # (s since load start, KiB)

    def ok(self) -> bool:
        return self.lost == 0 and self.failed == 0 and self.accepted == self.stored

    def summary(self) -> str:
        d = asdict(self)
        d.pop("samples")
        mib = {k: f"{v / 1024:.1f} MiB" for k, v in d.items() if k.startswith("rss_")}
        d.update(mib)
        return "\n".join(f"{k:18} {v:.2f}" if isinstance(v, float) else f"{k:18} {v}"
                         for k, v in d.items())


def _trend(samples: list[tuple[float, int]]) -> float:
    if len(samples) < 2:
        return 0.0
    xs = [t for t, _ in samples]
    ys = [float(r) for _, r in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


async def measure_peak(srv: Servers, cases: Cases, n: int, concurrency: int = 32) -> float:
    """Deliveries/s of a closed-loop burst of ``n`` mix cases, accept → delivered."""
    base, db, _, proc = await srv.gateway("peak", True, concurrency)
    from bench_wire import wait_http
    await wait_http(base + "/readyz")
    try:
        mix = cases.make(MIX, n)
        t0 = time.perf_counter()
        await asyncio.to_thread(run_load, case_requests(base, mix), concurrency, probe="/readyz")
        await _drained(db, n, 300)
        return n / (time.perf_counter() - t0)
    finally:
        await srv.stop(proc)


async def _drained(db: str, expect: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = await db_counts(db)
        if counts.get("delivered", 0) >= expect or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.2)


async def run_soak(tmp: Path, *, engine: str = "sqlite", minutes: float = 10.0,
                   warmup: float = 60.0, rate: float | None = None, sample: float = 5.0,
                   peak_cases: int = 600, inflight: int = 256,
                   progress: Callable[[str], None] | None = None) -> SoakReport:
    """Peak (unless ``rate``), then the soak at ``rate`` or half the peak; see the module."""
    say = progress or (lambda _: None)
    srv = Servers(tmp, engine)
    try:
        await srv.start_partners()
        cases = Cases()
        peak = None
        if rate is None:
            peak = await measure_peak(srv, cases, peak_cases)
            rate = peak / 2
            say(f"peak {peak:.1f} deliveries/s; soaking at {rate:.1f} cases/s")
        from bench_wire import get_json, post_json, wait_http
        for base in srv.sims.values():
            await post_json(base + "/__sim/reset", {})
        report = SoakReport(engine=engine, rate=rate, peak=peak, warmup=warmup,
                            seconds=minutes * 60)
        base, db, _, proc = await srv.gateway("soak", True, 32)
        await wait_http(base + "/readyz")
        await asyncio.sleep(1)
        report.rss_idle = rss_kib(proc.pid)
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        job = {"templates": [cases.base[s] for s in MIX], "rate": rate, "bases": [base],
               "seconds": warmup + minutes * 60, "inflight": inflight,
               "prefix": f"SOAK{cases.run}"}
        gen = ctx.Process(target=_open_loop_entry, args=(job, child))
        gen.start()
        child.close()
        kind, _ = await asyncio.to_thread(parent.recv)
        assert kind == "started"
        t0 = time.monotonic()
        cpu0 = cpu_seconds(proc.pid)
        done = asyncio.ensure_future(asyncio.to_thread(parent.recv))
        samples: list[tuple[float, int]] = []
        next_note = 60.0
        while not done.done():
            now = time.monotonic() - t0
            samples.append((now, rss_kib(proc.pid)))
            if now >= next_note:
                say(f"{now / 60:.0f} min: RSS {samples[-1][1] / 1024:.1f} MiB")
                next_note += 60
            await asyncio.wait([done], timeout=sample)
        _, res = done.result()
        report.gateway_cpu_pct = 100 * (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        gen.join()
        samples.append((time.monotonic() - t0, rss_kib(proc.pid)))
        measured = [s for s in samples if s[0] >= warmup]
        report.samples = samples
        report.sent = res["sent"]
        report.accepted = res["statuses"].get(202, 0)
        report.failed = res["errors"] + sum(n for s, n in res["statuses"].items() if s != 202)
        report.max_lag, report.answer_p50_ms, report.answer_p99_ms = (
            res["max_lag"], res["p50"], res["p99"])
        if measured:
            report.rss_start, report.rss_end = measured[0][1], measured[-1][1]
            report.rss_max = max(r for _, r in measured)
            report.growth_pct = 100 * (report.rss_end - report.rss_start) / report.rss_start
            report.max_growth_pct = 100 * (report.rss_max - report.rss_start) / report.rss_start
            report.slope_kib_per_min = _trend(measured)
            report.kib_per_case = report.slope_kib_per_min / (rate * 60)
        say(f"load done: {report.accepted} accepted, {report.failed} failed; draining")
        t1 = time.monotonic()
        counts = await _drained(db, report.accepted, 300)
        report.drain_seconds = time.monotonic() - t1
        report.stored = counts["cases"]
        report.deliveries = counts["deliveries"]
        report.delivered = counts.get("delivered", 0)
        report.status_pushes = counts["pushes"]
        report.lost = max(0, report.accepted - report.stored) + (report.deliveries
                                                                  - report.delivered)
        for sim in srv.sims.values():
            report.partner_unique += int(
                (await get_json(sim + "/__sim/state?messages=0"))["unique"])
        await srv.stop(proc)
        return report
    finally:
        await srv.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--minutes", type=float, default=10.0, help="the measured soak, after warm-up")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds of load before measuring")
    ap.add_argument("--rate", type=float, default=None,
                    help="cases/s of the soak (default: half the measured peak)")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--peak-cases", type=int, default=600, help="cases in the peak burst")
    args = ap.parse_args()
    from runinfo import code_version
    head = code_version()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gw-soak-") as tmp:
        report = asyncio.run(run_soak(
            Path(tmp), engine=args.engine, minutes=args.minutes, warmup=args.warmup,
            rate=args.rate, sample=args.sample, peak_cases=args.peak_cases,
            progress=lambda m: print("  " + m, file=sys.stderr, flush=True)))
    load1 = os.getloadavg()
    print(f"code: {head}; cpus {os.cpu_count()}; load average (1 min) before/after "
          f"{load0[0]:.2f}/{load1[0]:.2f}")
    print(report.summary())
    print("RSS (MiB) every minute: " + ", ".join(
        f"{t / 60:.0f}:{r / 1024:.1f}" for t, r in _per_minute(report.samples)))
    verdict = ("nothing lost" if report.ok() else "FAILED: lost or refused") + (
        f"; RSS growth {report.growth_pct:+.1f} % "
        f"({'within' if abs(report.growth_pct) <= 10 else 'OVER'} the 10 % target)")
    print("RESULT:", verdict)
    return 0 if report.ok() else 1


def _per_minute(samples: list[tuple[float, int]]) -> list[tuple[float, int]]:
    out: list[tuple[float, int]] = []
    for t, r in samples:
        if not out or t >= out[-1][0] + 60 - 1e-6:
            out.append((t, r))
    return out


if __name__ == "__main__":
    sys.exit(main())
