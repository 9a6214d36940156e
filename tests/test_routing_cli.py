"""``gateway route explain`` / ``check`` through click's runner; output checked by content."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from gateway.cli.route import route

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "cases" / "02-company-bundle-beijing-guangdong.json"

# The shipped mappings and schemas: `route check` loads them with the real registry.
PARTNERS_YAML = """
home_region: "110000"
mappings_dir: {mappings}
schemas_dir: {schemas}
partners:
  national:
    protocol: rest-json
    url: http://127.0.0.1:1/n
    mapping: national/case-submit
    items_per_message: one
  tianjin:
    protocol: soap-xml-string
    url: http://127.0.0.1:1/t
    mapping: tianjin/case-submit
    mapping_version: "1"
    items_per_message: many
"""


def write_config(tmp_path: Path, routes: str) -> Path:
    text = PARTNERS_YAML.format(mappings=ROOT / "mappings", schemas=ROOT / "schemas") + \
        "routes:\n" + textwrap.indent(
        textwrap.dedent(routes), "  ")
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


ROUTES = """
- name: beijing-stays-home
  match: {handling_region: "11"}
  target: home
- name: tianjin
  match: {handling_region: "12"}
  target: tianjin
- name: tianjin-licences
  match: {handling_region: "12", basic_code: "LIC*"}
  target: tianjin
  mapping: tianjin/licence
- name: cross-province-via-national
  match: {}
  target: national
"""


def run(*args: str) -> Any:
    return CliRunner().invoke(route, list(args), catch_exceptions=False)


def test_check_shipped_config() -> None:
    r = run("check", "--config", str(ROOT / "config" / "gateway.yaml"))
    assert r.exit_code == 0, r.output
    assert "beijing-stays-home -> home" in r.output
    assert "builtin:home-region" in r.output
    assert "OK:" in r.output and "no ties" in r.output
    # the shipped mappings, really loaded: three partners' case mappings, the city platform's
    # status push, its back-flow batches and its inbound cases, and the three partners' status
    # notifications of their inbound cases (partners no rule routes cases to, on purpose: only
    # status pushes, back-flow batches, inbound cases and their statuses go there, so none is
    # warned about)
    assert "mappings: 9 referenced, 9 found" in r.output
    assert "partner city" not in r.output and "-status is configured" not in r.output


def test_check_reports_a_tie_with_both_rules(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ROUTES + """
- name: tianjin-again
  match: {handling_region: "120000"}
  target: national
""")
    r = run("check", "--config", str(cfg))
    assert r.exit_code == 1
    assert "routes[4] 'tianjin-again'" in r.output
    assert "ties with routes[1] 'tianjin'" in r.output
    assert str(cfg) in r.output


def test_check_reports_an_unknown_partner(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, """
- name: to-shanghai
  match: {handling_region: "31"}
  target: shanghai
""")
    r = run("check", "--config", str(cfg))
    assert r.exit_code == 1
    assert "routes[0] 'to-shanghai'.target" in r.output and "unknown partner 'shanghai'" in r.output


def test_check_warns_about_unused_partner_and_missing_catch_all(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, """
- name: tianjin
  match: {handling_region: "12"}
  target: tianjin
""")
    r = run("check", "--config", str(cfg))
    assert r.exit_code == 0, r.output
    assert "partner national is configured but no rule routes to it" in r.output
    assert "no catch-all rule" in r.output


def test_check_loads_every_referenced_mapping(tmp_path: Path) -> None:
    """The real registry (the shipped mappings): a rule naming a mapping that is not there is
    reported with the registry's own reason."""
    r = run("check", "--config", str(write_config(tmp_path, ROUTES)))
    assert r.exit_code == 1
    assert "tianjin-licences: mapping tianjin/licence not found (" in r.output
    assert "unknown mapping 'tianjin/licence' (known: " in r.output
    assert "mappings: 3 referenced, 2 found" in r.output


def test_check_names_a_missing_mapping_version(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, ROUTES.replace("mapping: tianjin/licence",
                                                "mapping: tianjin/case-submit\n"
                                                "  mapping_version: \"9\""))
    r = run("check", "--config", str(cfg))
    assert r.exit_code == 1
    assert "tianjin-licences: mapping tianjin/case-submit@9 not found (" in r.output
    assert "mapping tianjin/case-submit has no version '9' (known: 1)" in r.output
    assert "mappings: 3 referenced, 2 found" in r.output


def test_explain_sample_bundle() -> None:
    r = run("explain", str(SAMPLE), "--config", str(ROOT / "config" / "gateway.yaml"))
    assert r.exit_code == 0, r.output
    item1, item2 = r.output.split("item 2 at")
    assert "MATCH beijing-stays-home" in item1 and "chosen: beijing-stays-home -> home" in item1
    assert "beats 'cross-province-via-national'" in item1
    assert "no    beijing-stays-home" in item2
    assert "handling_region 440305000000 not in 11 (province)" in item2
    assert "chosen: cross-province-via-national -> national, mapping national/case-submit" in item2
    assert "national:440305000000:2" in r.output
    assert "home items: 1" in r.output


def test_explain_names_the_deciding_dimension(tmp_path: Path) -> None:
    case = json.loads(SAMPLE.read_text(encoding="utf-8"))
    case["items"][1].update(handlingRegion="120116", basicCode="LIC-001")
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case, ensure_ascii=False), encoding="utf-8")
    r = run("explain", str(path), "--config", str(write_config(tmp_path, ROUTES)))
    assert r.exit_code == 0, r.output
    assert "chosen: tianjin-licences -> tianjin, mapping tianjin/licence" in r.output
    assert "beats 'tianjin' (handling_region=province) on basic_code" in r.output


def test_explain_no_route_exits_1(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, """
- name: tianjin
  match: {handling_region: "12"}
  target: tianjin
""")
    r = run("explain", str(SAMPLE), "--config", str(cfg))
    assert r.exit_code == 1
    assert "NO ROUTE: item 2 (handling region 440305000000) matches no route rule" in r.output
    assert "tianjin: handling_region 440305000000 not in 12 (province)" in r.output


def test_explain_json() -> None:
    r = run("explain", str(SAMPLE), "--json", "--config", str(ROOT / "config" / "gateway.yaml"))
    doc = json.loads(r.output)
    assert doc["routable"] is True
    assert [(i["itemNo"], i["chosen"], i["target"]) for i in doc["items"]] == [
        ("1", "beijing-stays-home", "home"), ("2", "cross-province-via-national", "national")]


def test_explain_refuses_an_invalid_case(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"items": []}), encoding="utf-8")
    r = run("explain", str(path), "--config", str(ROOT / "config" / "gateway.yaml"))
    assert r.exit_code == 1
    assert "is not a valid Beijing case" in r.output
