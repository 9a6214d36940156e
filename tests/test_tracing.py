"""OpenTelemetry tracing (issue 17): off by default, spans for intake, map, send and record when on,
and no personal data in any attribute.

The spans are read back with the SDK's own in-memory exporter, and the OTLP mode is checked the
way a collector would see it: the real OTLP/HTTP exporter posts protobuf to a local aiohttp
server, which decodes it with OpenTelemetry's own protobuf classes.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.api.keys import METRICS
from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import ATTRIBUTES, tracing_for, with_exporter
from tests.harness import (Gateway, Simulator, default_partner_path, edit_config, settings_for,
                           write_config)

ROOT = Path(__file__).resolve().parent.parent
CASE = ROOT / "samples" / "cases" / "01-person-shanghai-social-security.json"


def _personal(case: dict[str, Any]) -> list[str]:
    """Every value of the case a trace must not carry: numbers, names, phones, addresses."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and len(node) >= 4 and not re.fullmatch(r"[A-Z_]+", node):
            out.append(node)
    walk({k: case[k] for k in ("applicationNo", "applicant")})
    return out


def test_off_by_default(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'g.db'}", {})
    assert settings.observability.tracing == "off"
    assert not tracing_for(settings.observability.tracing).enabled
    assert not Metrics().tracing.enabled


def test_an_unknown_mode_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", {})
    edit_config(path, lambda raw: raw.update(observability={"tracing": "jaeger"}))
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert "observability.tracing" in str(e.value)
    with pytest.raises(ConfigError, match="observability.tracing"):
        tracing_for("jaeger")


async def test_spans_for_intake_map_send_record_without_personal_data(
        tmp_path: Path, db_url: str) -> None:
    exporter = InMemorySpanExporter()
    case = json.loads(CASE.read_text(encoding="utf-8"))
    async with Simulator("national") as sim:
        settings = settings_for(tmp_path, db_url,
                                {"national": sim.url(default_partner_path("national"))})
        gw = Gateway(settings)
        gw.app[METRICS].tracing = with_exporter(exporter)
        async with gw:
            status, accepted = await gw.post_case(case)
            assert status == 202, accepted
            await gw.wait_final(accepted["id"])
    spans = exporter.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    assert {"intake", "deliver", "map", "send", "record"} <= set(by_name), sorted(by_name)
    [deliver] = by_name["deliver"]
    for name in ("map", "send", "record"):
        [child] = by_name[name]
        assert child.parent is not None and child.parent.span_id == deliver.context.span_id, name
        assert child.context.trace_id == deliver.context.trace_id
    assert deliver.attributes["partner"] == "national"
    assert deliver.attributes["case_id"] == accepted["id"]
    assert by_name["record"][0].attributes["outcome"] == "delivered"
    assert by_name["map"][0].attributes["mapping"]
    # nothing but the allowed keys, and none of the case's personal values anywhere
    secrets = _personal(case)
    assert case["applicant"]["certNo"] in secrets
    for s in spans:
        assert set(s.attributes or {}) <= ATTRIBUTES, (s.name, dict(s.attributes or {}))
        text = json.dumps({"attrs": dict(s.attributes or {}), "name": s.name,
                           "status": s.status.description, "events": [e.name for e in s.events]},
                          ensure_ascii=False)
        for v in secrets:
            assert v not in text, (s.name, v)


def test_a_failing_span_says_the_class_only() -> None:
    exporter = InMemorySpanExporter()
    tracing = with_exporter(exporter)
    with pytest.raises(ValueError), tracing.span("map", partner="x", certNo="110105199003071239"):
        raise ValueError("applicant 110105199003071239 has no name")
    [span] = exporter.get_finished_spans()
    assert span.status.description == "ValueError"
    assert dict(span.attributes or {}) == {"partner": "x"}  # the unknown key dropped
    assert not span.events  # no exception event with its message


def test_console_mode_prints_spans(capsys: pytest.CaptureFixture[str]) -> None:
    tracing = tracing_for("console")
    with tracing.span("send", partner="tianjin"):
        pass
    tracing.shutdown()
    out = capsys.readouterr().out
    assert '"name": "send"' in out and '"partner": "tianjin"' in out


async def test_otlp_mode_posts_protobuf_a_collector_can_read() -> None:
    got: list[ExportTraceServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        msg = ExportTraceServiceRequest()
        msg.ParseFromString(await request.read())
        got.append(msg)
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        tracing = tracing_for("otlp", str(server.make_url("/v1/traces")))
        with tracing.span("deliver", partner="hebei"), tracing.span("send", partner="hebei"):
            pass
        await asyncio.to_thread(tracing.shutdown)  # the batch exporter flushes from its thread
    finally:
        await server.close()
    names = {s.name: {a.key: a.value.string_value for a in s.attributes}
             for m in got for rs in m.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert names == {"deliver": {"partner": "hebei"}, "send": {"partner": "hebei"}}
    service = {a.key: a.value.string_value for m in got for rs in m.resource_spans
               for a in rs.resource.attributes}
    assert service["service.name"] == "gateway"
