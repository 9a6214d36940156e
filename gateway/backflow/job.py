"""The scheduled back-flow pull: a task started with the worker that walks every configured
source every ``interval`` (the first after ``backflow.first_delay``). Off when no source is
configured or the worker is disabled. A failed walk (database, export, configuration) is logged
and the next comes at its time: the checkpoint keeps what was stored, nothing here stops the
gateway. ``gateway backflow run`` is the same walk from the command line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from gateway.backflow.pull import Puller
from gateway.config import Settings
from gateway.contracts import Contracts
from gateway.errors import GatewayError
from gateway.store import Store
from gateway.store.backflow import Fenced

log = logging.getLogger("gateway.backflow")
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def backflow_job(settings: Settings,
                 live: Callable[[], tuple[Store, Contracts]]) -> CleanupContext:
    cfg = settings.backflow

    async def walk(source: str, http: aiohttp.ClientSession) -> None:
        interval = cfg.sources[source].interval
        await asyncio.sleep(cfg.first_delay)
        while True:
            store, contracts = live()
            try:
                await Puller(store, settings, contracts.mappings, http, source).run()
            except (GatewayError, Fenced) as e:
                log.error("back-flow %s walk failed (%s): %s", source, type(e).__name__, e)
            await asyncio.sleep(interval)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not (cfg.sources and settings.worker.enabled):
            yield
            return
        async with aiohttp.ClientSession() as http:
            tasks = [asyncio.create_task(walk(s, http), name=f"backflow-{s}")
                     for s in cfg.sources]
            yield
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return ctx


__all__ = ["backflow_job"]
