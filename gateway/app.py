"""``create_app()``: routes, middlewares and cleanup contexts — wiring only.

Resources open in order (database → contracts → HTTP client → partner clients → worker) and
close in reverse; the worker is stopped first so in-flight deliveries finish or are released.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway import console
from gateway.backflow import push as backflow_push
from gateway.backflow.job import backflow_job
from gateway.api import admin, cases, openapi, ops
from gateway.api.auth import CALLERS, NONCES, auth_middleware
from gateway.api.keys import CONTRACTS, INTAKE, METRICS, SETTINGS, STORE, WORKER
from gateway.api.problems import problems_middleware
from gateway.config import Settings
from gateway.contracts import ContractsHolder, load_contracts, reload_contracts
from gateway.errors import ConfigError
from gateway.gctuning import tuned_gc
from gateway.inbound import routes as inbound_routes
from gateway.intake.accept import Intake
from gateway.observability.logs import protect_secrets
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import tracing_for
from gateway.delivery.gates import PartnerGates
from gateway.protocols import PartnerClient, create_client
from gateway.statuses import callbacks
from gateway.store import Store, create_engine
from gateway.store.breakers import BreakerRows
from gateway.store.migrate import upgrade
from gateway.store.nonces import DbNonceStore
from gateway.store.audit import keep_retention
from gateway.store.reseal import check_keys
from gateway.security.callers import Callers
from gateway.statuses.reconcile_job import reconcile_job
from gateway.intake.validation import CaseValidator
from gateway.delivery.worker import Worker
from gateway.statuses.poller import polling

log = logging.getLogger("gateway.app")


async def _reload(app: web.Application) -> None:
    """SIGHUP: load every mapping and route anew; swap only if all of it loads."""
    try:
        fresh = await asyncio.to_thread(reload_contracts, app[SETTINGS])
    except ConfigError as e:
        log.error("reload refused, previous contracts stay live: %s", e)
        return
    app[CONTRACTS].swap(fresh)
    log.info("contracts reloaded (generation %d)", app[CONTRACTS].generation)


def _worker_ended(task: asyncio.Task[None]) -> None:
    """The worker outlives database errors; anything else stops it, and is said here."""
    if not task.cancelled() and (e := task.exception()) is not None:
        log.error("the delivery worker stopped on an unexpected %s; /readyz answers 503 until "
                  "the gateway is restarted", type(e).__name__, exc_info=e)


async def _stop_tracing(app: web.Application) -> None:
    await asyncio.to_thread(app[METRICS].tracing.shutdown)  # an OTLP flush may wait on I/O


def create_app(settings: Settings, *, worker_id: str | None = None,
               shutdown_grace: float = 10.0, reload_on_sighup: bool = False) -> web.Application:
    app = web.Application(client_max_size=settings.server.max_body_bytes,
                          middlewares=[problems_middleware, auth_middleware])
    app[SETTINGS] = settings
    protect_secrets(settings)  # every process serving the API, however started (CLI, tests)
    app[METRICS] = Metrics(tracing_for(settings.observability.tracing,
                                       settings.observability.otlp_endpoint))
    app[CALLERS] = Callers(settings.callers)  # who may call the API (gateway/api/auth.py)
    # Contracts are loaded here, synchronously, so a broken mapping or route fails start-up.
    app[CONTRACTS] = ContractsHolder(load_contracts(settings))
    validator = CaseValidator(settings.path(settings.schemas_dir) / "beijing" / "case.schema.json")

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.database.url, pool_size=settings.database.pool_size)
        if settings.database.auto_migrate:
            await upgrade(engine)
        app[STORE] = Store(engine)  # seals bodies with the environment's keys, if any
        await check_keys(app[STORE])  # a key still in use missing from the keyring: one line
        app[NONCES] = DbNonceStore(app[STORE])  # anti-replay, shared by every instance
        app[INTAKE] = Intake(app[STORE], validator, app[CONTRACTS])
        yield
        await app[STORE].close()

    async def audit_retention(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(keep_retention(app[STORE].db, settings.audit.retention_days),
                                   name="audit-retention")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def delivery(app: web.Application) -> AsyncIterator[None]:
        http = aiohttp.ClientSession(raise_for_status=False)
        clients: dict[str, PartnerClient] = {}
        try:
            for name, p in settings.partners.items():
                clients[name] = create_client(  # header mappings: looked up live, at send
                    name, p, http, lambda n, v: app[CONTRACTS].current.mappings.get(n, v))
            worker = None
            task = None
            if settings.worker.enabled:
                gates = PartnerGates(settings, BreakerRows(app[STORE]), app[METRICS])
                worker = Worker(store=app[STORE], contracts=app[CONTRACTS], clients=clients,
                                settings=settings, metrics=app[METRICS], gates=gates,
                                worker_id=worker_id)
                app[WORKER] = worker
                app[INTAKE].handoff = worker  # new cases' deliveries go straight to it
                task = asyncio.create_task(worker.run(), name="delivery-worker")
                task.add_done_callback(_worker_ended)
            yield
            if worker is not None and task is not None:
                await worker.stop(shutdown_grace)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:
            for c in clients.values():
                await c.close()
            await http.close()

    async def garbage_collector(app: web.Application) -> AsyncIterator[None]:
        async with tuned_gc(settings.server.gc_threshold, settings.server.gc_collect_every):
            yield

    async def sighup(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(_reload(app)))
        yield
        loop.remove_signal_handler(signal.SIGHUP)

    app.on_cleanup.append(_stop_tracing)  # after every context closed: their spans flushed
    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(delivery)
    app.cleanup_ctx.append(reconcile_job(settings, lambda: (app[STORE], app[CONTRACTS].current)))
    app.cleanup_ctx.append(backflow_job(settings, lambda: (app[STORE], app[CONTRACTS].current)))
    app.cleanup_ctx.append(polling)  # status polls beside the worker, stopped before it
    app.cleanup_ctx.append(audit_retention)  # the audit log kept to audit.retention_days
    if reload_on_sighup:
        app.cleanup_ctx.append(sighup)
    app.cleanup_ctx.append(garbage_collector)  # last: everything built by then is frozen
    cases.add_routes(app)
    ops.add_routes(app)
    openapi.add_routes(app)  # /openapi.yaml, /openapi.json (schemas/openapi.yaml)
    admin.add_routes(app)
    callbacks.add_routes(app)  # partners' status callbacks (gateway/statuses)
    backflow_push.add_routes(app)  # national back-flow batches pushed (gateway/backflow)
    inbound_routes.add_routes(app)  # partners' cases submitted to Beijing (gateway/inbound)
    console.add_routes(app)  # the operators' web console under /console/ (gateway/console)
    return app
