"""The Grafana dashboard and the Prometheus rules in deploy/ name only metrics the gateway really
exports (issue 17), and those metrics carry no personal data.

One end-to-end run on both engines: a real app with the national, Tianjin, Hebei and city
simulators; cases accepted (one after a retry, one refused), delivered, walked through their
statuses by the simulators' own callbacks, and a case Tianjin submits to Beijing. Then
``/metrics`` is scraped (unsigned, as Prometheus does) and every metric name any panel query or
alert rule uses must be among the exported families. PromQL syntax is checked by ``promtool``
(Debian's ``prometheus`` package) where it is on PATH: the rules file as it is, each panel query
as a recording rule; without it, the names are still read by the small tokenizer below.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Gateway, Simulator, default_partner_path, settings_for, wait_until
from tests.test_inbound import TJ_PATH, tianjin_envelope, tianjin_package
from tests.test_status_callbacks_e2e import CALLBACK_PATHS, inbound_auth, post, sample

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "gateway-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
#: series Prometheus makes itself, not the gateway
BUILTIN = {"up"}

# -- reading PromQL: the metric names an expression selects --------------------------------------
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
            "and", "or", "unless", "atan2", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions (followed by
    ``(``), keywords, label names (inside ``{}`` or grouping lists), strings or durations."""
    e = _STRING.sub('""', expr)
    e = _BRACES.sub(" ", e)
    e = _RANGE.sub(" ", e)
    e = _GROUPING.sub(" ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)  # Grafana variables
    names = set()
    for m in _IDENT.finditer(e):
        if e[m.end():].lstrip().startswith("(") or m.group() in KEYWORDS:
            continue
        if m.start() and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # the unit of a number (5m) or an exponent
        names.add(m.group())
    return names


def test_the_tokenizer_reads_what_promql_means() -> None:
    """The reader itself, so the comparison below can fail for the right reason."""
    assert metric_names('sum by (le, partner) (rate(gateway_send_seconds_bucket{partner=~"a|b"}'
                        '[$__rate_interval]))') == {"gateway_send_seconds_bucket"}
    assert metric_names("time() - max by (source) (x_ts) > 7200") == {"x_ts"}
    assert metric_names('a{kind="by"} / on (p) group_left b offset 5m unless c') == {"a", "b", "c"}
    assert metric_names("histogram_quantile(0.95, rate(h_bucket[1e3s]))") == {"h_bucket"}


def dashboard_queries() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            for t in p.get("targets") or ():
                out.append((p["title"], t["expr"]))
            walk(p.get("panels") or [])
    walk(doc["panels"])
    return out


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"]]


def test_dashboard_and_rules_are_well_formed() -> None:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert doc["uid"] and doc["title"] and doc["panels"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    queries = dashboard_queries()
    assert len(queries) >= 15
    for title, expr in queries:
        assert metric_names(expr), f"panel {title!r}: no metric in {expr!r}"
    rules = alert_rules()
    assert len(rules) >= 10
    for r in rules:
        assert r["alert"] and r["expr"] and r["labels"]["severity"] in {"critical", "warning",
                                                                       "info"}
        assert r["annotations"]["summary"]
    prom = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    [job] = [j for j in prom["scrape_configs"] if j["job_name"] == "gateway"]
    assert len(job["static_configs"][0]["targets"]) == 2  # the two compose instances


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed "
                    "(apt-get install prometheus)")
def test_promtool_accepts_the_rules_the_config_and_every_panel_query(tmp_path: Path) -> None:
    def check(*args: str) -> None:
        r = subprocess.run(["promtool", "check", *args], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    check("rules", str(ALERTS))
    config = PROMETHEUS.read_text(encoding="utf-8").replace("/etc/prometheus/alerts.yml",
                                                            str(ALERTS))
    (tmp_path / "prometheus.yml").write_text(config, encoding="utf-8")
    check("config", str(tmp_path / "prometheus.yml"))
    # Grafana's own variables replaced by what Grafana would put there
    recorded = [{"record": f"panel:query_{n}:x",
                 "expr": expr.replace("$__rate_interval", "5m")}
                for n, (_, expr) in enumerate(dashboard_queries())]
    (tmp_path / "panels.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "panels", "rules": recorded}]}), encoding="utf-8")
    check("rules", str(tmp_path / "panels.yml"))


# -- the end-to-end run --------------------------------------------------------------------------

def exported(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every series name /metrics declares (histogram and counter suffixes expanded), with the
    samples it has."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count",
                                                                    "_created"],
                    "summary": ["_sum", "_count", "_created"]}.get(fam.type, [""])
        for s in suffixes:
            out.setdefault(fam.name + s, [])
        for one in fam.samples:
            out.setdefault(one.name, []).append((dict(one.labels), one.value))
    return out


def total(series: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for ls, v in series if all(ls.get(k) == w for k, w in labels.items()))


#: what a label value must never look like: an identity number (18 digits, the last maybe X), a
#: mobile number, a USCC, a run of digits long enough to be a case or receipt number
PERSONAL = [re.compile(p) for p in (r"\d{17}[\dXx]", r"1[3-9]\d{9}", r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}"
                                    r"[0-9A-HJ-NPQRTUWXY]{10}", r"\d{8,}")]


async def test_every_metric_named_by_the_dashboard_and_alerts_is_exported(
        tmp_path: Path, db_url: str) -> None:
    sims = {p: Simulator(p) for p in ("national", "tianjin", "hebei", "city")}
    for s in sims.values():
        await s.__aenter__()
    try:
        urls = {p: s.url(default_partner_path(p)) for p, s in sims.items()}
        urls["city-inbound"] = sims["city"].url(default_partner_path("city-inbound"))
        settings = settings_for(tmp_path, db_url, urls)
        async with Gateway(settings) as gw, aiohttp.ClientSession() as http:
            base = str(gw.server.make_url(""))
            for p in CALLBACK_PATHS:
                await post(http, sims[p].url("/__sim/config"),
                           {"callback_url": base + CALLBACK_PATHS[p],
                            "callback_auth": inbound_auth(gw, p)})
            sims["national"].misbehave("http500", count=1)  # one retry before delivery
            cases, numbers = {}, []
            for name in ("01-person-shanghai-social-security", "13-bundle-tianjin-hebei-enterprise"):
                doc = sample(name)
                numbers.append(doc["applicationNo"])
                status, accepted = await gw.post_case(doc)
                assert status == 202, accepted
                cases[name] = await gw.wait_final(accepted["id"])
            status, refused = await gw.post_case({"applicationNo": "X"})
            assert status in (400, 422), refused
            deliveries = {d["partner"]: d for c in cases.values() for d in c["deliveries"]}
            assert all(d["state"] == "delivered" for d in deliveries.values())
            receipts = [d["receiptNo"] for d in deliveries.values()]
            for p in ("national", "tianjin", "hebei"):
                walked = await post(http, sims[p].url("/__sim/walk"),
                                    {"receipt": deliveries[p]["receiptNo"], "path": "approved"})
                assert all(c["ok"] for c in walked["callbacks"]), walked

            async def finished() -> bool:
                for c in cases.values():
                    _, doc = await gw.get(f"/api/v1/cases/{c['id']}")
                    if any(d["partnerStatus"] != "FINISHED" for d in doc["deliveries"]):
                        return False
                return True
            await wait_until(finished, 15, "every delivery FINISHED")
            async with http.post(base + TJ_PATH, data=tianjin_envelope(tianjin_package()),
                                 headers={"Content-Type": "text/xml; charset=utf-8"}) as r:
                assert r.status == 200, await r.text()
            numbers.append("TJ2026120100000001")

            async with http.get(base + "/metrics") as r:  # unsigned, as Prometheus scrapes
                assert r.status == 200
                text = await r.text()
    finally:
        for s in sims.values():
            await s.__aexit__(None, None, None)

    series = exported(text)
    used: dict[str, set[str]] = {}
    for title, expr in dashboard_queries():
        for n in metric_names(expr):
            used.setdefault(n, set()).add(f"panel {title!r}")
    for rule in alert_rules():
        for n in metric_names(rule["expr"]):
            used.setdefault(n, set()).add(f"alert {rule['alert']}")
    missing = {n: sorted(w) for n, w in used.items() if n not in series and n not in BUILTIN}
    assert not missing, f"named but not exported: {missing}"
    unused = {n for n in series if n.startswith("gateway_") and not n.endswith("_created")
              and n not in used and not n.endswith(("_sum", "_count"))}
    assert not unused, f"exported but on no panel or alert: {sorted(unused)}"

    # the run's events were counted where they happened, in bounded labels
    assert total(series["gateway_cases_accepted_total"], channel="WEB") \
        + total(series["gateway_cases_accepted_total"], channel="APP") \
        + total(series["gateway_cases_accepted_total"], channel="WINDOW") \
        + total(series["gateway_cases_accepted_total"], channel="KIOSK") == 2
    assert total(series["gateway_cases_accepted_total"], scenario="YJS-JJJ-QYQY-001") == 1
    assert total(series["gateway_cases_accepted_total"], scenario="none") == 1
    assert total(series["gateway_cases_total"], result="rejected") == 1
    assert total(series["gateway_delivery_retries_total"], partner="national") == 1
    assert total(series["gateway_send_seconds_count"], partner="hebei") >= 1
    for p in ("national", "tianjin", "hebei"):
        assert total(series["gateway_status_changes_total"], partner=p, stage="completion",
                     status="FINISHED", source="callback") == 1, p
        assert total(series["gateway_status_changes_total"], partner=p, stage="acceptance") >= 1
    assert total(series["gateway_inbound_cases_total"], partner="tianjin", result="accepted") == 1
    assert total(series["gateway_dead_letters"]) == 0

    # no personal data, no case or receipt number, in any label value
    values = {v for s in series.values() for ls, _ in s for v in ls.values()}
    for v in values:
        for pat in PERSONAL:
            assert not pat.search(v), f"label value {v!r} looks like {pat.pattern}"
    for secret in numbers + receipts:
        assert secret not in text, f"{secret} in /metrics"


async def test_a_scheduled_back_flow_walk_is_counted_and_sets_the_lag(
        tmp_path: Path, db_url: str) -> None:
    """The back-flow panels and the lag alert read what the scheduled walk records."""
    from tests.test_backflow import backflow_config, configure
    n = 150
    async with Simulator("national") as national, Simulator("city") as city:
        path = backflow_config(tmp_path, db_url, national, city, page_size=100, interval=30)
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["backflow"]["first_delay"] = 0
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        await configure(national, {"generated": n, "keys": n})
        from gateway.config import load_settings
        async with Gateway(load_settings(path), signer=None) as gw:
            async def scraped() -> dict[str, list[tuple[dict[str, str], float]]] | None:
                async with gw.http.get("/metrics") as r:  # type: ignore[union-attr]
                    got = exported(await r.text())
                done = got.get("gateway_backflow_last_success_timestamp_seconds")
                return got if done else None
            series = await wait_until(scraped, 30, "the walk counted")
    assert total(series["gateway_backflow_records_total"], source="national", result="kept") == n
    [(labels, at)] = series["gateway_backflow_last_success_timestamp_seconds"]
    assert labels == {"source": "national"} and at > 0


async def test_a_scheduled_reconcile_round_counts_its_drift_and_the_changes_it_applies(
        store: Any, aiohttp_server: Any, db_url: str) -> None:
    """The drift panel and alerts read what the scheduled round found, kind by kind."""
    from prometheus_client import generate_latest

    from gateway.contracts import load_contracts
    from gateway.observability.metrics import Metrics
    from gateway.simulators import national
    from gateway.statuses.reconcile_job import reconcile_round
    from tests.test_reconcile import export, populate, settings_for as reconcile_settings
    sim = await aiohttp_server(national.create_app())
    exp = await populate(db_url, 300, drift_every=37)
    await export(sim, generated=300)
    s = reconcile_settings(db_url, str(sim.make_url("/")))
    metrics = Metrics()
    async with aiohttp.ClientSession() as http:
        reports = await reconcile_round(store, s, load_contracts(s).mappings, http, metrics)
    assert reports is not None and exp.behind > 0 and exp.ahead > 0
    series = exported(generate_latest(metrics.registry).decode())
    for kind, n in reports[0].drift.items():
        assert total(series["gateway_reconcile_drift_total"], partner="national", kind=kind) == n
    assert total(series["gateway_reconcile_drift_total"], kind="ahead") == exp.ahead
    assert total(series["gateway_reconcile_drift_total"], kind="missing_at_partner") == exp.missing
    assert total(series["gateway_reconcile_runs_total"], partner="national",
                 result="complete") == 1
    # the missed updates it applied are status changes too, from the reconcile
    assert total(series["gateway_status_changes_total"], partner="national",
                 source="reconcile") == reports[0].repaired["applied"] == exp.behind


async def test_a_back_flow_case_result_is_a_status_change_from_the_export(
        tmp_path: Path, db_url: str) -> None:
    """A CASE_RESULT the scheduled walk applies to a held case counts once in the completion
    stage with source ``export`` (the walks after it read it again: duplicates, not counted)."""
    from gateway.config import load_settings
    from tests.test_backflow import backflow_config, configure
    case = sample("01-person-shanghai-social-security")
    async with Simulator("national") as national, Simulator("city") as city:
        path = backflow_config(tmp_path, db_url, national, city, interval=0.2)
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["backflow"]["first_delay"] = 0
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        async with Gateway(load_settings(path)) as gw:
            status, doc = await gw.post_case(case)
            assert status == 202, doc
            final = await gw.wait_final(doc["id"])
            [d] = [x for x in final["deliveries"] if x["partner"] == "national"]
            await configure(national, {"records": [
                {"kind": "CASE_RESULT", "version": 1, "projectNo": "11NATIONAL0001",
                 "localProjectNo": case["applicationNo"], "receiptNo": d["receiptNo"],
                 "taskCode": "11310115MB2C12345X000134023000001", "resultCode": "1",
                 "finishTime": "2026-03-02 10:00:00"}]})

            async def moved() -> bool:
                _, view = await gw.get(f"/api/v1/cases/{doc['id']}")
                return bool(view["deliveries"][0]["partnerStatus"] == "FINISHED")
            await wait_until(moved, 20, "the case result applied")
            await asyncio.sleep(0.6)  # later walks read the page again
            assert gw.http is not None
            async with gw.http.get("/metrics") as r:
                series = exported(await r.text())
    assert total(series["gateway_status_changes_total"], partner="national", source="export",
                 stage="completion", status="FINISHED") == 1
