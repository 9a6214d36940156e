"""The life of a case in the log (gateway/observability/case_log.py): one structured event per step with the
correlation id (accepted and routed with the case id; a delivery's steps with the delivery, the
partner, the attempt and the outcome kind), and no personal data.

Logging is configured as the ``gateway`` command does it (JSON renderer) and captured; a real
gateway delivers one case after a retry and dead-letters another, which an operator replays.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.api.keys import STORE
from gateway.observability.case_log import CaseEvent
from gateway.config import load_settings
from gateway.observability.logs import configure
from gateway.store.dlq import DeadLetterFilter, DeadLetters
from tests.harness import Gateway, Simulator, write_config

CASE = "01-person-shanghai-social-security"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
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


def _events(buffer: io.StringIO, correlation_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(x) for x in buffer.getvalue().splitlines() if x.startswith("{")]
    names = {e.value for e in CaseEvent}
    return [x for x in lines if x["event"] in names and x["correlation_id"] == correlation_id]


def _personal(case: dict[str, Any]) -> set[str]:
    out: set[str] = set()

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in ("name", "certNo", "phone", "address"):
            out.add(node)
    walk(case)
    return out


async def test_a_delivered_and_a_dead_lettered_case_tell_their_story(
        tmp_path: Path, samples: dict[str, Any], json_logs: io.StringIO) -> None:
    template = samples[CASE]
    async with Simulator("national") as sim:
        settings = load_settings(write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'g.db'}",
                                              {"national": sim.url()}))
        async with Gateway(settings) as gw:
            # delivered after one retry
            sim.misbehave("http500")
            status, ok = await gw.post_case(template, **{"X-Correlation-Id": "corr-ok"})
            assert status == 202
            [delivered] = (await gw.wait_final(ok["id"]))["deliveries"]
            assert delivered["state"] == "delivered" and delivered["attempts"] == 2
            # refused by the partner: dead-lettered, then replayed by an operator and delivered
            sim.misbehave("business_error", code="40003")
            parked_case = {**template, "applicationNo": "BJ2026113000000077"}
            status, parked = await gw.post_case(parked_case, **{"X-Correlation-Id": "corr-dead"})
            assert status == 202
            [dead] = (await gw.wait_final(parked["id"]))["deliveries"]
            assert dead["state"] == "dead"
            replayed = await DeadLetters(gw.app[STORE]).replay(
                DeadLetterFilter(ids=(dead["id"],)), actor="ops", reason="code fixed")
            assert replayed == [dead["id"]]  # the worker takes it at its next poll
            [again] = (await gw.wait_final(parked["id"]))["deliveries"]
            assert again["state"] == "delivered"

    for correlation_id, case_id in (("corr-ok", ok["id"]), ("corr-dead", parked["id"])):
        accepted, routed = _events(json_logs, correlation_id)[:2]  # intake, once committed
        assert (accepted["event"], accepted["case_id"]) == ("case.accepted", case_id)
        assert (routed["event"], routed["case_id"]) == ("case.routed", case_id)
        assert routed["partners"] == ["national"]

    ids = {"delivery_id": delivered["id"], "partner": "national"}
    assert [{k: e.get(k) for k in ("event", "attempt", "outcome", "http_status", "code",
                                   "delivery_id", "partner")}
            for e in _events(json_logs, "corr-ok")[2:]] == [
        {"event": "delivery.retry_scheduled", "attempt": 1, "outcome": "retryable",
         "http_status": 500, "code": None, **ids},
        {"event": "delivery.delivered", "attempt": 2, "outcome": "delivered",
         "http_status": 200, "code": "0", **ids},
    ]
    retry = _events(json_logs, "corr-ok")[2]
    assert retry["level"] == "info" and retry["next_attempt_at"].startswith("20")

    ids = {"delivery_id": dead["id"], "partner": "national"}
    story = _events(json_logs, "corr-dead")[2:]
    assert [{k: e.get(k) for k in ("event", "attempt", "outcome", "code", "delivery_id",
                                   "partner")} for e in story] == [
        {"event": "delivery.dead_lettered", "attempt": 1, "outcome": "permanent",
         "code": "40003", **ids},
        {"event": "delivery.replayed", "attempt": 1, "outcome": "permanent", "code": None,
         **ids},
        {"event": "delivery.delivered", "attempt": 2, "outcome": "delivered", "code": "0",
         **ids},
    ]
    assert story[0]["level"] == "warning"  # an operator has to act

    # only ids, names of partners, numbers and codes: nothing of the cases themselves
    for event in (*_events(json_logs, "corr-ok"), *_events(json_logs, "corr-dead")):
        assert set(event) <= {"event", "level", "logger", "timestamp", "correlation_id",
                              "case_id", "partners", "delivery_id", "partner", "attempt",
                              "outcome", "code", "http_status", "next_attempt_at"}, event
    everything = json_logs.getvalue()
    leaks = sorted(v for v in _personal(template) | _personal(parked_case) if v in everything)
    assert not leaks, leaks
    assert "ops" not in {e.get("actor") for e in story} and "code fixed" not in everything
