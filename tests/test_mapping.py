"""The mapping engine: public interface, JSON and XML targets, nested documents, registry
versions and reload, and load-time error messages (file, line, reason)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import gateway.mapping as mapping_pkg
from gateway.errors import ConfigError, PermanentError
from gateway.mapping import CompiledMapping, MappingError, MappingRegistry, OutputInvalid
from gateway.mapping.xmlsource import parse_document

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
FIX = ROOT / "tests" / "fixtures" / "xml"
CTX = {"caseId": "C1", "deliveryId": "D1", "idempotencyKey": "K1", "partner": "x",
       "now": "2026-11-30T10:00:00+08:00"}


def sample(n: str = "01") -> dict[str, Any]:
    path = next((ROOT / "samples" / "cases").glob(f"{n}-*.json"))
    return json.loads(path.read_text(encoding="utf-8"))


def write(tmp: Path, rel: str, text: str) -> Path:
    p = tmp / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def load_one(tmp: Path, body: str, name: str = "p/m", schemas: Path = SCHEMAS) -> CompiledMapping:
    write(tmp, f"m/{name}.yaml", body)
    return MappingRegistry.load(tmp / "m", schemas).get(name)


def load_error(tmp: Path, body: str, name: str = "p/m") -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        load_one(tmp, body, name)
    return ei.value


# ---- public surface ----------------------------------------------------------------------------

def test_public_surface() -> None:
    assert set(mapping_pkg.__all__) == {"CompiledMapping", "MappingError", "MappingRegistry",
                                        "OutputInvalid"}
    assert issubclass(MappingError, PermanentError) and issubclass(OutputInvalid, MappingError)


def test_registry_interface_on_shipped_mappings() -> None:
    reg = MappingRegistry.load(ROOT / "mappings", SCHEMAS)
    assert "national/case-submit" in reg.names()
    m = reg.get("national/case-submit")
    assert (m.name, m.version, m.target_kind, m.direction) == \
        ("national/case-submit", "1", "json", "outbound")
    assert reg.versions("national/case-submit") == ["1"]
    with pytest.raises(ConfigError, match="national/case-submit"):
        reg.get("nope")
    with pytest.raises(ConfigError, match="no version '9'"):
        reg.get("national/case-submit", "9")


# ---- JSON target -------------------------------------------------------------------------------

def test_json_values_transforms_conditions(tmp_path: Path) -> None:
    m = load_one(tmp_path, """
        version: "1"
        source: {schema: beijing/case.schema.json}
        target: {kind: json}
        let: {item: "items[0]"}
        fields:
          no: {concat: [{const: "11"}, applicationNo], sep: "-"}
          masked: {from: applicant.certNo, pipe: [{mask: {keep_start: 3, keep_end: 2}}]}
          when: {from: submitTime, pipe: [{datetime: yyyyMMddHHmmss}]}
          ms: {from: submitTime, pipe: [{datetime: {out: epoch_ms}}]}
          area6: {from: $item.handlingRegion, pipe: [region12, region6]}
          short: {from: $item.itemName, pipe: [{maxlen: 2}]}
          gbk: {from: applicant.name, pipe: [{maxbytes: {n: 4, encoding: GBK}}]}
          pages: {from: "materials[1].pages", pipe: [{number: {decimals: 2}}]}
          kind: {if: {in: [applicant.type, [LEGAL_PERSON, OTHER]]}, then: {const: org}, else: {const: person}}
          none: {from: agent.name, when: {exists: agent}}
          dflt: {from: agent.name, default: n/a}
          who: $caseId
          list: {each: materials, where: {exists: fileRef}, value: materialCode}
          nested: {fields: {a: applicant.name, b: {const: [1, 2]}}}
    """)
    out = m.render(sample("01"), CTX)
    assert out == {
        "no": "11-BJ2026113000000001", "masked": "110*************39",
        "when": "20261130091500", "ms": 1796001300000, "area6": "310115", "short": "养老",
        "gbk": "测试", "pages": "2.00", "kind": "person",
        "dflt": "n/a", "who": "C1", "list": ["M002"],
        "nested": {"a": "测试甲", "b": [1, 2]},
    }
    assert "none" not in out


def test_untranslatable_code_is_a_permanent_mapping_error(tmp_path: Path) -> None:
    write(tmp_path, "m/codes/t.yaml", 'map: {"A": "1"}\n')
    m = load_one(tmp_path, """
        version: "1"
        target: {kind: json}
        fields:
          x: {from: channel, code: t}
          y: {from: missing, required: true}
    """)
    with pytest.raises(MappingError) as ei:
        m.render({"channel": "B"}, CTX)
    assert ei.value.path == "x" and "'B' is not in table t" in str(ei.value)
    with pytest.raises(MappingError, match="y: required value is missing"):
        m.render({"channel": "A"}, CTX)


def test_bad_date_names_the_target_path(tmp_path: Path) -> None:
    m = load_one(tmp_path, """
        version: "1"
        target: {kind: json}
        fields: {d: {from: t, pipe: [{datetime: "yyyy-MM-dd"}]}}
    """)
    with pytest.raises(MappingError, match="^d: "):
        m.render({"t": "not a date"}, CTX)


def test_validate_output_names_each_failing_path() -> None:
    reg = MappingRegistry.load(ROOT / "mappings", SCHEMAS)
    m = reg.get("national/case-submit")
    out = m.render(sample("01"), CTX)
    out["areaCode"] = "31"
    out["materials"][1]["materialName"] = 5
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(out)
    paths = {p.path for p in ei.value.problems}
    assert paths == {"/areaCode", "/materials/1/materialName"}
    assert "/areaCode" in str(ei.value)


# ---- XML target --------------------------------------------------------------------------------

def test_xml_worked_example_of_the_readme() -> None:
    reg = MappingRegistry.load(FIX / "mappings", FIX / "schemas")
    m = reg.get("example/order")
    assert m.target_kind == "xml"
    el = m.render(sample("01"), CTX)
    m.validate_output(el)
    ns = "{urn:example:order}"
    assert [etree.QName(c).localname for c in el] == ["orderNo", "urgent", "customer", "line"]
    assert el.findtext(f"{ns}urgent") == "false"
    assert el.findtext(f"{ns}customer/{ns}idNo") == "110105********1239"
    assert el.find(f"{ns}line").get("no") == "1"


def test_xml_repeated_elements_follow_the_source_and_invalid_output_is_reported() -> None:
    reg = MappingRegistry.load(FIX / "mappings", FIX / "schemas")
    m = reg.get("example/order")
    el = m.render(sample("02"), CTX)
    assert len(el.findall("{urn:example:order}line")) == 2
    el.remove(el.find("{urn:example:order}customer"))
    with pytest.raises(OutputInvalid, match="customer"):
        m.validate_output(el)


def test_xml_unknown_child_is_a_load_error(tmp_path: Path) -> None:
    write(tmp_path, "s/order.xsd", (FIX / "schemas" / "order.xsd").read_text())
    write(tmp_path, "m/p/m.yaml", """
        version: "1"
        target: {kind: xml, schema: order.xsd, element: order}
        fields:
          orderNo: applicationNo
          ordreNo: applicationNo
    """)
    with pytest.raises(ConfigError) as ei:
        MappingRegistry.load(tmp_path / "m", tmp_path / "s")
    e = ei.value
    assert e.file and e.file.endswith("m.yaml") and e.line == 5
    assert "no child 'ordreNo'" in e.reason and "orderNo" in e.reason


def test_nested_document_gbk_with_character_references(tmp_path: Path) -> None:
    m = load_one(tmp_path, """
        version: "1"
        target: {kind: json}
        fields:
          authCode: {const: secret}
          xmlData:
            document:
              root: PACKAGE
              encoding: GBK
              fields:
                PACKAGEHEAD: {fields: {SJBBH: $idempotencyKey}}
                DATA:
                  fields:
                    RECORD:
                      each: items
                      fields:
                        SBLSH: /applicationNo
                        SQRMC: /applicant.name
    """)
    case = sample("01")
    case["applicant"]["name"] = "测试𠀀甲"          # U+20000 is not in GBK
    out = m.render(case, CTX)
    text = out["xmlData"]
    assert text.startswith('<?xml version="1.0" encoding="GBK"?><PACKAGE>')
    assert "&#131072;" in text
    root = parse_document(text)
    assert root.findtext("DATA/RECORD/SQRMC") == "测试𠀀甲"
    assert root.findtext("PACKAGEHEAD/SJBBH") == "K1"


# ---- inbound -----------------------------------------------------------------------------------

def test_inbound_from_an_xml_element_and_an_embedded_document(tmp_path: Path) -> None:
    m = load_one(tmp_path, """
        version: "1"
        direction: inbound
        target: {kind: json}
        let:
          pkg: {from: xmlData, pipe: [xml]}
        fields:
          auth: authCode
          numbers: {each: $pkg.PACKAGE.DATA.RECORD, value: SBLSH}
          first: $pkg.PACKAGE.DATA.RECORD[0].SBLSH
    """)
    inner = '<?xml version="1.0" encoding="GBK"?><PACKAGE><DATA><RECORD><SBLSH>A1</SBLSH>' \
            '</RECORD></DATA></PACKAGE>'
    outer = etree.Element("{urn:t}submitCase")
    etree.SubElement(outer, "authCode").text = "secret"
    etree.SubElement(outer, "xmlData").text = inner
    assert m.render(outer, CTX) == {"auth": "secret", "numbers": ["A1"], "first": "A1"}


# ---- versions and reload -----------------------------------------------------------------------

def test_versions_coexist_and_latest_wins(tmp_path: Path) -> None:
    body = 'version: "{v}"\ntarget: {{kind: json}}\nfields: {{v: {{const: "{v}"}}}}\n'
    write(tmp_path, "m/p/m.yaml", body.format(v="1"))
    write(tmp_path, "m/p/m.v2.yaml", body.format(v="2"))
    write(tmp_path, "m/p/m.v10.yaml", body.format(v="10"))
    reg = MappingRegistry.load(tmp_path / "m", SCHEMAS)
    assert reg.versions("p/m") == ["1", "2", "10"]
    assert reg.get("p/m").render({}, CTX) == {"v": "10"}
    assert reg.get("p/m", "2").render({}, CTX) == {"v": "2"}


def test_failed_reload_raises_and_leaves_the_old_registry_usable(tmp_path: Path) -> None:
    write(tmp_path, "m/p/m.yaml", 'version: "1"\ntarget: {kind: json}\nfields: {a: x}\n')
    live = MappingRegistry.load(tmp_path / "m", SCHEMAS)
    write(tmp_path, "m/p/m.yaml", 'version: "1"\ntarget: {kind: json}\nfields: {a: {bogus: 1}}\n')
    with pytest.raises(ConfigError):
        live = MappingRegistry.load(tmp_path / "m", SCHEMAS)
    assert live.get("p/m").render({"x": 1}, CTX) == {"a": 1}


# ---- load-time errors, checked by content ------------------------------------------------------

@pytest.mark.parametrize("body, line, reason", [
    ("""
     version: "1"
     source: {schema: beijing/case.schema.json}
     target: {kind: json}
     fields:
       a: applicant.nmae
     """, 5, "unknown source path 'applicant.nmae': no field 'nmae'"),
    ("""
     version: "1"
     target: {kind: json}
     fields:
       a: {from: x, pipe: [frobnicate]}
     """, 4, "unknown transform 'frobnicate'"),
    ("""
     version: "1"
     target: {kind: json}
     fields:
       a: x
       b:
         from: y
         code: no-such-table
     """, 7, "unknown code table 'no-such-table'"),
    ("""
     version: "1"
     target: {kind: json, schema: national/case-submit.schema.json}
     fields:
       projectNo: x
       projectNumber: y
     """, 5, "target has no field 'projectNumber'"),
    ("""
     version: 1
     target: {kind: json}
     fields: {}
     """, 1, "version must be a quoted dotted number"),
    ("""
     version: "1"
     target: {kind: json}
     fields:
       a: {from: x, pipe: [{maxlen: -3}]}
     """, 4, "transform maxlen: maxlen takes a non-negative integer"),
    ("""
     version: "1"
     target: {kind: json}
     fields:
       a: $tenant
     """, 4, "unknown context or let name $tenant"),
    ("""
     version: "1"
     target: {kind: json}
     fields:
       a: {from: x, frm: y}
     """, 4, "unknown key(s) frm"),
    ("""
     version: "1"
     target: {kind: json}
     fields:
       a: {from: x
     """, 5, "not valid YAML"),
    ("""
     version: "1"
     source: {schema: beijing/case.schema.json}
     target: {kind: json}
     fields:
       a: items.itemName
     """, 5, "items is a list"),
    ("""
     version: "1"
     target: {kind: json}
     fields:
       a: {from: x, decode: national-user-prop}
       b: x
       a: y
     """, 6, "duplicate key 'a'"),
])
def test_broken_mapping_errors_name_file_line_reason(tmp_path: Path, body: str, line: int,
                                                     reason: str) -> None:
    (tmp_path / "m" / "codes").mkdir(parents=True)
    (tmp_path / "m" / "codes" / "national-user-prop.yaml").write_text('map: {"A": 1}\n')
    e = load_error(tmp_path, body)
    assert e.file is not None and e.file.endswith("m.yaml"), e
    assert e.line == line, str(e)
    assert reason in e.reason, str(e)
    assert str(e).startswith(f"{e.file}:{line}: ")


def test_code_table_errors(tmp_path: Path) -> None:
    write(tmp_path, "m/codes/t.yaml", "map:\n  A: 1\n  001: 2\n")
    e = load_error(tmp_path, 'version: "1"\ntarget: {kind: json}\nfields: {}\n')
    assert e.file and e.file.endswith("t.yaml") and e.line == 3 and "must be quoted" in e.reason


def test_decode_needs_a_one_to_one_table(tmp_path: Path) -> None:
    write(tmp_path, "m/codes/t.yaml", 'map: {"A": 1, "B": 1}\n')
    e = load_error(tmp_path, 'version: "1"\ntarget: {kind: json}\nfields:\n  a: {from: x, decode: t}\n')
    assert e.line == 4 and "not one-to-one" in e.reason


def test_xml_render_into_a_parent_element() -> None:
    reg = MappingRegistry.load(FIX / "mappings", FIX / "schemas")
    env = etree.Element("{http://www.w3.org/2003/05/soap-envelope}Envelope")
    body = etree.SubElement(env, "{http://www.w3.org/2003/05/soap-envelope}Body")
    el = reg.get("example/order").render(sample("01"), CTX, parent=body)
    assert el.getparent() is body and etree.QName(el).localname == "order"
    reg.get("example/order").validate_output(el)


def test_status_callback_rejects_an_unknown_status() -> None:
    reg = MappingRegistry.load(ROOT / "mappings", SCHEMAS)
    m = reg.get("national/status-callback")
    push = {"projectNo": "11BJ2026113000000001", "taskCode": "T", "proStatus": "ALMOST_DONE",
            "statusTime": "2026-11-30 11:20:00"}
    with pytest.raises(MappingError, match="status: code 'ALMOST_DONE' is not in table status-exchange"):
        m.render(push, CTX)
    push["proStatus"] = "97"
    assert m.render(push, CTX)["status"] == "NOT_ACCEPTED"


def test_readme_worked_example_is_the_tested_fixture() -> None:
    """The XML example engineers copy from mappings/README.md is the one this suite runs."""
    readme = (ROOT / "mappings" / "README.md").read_text(encoding="utf-8")
    fixture = (FIX / "mappings" / "example" / "order.yaml").read_text(encoding="utf-8")
    body = fixture.split("\n", 1)[1]                      # minus the fixture's own comment line
    assert body.strip() in readme
    xsd = (FIX / "schemas" / "order.xsd").read_text(encoding="utf-8")
    assert xsd.split("\n", 1)[1].strip() in readme


def test_each_over_a_non_list_is_a_load_error(tmp_path: Path) -> None:
    write(tmp_path, "s/order.xsd", (FIX / "schemas" / "order.xsd").read_text())
    write(tmp_path, "s/beijing/case.schema.json", (SCHEMAS / "beijing/case.schema.json").read_text())
    write(tmp_path, "m/p/m.yaml", """
        version: "1"
        source: {schema: beijing/case.schema.json}
        target: {kind: xml, schema: order.xsd, element: order}
        fields:
          line: {each: applicant, fields: {code: name}}
    """)
    with pytest.raises(ConfigError, match="'applicant' is not a list") as ei:
        MappingRegistry.load(tmp_path / "m", tmp_path / "s")
    assert ei.value.line == 5


def test_nested_document_with_schema_is_ordered_and_validated(tmp_path: Path) -> None:
    write(tmp_path, "s/package.xsd", (FIX / "schemas" / "package.xsd").read_text())
    write(tmp_path, "m/p/m.yaml", """
        version: "1"
        target: {kind: json}
        fields:
          xmlData:
            document:
              root: PACKAGE
              schema: package.xsd
              encoding: GBK
              fields:
                RECORD:
                  each: items
                  fields: {SQRMC: /applicant.name, SBLSH: /applicationNo}
                HEAD: {fields: {JLS: 1}}
    """)
    m = MappingRegistry.load(tmp_path / "m", tmp_path / "s").get("p/m")
    out = m.render(sample("01"), CTX)
    assert out["xmlData"].startswith('<?xml version="1.0" encoding="GBK"?><PACKAGE><HEAD><JLS>1')
    assert "<RECORD><SBLSH>BJ2026113000000001</SBLSH><SQRMC>" in out["xmlData"]   # XSD order
    m.validate_output(out)
    case = sample("01")
    case["applicant"]["name"] = "测试名字太长了"
    with pytest.raises(OutputInvalid, match=r"xmlData#.*SQRMC"):
        m.validate_output(m.render(case, CTX))


def test_xml_target_across_includes_imports_namespaces_and_the_catalog(tmp_path: Path) -> None:
    """A partner XSD written by others: xs:include, xs:import of a second namespace that itself
    imports xml.xsd by URL (served from gateway/catalog), attributes from both."""
    wsdl_dir = ROOT / "tests" / "fixtures" / "wsdl" / "doc11"
    write(tmp_path, "m/p/m.yaml", """
        version: "1"
        target:
          kind: xml
          schema: types.xsd
          element: "o:PlaceOrder"
          namespaces: {o: "urn:test:order:v1", p: "urn:test:party:v1"}
        fields:
          express: {if: {eq: [channel, WINDOW]}, then: true, else: false}
          line: {each: items, fields: {qty: 1, code: itemNo}}
          buyer:
            fields:
              "@kind": applicant.type
              idNo: {from: applicant.certNo, pipe: [mask]}
              name: {text: applicant.name, fields: {"@lang": {const: zh-CN}}}
          orderNo: applicationNo
    """)
    m = MappingRegistry.load(tmp_path / "m", wsdl_dir).get("p/m")
    el = m.render(sample("02"), CTX)
    m.validate_output(el)
    o, p = "{urn:test:order:v1}", "{urn:test:party:v1}"
    assert [etree.QName(c).localname for c in el] == ["orderNo", "buyer", "line", "line", "express"]
    name = el.find(f"{o}buyer/{p}name")
    assert name.text == "北京示例科技有限公司"
    assert name.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    assert el.find(f"{o}buyer").get("kind") == "LEGAL_PERSON"
    text = etree.tostring(el, encoding="unicode")
    assert 'xmlns:o="urn:test:order:v1"' in text and 'xmlns:p="urn:test:party:v1"' in text


def test_within_condition_current_element_and_entries(tmp_path: Path) -> None:
    m = load_one(tmp_path, """
        version: "1"
        source: {schema: beijing/case.schema.json}
        target: {kind: json}
        let:
          form: {from: formData, pipe: [entries]}
        fields:
          regions:
            each: "items[0].jointRegions"
            fields:
              code: {from: ".", pipe: [region12]}
              mine: {if: {within: [".", $deliveryRegion]}, then: {const: "1"}, else: {const: "0"}}
          form: {each: $form, fields: {k: name, v: value}}
    """)
    src = {"items": [{"jointRegions": ["120116", "130100000000", "131000"]}],
           "formData": {"a": "x", "n": 35, "ok": True, "nested": {"b": [1, "二"]}, "gone": None}}
    out = m.render(src, {"deliveryRegion": "130000000000"})
    assert out["regions"] == [{"code": "120116000000", "mine": "0"},
                              {"code": "130100000000", "mine": "1"},
                              {"code": "131000000000", "mine": "1"}]
    assert out["form"] == [{"k": "a", "v": "x"}, {"k": "n", "v": "35"}, {"k": "ok", "v": "true"},
                           {"k": "nested", "v": '{"b":[1,"二"]}'}]
    # no delivery region (or not a region): nothing is claimed as the recipient's own
    assert {r["mine"] for r in m.render(src, {})["regions"]} == {"0"}


def test_within_takes_two_values(tmp_path: Path) -> None:
    e = load_error(tmp_path, """
        version: "1"
        target: {kind: json}
        fields:
          x: {if: {within: [receivingRegion]}, then: 1}
    """)
    assert "within takes [region value, area value]" in str(e)


def test_entries_needs_an_object(tmp_path: Path) -> None:
    m = load_one(tmp_path, """
        version: "1"
        target: {kind: json}
        fields:
          x: {from: applicationNo, pipe: [entries]}
    """)
    with pytest.raises(MappingError, match="entries needs an object"):
        m.render({"applicationNo": "BJ1"}, {})


# ---- every mapping error names its source field (issue 10 §3) -------------------------------------

def test_a_render_error_inside_a_loop_names_the_element_it_failed_on(tmp_path: Path) -> None:
    write(tmp_path, "m/codes/t.yaml", 'map: {"A": "1", "B": "2"}\n')
    m = load_one(tmp_path, """
        version: "1"
        target: {kind: json}
        fields:
          lines:
            each: items
            fields:
              no: itemNo
              kind: {from: basicCode, code: t}
    """)
    doc = {"items": [{"itemNo": "1", "basicCode": "A"}, {"itemNo": "2", "basicCode": "B"},
                     {"itemNo": "3", "basicCode": "Z"}]}
    with pytest.raises(MappingError) as ei:
        m.render(doc, CTX)
    assert ei.value.path == "lines[].kind"
    assert [p.sources for p in ei.value.located] == [("/items/2/basicCode",)]
    assert str(ei.value) == ("lines[].kind: code 'Z' is not in table t "
                             "(source field /items/2/basicCode)")


def test_a_shape_error_names_the_target_and_source_field(tmp_path: Path) -> None:
    m = load_one(tmp_path, """
        version: "1"
        target: {kind: json}
        fields:
          lines: {each: items, fields: {name: applicant.name}}
    """)
    with pytest.raises(MappingError) as ei:
        m.render({"items": [{"applicant": {"name": "a"}}, {"applicant": "flat"}]}, CTX)
    assert ei.value.path == "lines[].name"
    assert ei.value.located[0].sources == ("/items/1/applicant/name",)
    assert "source field /items/1/applicant/name" in str(ei.value)


def test_json_output_problems_name_their_source_fields() -> None:
    reg = MappingRegistry.load(ROOT / "mappings", SCHEMAS)
    m = reg.get("national/case-submit")
    case = sample("02")
    case["materials"][1]["materialCode"] = "M" * 65
    case["applicant"]["legalRepresentative"]["phone"] = "1" * 21
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(m.render(case, CTX), case)
    got = {(p.where, p.sources, p.message) for p in ei.value.located}
    assert got == {
        ("/legalManMobile", ("/applicant/legalRepresentative/phone",),
         "is 21 characters long; at most 20 are allowed"),
        ("/materials/1/materialCode", ("/materials/1/materialCode",),
         "is 65 characters long; at most 64 are allowed"),
    }
    assert "/materials/1/materialCode (source field /materials/1/materialCode): is 65" \
        in str(ei.value)


def test_xml_output_problems_name_the_repeated_element_and_its_source() -> None:
    reg = MappingRegistry.load(ROOT / "mappings", SCHEMAS)
    m = reg.get("hebei/case-submit")
    case = sample("13")
    case["items"][1]["basicCode"] = "编码"
    case["materials"][0]["itemNos"] = ["1", "2"]
    ctx = {**CTX, "deliveryRegion": "130000000000"}
    el = m.render(case, ctx)
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(el, case)
    [p] = ei.value.located
    assert p.where == "/SubmitCaseRequest/case/items/item[2]/basicCode"
    assert p.target == "case.items.item[].basicCode"
    assert p.sources == ("/items/1/basicCode",)
    assert p.message == "must be 1 to 64 characters from A–Z, a–z, 0–9, '.', '_', '-'; got '编码'"
    assert "pattern" not in str(ei.value) and "/*/*" not in str(ei.value)


def test_a_missing_required_element_names_what_feeds_it(tmp_path: Path) -> None:
    reg = MappingRegistry.load(FIX / "mappings", FIX / "schemas")
    m = reg.get("example/order")
    case = sample("02")
    el = m.render(case, CTX)
    el.remove(el.find("{urn:example:order}customer"))
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(el, case)
    [p] = ei.value.located
    assert (p.where, p.message) == ("/order/customer", "is required but missing")
    assert set(p.sources) == {"/applicant/name", "/applicant/certNo"}
