"""OpenTelemetry tracing, optional and off by default (``observability.tracing: off|otlp|console``).

Spans: ``intake`` (a case submitted, validated and stored), and for each delivery attempt
``deliver`` with ``map`` (render and validate the partner message), ``send`` (the partner call)
and ``record`` (the attempt's result stored) inside it. A trace shows where an attempt's time
went without opening the database.

Attributes are a closed list of keys (``ATTRIBUTES``): partner, protocol, outcome, mapping name
and version, ids the gateway itself minted (UUIDs), channel, HTTP status. Never a case's
application number, a name, an identity number or a body; an exception is recorded by its class
name only (its text may quote the case). A key outside the list is dropped, not exported.

The SDK is the ``tracing`` extra (``pip install 'gateway[tracing]'``); with tracing off nothing
of OpenTelemetry is imported. Each app has its own tracer provider (not the global one), so
several apps in one process (the tests) keep their spans apart.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from gateway.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

#: the only attribute keys a span carries (module docstring)
ATTRIBUTES = frozenset({"partner", "protocol", "outcome", "mapping", "mapping_version",
                        "attempt", "http_status", "delivery_id", "case_id", "channel", "result",
                        "state", "created"})
MODES = ("off", "otlp", "console")


class Tracing:
    """Spans for one app; ``Tracing()`` is off (every span a no-op)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("gateway") if provider is not None else None

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    @contextmanager
    def span(self, name: str, **attributes: str | int | bool | None) -> Iterator[None]:
        if self._tracer is None:
            yield
            return
        from opentelemetry.trace import Status, StatusCode
        attrs = {k: v for k, v in attributes.items() if k in ATTRIBUTES and v is not None}
        with self._tracer.start_as_current_span(name, attributes=attrs, record_exception=False,
                                                set_status_on_exception=False) as span:
            try:
                yield
            except BaseException as e:
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                raise

    def shutdown(self) -> None:
        """Flush and stop the exporter (app cleanup)."""
        if self.provider is not None:
            self.provider.shutdown()


def with_exporter(exporter: SpanExporter, *, batch: bool = False) -> Tracing:
    """Tracing into ``exporter`` (the tests: the SDK's in-memory exporter)."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as e:  # pragma: no cover - the extra is missing
        raise ConfigError("observability.tracing needs the OpenTelemetry SDK: "
                          f"pip install 'gateway[tracing]' ({e})",
                          key="observability.tracing") from None
    provider = TracerProvider(resource=Resource.create({"service.name": "gateway"}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch
                                else SimpleSpanProcessor(exporter))
    return Tracing(provider)


def tracing_for(mode: str, otlp_endpoint: str | None = None) -> Tracing:
    """The app's tracing as configured: off, OTLP over HTTP (to ``otlp_endpoint``, or the
    exporter's default / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), or printed to stdout."""
    if mode == "off":
        return Tracing()
    if mode == "console":
        try:
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter
        except ImportError as e:
            raise ConfigError("observability.tracing: console needs the OpenTelemetry SDK: "
                              f"pip install 'gateway[tracing]' ({e})",
                              key="observability.tracing") from None
        return with_exporter(ConsoleSpanExporter(out=sys.stdout))  # stdout as it is now
    if mode == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as e:
            raise ConfigError("observability.tracing: otlp needs the OTLP exporter: "
                              f"pip install 'gateway[tracing]' ({e})",
                              key="observability.tracing") from None
        return with_exporter(OTLPSpanExporter(endpoint=otlp_endpoint), batch=True)
    raise ConfigError(f"observability.tracing is one of {', '.join(MODES)}, not {mode!r}",
                      key="observability.tracing")


__all__ = ["ATTRIBUTES", "MODES", "Tracing", "tracing_for", "with_exporter"]
