"""Prometheus metrics with bounded labels only (partner, channel, scenario code, outcome, stage,
status, source, kind): never case numbers, names or identity numbers. One registry per app, so
several apps can live in one process.

Events are counted where they happen, through one method each here (``case_accepted``,
``retried``, ``status_changed``, ``inbound``, ``drift``, ``backflow``), so a call site stays one
line and the label rules live in one place. Gauges that are a count of rows (deliveries by state,
dead letters, overdue items) are read from the database at scrape time (gateway/api/ops.py), so
every instance behind one database reports the same numbers.

Stages (the seed asks to monitor 咨询、受理、审批、办结): a canonical status belongs to one stage
(``STAGE``); ``gateway_status_changes_total{stage}`` counts the moves into it, per partner.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.observability.tracing import Tracing
from gateway.status import CaseStatus

OVERDUE_REFRESH_SECONDS = 30.0
#: delivered and discarded deliveries are recounted at most this often (gateway/api/ops.py)
FINAL_COUNTS_REFRESH_SECONDS = 60.0

S = CaseStatus
#: The stage of the seed's process each canonical status reports on.
STAGE: Mapping[CaseStatus, str] = MappingProxyType({
    S.SUBMITTED: "consultation", S.PRECHECK_RETURNED: "consultation",
    S.PRECHECK_PASSED: "consultation",
    S.RECEIVED: "acceptance", S.SUPPLEMENT_REQUIRED: "acceptance", S.ACCEPTED: "acceptance",
    S.NOT_ACCEPTED: "acceptance",
    S.IN_REVIEW: "approval", S.SUSPENDED: "approval",
    S.FINISHED: "completion", S.WITHDRAWN: "completion", S.VOIDED: "completion",
})

#: A scenario code is the platform's code of a 一件事 scenario (a few dozen exist). A label
#: takes at most this many distinct codes per app; later ones, and anything that does not look
#: like a code (letters, digits, ``._-``, 1-32 characters), count as ``other``.
MAX_SCENARIOS = 64
_CODE = re.compile(r"[A-Za-z0-9._-]{1,32}")
CHANNELS = frozenset({"WEB", "APP", "WINDOW", "KIOSK"})  # schemas/beijing/case.schema.json


class Metrics:
    def __init__(self, tracing: Tracing | None = None) -> None:
        #: the app's spans (off unless configured): carried here so every place that counts
        #: can also trace, without a second object handed around
        self.tracing = tracing or Tracing()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cases = Counter("gateway_cases_total", "Case submissions by result",
                             ["result"], registry=r)
        self.accepted = Counter("gateway_cases_accepted_total",
                                "New cases stored, by 一件事 scenario code ('none' outside a "
                                "bundle, 'other' past the bound) and submission channel",
                                ["scenario", "channel"], registry=r)
        self.attempts = Counter("gateway_delivery_attempts_total", "Delivery attempts by outcome",
                                ["partner", "outcome"], registry=r)
        self.retries = Counter("gateway_delivery_retries_total",
                               "Attempts that ended in a scheduled retry", ["partner"],
                               registry=r)
        self.finished = Counter("gateway_deliveries_finished_total",
                                "Deliveries that reached delivered or dead",
                                ["partner", "state"], registry=r)
        self.latency = Histogram("gateway_send_seconds", "Time to send one message to a partner",
                                 ["partner"], registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.deliveries = Gauge("gateway_deliveries", "Deliveries by partner and state "
                                "(delivered and discarded recounted at most every "
                                f"{FINAL_COUNTS_REFRESH_SECONDS:g} s)",
                                ["partner", "state"], registry=r)
        self.dead_letters = Gauge("gateway_dead_letters",
                                  "Dead-letter depth: deliveries parked dead, by partner",
                                  ["partner"], registry=r)
        self.breaker = Gauge("gateway_breaker_state",
                             "Circuit breaker per partner: 0 closed, 1 half-open, 2 open",
                             ["partner"], registry=r)
        self.overdue_items = Gauge("gateway_overdue_items",
                                   "Item parts past their promised time (办理时限) without a "
                                   "terminal status, by the partner holding them",
                                   ["partner"], registry=r)
        #: time.monotonic() of the last overdue count: it scans every open delivery, and a
        #: deadline moves by days, so a scrape recounts at most every OVERDUE_REFRESH_SECONDS
        self.overdue_counted_at: float | None = None
        #: the last count of delivered and discarded deliveries, and when (time.monotonic()):
        #: they grow with history, so a scrape recounts them at most every
        #: FINAL_COUNTS_REFRESH_SECONDS and the open states every time
        self.final_counts: dict[tuple[str, str], int] = {}
        self.final_counted_at: float | None = None
        self.status_changes = Counter("gateway_status_changes_total",
                                      "Status events that moved a case, by partner, stage "
                                      "(consultation, acceptance, approval, completion), "
                                      "canonical status and source (callback, poll, reconcile, export)",
                                      ["partner", "stage", "status", "source"], registry=r)
        self.inbound_cases = Counter("gateway_inbound_cases_total",
                                     "Cases partners submitted to Beijing, by result "
                                     "(accepted, duplicate, invalid, forbidden)",
                                     ["partner", "result"], registry=r)
        self.drift_found = Counter("gateway_reconcile_drift_total",
                                   "Differences the reconciler found between our view and the "
                                   "partner's, by kind", ["partner", "kind"], registry=r)
        self.reconcile_runs = Counter("gateway_reconcile_runs_total",
                                      "Reconcile runs per partner, by result (complete, failed)",
                                      ["partner", "result"], registry=r)
        self.backflow_records = Counter("gateway_backflow_records_total",
                                        "National back-flow records stored, by source and "
                                        "result (kept, replaced, ignored)",
                                        ["source", "result"], registry=r)
        self.backflow_success = Gauge("gateway_backflow_last_success_timestamp_seconds",
                                      "When a back-flow walk or push last completed; the lag "
                                      "is time() minus this", ["source"], registry=r)
        self.worker_heartbeat = Gauge("gateway_worker_heartbeat_timestamp_seconds",
                                      "Last time the delivery worker looked for work",
                                      registry=r)
        self._scenarios: set[str] = set()

    # -- one method per event: call sites stay one line ----------------------------------------
    def case_accepted(self, body: Mapping[str, object]) -> None:
        """A new case stored: its scenario code and channel, bounded (module docstring)."""
        bundle = body.get("bundle")
        code = bundle.get("scenarioCode") if isinstance(bundle, Mapping) else None
        channel = body.get("channel")
        self.accepted.labels(self._scenario(code),
                             channel if channel in CHANNELS else "other").inc()

    def _scenario(self, code: object) -> str:
        if code is None:
            return "none"
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            return "other"
        if code not in self._scenarios:
            if len(self._scenarios) >= MAX_SCENARIOS:
                return "other"
            self._scenarios.add(code)
        return code

    def retried(self, partner: str) -> None:
        self.retries.labels(partner).inc()

    def status_changed(self, partner: str, status: CaseStatus | None, source: str) -> None:
        """A status event moved a case (callers pass only events that applied)."""
        if status is not None:
            self.status_changes.labels(partner, STAGE[status], status.value, source).inc()

    def inbound(self, partner: str, result: str) -> None:
        self.inbound_cases.labels(partner, result).inc()

    def drift(self, partner: str, counts: Mapping[str, int], *, complete: bool) -> None:
        """One reconcile run's drift counts (kinds: gateway/statuses/reconcile.py DriftKind)."""
        for kind, n in counts.items():
            self.drift_found.labels(partner, kind).inc(n)
        self.reconcile_runs.labels(partner, "complete" if complete else "failed").inc()

    def backflow(self, source: str, *, kept: int, replaced: int, ignored: int,
                 completed: bool = True) -> None:
        """One back-flow page or push stored (``completed``: the walk reached its end)."""
        for result, n in (("kept", kept), ("replaced", replaced), ("ignored", ignored)):
            self.backflow_records.labels(source, result).inc(n)
        if completed:
            self.backflow_success.labels(source).set(time.time())

    def dead_letter_depth(self, counts: Iterable[tuple[tuple[str, str], int]]) -> None:
        """``gateway_deliveries`` and ``gateway_dead_letters`` from the store's counts
        (``((partner, state), n)`` pairs)."""
        self.deliveries.clear()
        self.dead_letters.clear()
        for (partner, state), n in counts:
            self.deliveries.labels(partner, state).set(n)
            if state == "dead":
                self.dead_letters.labels(partner).set(n)
