"""The gateway against the wire: every figure of issue 12's method in one run, with ratios.

The load generator is its own process (``multiprocessing`` spawn, an aiohttp client with N
connections); the echo server, the three partner simulators (``gateway simulate``) and the
gateways (``gateway serve``) are other processes. Per repetition and per concurrency:

1. ``echo``        a trivial aiohttp server answering the case body back (baseline of the wire);
2. ``national``    already-mapped national messages posted straight to the national simulator;
3. ``intake``      Beijing cases (sample 01, unique application numbers) to ``POST /api/v1/cases``
                   of a gateway whose worker is off: rate of durable 202s;
4. ``mix direct`` / ``mix e2e``  a REST+SOAP mix (samples 01 national, 10 Tianjin SOAP 1.1,
                   11 Hebei SOAP 1.2 + WS-Security, in turn): the exact mapped envelopes posted
                   straight to the simulators, then the cases posted to a gateway with its worker
                   on, timed until the store holds every delivery as ``delivered``;
5. ``latency``     at a fixed moderate rate (open loop), one national case at a time: the time
                   from the POST to the simulator holding the message, through the gateway and
                   posted directly; the difference is what the gateway adds.

    .venv/bin/python bench/bench_wire.py --quick                 # < 1 minute
    .venv/bin/python bench/bench_wire.py --repeat 3              # SQLite, 32 and 64 connections
    .venv/bin/python bench/bench_wire.py --repeat 3 --engine postgres
    .venv/bin/python bench/bench_wire.py --repeat 3 --engine postgres --instances 2

``--instances 2`` (PostgreSQL only) measures scale-out instead: per repetition and concurrency,
the mix posted directly (baseline), then accept→delivered against one ``gateway serve`` on a
fresh database, then against two ``gateway serve`` processes sharing one fresh database (the
client's requests alternate between them); deliveries/s of each, the ratio two / one, and the
CPU share of every process (gateways, PostgreSQL, simulators, load generator) from
``/proc/<pid>/stat`` during each phase, since they all share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # procstat, next to this script
from benchenv import use_bench_secrets  # noqa: E402 - after the path above
from procstat import cpu_seconds  # noqa: E402
SAMPLES = ROOT / "samples" / "cases"
MIX = ["01-person-shanghai-social-security", "10-person-tianjin-social-security",
       "11-company-hebei-branch-filing"]
# every process started here inherits the shipped config's secrets (bench/benchenv.py)
use_bench_secrets()
SIM_PATHS = {"national": "/api/v1/cross-province/cases", "tianjin": "/tianjin/ExchangeService",
             "hebei": "/hebei/CaseExchange"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the echo server (run as `bench_wire.py --serve-echo PORT`) ---------------------------------

def serve_echo(port: int) -> None:
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/echo", lambda r: web.Response(text="ok"))
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *a: None)


# -- the load generator (a child process) ----------------------------------------------------------

Request = tuple[str, bytes, dict[str, str]]


async def _load(job: dict[str, Any]) -> dict[str, Any]:
    reqs: list[Request] = job["requests"]
    conc: int = job["concurrency"]
    rate: float | None = job.get("rate")
    starts = [0.0] * len(reqs)     # wall clock (time.time) at send, for matching partner logs
    lat = [0.0] * len(reqs)
    statuses = [0] * len(reqs)
    conn = aiohttp.TCPConnector(limit=conc, limit_per_host=0)
    async with aiohttp.ClientSession(connector=conn) as http:
        # open the connections first (not timed)
        from urllib.parse import urlsplit
        for netloc in {urlsplit(u).netloc for u, _, _ in reqs}:
            probe = f"http://{netloc}{job.get('probe', '/')}"
            await asyncio.gather(*(_probe(http, probe) for _ in range(conc)))

        async def one(i: int) -> None:
            url, body, headers = reqs[i]
            starts[i] = time.time()
            t = time.perf_counter()
            async with http.post(url, data=body, headers=headers) as r:
                await r.read()
                statuses[i] = r.status
            lat[i] = time.perf_counter() - t

        t0, cpu0 = time.perf_counter(), time.process_time()
        if rate is None:
            nxt = iter(range(len(reqs)))

            async def worker() -> None:
                for i in nxt:
                    await one(i)
            await asyncio.gather(*(worker() for _ in range(conc)))
        else:
            tasks = []
            for i in range(len(reqs)):
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    bad = [s for s in statuses if s not in (200, 202)]
    return {"elapsed": elapsed, "latency": lat, "starts": starts, "bad": len(bad),
            "bad_sample": sorted(set(bad))[:5], "cpu": time.process_time() - cpu0}


async def _probe(http: aiohttp.ClientSession, url: str) -> None:
    try:
        async with http.get(url) as r:
            await r.read()
    except aiohttp.ClientError:
        pass


def _load_entry(job: dict[str, Any], out: Any) -> None:
    out.send(asyncio.run(_load(job)))
    out.close()


def run_load(requests: list[Request], concurrency: int, *, rate: float | None = None,
             probe: str = "/") -> dict[str, Any]:
    """Run the requests from a separate process; the results come back through a pipe."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_load_entry, args=({"requests": requests, "concurrency": concurrency,
                                                "rate": rate, "probe": probe}, child))
    p.start()
    child.close()
    res = parent.recv()
    p.join()
    if res["bad"]:
        raise SystemExit(f"{res['bad']} requests failed: HTTP {res['bad_sample']}")
    return res


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


