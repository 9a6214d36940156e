"""The worker after a send: a database error while recording the result is handled and logged
(issue 10, section 7), on both engines.

Before, ``finish_attempt`` and the breaker record sat outside the worker's ``try``: an error there
killed the delivery's task unlogged and the delivery waited out its whole lease. Now it is logged
with the delivery and correlation ids only (the error's own text can quote the statement's values,
so no data reaches the log) and the delivery is handed back for its next try at once.

The fault is injected at the store seam: a :class:`Store` whose ``finish_attempt`` raises a
driver error once, carrying the applicant's data in its parameters and message, as a real one
could. The lease is long, so a delivery left to wait out its lease would fail the test.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from sqlalchemy.exc import DataError

from gateway.config import load_settings
from gateway.contracts import ContractsHolder, load_contracts
from gateway.observability.logs import configure
from gateway.observability.metrics import Metrics
from gateway.delivery.gates import PartnerGates
from gateway.protocols import create_client
from gateway.store import Store, create_engine
from gateway.store.breakers import BreakerRows
from gateway.store.db import translated
from gateway.store.migrate import upgrade
from gateway.delivery.worker import Worker
from tests.harness import Gateway, LiveSimulator, db_rows, write_config

LEASE = 300.0  # a delivery left to wait out its lease would take this long
CORRELATION = "corr-record-failure-1"


class FailingOnce(Store):
    """Raises a driver error from the first ``finish_attempt`` (as the store does: translated into
    a StoreError at its boundary), then behaves."""

    def __init__(self, engine: Any, secret: str) -> None:
        super().__init__(engine)
        self.secret = secret
        self.failures = 0

    async def finish_attempt(self, *args: Any, **kwargs: Any) -> bool:
        if self.failures == 0:
            self.failures += 1
            with translated("record attempt"):
                raise DataError("UPDATE deliveries SET last_message=$1 WHERE id = $2",
                                {"last_message": self.secret, "id": "x"},
                                Exception(f"value too long for type character varying: "
                                          f"{self.secret}"))
        return await super().finish_attempt(*args, **kwargs)


@pytest.fixture
def json_logs() -> Any:
    """The gateway's own log configuration (JSON renderer), its output kept in a buffer."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure("INFO", json=True)
    buffer = io.StringIO()
    for h in root.handlers:
        if isinstance(h, logging.StreamHandler):
            h.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()


async def test_a_database_error_while_recording_is_logged_and_the_delivery_handed_back(
        db_url: str, tmp_path: Path, samples: dict[str, Any], json_logs: Any) -> None:
    case = samples["01-person-shanghai-social-security"]
    name, cert_no = case["applicant"]["name"], case["applicant"]["certNo"]
    async with LiveSimulator("national") as sim:
        (tmp_path / "front").mkdir()
        (tmp_path / "worker").mkdir()
        front = load_settings(write_config(tmp_path / "front", db_url, {"national": sim.url()},
                                           lease_seconds=LEASE, enabled=False))
        settings = load_settings(write_config(tmp_path / "worker", db_url,
                                              {"national": sim.url()}, lease_seconds=LEASE))
        async with Gateway(front) as gw:
            status, doc = await gw.post_case(case, **{"X-Correlation-Id": CORRELATION})
            assert status == 202, doc
            engine = create_engine(db_url)
            await upgrade(engine)
            store = FailingOnce(engine, f"{name} {cert_no}")
            http = aiohttp.ClientSession()
            metrics = Metrics()
            worker = Worker(store=store, contracts=ContractsHolder(load_contracts(settings)),
                            clients={"national": create_client(
                                "national", settings.partners["national"], http)},
                            settings=settings, metrics=metrics,
                            gates=PartnerGates(settings, BreakerRows(store), metrics),
                            worker_id="w-record")
            task = asyncio.create_task(worker.run())
            t0 = time.monotonic()
            try:
                final = await gw.wait_final(doc["id"], timeout=LEASE / 10)
            finally:
                await worker.stop(grace=5)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await http.close()
                await engine.dispose()
    elapsed = time.monotonic() - t0
    [d] = final["deliveries"]
    assert d["state"] == "delivered" and store.failures == 1
    # handed back at once, not left to wait out its lease: a bound ten times short of the
    # lease, and far above the ~0.1 s it takes, so no race with a busy machine's clock
    assert elapsed < LEASE / 10
    # the attempt whose result could not be stored left no history; the resend was deduped
    attempts = await db_rows(db_url, "SELECT outcome FROM attempts")
    assert [a.outcome for a in attempts] == ["delivered"]
    summary = sim.state.summary(False)
    assert (summary["unique"], summary["duplicates"]) == (1, 1)

    lines = [json.loads(x) for x in json_logs.getvalue().splitlines() if x.startswith("{")]
    failed = [x for x in lines if "recording its result failed" in x.get("event", "")]
    assert len(failed) == 1, lines
    [entry] = failed
    assert entry["level"] == "error"
    assert entry["correlation_id"] == CORRELATION and entry["delivery_id"] == d["id"]
    assert "DataError" in entry["event"] and "handed back" in entry["event"]
    everything = json.dumps(lines, ensure_ascii=False)
    assert name not in everything and cert_no not in everything
