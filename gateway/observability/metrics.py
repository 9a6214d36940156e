"""Prometheus metrics with bounded labels only (partner, protocol, outcome, stage, state):
never case numbers or people. One registry per app, so several apps can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OVERDUE_REFRESH_SECONDS = 30.0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.cases = Counter("gateway_cases_total", "Case submissions by result",
                             ["result"], registry=self.registry)
        self.attempts = Counter("gateway_delivery_attempts_total", "Delivery attempts by outcome",
                                ["partner", "outcome"], registry=self.registry)
        self.finished = Counter("gateway_deliveries_finished_total",
                                "Deliveries that reached delivered or dead",
                                ["partner", "state"], registry=self.registry)
        self.latency = Histogram("gateway_send_seconds", "Time to send one message to a partner",
                                 ["partner"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.deliveries = Gauge("gateway_deliveries", "Deliveries by partner and state",
                                ["partner", "state"], registry=self.registry)
        self.breaker = Gauge("gateway_breaker_state",
                             "Circuit breaker per partner: 0 closed, 1 half-open, 2 open",
                             ["partner"], registry=self.registry)
        self.overdue_items = Gauge("gateway_overdue_items",
                                   "Item parts past their promised time (办理时限) without a "
                                   "terminal status, by the partner holding them",
                                   ["partner"], registry=self.registry)
        #: time.monotonic() of the last overdue count: it scans every open delivery, and a
        #: deadline moves by days, so a scrape recounts at most every OVERDUE_REFRESH_SECONDS
        self.overdue_counted_at: float | None = None
        self.worker_heartbeat = Gauge("gateway_worker_heartbeat_timestamp_seconds",
                                      "Last time the delivery worker looked for work",
                                      registry=self.registry)
