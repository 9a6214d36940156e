"""What caller authentication costs intake (issue 14): interleaved A/B on one machine.

Two ``gateway serve`` processes on SQLite with the worker off, one with ``server.auth: off`` and
one with ``x-tif`` (signature check, nonce remembered in the shared database table), take
bursts of ``--cases`` signed Beijing cases (sample 01, 32 connections) in turn, ``--rounds``
times, alternating which goes first; the medians and their ratio are printed. Interleaving
matters on a shared 2-core machine: back-to-back runs of bench_wire.py drifted by 2× with the
load of other work, more than the effect measured.

    .venv/bin/python bench/bench_auth.py                 # ~1 minute
    .venv/bin/python bench/bench_auth.py --cases 400 --rounds 6
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import (TEST_SECRETS, TEST_SIGNER, edit_config, free_port,  # noqa: E402
                           write_config)

SAMPLE = ROOT / "samples" / "cases" / "01-person-shanghai-social-security.json"


async def _ready(http: aiohttp.ClientSession, port: int) -> None:
    for _ in range(300):
        try:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"gateway on {port} not ready")


async def main(args: argparse.Namespace) -> None:
    for k, v in TEST_SECRETS.items():
        os.environ.setdefault(k, v)
    tmp = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}
    for auth in ("off", "x-tif"):
        sub = tmp / auth
        sub.mkdir()
        cfg = write_config(sub, f"sqlite+aiosqlite:///{sub / 'g.db'}",
                           {"national": "http://127.0.0.1:9/unused"}, enabled=False)
        edit_config(cfg, lambda raw, a=auth: raw["server"].update(auth=a))
        ports[auth] = free_port()
        procs[auth] = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--log-level", "WARNING", "serve", "--config",
             str(cfg), "--port", str(ports[auth])], cwd=ROOT)
    case: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    rates: dict[str, list[float]] = {"off": [], "x-tif": []}
    n = 0
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as http:
            for port in ports.values():
                await _ready(http, port)
            for rnd in range(args.rounds):
                for auth in (("off", "x-tif") if rnd % 2 == 0 else ("x-tif", "off")):
                    reqs = []
                    for _ in range(args.cases):
                        n += 1
                        c = copy.deepcopy(case)
                        c["applicationNo"] = f"BJAB{n:012d}"
                        reqs.append((json.dumps(c, ensure_ascii=False).encode(),
                                     {"Content-Type": "application/json", **TEST_SIGNER.headers()}))
                    todo = iter(reqs)
                    url = f"http://127.0.0.1:{ports[auth]}/api/v1/cases"

                    async def worker(todo: Any = todo, url: str = url) -> None:
                        for body, headers in todo:
                            async with http.post(url, data=body, headers=headers) as r:
                                await r.read()
                                if r.status != 202:
                                    raise SystemExit(f"HTTP {r.status} from {url}")
                    t = time.perf_counter()
                    await asyncio.gather(*(worker() for _ in range(32)))
                    rates[auth].append(args.cases / (time.perf_counter() - t))
    finally:
        for p in procs.values():
            p.terminate()
            p.wait()
    off, on = statistics.median(rates["off"]), statistics.median(rates["x-tif"])
    print("cases/s per burst  off:", [round(r) for r in rates["off"]],
          " x-tif:", [round(r) for r in rates["x-tif"]])
    print(f"median: auth off {off:.0f}/s, x-tif {on:.0f}/s, x-tif / off = {on / off:.2f} "
          f"(load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=400, help="cases per burst")
    ap.add_argument("--rounds", type=int, default=6, help="bursts per gateway")
    asyncio.run(main(ap.parse_args()))
