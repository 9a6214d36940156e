"""Health, readiness and metrics for operators and orchestrators."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.keys import CONTRACTS, METRICS, STORE, WORKER
from gateway.domain.deadlines import deadlines_for
from gateway.errors import ConfigError, StoreError
from gateway.observability.metrics import FINAL_COUNTS_REFRESH_SECONDS, OVERDUE_REFRESH_SECONDS
from gateway.store.overdue import OverdueItems
from gateway.store.states import OPEN_STATES


async def healthz(request: web.Request) -> web.Response:
    """The process answers: nothing more (liveness)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and the delivery worker is alive."""
    checks: dict[str, str] = {}
    try:
        await request.app[STORE].ping()
        checks["database"] = "ok"
    except StoreError as e:  # any database error means "not ready", reported by its class
        checks["database"] = f"unreachable: {e.error}"
    if WORKER in request.app:
        checks["worker"] = "ok" if request.app[WORKER].alive() else "not running"
    else:
        checks["worker"] = "disabled"
    checks["contracts"] = f"generation {request.app[CONTRACTS].generation}"
    ok = checks["database"] == "ok" and checks["worker"] in ("ok", "disabled")
    return web.json_response({"status": "ok" if ok else "unavailable", "checks": checks},
                             status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    await _refresh_deliveries(request.app)
    await _refresh_overdue(request.app)
    body = generate_latest(m.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _refresh_deliveries(app: web.Application) -> None:
    """``gateway_deliveries{partner,state}`` and ``gateway_dead_letters``. The open states are
    counted on every scrape (a range of one index, as large as the backlog); delivered and
    discarded, whose rows grow with every case ever sent, at most every
    ``FINAL_COUNTS_REFRESH_SECONDS`` (their rates are ``gateway_deliveries_finished_total``).
    A database that fails leaves the open counts empty: metrics still answer."""
    m = app[METRICS]
    store = app[STORE]
    now = time.monotonic()
    counts: dict[tuple[str, str], int] = {}
    try:
        if m.final_counted_at is None or now - m.final_counted_at >= FINAL_COUNTS_REFRESH_SECONDS:
            every = await store.delivery_counts()
            m.final_counts = {(p, st.value): n for (p, st), n in every.items()
                              if st not in OPEN_STATES}
            m.final_counted_at = now
        else:
            every = await store.delivery_counts(OPEN_STATES)
        counts = {(p, st.value): n for (p, st), n in every.items()}
    except StoreError:  # metrics must answer even when the database does not
        pass
    m.dead_letter_depth({**m.final_counts, **counts}.items())


async def _refresh_overdue(app: web.Application) -> None:
    """``gateway_overdue_items{partner}``, from the deadlines of the live mappings folder. A
    database or deadline file that fails leaves the gauge empty: metrics still answer. The
    count scans every open delivery, so it runs at most every ``OVERDUE_REFRESH_SECONDS``."""
    m = app[METRICS]
    now = time.monotonic()
    if m.overdue_counted_at is not None and now - m.overdue_counted_at < OVERDUE_REFRESH_SECONDS:
        return
    m.overdue_counted_at = now
    try:
        deadlines = deadlines_for(app[CONTRACTS].current.mappings.mappings_dir)
        counts = await OverdueItems(app[STORE], deadlines).counts()
    except (StoreError, ConfigError):
        counts = {}
    m.overdue_items.clear()
    for partner, n in counts.items():
        m.overdue_items.labels(partner).set(n)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
