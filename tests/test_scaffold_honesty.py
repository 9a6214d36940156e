"""Scaffold honesty (issue 16): the ``null`` placeholders of a skeleton are not mappings — ``check``
fails naming each, ``coverage`` does not count them — and constructs the mapping language does
not map field by field (``xs:anyAttribute``, ``xs:any``, a .NET DataSet's embedded
``<s:element ref="s:schema"/>``) give a named TODO line, never a traceback. Schemas and WSDLs
are written here."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from gateway.cli.mapping import mapping
from gateway.mapping import MappingRegistry

ROOT = Path(__file__).resolve().parent.parent

ORDER_XSD = """
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:test:skel">
  <xs:element name="Order">
    <xs:complexType><xs:sequence>
      <xs:element name="orderNo" type="xs:string"/>
      <xs:element name="applicant">
        <xs:complexType><xs:sequence>
          <xs:element name="name" type="xs:string"/>
          <xs:element name="phone" type="xs:string" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="item" maxOccurs="unbounded">
        <xs:complexType><xs:sequence>
          <xs:element name="code" type="xs:string"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence><xs:attribute name="channel" type="xs:string"/></xs:complexType>
  </xs:element>
</xs:schema>
"""

WILD_TYPES = """
    <s:schema elementFormDefault="qualified" targetNamespace="urn:test:ds">
      <s:element name="Submit">
        <s:complexType>
          <s:sequence>
            <s:element name="caseNo" type="s:string"/>
            <s:element name="extra" minOccurs="0">
              <s:complexType>
                <s:sequence><s:element name="k" type="s:string"/></s:sequence>
                <s:attribute name="lang" type="s:string"/>
                <s:anyAttribute namespace="##other" processContents="lax"/>
              </s:complexType>
            </s:element>
            DATASET
          </s:sequence>
          <s:anyAttribute/>
        </s:complexType>
      </s:element>
      <s:element name="SubmitResponse"><s:complexType><s:sequence>
        <s:element name="ok" type="s:boolean"/></s:sequence></s:complexType></s:element>
    </s:schema>
"""

DATASET = ('<s:element name="GetResult" minOccurs="0"><s:complexType><s:sequence>'
           '<s:element ref="s:schema"/><s:any/></s:sequence></s:complexType></s:element>')
WILD_TYPES = WILD_TYPES.replace("DATASET", DATASET)

WILD_WSDL = f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:s="http://www.w3.org/2001/XMLSchema"
    xmlns:tns="urn:test:ds" targetNamespace="urn:test:ds">
  <wsdl:types>{WILD_TYPES}</wsdl:types>
  <wsdl:message name="In"><wsdl:part name="parameters" element="tns:Submit"/></wsdl:message>
  <wsdl:message name="Out"><wsdl:part name="parameters" element="tns:SubmitResponse"/></wsdl:message>
  <wsdl:portType name="P"><wsdl:operation name="Submit">
    <wsdl:input message="tns:In"/><wsdl:output message="tns:Out"/></wsdl:operation></wsdl:portType>
  <wsdl:binding name="B" type="tns:P">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <wsdl:operation name="Submit"><soap:operation soapAction="urn:test:ds/Submit"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation></wsdl:binding>
  <wsdl:service name="S"><wsdl:port name="P" binding="tns:B">
    <soap:address location="http://127.0.0.1:9/ds"/></wsdl:port></wsdl:service>
</wsdl:definitions>
"""


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


def _schemas(tmp: Path) -> Path:
    """A schemas folder with the Beijing source schema the skeleton names."""
    sch = tmp / "schemas"
    (sch / "beijing").mkdir(parents=True)
    shutil.copy(ROOT / "schemas" / "beijing" / "case.schema.json", sch / "beijing")
    return sch


def run(*args: str) -> Result:
    return CliRunner().invoke(mapping, list(args), catch_exceptions=False)


def test_an_untouched_skeleton_fails_check_and_covers_nothing(tmp_path: Path) -> None:
    sch = _schemas(tmp_path)
    xsd = _write(sch / "p" / "order.xsd", ORDER_XSD)
    skel = tmp_path / "m" / "p" / "order.yaml"
    r = run("scaffold", "--schema", str(xsd), "--schemas", str(sch), "-o", str(skel))
    assert r.exit_code == 0, r.output
    text = skel.read_text(encoding="utf-8")
    r = run("check", "--mappings", str(tmp_path / "m"), "--schemas", str(sch))
    assert r.exit_code == 1, r.output
    named = [ln.split("target field ")[1].split(" ")[0] for ln in r.output.splitlines()
             if "null placeholder" in ln]
    assert named == ["@channel", "orderNo", "applicant.name", "applicant.phone", "item[]"]
    for ln in r.output.splitlines():   # each names its own line of the skeleton
        if "null placeholder" in ln:
            line = int(ln.split(":")[1])
            key = ln.split("target field ")[1].split(" ")[0].split(".")[-1].rstrip("[]")
            assert text.splitlines()[line - 1].strip().startswith(
                ('"' + key if key.startswith("@") else key, "each:")), (ln, text)
    r = run("coverage", "p/order", "--mappings", str(tmp_path / "m"), "--schemas", str(sch))
    assert r.exit_code == 1
    assert "0/7 target fields produced" in r.output, r.output


