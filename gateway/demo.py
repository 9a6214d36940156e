"""The demo: gateway on its embedded defaults + partner simulators + the sample cases.

It posts every sample as the city platform would, follows each case until its deliveries are
delivered or dead-lettered, prints a summary table, then keeps serving until Ctrl-C (or exits
with ``--exit-after``: status 1 if any delivery did not arrive).
"""

from __future__ import annotations

import asyncio
import os

import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from gateway.app import create_app
from gateway.config import Settings
from gateway.simulators import SIMULATORS, simulator_factory

FINAL = {"delivered", "dead"}


async def _start(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def start_simulators(settings: Settings, console: Console) -> list[web.AppRunner]:
    """One simulator per configured partner that has one and points at this machine."""
    runners = []
    for name, p in settings.partners.items():
        u = urlsplit(p.url)
        if name not in SIMULATORS or u.hostname not in ("127.0.0.1", "localhost"):
            continue
        runners.append(await _start(simulator_factory(name)(), u.hostname, u.port or 80))
        console.print(f"  simulator [bold]{name}[/] on {u.scheme}://{u.hostname}:{u.port}")
    return runners


async def run_demo(settings: Settings, *, data_dir: Path, samples: Path, exit_after: bool,
                   timeout: float, port: int | None = None) -> int:
    console = Console()
    if not console.is_terminal and console.width < 120:
        console = Console(width=120)
    db_url = settings.database.url
    if db_url.startswith("sqlite") and "GATEWAY_DATABASE_URL" not in os.environ:
        db_url = f"sqlite+aiosqlite:///{data_dir / 'gateway.db'}"
    server = settings.server.model_copy(update={"port": port or settings.server.port})
    settings = settings.model_copy(update={
        "database": settings.database.model_copy(update={"url": db_url}), "server": server})
    console.rule("[bold]Cross-region gateway demo")
    console.print(f"  database {make_url(db_url)}")  # str() of a URL masks its password
    sims = await start_simulators(settings, console)
    gw = await _start(create_app(settings), server.host, server.port)
    base = f"http://{server.host}:{server.port}"
    console.print(f"  gateway API  {base}/api/v1/cases\n  health       {base}/healthz, "
                  f"{base}/readyz\n  metrics      {base}/metrics")
    try:
        rows, all_ok = await _push_samples(base, samples, timeout, console)
        _print_table(rows, console)
        if exit_after:
            return 0 if all_ok else 1
        console.print(f"\nServing on {base} — post more cases with curl "
                      f"(see README), Ctrl-C to stop.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return 0
    finally:
        await gw.cleanup()
        for r in sims:
            await r.cleanup()


async def _push_samples(base: str, samples: Path, timeout: float,
                        console: Console) -> tuple[list[dict[str, Any]], bool]:
    files = sorted(samples.glob("*.json"))
    started: dict[str, float] = {}
    accepted: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    all_ok = True
    async with aiohttp.ClientSession() as http:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            submit = progress.add_task("submitting cases", total=len(files))
            for f in files:
                started[f.name] = time.monotonic()
                async with http.post(f"{base}/api/v1/cases", data=f.read_bytes(),
                                     headers={"Content-Type": "application/json"}) as r:
                    doc = await r.json(content_type=None)
                if r.status in (200, 202):
                    accepted[f.name] = doc
                else:
                    all_ok = False
                    rows.append({"case": f.stem, "target": "-", "outcome": f"rejected {r.status}",
                                 "receipt": doc.get("detail", ""), "ms": None})
                progress.advance(submit)
            total = sum(len(d["deliveries"]) for d in accepted.values())
            deliver = progress.add_task("delivering to partners", total=total)
            deadline = time.monotonic() + timeout
            final: dict[str, dict[str, Any]] = {}
            while len(final) < len(accepted) and time.monotonic() < deadline:
                for name, doc in accepted.items():
                    if name in final:
                        continue
                    async with http.get(f"{base}/api/v1/cases/{doc['id']}") as r:
                        case = await r.json()
                    if all(d["state"] in FINAL for d in case["deliveries"]):
                        final[name] = case
                        case["_ms"] = (time.monotonic() - started[name]) * 1000
                done = sum(len(c["deliveries"]) for c in final.values())
                progress.update(deliver, completed=done)
                if len(final) < len(accepted):
                    await asyncio.sleep(0.2)
    for name, doc in accepted.items():
        case = final.get(name)
        app_no = doc["applicationNo"]
        if case is None:
            all_ok = False
            rows.append({"case": app_no, "target": "?", "outcome": "still pending at timeout",
                         "receipt": "", "ms": None})
            continue
        for item in case["homeItems"]:
            rows.append({"case": app_no, "target": f"home (item {item})",
                         "outcome": "stays in Beijing", "receipt": "", "ms": None})
        for d in case["deliveries"]:
            ok = d["state"] == "delivered"
            all_ok &= ok
            rows.append({"case": app_no, "target": f"{d['partner']} (item {','.join(d['items'])})",
                         "outcome": d["state"] if ok else f"{d['state']}: {d['lastMessage']}",
                         "receipt": d["receiptNo"] or "", "ms": case["_ms"]})
    return rows, all_ok


def _print_table(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Sample cases")
    table.add_column("case", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("partner receipt", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for r in rows:
        style = "green" if r["outcome"] == "delivered" else (
            "cyan" if r["outcome"].startswith("stays") else "red")
        table.add_row(r["case"], r["target"], f"[{style}]{r['outcome']}[/]", r["receipt"],
                      "" if r["ms"] is None else f"{r['ms']:.0f} ms")
    console.print(table)


__all__ = ["run_demo", "start_simulators"]
