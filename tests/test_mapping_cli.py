"""`gateway mapping …` tools, driven through click as an engineer would run them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from gateway.cli.mapping import mapping

ROOT = Path(__file__).resolve().parent.parent
MAP, SCH = str(ROOT / "mappings"), str(ROOT / "schemas")
WSDL = ROOT / "tests" / "fixtures" / "wsdl"
SAMPLE2 = str(ROOT / "samples" / "cases" / "02-company-bundle-beijing-guangdong.json")


def run(*args: str) -> Result:
    return CliRunner().invoke(mapping, list(args), catch_exceptions=False)


def write(p: Path, text: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def test_check_shipped_mappings_is_clean() -> None:
    r = run("check", "--mappings", MAP, "--schemas", SCH)
    assert r.exit_code == 0, r.output
    assert "0 error(s)" in r.output


def test_check_reports_unmapped_required_untranslatable_codes_and_type_mismatch(tmp_path: Path) -> None:
    write(tmp_path / "codes" / "ch.yaml", 'map: {"WEB": "1", "APP": "2"}\n')
    write(tmp_path / "x" / "m.yaml", """
        version: "1"
        source: {schema: beijing/case.schema.json}
        target: {kind: json, schema: national/case-submit.schema.json}
        fields:
          projectNo: applicationNo
          applyFrom: {from: channel, code: ch}
          userProp: {const: "1"}
    """)
    r = run("check", "--mappings", str(tmp_path), "--schemas", SCH)
    assert r.exit_code == 1
    out = r.output
    assert "m.yaml:4: error: required target field taskCode is not mapped" in out
    assert "m.yaml:6: error: applyFrom: code table ch cannot translate source code(s) WINDOW, KIOSK" in out
    assert "m.yaml:7: error: userProp: type mismatch: constant '1' does not fit enum 1|2|9" in out


def test_check_broken_mapping_exits_2_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "x" / "m.yaml", 'version: "1"\ntarget: {kind: json}\nfields:\n  a: {pipe: [x]}\n')
    r = CliRunner().invoke(mapping, ["check", "--mappings", str(tmp_path), "--schemas", SCH])
    assert r.exit_code == 2
    assert "m.yaml:4: a value needs exactly one of from" in r.output


def test_test_command_passes_on_shipped_goldens_and_diffs_on_failure(tmp_path: Path) -> None:
    r = run("test", "national/case-submit", "--mappings", MAP, "--schemas", SCH)
    assert r.exit_code == 0, r.output
    assert "0 failed" in r.output
    write(tmp_path / "p" / "m.yaml", 'version: "1"\ntarget: {kind: json}\nfields: {a: x}\n')
    (tmp_path / "tests" / "p" / "m").mkdir(parents=True)
    (tmp_path / "tests" / "p" / "m" / "one.input.json").write_text('{"x": "got"}')
    (tmp_path / "tests" / "p" / "m" / "one.expected.json").write_text('{"a": "want"}')
    r = run("test", "--mappings", str(tmp_path), "--schemas", SCH)
    assert r.exit_code == 1
    assert 'FAIL p/m:one' in r.output
    assert '-  "a": "want"' in r.output and '+  "a": "got"' in r.output


def test_render_picks_the_first_item_outside_beijing() -> None:
    r = run("render", "national/case-submit", SAMPLE2, "--mappings", MAP, "--schemas", SCH)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["areaCode"] == "440305000000" and doc["userProp"] == 2
    r = run("render", "national/case-submit", SAMPLE2, "--item", "1", "--mappings", MAP,
            "--schemas", SCH)
    assert json.loads(r.output)["areaCode"] == "110108000000"


def test_render_xml_pretty() -> None:
    fx = ROOT / "tests" / "fixtures" / "xml"
    r = run("render", "example/order", SAMPLE2, "--mappings", str(fx / "mappings"),
            "--schemas", str(fx / "schemas"))
    assert r.exit_code == 0, r.output
    assert r.output.startswith('<order xmlns="urn:example:order">\n  <orderNo>')


def test_coverage_lists_produced_missing_required() -> None:
    r = run("coverage", "national/case-inbound", "--mappings", MAP, "--schemas", SCH)
    assert r.exit_code == 0, r.output
    assert "produced  required  applicant.certNo" in r.output
    assert "-         optional  formData" in r.output
    assert "0 required field(s) not produced" in r.output


# ---- scaffold ---------------------------------------------------------------------------------

def test_scaffold_json_schema() -> None:
    r = run("scaffold", "--schema", str(ROOT / "schemas/national/case-submit.schema.json"),
            "--schemas", SCH)
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(r.output)
    assert doc["target"] == {"kind": "json", "schema": "national/case-submit.schema.json"}
    assert "userProp" in doc["fields"] and "materialName" in doc["fields"]["materials"]["fields"]
    assert "userProp: null                       # enum 1|2|9 1..1 required" in r.output


def test_scaffold_wsdl_document_soap11_imports_includes_header() -> None:
    wsdl = str(WSDL / "doc11" / "service.wsdl")
    r = CliRunner().invoke(mapping, ["scaffold", "--schema", wsdl])
    assert r.exit_code == 2 and "Ping, PlaceOrder" in r.output
    r = run("scaffold", "--schema", wsdl, "--operation", "PlaceOrder", "--schemas",
            str(WSDL / "doc11"))
    assert r.exit_code == 0, r.output
    out = r.output
    assert "SOAP 1.1, document style, soapAction urn:test:PlaceOrder" in out
    assert "SOAP header part auth: element {urn:test:order:v1}Auth" in out
    doc = yaml.safe_load(out)
    assert doc["target"] == {"kind": "xml", "schema": "types.xsd",
                             "element": "{urn:test:order:v1}PlaceOrder"}
    buyer = doc["fields"]["buyer"]["fields"]           # from the imported second namespace
    assert set(buyer) == {"@kind", "name", "idNo"} and "text" in buyer["name"]
    assert "each" in doc["fields"]["line"] and doc["fields"]["line"]["each"] is None  # unbounded
    assert "qty: null                        # Qty 1..1 required" in out   # included type


def test_scaffold_wsdl_rpc_soap12_with_catalog_import() -> None:
    """rpc/literal: the wrapper named after the operation is the target (the WSDL's inline
    schemas plus the wrapper the rpc rules define: gateway.protocols.wsdl_types)."""
    r = run("scaffold", "--schema", str(WSDL / "rpc12.wsdl"))
    assert r.exit_code == 0, r.output
    assert "SOAP 1.2, rpc style" in r.output
    assert "rpc/literal: the wrapper {urn:test:rpc}submit" in r.output
    doc = yaml.safe_load(r.output)
    assert set(doc["fields"]) == {"caseNo", "applicant", "scan"}
    assert "@contentType" in doc["fields"]["scan"]["fields"]          # xmlmime from the catalog
    assert doc["target"]["element"] == "{urn:test:rpc}submit"
    assert doc["target"]["schema"].endswith("rpc12.wsdl")


def test_scaffold_never_fetches_unknown_remote_schemas() -> None:
    r = CliRunner().invoke(mapping, ["scaffold", "--schema", str(WSDL / "remote-import.wsdl")])
    assert r.exit_code == 2
    assert "refusing to fetch http://schemas.example.invalid/elsewhere.xsd" in r.output


def test_scaffold_xsd_needs_an_element_when_several(tmp_path: Path) -> None:
    xsd = str(WSDL / "doc11" / "types.xsd")
    r = CliRunner().invoke(mapping, ["scaffold", "--schema", xsd])
    assert r.exit_code == 2 and "{urn:test:order:v1}PlaceOrder" in r.output
    out = tmp_path / "new.yaml"
    r = run("scaffold", "--schema", xsd, "--element", "PlaceOrder", "-o", str(out))
    assert r.exit_code == 0 and out.exists()
    assert yaml.safe_load(out.read_text())["fields"]["express"] is None
    r = CliRunner().invoke(mapping, ["scaffold", "--schema", xsd, "--element", "PlaceOrder", "-o", str(out)])
    assert r.exit_code == 2 and "not overwriting" in r.output


def test_check_flags_code_values_that_do_not_fit_an_xsd_type(tmp_path: Path) -> None:
    fx = ROOT / "tests" / "fixtures" / "xml" / "schemas"
    write(tmp_path / "codes" / "qty.yaml", 'map: {"WEB": 1, "APP": "many"}\n')
    write(tmp_path / "x" / "m.yaml", """
        version: "1"
        target: {kind: xml, schema: order.xsd, element: order}
        fields:
          orderNo: applicationNo
          customer: {fields: {name: applicant.name, idNo: applicant.certNo}}
          line: {each: items, fields: {"@no": 1, code: itemNo, qty: {from: /channel, code: qty}}}
    """)
    r = run("check", "--mappings", str(tmp_path), "--schemas", str(fx))
    assert r.exit_code == 1
    assert ("m.yaml:6: error: line[].qty: type mismatch: code table qty yields 'many', "
            "not valid xs:int") in r.output
