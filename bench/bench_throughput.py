"""End-to-end throughput of the gateway against a baseline in the same script.

Both runs use the same client (aiohttp, ``--concurrency`` connections) and the same national
simulator process:

* baseline: the client posts already-mapped national envelopes straight to the simulator;
* gateway:  the client posts Beijing cases to ``gateway serve`` (a child process), which stores,
  maps, validates and delivers them to the simulator; timed until every case is delivered.

Reported: cases/s for both, the ratio, and the intake rate (202s per second). Run:

    .venv/bin/python bench/bench_throughput.py --cases 2000 --engine sqlite
    .venv/bin/python bench/bench_throughput.py --cases 2000 --engine postgres
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.intake.accept import normalise  # noqa: E402
from gateway.mapping import MappingRegistry  # noqa: E402
from gateway.protocols.envelopes import national_plain  # noqa: E402
from gateway.delivery.worker import delivery_view  # noqa: E402
from gateway.protocols.tif import TifSigner  # noqa: E402

BENCH_TOKEN = secrets.token_urlsafe(24)  # the bench's own caller, made up per run

SAMPLE = ROOT / "samples" / "cases" / "01-person-shanghai-social-security.json"
PATH = "/api/v1/cross-province/cases"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, timeout: float = 30) -> None:
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


def cases(n: int) -> list[dict]:
    base = json.loads(SAMPLE.read_text(encoding="utf-8"))
    out = []
    run = secrets.token_hex(3).upper()
    for i in range(n):
        c = copy.deepcopy(base)
        c["applicationNo"] = f"BENCH{run}{i:08d}"
        out.append(c)
    return out


async def post_all(url: str, bodies: list[bytes], concurrency: int,
                   headers_for: list[dict[str, str]]) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(bodies)):
        queue.put_nowait(i)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as http:
        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                async with http.post(url, data=bodies[i], headers=headers_for[i]) as r:
                    await r.read()
                    if r.status not in (200, 202):
                        raise SystemExit(f"HTTP {r.status} from {url}")
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


async def sim_state(base: str) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/__sim/state?messages=0") as r:
            return await r.json()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--postgres-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    py = sys.executable
    try:
        sim_port, gw_port = free_port(), free_port()
        sim_base = f"http://127.0.0.1:{sim_port}"
        procs.append(subprocess.Popen([py, "-m", "gateway", "--log-level", "WARNING", "simulate",
                                       "national", "--port", str(sim_port)], cwd=ROOT))
        await wait_http(f"{sim_base}/__sim/state")
        all_cases = cases(args.cases * 2)
        base_cases, gw_cases = all_cases[:args.cases], all_cases[args.cases:]

        # baseline: mapped envelopes straight to the simulator
        reg = MappingRegistry.load(ROOT / "mappings", ROOT / "schemas")
        m = reg.get("national/case-submit")
        bodies, headers = [], []
        for c in base_cases:
            n = normalise(c)
            data = m.render(delivery_view(n, ["1"]), {"caseId": "b", "deliveryId": "b",
                                                     "idempotencyKey": c["applicationNo"],
                                                     "partner": "national",
                                                     "now": "2026-11-30T10:00:00+08:00"})
            bodies.append(json.dumps(national_plain(data, {"app_id": "BJ-GATEWAY-DEMO"}),
                                     ensure_ascii=False).encode())
            headers.append({"Content-Type": "application/json",
                            "X-Idempotency-Key": c["applicationNo"]})
        base_s = await post_all(sim_base + PATH, bodies, args.concurrency, headers)

        # gateway
        if args.engine == "sqlite":
            db = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        else:
            import asyncpg
            from sqlalchemy.engine import make_url
            u = make_url(args.postgres_url)
            name = f"gw_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username,
                                          database=u.database)
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.close()
            db = u.set(database=name).render_as_string(hide_password=False)
        raw = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8"))
        raw["database"]["url"] = db
        raw["mappings_dir"], raw["schemas_dir"] = str(ROOT / "mappings"), str(ROOT / "schemas")
        raw["worker"].update({"poll_interval": 0.05, "concurrency": 32, "batch_size": 32})
        for name in list(raw["partners"]):
            if name != "national":
                del raw["partners"][name]
                raw["routes"] = [r for r in raw["routes"] if r.get("target") != name]
        raw["partners"]["national"]["url"] = sim_base + PATH
        raw["partners"]["national"]["limits"] = {"max_concurrency": 32}
        raw["callers"] = {"bench": {"paasid": "BENCH", "token": BENCH_TOKEN,  # x-tif (issue 14)
                                    "permissions": ["submit", "read"], "items": ["*"],
                                    "regions": ["*"]}}
        cfg = tmp / "bench.yaml"
        cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        procs.append(subprocess.Popen([py, "-m", "gateway", "--log-level", "WARNING", "serve",
                                       "--config", str(cfg), "--port", str(gw_port)], cwd=ROOT))
        gw_base = f"http://127.0.0.1:{gw_port}"
        await wait_http(f"{gw_base}/readyz")
        before = (await sim_state(sim_base))["unique"]
        bodies = [json.dumps(c, ensure_ascii=False).encode() for c in gw_cases]
        signer = TifSigner("BENCH", BENCH_TOKEN)  # a fresh nonce per request
        headers = [{"Content-Type": "application/json", **signer.headers()} for _ in bodies]
        t0 = time.perf_counter()
        intake_s = await post_all(gw_base + "/api/v1/cases", bodies, args.concurrency, headers)
        while (await sim_state(sim_base))["unique"] - before < args.cases:
            await asyncio.sleep(0.05)
        gw_s = time.perf_counter() - t0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    n = args.cases
    print(f"engine={args.engine} cases={n} concurrency={args.concurrency} cpus={os.cpu_count()}")
    print(f"baseline  direct to simulator : {n / base_s:8.0f} cases/s ({base_s:.2f}s)")
    print(f"gateway   intake (202)        : {n / intake_s:8.0f} cases/s ({intake_s:.2f}s)")
    print(f"gateway   accept→delivered    : {n / gw_s:8.0f} cases/s ({gw_s:.2f}s)")
    print(f"ratio     gateway / baseline  : {gw_s / base_s:8.1f}x the time")


if __name__ == "__main__":
    asyncio.run(main())
