"""``gateway mapping scaffold --direction inbound``: the partner's message is the source and
Beijing's schema the target (issue 16: the inbound skeleton was inverted, targeting the
partner's reply), and the tool's refusals are one line without click's usage banner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result

from gateway.cli.mapping import mapping

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
BEIJING = json.loads((SCHEMAS / "beijing" / "case.schema.json").read_text(encoding="utf-8"))


def scaffold(*args: str | Path) -> Result:
    return CliRunner().invoke(mapping, ["scaffold", "--schemas", str(SCHEMAS),
                                        "--mappings", str(ROOT / "mappings"), *map(str, args)])


def skeleton(text: str) -> tuple[dict[str, Any], list[str]]:
    """The YAML document and the source lines listed in its comments."""
    lines = text.splitlines()
    start = lines.index("# The partner's fields (the source):")
    source = []
    for ln in lines[start + 1:]:
        if not ln.startswith("#   "):
            break
        source.append(ln[4:].split(":")[0].strip())
    return yaml.safe_load(text), source


def test_inbound_skeleton_of_a_partner_wsdl_targets_beijings_case() -> None:
    r = scaffold("--schema", SCHEMAS / "tianjin" / "InboundService.wsdl", "--direction", "inbound")
    assert r.exit_code == 0, r.output
    doc, source = skeleton(r.output)
    assert doc["direction"] == "inbound"
    assert doc["target"] == {"kind": "json", "schema": "beijing/case.schema.json"}
    # every top-level field of the unified application, each a placeholder to fill
    assert list(doc["fields"]) == list(BEIJING["properties"])
    assert doc["fields"]["applicationNo"] is None
    # the source is what Tianjin sends (submitCase), not what Beijing answers
    assert source == ["authCode", "xmlData"]
    assert "# source: the request element {http://exchange.zwfw.tj.example/}submitCase" in r.output


def test_inbound_skeleton_of_a_reply_lists_the_reply_fields() -> None:
    r = scaffold("--schema", SCHEMAS / "tianjin" / "InboundService.wsdl", "--direction", "inbound",
                 "--reply", "--target", SCHEMAS / "city" / "backflow-batch.schema.json")
    assert r.exit_code == 0, r.output
    doc, source = skeleton(r.output)
    assert source == ["return"]
    assert doc["target"]["schema"] == "city/backflow-batch.schema.json"


def test_inbound_skeleton_of_an_xsd_element_lists_its_fields_as_source() -> None:
    r = scaffold("--schema", SCHEMAS / "hebei" / "case.xsd", "--element",
                 "{http://zwfw.hebei.example/exchange/v1}SubmitCaseRequest",
                 "--direction", "inbound")
    assert r.exit_code == 0, r.output
    doc, source = skeleton(r.output)
    assert doc["target"]["schema"] == "beijing/case.schema.json"
    assert source[0] == "case" and "resultCode" not in source


def test_an_untouched_inbound_skeleton_is_not_a_mapping_that_passes(tmp_path: Path) -> None:
    r = scaffold("--schema", SCHEMAS / "hebei" / "InboundService.wsdl", "--direction", "inbound",
                 "--operation", "SubmitCase")
    assert r.exit_code == 0, r.output
    folder = tmp_path / "mappings" / "hebei"
    folder.mkdir(parents=True)
    (folder / "case-inbound-draft.yaml").write_text(r.output, encoding="utf-8")
    check = CliRunner().invoke(mapping, ["check", "--mappings", str(tmp_path / "mappings"),
                                         "--schemas", str(SCHEMAS)])
    assert check.exit_code != 0, check.output
    assert "applicationNo" in check.output


def test_refusals_are_one_line_without_the_usage_banner(tmp_path: Path) -> None:
    missing = scaffold("--schema", tmp_path / "nowhere.wsdl")
    assert missing.exit_code == 2
    assert missing.output.strip() == f"Error: --schema {tmp_path / 'nowhere.wsdl'}: no such file"
    wrong = scaffold("--schema", SCHEMAS / "tianjin" / "package.xsd", "--target",
                     SCHEMAS / "beijing" / "case.schema.json")
    assert wrong.exit_code == 2 and "Usage:" not in wrong.output
    assert "--target and --reply are for --direction inbound" in wrong.output
    several = scaffold("--schema", SCHEMAS / "tianjin" / "ExchangeService.wsdl",
                       "--direction", "inbound", "--operation", "noSuchOperation")
    assert several.exit_code == 2 and "Usage:" not in several.output
    assert "no operation 'noSuchOperation'" in several.output
