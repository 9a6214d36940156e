"""The scheduled back-flow pull: a task started with the worker that walks every configured
source every ``interval`` (the first after ``backflow.first_delay``). Off when no source is
configured or the worker is disabled. A failed walk (database, export, configuration) is logged
and the next comes at its time: the checkpoint keeps what was stored, nothing here stops the
gateway. ``gateway backflow run`` is the same walk from the command line.

Several instances share one database: each walk first takes the source's lease
(:class:`gateway.store.backflow_lease.BackflowLeases`), renewed while it runs and given up
after. An instance that finds the lease held by another skips that interval with a debug line,
not an error: the other instance is doing the work, and doing it twice would only read every
page twice and end fenced out (:class:`~gateway.store.backflow.Fenced`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from gateway.api.keys import METRICS
from gateway.backflow.pull import Puller
from gateway.config import Settings
from gateway.contracts import Contracts
from gateway.errors import GatewayError, StoreError
from gateway.observability.metrics import Metrics
from gateway.store import Store
from gateway.store.backflow import Fenced
from gateway.store.backflow_lease import BackflowLeases

log = logging.getLogger("gateway.backflow")
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def lease_ttl(timeout: float) -> float:
    """How long a taken lease lasts without renewal: three page timeouts, at least a minute (a
    walk renews it every third of that, so a page stuck until its timeout never loses it)."""
    return max(60.0, 3 * timeout)


async def walk_once(store: Store, settings: Settings, contracts: Contracts,
                    http: aiohttp.ClientSession, source: str, leases: BackflowLeases,
                    metrics: Metrics | None = None) -> bool:
    """One scheduled walk of ``source`` under its lease; False when another instance holds it.
    What it stored goes to ``metrics`` (``gateway_backflow_*``: the lag is since a walk that
    reached the export's end)."""
    ttl = lease_ttl(settings.backflow.sources[source].timeout)
    if not await leases.take(source, ttl):
        log.debug("back-flow %s: another instance holds the lease; skipped", source)
        return False

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                if not await leases.take(source, ttl):
                    log.warning("back-flow %s: lease taken over while walking (this instance "
                                "stalled past it); the checkpoint fences this walk", source)
                    return
            except StoreError as e:
                log.warning("back-flow %s: lease not renewed (%s)", source, e)

    renewing = asyncio.create_task(renew(), name=f"backflow-lease-{source}")
    try:
        report = await Puller(store, settings, contracts.mappings, http, source,
                              metrics=metrics).run()
        if metrics is not None:
            metrics.backflow(source, kept=report.kept, replaced=report.replaced,
                             ignored=report.ignored, completed=report.done)
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        with contextlib.suppress(StoreError):  # else it expires by itself
            await leases.give_up(source)
    return True


def backflow_job(settings: Settings,
                 live: Callable[[], tuple[Store, Contracts]]) -> CleanupContext:
    cfg = settings.backflow
    owner = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"

    async def walk(source: str, http: aiohttp.ClientSession, metrics: Metrics) -> None:
        interval = cfg.sources[source].interval
        await asyncio.sleep(cfg.first_delay)
        while True:
            store, contracts = live()
            try:
                await walk_once(store, settings, contracts, http, source,
                                BackflowLeases(store, owner), metrics)
            except (GatewayError, Fenced) as e:
                log.error("back-flow %s walk failed (%s): %s", source, type(e).__name__, e)
            await asyncio.sleep(interval)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not (cfg.sources and settings.worker.enabled):
            yield
            return
        async with aiohttp.ClientSession() as http:
            tasks = [asyncio.create_task(walk(s, http, app[METRICS]), name=f"backflow-{s}")
                     for s in cfg.sources]
            yield
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return ctx


__all__ = ["backflow_job", "lease_ttl", "walk_once"]
