"""``gateway route explain`` / ``check`` through click's runner; output checked by content."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import gateway.mapping
from gateway.routing.cli import route

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "cases" / "02-company-bundle-beijing-guangdong.json"

PARTNERS_YAML = """
home_region: "110000"
schemas_dir: {schemas}
partners:
  national:
    protocol: rest-json
    url: http://127.0.0.1:1/n
    mapping: national/case-submit
    items_per_message: one
  tianjin:
    protocol: soap11-string
    url: http://127.0.0.1:1/t
    mapping: tianjin/case
    mapping_version: "1"
    items_per_message: many
"""


def write_config(tmp_path: Path, routes: str) -> Path:
    text = PARTNERS_YAML.format(schemas=ROOT / "schemas") + "routes:\n" + textwrap.indent(
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


class AnyRegistry:
    """A registry that knows every mapping: these tests are about routes, not mapping files."""

    @classmethod
    def load(cls, mappings_dir: Path, schemas_dir: Path) -> AnyRegistry:
        return cls()

    def get(self, name: str, version: str | None = None) -> object:
        return object()


@pytest.fixture
def any_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.mapping, "MappingRegistry", AnyRegistry, raising=False)


@pytest.mark.usefixtures("any_registry")
def test_check_shipped_config() -> None:
    r = run("check", "--config", str(ROOT / "config" / "gateway.yaml"))
    assert r.exit_code == 0, r.output
    assert "beijing-stays-home -> home" in r.output
    assert "builtin:home-region" in r.output
    assert "OK:" in r.output and "no ties" in r.output


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


@pytest.mark.usefixtures("any_registry")
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


class FakeRegistry:
    """Stands in for gateway.mapping.MappingRegistry (same load/get interface)."""

    known = {("national/case-submit", None), ("tianjin/case", "1")}

    @classmethod
    def load(cls, mappings_dir: Path, schemas_dir: Path) -> FakeRegistry:
        return cls()

    def get(self, name: str, version: str | None) -> object:
        if (name, version) not in self.known:
            raise KeyError(f"no mapping {name}")
        return object()


def test_check_uses_the_mapping_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gateway.mapping, "MappingRegistry", FakeRegistry, raising=False)
    r = run("check", "--config", str(write_config(tmp_path, ROUTES)))
    assert r.exit_code == 1
    assert "tianjin-licences: mapping tianjin/licence not found" in r.output
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