def test_a_filled_skeleton_checks_renders_and_validates(tmp_path: Path) -> None:
    sch = _schemas(tmp_path)
    xsd = _write(sch / "p" / "order.xsd", ORDER_XSD)
    skel = tmp_path / "m" / "p" / "order.yaml"
    assert run("scaffold", "--schema", str(xsd), "--schemas", str(sch), "-o",
               str(skel)).exit_code == 0
    doc = yaml.safe_load(skel.read_text(encoding="utf-8"))
    f = doc["fields"]
    del f["@channel"]
    f["orderNo"] = "applicationNo"
    f["applicant"]["fields"] = {"name": "applicant.name"}   # phone: deleted, not left null
    f["item"]["each"], f["item"]["fields"]["code"] = "items", "itemNo"
    skel.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    r = run("check", "--mappings", str(tmp_path / "m"), "--schemas", str(sch))
    assert r.exit_code == 0, r.output
    r = run("coverage", "p/order", "--mappings", str(tmp_path / "m"), "--schemas", str(sch))
    assert "5/7 target fields produced" in r.output, r.output
    m = MappingRegistry.load(tmp_path / "m", sch).get("p/order")
    case = {"applicationNo": "BJ-1", "applicant": {"name": "张三"},
            "items": [{"itemNo": "I-1"}, {"itemNo": "I-2"}]}
    el = m.render(case, {})
    m.validate_output(el)
    assert [c.findtext("code") for c in el.findall("item")] == ["I-1", "I-2"]


def test_scaffold_wsdl_any_attribute_and_dataset_are_named_todos(tmp_path: Path) -> None:
    wsdl = _write(tmp_path / "w" / "ds.wsdl", WILD_WSDL)
    r = CliRunner().invoke(mapping, ["scaffold", "--schema", str(wsdl), "--schemas",
                                     str(tmp_path / "w")])
    assert r.exit_code == 0, r.output
    out = r.output
    assert out.count("# TODO xs:anyAttribute (any attribute") == 2
    assert '# TODO an embedded XML Schema (<xs:element ref="xs:schema"/>, a .NET DataSet)' in out
    # an xs:any is a slot for a whole document (raw: or fragment:), a placeholder until filled
    assert '"*": null' in out and "# xs:any 1..1 required, namespace ##any" in out
    doc = yaml.safe_load(out)
    assert doc["fields"]["GetResult"] == {"fields": {"*": None}}
    assert set(doc["fields"]["extra"]["fields"]) == {"@lang", "k"}


def test_scaffold_xsd_any_attribute_and_dataset_then_check_names_the_nulls(
        tmp_path: Path) -> None:
    sch = _schemas(tmp_path)
    xsd = _write(sch / "ds" / "ds.xsd", '<?xml version="1.0"?>\n' + textwrap.dedent(
        WILD_TYPES).strip().replace("<s:schema ", '<s:schema xmlns:s="http://www.w3.org/2001/'
                                    'XMLSchema" ', 1))
    skel = tmp_path / "m" / "ds" / "submit.yaml"
    r = CliRunner().invoke(mapping, ["scaffold", "--schema", str(xsd), "--element", "Submit",
                                     "--schemas", str(sch), "-o", str(skel)])
    assert r.exit_code == 0, r.output
    text = skel.read_text(encoding="utf-8")
    assert "namespace ##other, processContents lax" in text
    assert "a .NET DataSet" in text and "# xs:any 1..1 required, namespace ##any" in text
    # libxml2 cannot resolve ref="s:schema" without an import of XMLSchema.xsd (the catalog's
    # namespace-only imports are still to do): the skeleton is checked without the DataSet part
    xsd.write_text(xsd.read_text(encoding="utf-8").replace(DATASET, ""), encoding="utf-8")
    lines = text.splitlines()
    at = next(i for i, ln in enumerate(lines) if "GetResult" in ln)
    end = next((i for i in range(at + 1, len(lines)) if not lines[i].startswith("    ")),
               len(lines))
    skel.write_text("\n".join(lines[:at] + lines[end:]) + "\n", encoding="utf-8")
    r = run("check", "--mappings", str(tmp_path / "m"), "--schemas", str(sch))
    assert r.exit_code == 1, r.output
    named = [ln.split("target field ")[1].split(" ")[0] for ln in r.output.splitlines()
             if "null placeholder" in ln]
    assert named == ["caseNo", "extra.@lang", "extra.k"], r.output
