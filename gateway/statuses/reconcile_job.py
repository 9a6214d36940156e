"""The scheduled reconcile: a task started with the worker that runs every configured partner's
reconcile every ``reconcile.interval`` (first after ``reconcile.first_delay``), with repairs.

Every instance runs the task; the lock (:mod:`gateway.statuses.reconcile_lock`) lets one of them
work per round and the others skip it (logged at INFO). Off unless ``reconcile.enabled`` and the
worker is enabled (an API-only instance never reconciles); the command ``gateway reconcile``
under cron is the alternative scheduler and takes the same lock. A failed round (database,
export, configuration) is logged and the next round comes at its time: nothing here stops the
gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from gateway.api.keys import METRICS
from gateway.config import Settings
from gateway.contracts import Contracts
from gateway.errors import GatewayError
from gateway.mapping import MappingRegistry
from gateway.observability.metrics import Metrics
from gateway.statuses.reconcile import Reconciler, Report
from gateway.statuses.reconcile_lock import AlreadyRunning
from gateway.store import Store

log = logging.getLogger("gateway.reconcile")

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


async def reconcile_round(store: Store, settings: Settings, mappings: MappingRegistry,
                          http: aiohttp.ClientSession,
                          metrics: Metrics | None = None) -> list[Report] | None:
    """One round over every configured partner; None when another instance holds the lock or
    the round failed (said in the log). Each partner's drift counts go to ``metrics``."""
    try:
        reports = await Reconciler(store, settings, mappings, http, examples=0,
                                   metrics=metrics).run_all()
        for rep in reports:
            if metrics is not None:
                metrics.drift(rep.partner, rep.drift, complete=rep.complete and rep.error is None)
        return reports
    except AlreadyRunning:
        log.info("reconcile round skipped: another instance is reconciling")
    except GatewayError as e:
        log.error("reconcile round failed (%s): %s", type(e).__name__, e)
    return None


def reconcile_job(settings: Settings,
                  live: Callable[[], tuple[Store, Contracts]]) -> CleanupContext:
    """An aiohttp cleanup context running the rounds while the app lives (``live`` gives the
    store and the contracts when a round starts: the live mappings after a reload)."""
    cfg = settings.reconcile

    async def rounds(metrics: Metrics) -> None:
        await asyncio.sleep(cfg.first_delay)
        async with aiohttp.ClientSession() as http:
            while True:
                store, contracts = live()
                await reconcile_round(store, settings, contracts.mappings, http, metrics)
                await asyncio.sleep(cfg.interval)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if not (cfg.enabled and cfg.partners and settings.worker.enabled):
            yield
            return
        task = asyncio.create_task(rounds(app[METRICS]), name="reconcile")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return ctx
