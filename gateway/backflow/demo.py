"""The demo's third part: national data flows back (``gateway demo``, ``./run.sh``).

The national simulator is given a generated back-flow export (e-licences, shared dataset rows and
case results; some keys come again with a newer version, some with an older one, and one page
is served twice, as a source whose cursor slipped); the gateway walks it once from its checkpoint
(:class:`gateway.backflow.pull.Puller`, the same walk as the scheduled job and
``gateway backflow run``), and the demo waits until the city-platform simulator holds every
change the walk queued, then prints both sides' counts. A second demo run on the same data
folder resumes at the stored checkpoint and finds nothing new: the table says so.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from rich.console import Console
from rich.table import Table

from gateway.backflow.pull import Puller, PullReport
from gateway.config import Settings
from gateway.mapping.registry import MappingRegistry
from gateway.simulators.backflow import CONTROL_PATH
from gateway.store import Store

SOURCE = "national"
#: what the national simulator serves: 1,200 records over 1,000 keys (200 later versions, a
#: seventh of them older than what came before), pages of 250, the second page served twice
EXPORT = {"generated": 1200, "keys": 1000, "backwards_every": 7, "repeat_pages": [2],
          "repeat_count": 20}
PAGE_SIZE = 250


def _root(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def runnable(settings: Settings, simulated: list[str]) -> bool:
    """Back-flow is shown when the source and its receiver are simulated on this machine."""
    src = settings.backflow.sources.get(SOURCE)
    return (src is not None and src.partner in simulated and src.push_to in settings.partners
            and urlsplit(settings.partners[src.push_to].url).hostname in ("127.0.0.1", "localhost"))


async def _city_state(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(f"{_root(url)}/__sim/state") as r:
        doc: dict[str, Any] = (await r.json()).get("backflow", {})
        return doc


async def show_backflow(settings: Settings, store: Store, mappings: MappingRegistry,
                        simulated: list[str], timeout: float, console: Console) -> bool:
    """Walk the simulated export once and follow the batches to the city platform; True when
    everything the walk queued arrived (or nothing was to be shown)."""
    if not runnable(settings, simulated):
        return True
    src = settings.backflow.sources[SOURCE]
    src_url = settings.partners[src.partner].url
    sink_url = settings.partners[src.push_to].url
    page = src.model_copy(update={"page_size": PAGE_SIZE})
    walk_settings = settings.model_copy(update={"backflow": settings.backflow.model_copy(
        update={"sources": {**settings.backflow.sources, SOURCE: page}})})
    console.rule("[bold]National data flows back (数据回流)")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{_root(src_url)}{CONTROL_PATH}", json=EXPORT) as r:
            if r.status != 200:
                console.print(f"  [red]the national simulator refused the export: {r.status}")
                return False
        report = await Puller(store, walk_settings, mappings, http, SOURCE).run()
        queued = report.kept + report.replaced
        deadline = time.monotonic() + timeout
        city = await _city_state(http, sink_url)
        while city.get("records", 0) < queued and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            city = await _city_state(http, sink_url)
    _print(report, city, console)
    ok = report.done and city.get("records", 0) >= queued
    if not ok:
        console.print(f"  [red]the city platform holds {city.get('records', 0)} of the "
                      f"{queued} records queued for it")
    return ok


def _print(report: PullReport, city: dict[str, Any], console: Console) -> None:
    table = Table(title="Back-flow: the national export walked once, batches at the city platform")
    table.add_column("gateway (from its checkpoint)", no_wrap=True)
    table.add_column("", justify="right")
    table.add_column("city-platform simulator", no_wrap=True)
    table.add_column("", justify="right")
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(city.get("kinds", {}).items())) or "-"
    rows = [("pages read", report.pages, "batches received", city.get("batches", 0)),
            ("records read", report.records, "records received", city.get("records", 0)),
            ("new keys kept", report.kept, "keys held", city.get("keys", 0)),
            ("newer versions", report.replaced, "replaced", city.get("replaced", 0)),
            ("older or repeated, ignored", report.ignored, "kinds", kinds),
            ("batches queued", report.batches, "duplicate batches",
             city.get("duplicateBatches", 0))]
    for left, n, right, m in rows:
        table.add_row(left, str(n), right, str(m))
    console.print(table)
    if report.records and not (report.kept or report.replaced):
        console.print("  (the checkpoint of an earlier run is at the end of the export: nothing "
                      "new; delete the data folder to walk it again)")
    if report.invalid:
        console.print("  records skipped as invalid: " + ", ".join(
            f"{k} ×{n}" for k, n in sorted(report.invalid.items())))


__all__ = ["runnable", "show_backflow"]
