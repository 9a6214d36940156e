"""The floor under issue 12's targets: what any durable intake in Python reaches on this machine.

Issue 12 asks for intake at ≥ 25 % of an echo server's rate (≥ 20 % on PostgreSQL), < 2 ms added
latency at moderate load and end to end within 3× the direct time. Four passes made the gateway
3–8× faster; this script measures how far the *floor* is from those targets, in the same run as
the gateway, so the gap that is left can be split between "any Python intake pays this" and
"this gateway's features cost that".

Per repetition and concurrency, with ``bench_wire``'s load generator (its own process):

1. ``echo``            a trivial aiohttp server answering the body back;
2. ``floor``           a minimal aiohttp app doing only what every durable intake must: read the
                       body, parse it, check it against the Beijing case schema (the gateway's
                       compiled check), insert it into SQLite (WAL, ``synchronous=FULL``) in a
                       group commit on one writer thread with the raw ``sqlite3`` driver (with
                       ``--engine postgres``: one asyncpg INSERT per gathered batch, its own
                       commit), answer 202 after the commit;
3. ``floor+prepare``   the same with the gateway's own ``Intake.prepare`` (parse, schema, domain
                       checks, normalise, route, render and validate every delivery) instead of
                       parse + schema;
4. ``gateway``         ``gateway serve`` with its worker off: all of the above plus x-tif
                       authentication and its durable nonce, the store (SQLAlchemy, the case with
                       its deliveries and the audit chain), the case view in the 202, metrics.

Each with its rate, its share of echo's and its CPU per request (user / system, ``/proc``).

Then latency, open loop at ``--latency-rate`` national cases/s: POST → the national simulator
holds the message, posted directly; through ``floor`` and through ``floor+prepare``, each posting
the case's mapped message on after its commit (the exact bytes the gateway would send, built
before the clock starts); and through ``gateway serve`` with its worker on. Each figure minus
``direct`` is what that path adds: a durable commit before forwarding, the hop through a second
server, and the Python around them.

End to end, per concurrency: the REST+SOAP mix (samples 01, 10, 11) posted straight to the
simulators as mapped messages, then as cases through each forwarding floor and through the
gateway, each timed from its first POST until the simulators hold every message.

    .venv/bin/python bench/bench_floor.py --quick        # 1 repetition, 32 connections, ~2 min
    .venv/bin/python bench/bench_floor.py --repeat 3     # 32 and 64 connections, ~10 min
    .venv/bin/python bench/bench_floor.py --repeat 3 --engine postgres   # 127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import bench_wire as bw  # noqa: F401 - also sets the shipped config's secrets (benchenv)
from bench_wire import ROOT, Cases, Servers, Wire, case_requests, pct, run_load

MODES = ("floor", "prepare")


# -- the floor server (run as `bench_floor.py --serve MODE PORT DB [FORWARD]`) ------------------

def serve_floor(mode: str, port: int, db: str, forward: str | None) -> None:
    """``mode`` floor: parse + schema check; prepare: the gateway's ``Intake.prepare``. Then one
    row per case in a group commit, into ``db`` (a SQLite file, or a ``postgresql://`` URL for
    asyncpg); 202 after the commit. ``forward``: a JSON file mapping an
    application number to the messages (url, body, headers) to post once its case committed."""
    import aiohttp
    import orjson
    from aiohttp import web

    from gateway.intake.validation import CaseValidator
    from gateway.intake.jsoninput import parse_json_text

    validator = CaseValidator(ROOT / "schemas" / "beijing" / "case.schema.json")
    intake = None
    if mode == "prepare":
        from gateway.config import load_settings
        from gateway.contracts import ContractsHolder, load_contracts
        from gateway.intake.accept import Intake
        settings = load_settings(ROOT / "config" / "gateway.yaml")
        intake = Intake(None, validator, ContractsHolder(load_contracts(settings)))  # type: ignore[arg-type]
    onward: dict[str, list[Any]] = (json.loads(Path(forward).read_text(encoding="utf-8"))
                                    if forward else {})
    postgres = db.startswith("postgresql://")
    inbox: queue.Queue[tuple[str, bytes, asyncio.Future[int]]] = queue.Queue()
    waiting: asyncio.Queue[tuple[str, bytes, asyncio.Future[int]]] = asyncio.Queue()
    state: dict[str, Any] = {}

    def sqlite_writer() -> None:  # group commit: everything waiting goes in the next transaction
        con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE IF NOT EXISTS cases (id INTEGER PRIMARY KEY, "
                    "application_no TEXT UNIQUE, body BLOB)")
        state["ready"].set()
        while True:
            batch = [inbox.get()]
            while True:
                try:
                    batch.append(inbox.get_nowait())
                except queue.Empty:
                    break
            con.execute("BEGIN IMMEDIATE")
            ids = [con.execute("INSERT INTO cases (application_no, body) VALUES (?, ?)",
                               (no, body)).lastrowid for no, body, _ in batch]
            con.execute("COMMIT")

            def answer(batch: list[Any] = batch, ids: list[int] = ids) -> None:
                for (_, _, fut), i in zip(batch, ids, strict=True):
                    fut.set_result(i)
            state["loop"].call_soon_threadsafe(answer)

    async def pg_writer() -> None:  # the same on PostgreSQL: one INSERT (its own commit) a batch
        import asyncpg
        conn = await asyncpg.connect(db)
        await conn.execute("CREATE TABLE IF NOT EXISTS cases (id bigserial PRIMARY KEY, "
                           "application_no text UNIQUE, body bytea)")
        state["ready"].set()
        while True:
            batch = [await waiting.get()]
            while not waiting.empty():
                batch.append(waiting.get_nowait())
            rows = await conn.fetch(
                "INSERT INTO cases (application_no, body) SELECT * FROM unnest($1::text[], "
                "$2::bytea[]) RETURNING id, application_no",
                [no for no, _, _ in batch], [body for _, body, _ in batch])
            ids = {r["application_no"]: r["id"] for r in rows}
            for no, _, fut in batch:
                fut.set_result(ids[no])

    async def send_on(url: str, body: str, headers: dict[str, str]) -> None:
        async with state["http"].post(url, data=body.encode(), headers=headers) as r:
            await r.read()

    async def submit(request: web.Request) -> web.Response:
        raw = await request.read()
        if intake is not None:
            doc = intake.prepare(raw).case
        else:
            doc = validator.validate(parse_json_text(raw)[0], plain_text=True)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        (waiting.put_nowait if postgres else inbox.put)((doc["applicationNo"], raw, fut))
        case_id = await fut
        for msg in onward.get(doc["applicationNo"], ()):
            task = asyncio.create_task(send_on(*msg))
            state.setdefault("tasks", set()).add(task)
            task.add_done_callback(state["tasks"].discard)
        return web.Response(status=202, body=orjson.dumps({"id": case_id}),
                            content_type="application/json")

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def start(app: web.Application) -> None:
        state["loop"] = asyncio.get_running_loop()
        state["http"] = aiohttp.ClientSession()
        state["ready"] = threading.Event() if not postgres else asyncio.Event()
        if postgres:
            state["writer"] = asyncio.create_task(pg_writer())
            await state["ready"].wait()
        else:
            threading.Thread(target=sqlite_writer, daemon=True, name="floor-writer").start()
            await asyncio.to_thread(state["ready"].wait)

    async def stop(app: web.Application) -> None:
        await state["http"].close()
        if "writer" in state:
            state["writer"].cancel()

    app = web.Application(client_max_size=4 << 20)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/api/v1/cases", submit)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *a: None)


# -- one repetition -------------------------------------------------------------------------------

def _jiffies(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / 100, int(fields[12]) / 100  # utime, stime (USER_HZ is 100 here)


def measure(reqs: list[bw.Request], concurrency: int, pid: int, probe: str) -> dict[str, float]:
    u0, s0 = _jiffies(pid)
    res = run_load(reqs, concurrency, probe=probe)
    u1, s1 = _jiffies(pid)
    n = len(reqs)
    return {"rate": n / res["elapsed"], "p50": pct(res["latency"], 0.5) * 1e3,
            "p99": pct(res["latency"], 0.99) * 1e3, "user_ms": (u1 - u0) / n * 1e3,
            "sys_ms": (s1 - s0) / n * 1e3}


async def latency(srv: Servers, wire: Wire, cs: list[dict[str, Any]], reqs: list[bw.Request],
                  args: argparse.Namespace) -> dict[str, float]:
    """POST → the national simulator holds it, for ``reqs`` (made from the national cases
    ``cs``) sent open loop at ``args.latency_rate``."""
    national = srv.sims["national"]
    await bw.post_json(national + "/__sim/reset", {})
    keys = [wire.plan(x)[0][1] for x in cs]
    direct = reqs[0][0].startswith(national)
    res = await asyncio.to_thread(run_load, reqs, 64, rate=args.latency_rate,
                                  probe="/" if direct else "/readyz")
    deadline = asyncio.get_running_loop().time() + 120
    while (await bw.get_json(national + "/__sim/state?messages=0"))["unique"] < len(cs):
        if asyncio.get_running_loop().time() > deadline:
            raise SystemExit("latency: not all delivered")
        await asyncio.sleep(0.05)
    msgs = (await bw.get_json(national + "/__sim/state"))["messages"]
    at = {m["idempotency_key"]: m["at"] for m in msgs if not m["duplicate"]}
    to_partner = [(at[k] - s) * 1e3 for k, s in zip(keys, res["starts"], strict=True)]
    return {"answer_p50": pct(res["latency"], 0.5) * 1e3,
            "partner_p50": pct(to_partner, 0.5), "partner_p99": pct(to_partner, 0.99)}


async def floor_db(srv: Servers, tag: str) -> str:
    """A new database for a floor: a SQLite file, or a new PostgreSQL database (dropped with the
    gateways') as a plain ``postgresql://`` URL for asyncpg."""
    if srv.engine == "sqlite":
        return str(srv.tmp / f"{tag}.db")
    from sqlalchemy.engine import make_url
    return make_url(await srv.database(tag)).set(drivername="postgresql").render_as_string(
        hide_password=False)


async def stored_cases(db: str) -> int:
    if not db.startswith("postgresql://"):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return int(con.execute("SELECT count(*) FROM cases").fetchone()[0])
        finally:
            con.close()
    import asyncpg
    conn = await asyncpg.connect(db)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM cases"))
    finally:
        await conn.close()


async def repetition(args: argparse.Namespace, srv: Servers, cases: Cases, rep: int
                     ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    floors: dict[str, tuple[str, Any, str]] = {}  # mode: base URL, process, database
    for mode in MODES:
        port, db = bw.free_port(), await floor_db(srv, f"{mode}{rep}")
        floors[mode] = (f"http://127.0.0.1:{port}",
                        srv.spawn(__file__, "--serve", mode, str(port), db), db)
    gw, _, cfg, p_gw = await srv.gateway(f"intake{rep}", False, max(args.concurrency))
    for base, _, _ in floors.values():
        await bw.wait_http(base + "/readyz")
    await bw.wait_http(gw + "/readyz")
    sample = json.dumps(cases.base[bw.MIX[0]], ensure_ascii=False).encode()
    plain = {"Content-Type": "application/json"}
    for c in args.concurrency:
        n = args.cases
        out[f"echo@{c}"] = measure([(srv.echo + "/echo", sample, plain)] * n, c, srv.echo_pid,
                                   "/echo")
        for mode, (base, proc, _) in floors.items():
            reqs = [(base + "/api/v1/cases", json.dumps(x, ensure_ascii=False).encode(), plain)
                    for x in cases.make([bw.MIX[0]], n)]
            out[f"{mode}@{c}"] = measure(reqs, c, proc.pid, "/readyz")
        out[f"gateway@{c}"] = measure(case_requests(gw, cases.make([bw.MIX[0]], n)), c,
                                      p_gw.pid, "/readyz")
    await srv.stop(p_gw)
    # a floor that answered 202 without storing would be no floor
    for mode, (_, _, db) in floors.items():
        stored = await stored_cases(db)
        if stored != args.cases * len(args.concurrency):
            raise SystemExit(f"{mode}: {stored} cases stored, "
                             f"{args.cases * len(args.concurrency)} accepted")
    # latency and end to end: the same kinds of cases, made anew for each path
    wire = Wire(cfg)
    n = max(20, int(args.latency_rate * args.latency_seconds))
    cs = cases.make([bw.MIX[0]], n)
    out["lat_direct"] = await latency(srv, wire, cs, await wire.requests(cs), args)
    for c in args.concurrency:
        direct = await wire.requests(cases.make(bw.MIX, args.cases))
        out[f"e2e_direct@{c}"] = await end_to_end(srv, direct, c, len(direct), "/")
    # each forwarding floor starts with the exact messages it forwards after each commit
    for mode in MODES:
        lat_cases = cases.make([bw.MIX[0]], n)
        mix = {c: cases.make(bw.MIX, args.cases) for c in args.concurrency}
        every = lat_cases + [x for m in mix.values() for x in m]
        msgs = iter(await wire.requests(every))  # in the order of the cases and their plans
        forward = {x["applicationNo"]: [[u, b.decode(), h] for u, b, h in
                                        (next(msgs) for _ in wire.plan(x))] for x in every}
        path = srv.tmp / f"forward-{mode}{rep}.json"
        path.write_text(json.dumps(forward), encoding="utf-8")
        port = bw.free_port()
        base = f"http://127.0.0.1:{port}"
        p_fwd = srv.spawn(__file__, "--serve", mode, str(port),
                          await floor_db(srv, f"fwd-{mode}{rep}"), str(path))
        await bw.wait_http(base + "/readyz")
        out[f"lat_{mode}"] = await latency(srv, wire, lat_cases,
                                           case_requests(base, lat_cases), args)
        for c, m in mix.items():
            out[f"e2e_{mode}@{c}"] = await end_to_end(
                srv, case_requests(base, m), c, sum(len(forward[x["applicationNo"]]) for x in m),
                "/readyz")
        await srv.stop(p_fwd)
    gw_e2e, _, _, p_e2e = await srv.gateway(f"e2e{rep}", True, max(args.concurrency))
    await bw.wait_http(gw_e2e + "/readyz")
    cs = cases.make([bw.MIX[0]], n)
    out["lat_gateway"] = await latency(srv, wire, cs, case_requests(gw_e2e, cs), args)
    for c in args.concurrency:
        m = cases.make(bw.MIX, args.cases)
        out[f"e2e_gateway@{c}"] = await end_to_end(
            srv, case_requests(gw_e2e, m), c, sum(len(wire.plan(x)) for x in m), "/readyz")
    await srv.stop(p_e2e)
    for _, proc, _ in floors.values():  # the floors of the rates are not needed any more
        await srv.stop(proc)
    return out


async def held(srv: Servers) -> int:
    """Messages the three simulators hold (each idempotency key once)."""
    total = 0
    for base in srv.sims.values():
        total += (await bw.get_json(base + "/__sim/state?messages=0"))["unique"]
    return total


async def end_to_end(srv: Servers, reqs: list[bw.Request], concurrency: int, expect: int,
                     probe: str) -> dict[str, float]:
    """From the first POST (the load generator's clock, not its start-up) until the simulators
    hold ``expect`` messages: deliveries/s."""
    for base in srv.sims.values():
        await bw.post_json(base + "/__sim/reset", {})
    res = await asyncio.to_thread(run_load, reqs, concurrency, probe=probe)
    t0 = min(res["starts"])  # wall clock, as time.time() below
    while await held(srv) < expect:
        if time.time() - t0 > 600:
            raise SystemExit(f"end to end: {await held(srv)} of {expect} delivered in 600 s")
        await asyncio.sleep(0.01)
    return {"rate": expect / (time.time() - t0)}


# -- report ---------------------------------------------------------------------------------------

def report(args: argparse.Namespace, reps: list[dict[str, Any]]) -> None:
    med = bw.med
    print(f"engine={args.engine} repeat={len(reps)} requests={args.cases} per phase; "
          f"cpus={os.cpu_count()}; "
          "median [min–max] over repetitions, ratios within each")
    for c in args.concurrency:
        e = f"echo@{c}"
        print(f"\n-- {c} connections " + "-" * 60)
        print(f"{'':16}{'rate /s':>24}{'% of echo':>22}{'p99 ms':>22}{'CPU ms/req u+s':>22}")
        for key, label in (("echo", "echo"), ("floor", "floor"), ("prepare", "floor+prepare"),
                           ("gateway", "gateway")):
            k = f"{key}@{c}"
            share = [100 * r[k]["rate"] / r[e]["rate"] for r in reps]
            cpu = [r[k]["user_ms"] + r[k]["sys_ms"] for r in reps]
            print(f"{label:16}{med([r[k]['rate'] for r in reps]):>24}{med(share):>22}"
                  f"{med([r[k]['p99'] for r in reps]):>22}{med(cpu):>22}")
    for c in args.concurrency:
        print(f"\n-- end to end, REST+SOAP mix, {c} connections: deliveries/s, and the time "
              "per delivery against posting the mapped messages directly " + "-" * 5)
        for key, label in (("e2e_direct", "direct"), ("e2e_floor", "floor, forward"),
                           ("e2e_prepare", "floor+prepare, forward"), ("e2e_gateway", "gateway")):
            k = f"{key}@{c}"
            times = [r[f"e2e_direct@{c}"]["rate"] / r[k]["rate"] for r in reps]
            print(f"  {label:24} {med([r[k]['rate'] for r in reps]):>22}/s"
                  + ("" if key == "e2e_direct" else f"   {med(times)}× the time"))
    print(f"\n-- latency at {args.latency_rate:g} national cases/s (open loop), POST → partner "
          "has it " + "-" * 10)
    for key, label in (("lat_direct", "direct"), ("lat_floor", "floor, forward"),
                       ("lat_prepare", "floor+prepare, forward"), ("lat_gateway", "gateway")):
        p50 = [r[key]["partner_p50"] for r in reps]
        added = [r[key]["partner_p50"] - r["lat_direct"]["partner_p50"] for r in reps]
        print(f"  {label:24} p50 {med(p50)} ms, p99 {med([r[key]['partner_p99'] for r in reps])}"
              f" ms" + ("" if key == "lat_direct" else f"; added p50 {med(added)} ms"))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="gw-floor-") as tmp:
        srv = Servers(Path(tmp), args.engine)
        try:
            await srv.start_partners()
            cases = Cases()
            reps = []
            for rep in range(args.repeat):
                reps.append(await repetition(args, srv, cases, rep))
                print(f"repetition {rep + 1}/{args.repeat} done", file=sys.stderr, flush=True)
        finally:
            await srv.close()
    report(args, reps)


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--serve":
        serve_floor(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                    sys.argv[5] if len(sys.argv) > 5 else None)
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite",
                    help="the floors' and the gateway's database (postgres: 127.0.0.1:5432, a "
                         "new database each)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--cases", type=int, default=3000, help="requests per intake phase")
    ap.add_argument("--latency-rate", type=float, default=20)
    ap.add_argument("--latency-seconds", type=float, default=6)
    ap.add_argument("--quick", action="store_true",
                    help="1 repetition, 32 connections, 1,000 requests per phase")
    a = ap.parse_args()
    if a.quick:
        a.repeat, a.concurrency, a.cases, a.latency_seconds = 1, [32], 1000, 5
    asyncio.run(main(a))