# -- servers --------------------------------------------------------------------------------------

async def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as r:
            return await r.json()


async def post_json(url: str, doc: Any) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=doc) as r:
            await r.read()


class Servers:
    def __init__(self, tmp: Path, engine: str, profile: Path | None = None) -> None:
        self.tmp, self.engine = tmp, engine
        #: with --profile: py-spy records every gateway into this folder (speedscope files)
        self.profile = profile
        self.profilers: list[subprocess.Popen[bytes]] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.sims: dict[str, str] = {}
        self.sim_pids: list[int] = []
        self.pg_urls: list[str] = []

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen([sys.executable, *args], cwd=ROOT)
        self.procs.append(p)
        return p

    def spawn_gateway(self, tag: str, *args: str) -> subprocess.Popen[bytes]:
        """``gateway serve``; with --profile, sampled by py-spy (installed in the venv, not a
        project dependency) until it exits: ``<profile>/<tag>-<pid>.txt``, collapsed stacks
        (one line per stack and its sample count; ``--idle`` keeps the loop's waits)."""
        p = self.spawn("-m", "gateway", "--log-level", "WARNING", "serve", *args)
        if self.profile is not None:
            self.profile.mkdir(parents=True, exist_ok=True)
            spy = Path(sys.executable).parent / "py-spy"
            self.profilers.append(subprocess.Popen(
                [str(spy), "record", "--pid", str(p.pid), "--rate", "250", "--format", "raw",
                 "--idle", "--threads", "--nonblocking", "-o",
                 str(self.profile / f"{tag}-{p.pid}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return p

    async def start_partners(self) -> None:
        self.echo = f"http://127.0.0.1:{free_port()}"
        self.echo_pid = self.spawn(__file__, "--serve-echo", self.echo.rsplit(":", 1)[1]).pid
        for name in SIM_PATHS:
            port = free_port()
            self.sims[name] = f"http://127.0.0.1:{port}"
            self.sim_pids.append(self.spawn("-m", "gateway", "--log-level", "WARNING",
                                            "simulate", name, "--port", str(port)).pid)
        await wait_http(self.echo + "/echo")
        for base in self.sims.values():
            await wait_http(base + "/__sim/state?messages=0")

    async def database(self, tag: str) -> str:
        if self.engine == "sqlite":
            return f"sqlite+aiosqlite:///{self.tmp / (tag + '.db')}"
        sys.path.insert(0, str(ROOT))
        from tests.conftest import create_pg_database
        url = await create_pg_database()
        self.pg_urls.append(url)
        return url

    def config(self, tag: str, db: str, worker: bool, concurrency: int) -> Path:
        import yaml
        raw = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8"))
        raw["database"]["url"] = db
        raw["mappings_dir"], raw["schemas_dir"] = str(ROOT / "mappings"), str(ROOT / "schemas")
        raw["worker"].update({"enabled": worker, "poll_interval": 0.05,
                              "concurrency": concurrency, "batch_size": concurrency})
        for name, p in raw["partners"].items():
            if name not in self.sims:  # a partner no route sends cases to (the city's push)
                continue
            p["url"] = self.sims[name] + SIM_PATHS[name]
            p["limits"] = {"max_concurrency": concurrency}   # no rate limit
        cfg = self.tmp / f"{tag}.yaml"
        cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        return cfg

    async def gateway(self, tag: str, worker: bool, concurrency: int
                      ) -> tuple[str, str, Path, subprocess.Popen[bytes]]:
        db = await self.database(tag)
        cfg = self.config(tag, db, worker, concurrency)
        port = free_port()
        p = self.spawn_gateway(tag, "--config", str(cfg), "--port", str(port))
        return f"http://127.0.0.1:{port}", db, cfg, p

    async def instances(self, tag: str, count: int, concurrency: int
                        ) -> tuple[list[str], str, list[subprocess.Popen[bytes]]]:
        """``count`` gateways (worker on) sharing one fresh database: their base URLs, the
        database, the processes."""
        db = await self.database(tag)
        cfg = self.config(tag, db, True, concurrency)
        bases, procs = [], []
        for _ in range(count):
            port = free_port()
            procs.append(self.spawn_gateway(tag, "--config", str(cfg), "--port", str(port)))
            bases.append(f"http://127.0.0.1:{port}")
        for b in bases:
            await wait_http(b + "/readyz")
        return bases, db, procs

    async def stop(self, p: subprocess.Popen[bytes]) -> None:
        p.terminate()
        await asyncio.to_thread(p.wait, 30)

    async def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs + self.profilers:
            await asyncio.to_thread(p.wait, 30)
        if self.pg_urls:
            from tests.conftest import drop_pg_database
            for u in self.pg_urls:
                await drop_pg_database(u)


# -- cases and the messages the gateway would send -------------------------------------------------

class Cases:
    def __init__(self) -> None:
        self.base = {p.stem: json.loads(p.read_text(encoding="utf-8"))
                     for p in SAMPLES.glob("*.json")}
        self.run = secrets.token_hex(3).upper()
        self.n = 0

    def make(self, stems: list[str], count: int) -> list[dict[str, Any]]:
        out = []
        for i in range(count):
            c = json.loads(json.dumps(self.base[stems[i % len(stems)]]))
            self.n += 1
            c["applicationNo"] = f"WIRE{self.run}{self.n:08d}"
            out.append(c)
        return out


class Wire:
    """The mapped messages the gateway's own code would put on the wire for a case (routing,
    mapping, envelope, WS-Security), built with the gateway's modules in this process (untimed),
    for posting straight to the simulators."""

    def __init__(self, cfg: Path) -> None:
        sys.path.insert(0, str(ROOT))
        from gateway.config import load_settings
        from gateway.contracts import load_contracts
        self.settings = load_settings(cfg)
        self.contracts = load_contracts(self.settings)

    def plan(self, case: dict[str, Any]) -> list[tuple[Any, str]]:
        from gateway.intake.accept import idempotency_key, normalise
        n = normalise(case)
        return [(d, idempotency_key(n["applicationNo"], d.key))
                for d in self.contracts.routes.plan(n).deliveries]

    async def requests(self, cases: list[dict[str, Any]]) -> list[Request]:
        from gateway.delivery.worker import delivery_view
        from gateway.intake.accept import normalise
        from gateway.mapping.context import delivery_context
        from gateway.protocols import create_client
        out: list[Request] = []
        async with aiohttp.ClientSession() as http:
            clients = {name: create_client(name, p, http)
                       for name, p in self.settings.partners.items()}
            for case in cases:
                n = normalise(case)
                for d, key in self.plan(case):
                    m = self.contracts.mappings.get(d.mapping, d.mapping_version)
                    ctx = delivery_context(case_id="bench", delivery_id="bench",
                                           idempotency_key=key, partner=d.partner,
                                           region=d.region)
                    view = delivery_view(n, list(d.item_nos), d.region)
                    payload = m.render(view, ctx)
                    m.validate_output(payload, view)
                    c: Any = clients[d.partner]
                    url = self.settings.partners[d.partner].url
                    if hasattr(c, "build_request"):
                        body = c.build_request(payload, key, "bench")
                        headers = c.operation.version.http_headers(c.operation.action)
                        headers["X-Correlation-Id"] = "bench"
                    else:
                        body = json.dumps(c.envelope(payload, c.settings.credentials),
                                          ensure_ascii=False).encode("utf-8")
                        headers = {"X-Idempotency-Key": key, "X-Correlation-Id": "bench",
                                   "Content-Type": "application/json; charset=utf-8"}
                    out.append((url, body, headers))
        return out


def city_signer() -> Any:
    """The shipped config's ``city`` caller (x-tif), with its token from the environment."""
    from gateway.protocols.tif import TifSigner
    return TifSigner("BJ-CITY-PLATFORM", os.environ["GATEWAY_CITY_CALLER_TOKEN"])


def case_requests(base: str, cases: list[dict[str, Any]]) -> list[Request]:
    """Each case as the city platform posts it: signed with x-tif (issue 14) as the shipped
    config's ``city`` caller, a fresh nonce per request (made now, untimed; sent within the
    ±180 s window)."""
    signer = city_signer()
    h = {"Content-Type": "application/json"}
    return [(base + "/api/v1/cases", json.dumps(c, ensure_ascii=False).encode(),
             {**h, **signer.headers()}) for c in cases]


async def delivered_count(db: str) -> int:
    if db.startswith("sqlite"):
        path = db.split("///", 1)[1]
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(con.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'delivered'").fetchone()[0])
        finally:
            con.close()
    import asyncpg
    from sqlalchemy.engine import make_url
    u = make_url(db)
    conn = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username,
                                 password=u.password, database=u.database)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE state = 'delivered'"))
    finally:
        await conn.close()


# -- one repetition ---------------------------------------------------------------------------------

def figure(res: dict[str, Any], n: int) -> dict[str, float]:
    return {"rate": n / res["elapsed"], "p50": pct(res["latency"], 0.5) * 1e3,
            "p99": pct(res["latency"], 0.99) * 1e3, "s": res["elapsed"]}


async def repetition(args: argparse.Namespace, srv: Servers, cases: Cases,
                     rep: int) -> dict[str, Any]:
    out: dict[str, Any] = {"load_before": os.getloadavg()}
    cmax = max(args.concurrency)
    for base in srv.sims.values():
        await post_json(base + "/__sim/reset", {})
    # both gateways start while the baselines run
    gw_in, db_in, cfg, p_in = await srv.gateway(f"intake{rep}", False, cmax)
    gw_e2e, db_e2e, _, p_e2e = await srv.gateway(f"e2e{rep}", True, cmax)
    wire = Wire(cfg)
    sample = json.dumps(cases.base[MIX[0]], ensure_ascii=False).encode()
    out["body_bytes"] = len(sample)
    await wait_http(gw_in + "/readyz")
    await wait_http(gw_e2e + "/readyz")
    for c in args.concurrency:
        nb, n = args.baseline_cases, args.cases
        echo = [(srv.echo + "/echo", sample, {"Content-Type": "application/json"})] * nb
        cpu0 = cpu_seconds(srv.echo_pid)
        out[f"echo@{c}"] = figure(run_load(echo, c, probe="/echo"), nb)
        out[f"echo@{c}"]["cpu_ms"] = (cpu_seconds(srv.echo_pid) - cpu0) / nb * 1e3
        direct = await wire.requests(cases.make([MIX[0]], nb))
        out[f"national@{c}"] = figure(run_load(direct, c, probe="/__sim/state?messages=0"), nb)
        intake = case_requests(gw_in, cases.make([MIX[0]], n))
        cpu0 = cpu_seconds(p_in.pid)
        out[f"intake@{c}"] = figure(run_load(intake, c, probe="/readyz"), n)
        out[f"intake@{c}"]["cpu_ms"] = (cpu_seconds(p_in.pid) - cpu0) / n * 1e3
        # REST+SOAP mix: direct, then through the gateway until delivered
        mix_direct = await wire.requests(cases.make(MIX, nb))
        out[f"mix_direct@{c}"] = figure(run_load(mix_direct, c, probe="/"), len(mix_direct))
        mix = cases.make(MIX, n)
        expect = sum(len(wire.plan(x)) for x in mix)
        before = await delivered_count(db_e2e)
        cpu0 = cpu_seconds(p_e2e.pid)
        res = await asyncio.to_thread(run_load, case_requests(gw_e2e, mix), c, probe="/readyz")
        t0 = min(res["starts"])  # the first POST (wall clock), not the load generator's start-up
        deadline = time.monotonic() + 600
        while await delivered_count(db_e2e) - before < expect:
            if time.monotonic() > deadline:
                raise SystemExit("mix e2e: not all delivered within 600 s")
            await asyncio.sleep(0.02)
        e2e_s = time.time() - t0
        out[f"mix_e2e@{c}"] = {"rate": expect / e2e_s, "s": e2e_s,
                               "cpu_ms": (cpu_seconds(p_e2e.pid) - cpu0) / expect * 1e3,
                               "intake_rate": n / res["elapsed"],
                               "p50": pct(res["latency"], 0.5) * 1e3,
                               "p99": pct(res["latency"], 0.99) * 1e3,
                               "direct_rate_same_n": out[f"mix_direct@{c}"]["rate"]}
    await srv.stop(p_in)
    # latency at a moderate fixed rate: direct vs through the gateway, national cases
    nl = max(20, int(args.latency_rate * args.latency_seconds))
    national = srv.sims["national"]
    lat: dict[str, Any] = {}
    for kind in ("direct", "gateway"):
        await post_json(national + "/__sim/reset", {})
        cs = cases.make([MIX[0]], nl)
        keys = [wire.plan(x)[0][1] for x in cs]
        reqs = (await wire.requests(cs) if kind == "direct" else case_requests(gw_e2e, cs))
        res = await asyncio.to_thread(run_load, reqs, 64, rate=args.latency_rate,
                                      probe="/readyz" if kind == "gateway" else "/")
        deadline = time.monotonic() + 120
        while (await get_json(national + "/__sim/state?messages=0"))["unique"] < nl:
            if time.monotonic() > deadline:
                raise SystemExit("latency: not all delivered")
            await asyncio.sleep(0.05)
        msgs = (await get_json(national + "/__sim/state"))["messages"]
        at = {m["idempotency_key"]: m["at"] for m in msgs if not m["duplicate"]}
        to_partner = [(at[k] - s) * 1e3 for k, s in zip(keys, res["starts"], strict=True)]
        lat[kind] = {"answer_p50": pct(res["latency"], 0.5) * 1e3,
                     "answer_p99": pct(res["latency"], 0.99) * 1e3,
                     "partner_p50": pct(to_partner, 0.5), "partner_p99": pct(to_partner, 0.99)}
    out["latency"] = lat
    await srv.stop(p_e2e)
    out["load_after"] = os.getloadavg()
    return out


# -- scale-out: one instance against two on one PostgreSQL database (--instances 2) ---------------

async def e2e_phase(srv: Servers, bases: list[str], pids: list[int], db: str,
                    mix: list[dict[str, Any]], expect: int, concurrency: int) -> dict[str, Any]:
    """The mix posted over ``bases`` in turn, timed until ``expect`` more deliveries are
    ``delivered`` in ``db``; with every process's CPU share over the phase."""
    from procstat import CpuMeter
    reqs: list[Request] = []
    for i, case in enumerate(mix):
        reqs += case_requests(bases[i % len(bases)], [case])
    groups = {f"gateway {i + 1}": [p] for i, p in enumerate(pids)}
    groups.update({"simulators": srv.sim_pids, "bench (polls the database)": [os.getpid()]})
    before = await delivered_count(db)
    name = db.rsplit("/", 1)[1]
    meter = CpuMeter(groups, matching={
        "postgres (this database)": lambda cl: cl.startswith("postgres:") and f" {name} " in cl,
        # the server's own processes (walwriter, checkpointer, …): a backend names its client
        "postgres (server)": lambda cl: cl.startswith("postgres: ") and "(" not in cl
        and "[local]" not in cl})
    res = await asyncio.to_thread(run_load, reqs, concurrency, probe="/readyz")
    t0 = min(res["starts"])  # the first POST (wall clock), not the load generator's start-up
    deadline = time.monotonic() + 600
    while await delivered_count(db) - before < expect:
        if time.monotonic() > deadline:
            raise SystemExit("scale-out: not all delivered within 600 s")
        await asyncio.sleep(0.02)
    e2e_s = time.time() - t0
    cpu = meter.shares()
    busy = meter.machine_busy()
    cpu["load generator"] = 100 * res["cpu"] / e2e_s / (os.cpu_count() or 1)
    cpu["other work on the machine"] = max(0.0, busy - sum(cpu.values()))
    cpu["idle"] = max(0.0, 100 - busy)
    return {"rate": expect / e2e_s, "s": e2e_s, "intake_rate": len(mix) / res["elapsed"],
            "cpu": cpu}


async def scaleout_repetition(args: argparse.Namespace, srv: Servers, cases: Cases,
                              rep: int) -> dict[str, Any]:
    out: dict[str, Any] = {"load_before": os.getloadavg()}
    for c in args.concurrency:
        for base in srv.sims.values():
            await post_json(base + "/__sim/reset", {})
        wire = Wire(srv.config(f"wire{rep}", "sqlite+aiosqlite:///unused.db", True, c))
        mix_direct = await wire.requests(cases.make(MIX, args.baseline_cases))
        out[f"mix_direct@{c}"] = figure(run_load(mix_direct, c, probe="/"), len(mix_direct))
        for count in (1, 2):
            bases, db, procs = await srv.instances(f"x{count}r{rep}c{c}", count, c)
            mix = cases.make(MIX, args.cases)
            expect = sum(len(wire.plan(x)) for x in mix)
            out[f"x{count}@{c}"] = await e2e_phase(srv, bases, [p.pid for p in procs], db, mix,
                                                   expect, c)
            for p in procs:
                await srv.stop(p)
    out["load_after"] = os.getloadavg()
    return out


def scaleout_report(args: argparse.Namespace, reps: list[dict[str, Any]]) -> None:
    from runinfo import code_version
    print(f"engine={args.engine} instances=1 vs 2 repeat={len(reps)} cases={args.cases} "
          f"baseline_cases={args.baseline_cases} cpus={os.cpu_count()}; code: {code_version()}")
    print("load average (1 min) before/after each repetition: " + ", ".join(
        f"{r['load_before'][0]:.2f}/{r['load_after'][0]:.2f}" for r in reps))
    print("figures: median [min–max] over repetitions; ratios computed within each repetition")
    for c in args.concurrency:
        one, two, md = f"x1@{c}", f"x2@{c}", f"mix_direct@{c}"
        print(f"\n-- {c} connections (spread over the instances) " + "-" * 40)
        print(f"  mix, mapped msgs direct        : {med([r[md]['rate'] for r in reps])} msg/s")
        for key, label in ((one, "1 instance  accept→delivered"),
                           (two, "2 instances accept→delivered")):
            print(f"  {label}   : {med([r[key]['rate'] for r in reps])} deliveries/s "
                  f"(intake {med([r[key]['intake_rate'] for r in reps])} cases/s meanwhile; "
                  f"{med([r[md]['rate'] / r[key]['rate'] for r in reps])}× the direct time)")
        print(f"  2 instances / 1 instance       : "
              f"{med([r[two]['rate'] / r[one]['rate'] for r in reps])}×  (target ≥ 1.6×)")
        print("  CPU share of the machine (all cores = 100 %), median over repetitions:")
        for key, label in ((one, "1 instance "), (two, "2 instances")):
            shares = reps[0][key]["cpu"].keys()
            print(f"    {label}: " + ", ".join(
                f"{g} {statistics.median(r[key]['cpu'][g] for r in reps):.0f} %"
                for g in shares))


# -- report -----------------------------------------------------------------------------------------

def med(xs: list[float]) -> str:
    m = statistics.median(xs)
    if len(xs) == 1:
        return f"{m:,.2f}" if m < 10 else f"{m:,.1f}" if m < 100 else f"{m:,.0f}"
    lo, hi = min(xs), max(xs)
    f = ((lambda v: f"{v:,.2f}") if m < 10 else (lambda v: f"{v:,.1f}") if m < 100
         else (lambda v: f"{v:,.0f}"))
    return f"{f(m)} [{f(lo)}–{f(hi)}]"


def report(args: argparse.Namespace, reps: list[dict[str, Any]]) -> None:
    def col(key: str, field: str) -> list[float]:
        return [r[key][field] for r in reps]

    def ratio(a: str, fa: str, b: str, fb: str, inv: bool = False) -> list[float]:
        return [(r[b][fb] / r[a][fa]) if inv else (r[a][fa] / r[b][fb]) for r in reps]

    print(f"engine={args.engine} repeat={len(reps)} cases={args.cases} "
          f"baseline_cases={args.baseline_cases} cpus={os.cpu_count()} "
          f"case body={reps[0]['body_bytes']} B (sample 01)")
    print("load average (1 min) before/after each repetition: " + ", ".join(
        f"{r['load_before'][0]:.2f}/{r['load_after'][0]:.2f}" for r in reps))
    print("figures: median [min–max] over repetitions; ratios computed within each repetition")
    for c in args.concurrency:
        print(f"\n-- {c} connections " + "-" * 60)
        print(f"{'':34}{'rate /s':>24}{'p50 ms':>20}{'p99 ms':>20}")
        for key, label in (("echo", "1 echo server (baseline)"),
                           ("national", "2 national simulator, direct"),
                           ("intake", "3 gateway intake (durable 202)"),
                           ("mix_direct", "4a mix, mapped msgs direct"),
                           ("mix_e2e", "4b mix, gateway accept→delivered")):
            k = f"{key}@{c}"
            print(f"{label:34}{med(col(k, 'rate')):>24}{med(col(k, 'p50')):>20}"
                  f"{med(col(k, 'p99')):>20}")
        e, nat, i, md, me = (f"{x}@{c}" for x in ("echo", "national", "intake", "mix_direct",
                                                     "mix_e2e"))
        print(f"  national / echo rate           : "
              f"{med([100 * x for x in ratio(nat, 'rate', e, 'rate')])} %")
        print(f"  intake / echo rate             : "
              f"{med([100 * x for x in ratio(i, 'rate', e, 'rate')])} %  (target ≥ 25 %)")
        print(f"  intake / national direct rate  : "
              f"{med([100 * x for x in ratio(i, 'rate', nat, 'rate')])} %")
        print(f"  mix e2e time / direct time     : {med(ratio(md, 'rate', me, 'rate'))}×  "
              f"(per delivery; target ≤ 3×)")
        print(f"  mix e2e: intake rate during it : {med(col(me, 'intake_rate'))} cases/s")
        # CPU per unit of work moves far less than rates when others share the cores
        print(f"  CPU per request, ms            : echo server {med(col(e, 'cpu_ms'))}; "
              f"gateway intake {med(col(i, 'cpu_ms'))} per case; gateway e2e "
              f"{med(col(me, 'cpu_ms'))} per delivery")
    print(f"\n-- latency at {args.latency_rate:g} cases/s (open loop, national, "
          f"{max(20, int(args.latency_rate * args.latency_seconds))} cases) " + "-" * 20)
    for kind in ("direct", "gateway"):
        L = [r["latency"][kind] for r in reps]
        print(f"  {kind:8} answer p50/p99 {med([x['answer_p50'] for x in L])} / "
              f"{med([x['answer_p99'] for x in L])} ms; POST→partner has it p50/p99 "
              f"{med([x['partner_p50'] for x in L])} / {med([x['partner_p99'] for x in L])} ms")
    add50 = [r["latency"]["gateway"]["partner_p50"] - r["latency"]["direct"]["partner_p50"]
             for r in reps]
    add99 = [r["latency"]["gateway"]["partner_p99"] - r["latency"]["direct"]["partner_p99"]
             for r in reps]
    print(f"  gateway-added latency p50 {med(add50)} ms (target < 2 ms), p99 {med(add99)} ms")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="gw-wire-") as tmp:
        srv = Servers(Path(tmp), args.engine, args.profile)
        try:
            await srv.start_partners()
            cases = Cases()
            reps = []
            one_rep = scaleout_repetition if args.instances == 2 else repetition
            for rep in range(args.repeat):
                reps.append(await one_rep(args, srv, cases, rep))
                print(f"repetition {rep + 1}/{args.repeat} done", file=sys.stderr, flush=True)
        finally:
            await srv.close()
    (scaleout_report if args.instances == 2 else report)(args, reps)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-echo":
        serve_echo(int(sys.argv[2]))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--cases", type=int, default=500, help="cases per gateway phase")
    ap.add_argument("--baseline-cases", type=int, default=2000,
                    help="requests per echo / direct phase")
    ap.add_argument("--latency-rate", type=float, default=20,
                    help="cases/s, open loop (moderate: well under capacity)")
    ap.add_argument("--latency-seconds", type=float, default=6)
    ap.add_argument("--instances", type=int, choices=[1, 2], default=1,
                    help="2: one gateway against two sharing one PostgreSQL database "
                         "(the REST+SOAP mix, accept→delivered; --engine postgres)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="record every gateway with py-spy into this folder (bench/README.md)")
    ap.add_argument("--quick", action="store_true",
                    help="1 repetition, 32 connections, 200 cases (under a minute)")
    a = ap.parse_args()
    if a.instances == 2 and a.engine != "postgres":
        ap.error("--instances 2 needs --engine postgres (instances share one database)")
    if a.quick:
        a.repeat, a.concurrency, a.cases, a.baseline_cases = 1, [32], 200, 1000
        a.latency_seconds = 5
    asyncio.run(main(a))
