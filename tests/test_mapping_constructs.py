"""The mapping language covers what partner schemas contain (issue 16): ``xs:choice`` (one branch
chosen by condition, repeated choices), ``xs:any`` / ``xs:anyType`` bodies (a raw document from
a source field, parsed by the hardened parser, or another mapping's output), attributes (a
``ref`` with ``use="required"``), ``nillable``, and enumerations, patterns and lengths shown by
``scaffold`` and checked by ``check``.

Every schema is written here. The rendered bytes are checked by two validators that are not the
compiler: libxml2 (lxml, the schema compiled from the file) and xmlschema (a pure-Python XSD
implementation), each parsing the serialized bytes as the partner would; zeep reads the choice
back from the same bytes with the same schema.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import yaml
from click.testing import CliRunner, Result
from lxml import etree

from gateway import catalog
from gateway.cli.mapping import mapping
from gateway.errors import ConfigError
from gateway.mapping import CompiledMapping, MappingError, MappingRegistry, OutputInvalid
from gateway.mapping.check import check_mapping, coverage
from gateway.protocols import xml as safexml

ROOT = Path(__file__).resolve().parent.parent
XS = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'
NS = "urn:test:constructs"
SIG = "urn:test:signed"
DSIG = "http://www.w3.org/2000/09/xmldsig#"

DOC_XSD = f"""
<xs:schema {XS} targetNamespace="{NS}" xmlns:c="{NS}">
  <xs:import namespace="http://www.w3.org/XML/1998/namespace"
             schemaLocation="http://www.w3.org/2001/xml.xsd"/>
  <xs:element name="Doc">
    <xs:complexType><xs:sequence>
      <xs:element name="id" type="xs:string"/>
      <xs:choice>
        <xs:element name="person" type="xs:string"/>
        <xs:sequence>
          <xs:element name="org" type="xs:string"/>
          <xs:element name="orgNo">
            <xs:simpleType><xs:restriction base="xs:string">
              <xs:pattern value="[0-9A-Z]{{18}}"/></xs:restriction></xs:simpleType>
          </xs:element>
        </xs:sequence>
      </xs:choice>
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element name="phone" type="xs:string"/>
        <xs:element name="email" type="xs:string"/>
      </xs:choice>
      <xs:element name="status">
        <xs:simpleType><xs:restriction base="xs:string">
          <xs:enumeration value="OPEN"/><xs:enumeration value="CLOSED"/>
        </xs:restriction></xs:simpleType>
      </xs:element>
      <xs:element name="note" minOccurs="0">
        <xs:simpleType><xs:restriction base="xs:string">
          <xs:minLength value="2"/><xs:maxLength value="8"/></xs:restriction></xs:simpleType>
      </xs:element>
      <xs:element name="closed" type="xs:date" nillable="true"/>
      <xs:element name="body" type="xs:anyType" minOccurs="0"/>
      <xs:any namespace="##other" processContents="strict" minOccurs="0"/>
    </xs:sequence>
    <xs:attribute ref="xml:lang" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

SIG_XSD = f"""
<xs:schema {XS} targetNamespace="{SIG}" elementFormDefault="qualified">
  <xs:element name="Signed"><xs:complexType><xs:sequence>
    <xs:element name="serial" type="xs:int"/>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>
"""

# a Doc mapping: the party by condition, contacts as a repeated choice in source order
MAPPING = """
version: "1"
target: {kind: xml, schema: doc.xsd, element: Doc}
fields:
  "@xml:lang": {const: zh}
  id: id
  person: {from: name, when: {eq: [kind, PERSON]}}
  org: name
  orgNo: orgNo
  "phone|email":
    each: contacts
    fields:
      phone: {from: value, when: {eq: [type, TEL]}}
      email: value
  status: status
  closed: {from: closed, nil: true}
  body: {raw: attachment}
  "*": {raw: signed, schema: sig.xsd}
"""

PERSON: dict[str, Any] = {
    "id": "D-1", "kind": "PERSON", "name": "测试甲", "orgNo": "ignored",
    "contacts": [{"type": "TEL", "value": "010-1"}, {"type": "MAIL", "value": "a@example.cn"},
                 {"type": "TEL", "value": "010-2"}],
    "status": "OPEN", "closed": None,
    "attachment": '<?xml version="1.0" encoding="UTF-8"?><x:scan xmlns:x="urn:x">页1</x:scan>',
    "signed": f'<Signed xmlns="{SIG}"><serial>7</serial></Signed>'}
ORG = dict(PERSON, kind="LEGAL", name="北京示例科技有限公司", orgNo="91110000MA01ABCD2X",
           contacts=[], closed="2026-11-30", attachment=None, signed=None)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def _reg(tmp: Path, mappings: dict[str, str], schemas: dict[str, str] | None = None,
         codes: dict[str, str] | None = None) -> MappingRegistry:
    _write(tmp / "s", schemas or {"doc.xsd": DOC_XSD, "sig.xsd": SIG_XSD})
    _write(tmp / "m", {**mappings, **{f"codes/{k}.yaml": v for k, v in (codes or {}).items()}})
    return MappingRegistry.load(tmp / "m", tmp / "s")


def _bytes(m: CompiledMapping, source: dict[str, Any]) -> bytes:
    el = m.render(source, {})
    m.validate_output(el)
    return etree.tostring(el, encoding="utf-8")


def _independent(tmp: Path, xsd: str, data: bytes, embedded: str = "") -> None:
    """libxml2 and xmlschema, each given the schema file, accept the bytes. ``embedded``: the
    schema file of the documents injected into the strict ``xs:any`` (the partner schema alone
    cannot know them): each is validated by it, the rest of the document by ``xsd``."""
    root = safexml.parse(data)
    docs: list[tuple[str, bytes]] = [(xsd, data)]
    if embedded:
        for el in [c for c in root if etree.QName(c).namespace == SIG]:
            root.remove(el)
            docs.append((embedded, etree.tostring(el, encoding="utf-8")))
        docs[0] = (xsd, etree.tostring(root, encoding="utf-8"))
    for name, doc in docs:
        path = tmp / "s" / name
        lx = safexml.load_schema(path, path.parent)
        assert lx.validate(safexml.parse(doc)), (lx.error_log, doc)
        xs = xmlschema.XMLSchema(str(path), **catalog.xmlschema_options(path.parent))
        xs.validate(doc.decode("utf-8"))
    assert len(docs) == (2 if embedded else 1)


def _findings(m: CompiledMapping, reg: MappingRegistry) -> list[str]:
    return [f.message for f in check_mapping(m, reg)]


# ---- xs:choice ----------------------------------------------------------------------------------

def test_choice_branch_by_condition_and_repeated_choice_in_source_order(tmp_path: Path) -> None:
    reg = _reg(tmp_path, {"p/doc.yaml": MAPPING})
    m = reg.get("p/doc")
    assert _findings(m, reg) == []
    person = _bytes(m, PERSON)
    _independent(tmp_path, "doc.xsd", person, "sig.xsd")
    root = safexml.parse(person)
    names = [etree.QName(c).localname for c in root]
    assert names[:6] == ["id", "person", "phone", "email", "phone", "status"]
    assert "org" not in names and root.findtext("person") == "测试甲"
    org = _bytes(m, ORG)
    _independent(tmp_path, "doc.xsd", org)
    root = safexml.parse(org)
    assert [etree.QName(c).localname for c in root][:4] == ["id", "org", "orgNo", "status"]
    # xmlschema, decoding the same bytes with the schema, reads the chosen branches back
    xs = xmlschema.XMLSchema(str(tmp_path / "s" / "doc.xsd"),
                             **catalog.xmlschema_options(tmp_path / "s"))
    read = xs.to_dict(org.decode("utf-8"))
    assert (read["org"], read["orgNo"], read.get("person")) == \
        ("北京示例科技有限公司", "91110000MA01ABCD2X", None)
    read = xs.to_dict(person.decode("utf-8"), validation="skip")
    assert (read["person"], read["phone"], read["email"]) == \
        ("测试甲", ["010-1", "010-2"], ["a@example.cn"])


def test_check_wants_one_branch_of_a_required_choice_not_every_branch(tmp_path: Path) -> None:
    only_org = MAPPING.replace("  person: {from: name, when: {eq: [kind, PERSON]}}\n", "")
    both = MAPPING.replace("{from: name, when: {eq: [kind, PERSON]}}", "name")
    neither = only_org.replace("  org: name\n  orgNo: orgNo\n", "")
    reg = _reg(tmp_path, {"p/one.yaml": only_org, "p/both.yaml": both, "p/none.yaml": neither})
    assert _findings(reg.get("p/one"), reg) == []          # one branch: no demand for the other
    [msg] = _findings(reg.get("p/both"), reg)
    assert msg.startswith("choice person|org|orgNo: branch person is mapped without when:")
    [msg] = _findings(reg.get("p/none"), reg)
    assert msg == "required choice person|org|orgNo: no branch is mapped (map one)"
    cov = {c.path: c for c in coverage(reg.get("p/one"))}
    assert cov["person|org|orgNo"].required and cov["person|org|orgNo"].produced
    assert not cov["person"].required and not cov["person"].produced
    assert cov["*"].produced and cov["*"].type == "xs:any 0..1" and cov["body"].produced
    assert not any(p.startswith("body.") for p in cov)


def test_a_choice_named_as_a_whole_and_branches_with_their_own_each(tmp_path: Path) -> None:
    group = MAPPING.replace(
        "  person: {from: name, when: {eq: [kind, PERSON]}}\n  org: name\n  orgNo: orgNo\n",
        "  \"person|org|orgNo\":\n    fields:\n      person: {from: name, when: {eq: [kind, PERSON]}}"
        "\n      org: name\n      orgNo: orgNo\n").replace(
        "  \"phone|email\":\n    each: contacts\n    fields:\n"
        "      phone: {from: value, when: {eq: [type, TEL]}}\n      email: value\n",
        "  phone: {each: contacts, where: {eq: [type, TEL]}, value: value}\n"
        "  email: {each: contacts, where: {eq: [type, MAIL]}, value: value}\n")
    reg = _reg(tmp_path, {"p/doc.yaml": group})
    m = reg.get("p/doc")
    assert _findings(m, reg) == []
    data = _bytes(m, PERSON)
    _independent(tmp_path, "doc.xsd", data, "sig.xsd")
    assert [etree.QName(c).localname for c in safexml.parse(data)][1:5] == \
        ["person", "phone", "phone", "email"]           # a repeated choice: any order is valid
    data = _bytes(m, ORG)
    assert safexml.parse(data).findtext("orgNo") == "91110000MA01ABCD2X"


@pytest.mark.parametrize("key,body,words", [
    ('"person|org"', "{fields: {person: name}}", "no xs:choice of exactly 'person|org'"),
    ('"person|org|orgNo"', "{each: contacts, fields: {person: name}}",
     "occurs at most once in the schema"),
    ('"phone|email"', "{each: contacts, fields: {fax: value}}", "'fax' is not a branch"),
    ("phone", "{each: contacts, value: value, nil: true}", "not nillable"),
])
def test_choice_mistakes_are_load_errors_naming_the_line(tmp_path: Path, key: str, body: str,
                                                         words: str) -> None:
    bad = MAPPING.replace('  status: status\n', f"  status: status\n  {key}: {body}\n")
    bad = bad.replace("  person: {from: name, when: {eq: [kind, PERSON]}}\n  org: name\n"
                      "  orgNo: orgNo\n", "") if "person" in key else bad
    bad = bad.replace("  \"phone|email\":\n    each: contacts\n    fields:\n"
                      "      phone: {from: value, when: {eq: [type, TEL]}}\n      email: value\n",
                      "") if "phone" in key else bad
    with pytest.raises(ConfigError) as ei:
        _reg(tmp_path, {"p/doc.yaml": bad})
    assert words in str(ei.value) and "doc.yaml:" in str(ei.value)


# ---- xs:any / anyType: raw documents and fragments ---------------------------------------------

def test_raw_documents_are_parsed_hardened_and_validated_against_their_own_schema(
        tmp_path: Path) -> None:
    m = _reg(tmp_path, {"p/doc.yaml": MAPPING}).get("p/doc")
    data = _bytes(m, PERSON)
    root = safexml.parse(data)
    assert root.find("body/{urn:x}scan").text == "页1"
    assert root.find(f"{{{SIG}}}Signed/{{{SIG}}}serial").text == "7"
    _independent(tmp_path, "doc.xsd", data, "sig.xsd")
    # invalid by its own schema: named, with the embedded element
    el = m.render(dict(PERSON, signed=f'<Signed xmlns="{SIG}"><serial>x</serial></Signed>'), {})
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(el)
    assert "/Doc/Signed: embedded document Signed: serial must be a whole number" in str(ei.value)
    # an element its schema does not declare
    el = m.render(dict(PERSON, signed='<Other xmlns="urn:test:other"/>'), {})
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(el)
    assert "not an element sig.xsd declares ({urn:test:other}Other)" in str(ei.value)
    # the hardened parser: not well-formed, or a DTD with entities, is refused at render
    for raw in ("<a><b></a>", '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'):
        with pytest.raises(MappingError) as me:
            m.render(dict(PERSON, attachment=raw), {})
        assert "body" in str(me.value) and "the document to embed cannot be used" in str(me.value)
        assert me.value.located and me.value.located[0].sources == ("/attachment",)


def test_without_a_schema_the_wildcard_process_contents_decides(tmp_path: Path) -> None:
    strict = MAPPING.replace('"*": {raw: signed, schema: sig.xsd}', '"*": {raw: signed}')
    lax = DOC_XSD.replace('processContents="strict"', 'processContents="lax"')
    reg = _reg(tmp_path / "a", {"p/doc.yaml": strict})
    el = reg.get("p/doc").render(dict(PERSON, signed='<Unknown xmlns="urn:test:unknown"/>'), {})
    with pytest.raises(OutputInvalid) as ei:
        reg.get("p/doc").validate_output(el)
    assert "strict wildcard" in str(ei.value)
    reg = _reg(tmp_path / "b", {"p/doc.yaml": strict}, {"doc.xsd": lax, "sig.xsd": SIG_XSD})
    m = reg.get("p/doc")
    data = _bytes(m, dict(PERSON, signed='<Unknown xmlns="urn:test:unknown"/>'))
    _independent(tmp_path / "b", "doc.xsd", data)
    # a namespace the catalog has (WS-Security utility): validated by that schema although the
    # mapping names none, and the lax wildcard alone would let it through
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    stamp = f'<u:Timestamp xmlns:u="{wsu}"><u:Created>2026-11-30T10:00:00Z</u:Created>' \
            f'<u:Expires>2026-11-30T10:05:00Z</u:Expires></u:Timestamp>'
    _bytes(m, dict(PERSON, signed=stamp))
    swapped = stamp.replace("<u:Created>2026-11-30T10:00:00Z</u:Created>", "") \
        .replace("</u:Timestamp>", "<u:Created>2026-11-30T10:00:00Z</u:Created></u:Timestamp>")
    el = m.render(dict(PERSON, signed=swapped), {})
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(el)
    assert "embedded document Timestamp" in str(ei.value)


def test_a_fragment_is_another_mapping_rendered_in_place(tmp_path: Path) -> None:
    signed = f"""
    version: "1"
    target: {{kind: xml, schema: sig.xsd, element: "{{{SIG}}}Signed"}}
    fields:
      serial: serial
    """
    host = MAPPING.replace('"*": {raw: signed, schema: sig.xsd}',
                           '"*": {fragment: p/signed, from: seal}')
    reg = _reg(tmp_path, {"p/doc.yaml": host, "p/signed.yaml": signed})
    m = reg.get("p/doc")
    assert _findings(m, reg) == []
    data = _bytes(m, dict(PERSON, seal={"serial": 9}))
    assert safexml.parse(data).find(f"{{{SIG}}}Signed/{{{SIG}}}serial").text == "9"
    el = m.render(dict(PERSON, seal={"serial": "nine"}), {})
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(el)
    assert "embedded document Signed: serial must be a whole number" in str(ei.value)
    own = MAPPING.replace('"*": {raw: signed, schema: sig.xsd}', '"*": {fragment: p/doc}')
    with pytest.raises(ConfigError) as ce:
        _reg(tmp_path / "c", {"p/doc.yaml": own})
    assert "fragments refer to each other in a cycle: p/doc -> p/doc" in str(ce.value)


# ---- attributes, nillable, facets ---------------------------------------------------------------

def test_required_ref_attribute_nillable_and_facets(tmp_path: Path) -> None:
    no_lang = MAPPING.replace('  "@xml:lang": {const: zh}\n', "")
    consts = MAPPING.replace("status: status", "status: {const: PENDING}").replace(
        "  orgNo: orgNo\n", "  orgNo: {const: abc}\n  note: {const: x}\n")
    coded = MAPPING.replace("status: status", "status: {from: status, code: st}")
    reg = _reg(tmp_path, {"p/nolang.yaml": no_lang, "p/consts.yaml": consts,
                          "p/coded.yaml": coded, "p/doc.yaml": MAPPING},
               codes={"st": "map: {NEW: OPEN, DONE: FINISHED}\n"})
    assert _findings(reg.get("p/nolang"), reg) == ["required target field @lang is not mapped"]
    msgs = _findings(reg.get("p/consts"), reg)
    assert "orgNo: type mismatch: constant 'abc' is not a valid anonymous (pattern " \
        "[0-9A-Z]{18})" in msgs
    assert "note: type mismatch: constant 'x' is not a valid anonymous (length 2..8)" in msgs
    assert "status: type mismatch: constant 'PENDING' is not a valid anonymous (enum " \
        "OPEN|CLOSED)" in msgs
    [msg] = _findings(reg.get("p/coded"), reg)
    assert msg == "status: type mismatch: code table st yields 'FINISHED', not valid " \
                  "anonymous (enum OPEN|CLOSED)"
    m = reg.get("p/doc")
    data = _bytes(m, PERSON)                                   # closed: None → xsi:nil
    root = safexml.parse(data)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh"
    assert root.find("closed").get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"
    assert safexml.parse(_bytes(m, ORG)).findtext("closed") == "2026-11-30"
    # a value from the source that breaks a facet: the render's validation names the field
    el = m.render(dict(PERSON, status="PENDING"), {})
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(el, dict(PERSON, status="PENDING"))
    assert "/Doc/status" in str(ei.value) and "OPEN, CLOSED" in str(ei.value)
    assert "'PENDING'" in str(ei.value)
    not_nillable = MAPPING.replace("  status: status", "  status: {from: status, nil: true}")
    with pytest.raises(ConfigError) as ce:
        _reg(tmp_path / "n", {"p/doc.yaml": not_nillable})
    assert "element status is not nillable" in str(ce.value)


# ---- scaffold → fill → check → render ------------------------------------------------------------

def run(*args: str) -> Result:
    return CliRunner().invoke(mapping, list(args), catch_exceptions=False)


def test_scaffold_shows_choices_any_facets_then_filled_it_renders_valid_bytes(
        tmp_path: Path) -> None:
    sch = tmp_path / "s"
    _write(sch, {"p/doc.xsd": DOC_XSD, "p/sig.xsd": SIG_XSD})
    (sch / "beijing").mkdir()
    shutil.copy(ROOT / "schemas" / "beijing" / "case.schema.json", sch / "beijing")
    skel = tmp_path / "m" / "p" / "doc.yaml"
    r = run("scaffold", "--schema", str(sch / "p" / "doc.xsd"), "--schemas", str(sch),
            "-o", str(skel))
    assert r.exit_code == 0, r.output
    text = skel.read_text(encoding="utf-8")
    for words in ('"person|org|orgNo":', "# xs:choice 1..1 required, map ONE branch",
                  '"phone|email":', "# xs:choice 0..* optional", "each: null",
                  "person: null", "branch 1 of 2", "pattern [0-9A-Z]{18}", "enum OPEN|CLOSED",
                  "length 2..8", "nillable (nil: true", '"*": null',
                  "xs:any 0..1 optional, namespace ##other, processContents strict",
                  '"@xml:lang": null'):
        assert words in text, (words, text)
    doc = yaml.safe_load(text)
    assert set(doc["fields"]["person|org|orgNo"]["fields"]) == {"person", "org", "orgNo"}
    r = run("check", "--mappings", str(tmp_path / "m"), "--schemas", str(sch))
    assert r.exit_code == 1 and "required choice person|org|orgNo: no branch is mapped" \
        in r.output and "target field * is a null placeholder" in r.output, r.output
    filled = (text.replace('"@xml:lang": null', '"@xml:lang": {const: zh}')
              .replace("id: null", "id: applicationNo")
              .replace("person: null", "person: applicant.name")
              .replace("      org: null", "").replace("      orgNo: null", "")
              .replace("each: null", "each: items")
              .replace("phone: null", "phone: {from: itemNo, when: {eq: [itemNo, 1]}}")
              .replace("email: null", "email: itemName")
              .replace("status: null", "status: {const: OPEN}")
              .replace("note: null", "note: {const: ok}")
              .replace("closed: null", "closed: {from: submitTime, nil: true}")
              .replace("body: null", "body: {raw: formData.scan}")
              .replace('"*": null', '"*": {raw: formData.seal, schema: p/sig.xsd}'))
    lines = [ln for ln in filled.splitlines() if ln.strip()]
    skel.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run("check", "--mappings", str(tmp_path / "m"), "--schemas", str(sch))
    assert r.exit_code == 0, r.output + filled
    m = MappingRegistry.load(tmp_path / "m", sch).get("p/doc")
    case = {"applicationNo": "BJ-1", "applicant": {"name": "测试甲"},
            "items": [{"itemNo": 1, "itemName": "a"}, {"itemNo": 2, "itemName": "b"}],
            "formData": {"scan": "<scan/>", "seal": f'<s:Signed xmlns:s="{SIG}">'
                                                   f'<s:serial>1</s:serial></s:Signed>'}}
    data = _bytes(m, case)
    _independent(tmp_path, "p/doc.xsd", data, "p/sig.xsd")
    root = safexml.parse(data)
    assert [etree.QName(c).localname for c in root][:5] == ["id", "person", "phone", "email",
                                                           "status"]
    assert root.find("closed").get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"


HDR_WSDL = f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" {XS} xmlns:tns="{NS}"
    targetNamespace="{NS}">
  <wsdl:types><xs:schema targetNamespace="{NS}" elementFormDefault="qualified">
    <xs:element name="Submit"><xs:complexType><xs:sequence>
      <xs:element name="id"><xs:simpleType><xs:restriction base="xs:string">
        <xs:pattern value="[A-Z]{{2}}-[0-9]+"/><xs:maxLength value="20"/>
      </xs:restriction></xs:simpleType></xs:element>
      <xs:choice><xs:element name="person" type="xs:string"/>
                 <xs:element name="org" type="xs:string"/></xs:choice>
      <xs:any namespace="##other" processContents="lax" minOccurs="0"/>
    </xs:sequence></xs:complexType></xs:element>
    <xs:element name="Routing"><xs:complexType><xs:sequence>
      <xs:element name="from" type="xs:string"/><xs:element name="to" type="xs:string"/>
    </xs:sequence></xs:complexType></xs:element>
    <xs:element name="Audit"><xs:complexType><xs:sequence>
      <xs:element name="operator" type="xs:string"/>
    </xs:sequence></xs:complexType></xs:element>
  </xs:schema></wsdl:types>
  <wsdl:message name="In"><wsdl:part name="parameters" element="tns:Submit"/></wsdl:message>
  <wsdl:message name="Hdr"><wsdl:part name="routing" element="tns:Routing"/>
    <wsdl:part name="audit" element="tns:Audit"/></wsdl:message>
  <wsdl:portType name="P"><wsdl:operation name="Submit"><wsdl:input message="tns:In"/>
  </wsdl:operation></wsdl:portType>
  <wsdl:binding name="B" type="tns:P">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <wsdl:operation name="Submit"><soap:operation soapAction="{NS}/Submit"/>
      <wsdl:input><soap:header message="tns:Hdr" part="routing" use="literal"/>
        <soap:header message="tns:Hdr" part="audit" use="literal"/>
        <soap:body use="literal"/></wsdl:input></wsdl:operation></wsdl:binding>
</wsdl:definitions>
"""


def test_scaffold_wsdl_choice_any_and_a_skeleton_per_header_part(tmp_path: Path) -> None:
    _write(tmp_path / "w", {"h.wsdl": HDR_WSDL})
    wsdl = str(tmp_path / "w" / "h.wsdl")
    r = run("scaffold", "--schema", wsdl, "--schemas", str(tmp_path / "w"))
    assert r.exit_code == 0, r.output
    doc = yaml.safe_load(r.output)
    assert set(doc["fields"]) == {"id", "person|org", "*"}
    assert "--header routing" in r.output and "--header audit" in r.output
    # zeep keeps no facets: they come from xmlschema's reading of the WSDL's inline schema
    assert "pattern [A-Z]{2}-[0-9]+, length 0..20" in r.output
    for part, fields in (("routing", {"from", "to"}), ("audit", {"operator"})):
        r = run("scaffold", "--schema", wsdl, "--schemas", str(tmp_path / "w"), "--header", part)
        assert r.exit_code == 0, r.output
        doc = yaml.safe_load(r.output)
        assert set(doc["fields"]) == fields and doc["target"]["element"].endswith(
            part.capitalize())
        assert "options.headers" in r.output and "source" not in doc
    r = CliRunner().invoke(mapping, ["scaffold", "--schema", wsdl, "--header", "nope"])
    assert r.exit_code == 2 and "header parts: routing, audit" in r.output


def test_in_a_document_without_schema_star_injects_and_a_choice_key_is_refused(
        tmp_path: Path) -> None:
    """A nested ``document:`` with no XSD has no model: ``"*"`` still injects a raw document
    (in mapping order), a ``"a|b"`` key is a load error naming the line, not a bad tag."""
    inner = """
    version: "1"
    target: {kind: json}
    fields:
      xmlData:
        document:
          root: PACKAGE
          declaration: false
          fields:
            HEAD: {const: h}
            "*": {raw: signed}
    """
    m = _reg(tmp_path, {"p/inner.yaml": inner}).get("p/inner")
    out = m.render(PERSON, {})
    assert out["xmlData"] == f'<PACKAGE><HEAD>h</HEAD><Signed xmlns="{SIG}"><serial>7</serial>' \
                             f'</Signed></PACKAGE>'
    with pytest.raises(ConfigError) as ce:
        _reg(tmp_path / "b", {"p/inner.yaml": inner.replace('"*": {raw: signed}',
                                                            '"a|b": {fields: {a: id}}')})
    assert "a choice is read from the schema" in str(ce.value) and "inner.yaml:10" in str(ce.value)


NIL_XSD = f"""
<xs:schema {XS} targetNamespace="{NS}" elementFormDefault="qualified">
  <xs:element name="R"><xs:complexType><xs:sequence>
    <xs:element name="agent" nillable="true"><xs:complexType><xs:sequence>
      <xs:element name="name" type="xs:string"/></xs:sequence></xs:complexType></xs:element>
    <xs:element name="reason" type="xs:string" nillable="true"/>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>
"""


def test_nil_on_a_complex_element_and_a_constant_nil(tmp_path: Path) -> None:
    m = _reg(tmp_path, {"p/r.yaml": """
    version: "1"
    target: {kind: xml, schema: r.xsd, element: R}
    fields:
      agent: {nil: true, fields: {name: agent.name}}
      reason: {nil: true}
    """}, {"r.xsd": NIL_XSD}).get("p/r")
    nil = "{http://www.w3.org/2001/XMLSchema-instance}nil"
    for source, agent in (({}, None), ({"agent": {"name": "测试乙"}}, "测试乙")):
        data = _bytes(m, source)
        _independent(tmp_path, "r.xsd", data)
        root = safexml.parse(data)
        assert root[1].get(nil) == "true" and root[1].text is None
        assert root[0].get(nil) == (None if agent else "true")
        assert root[0].findtext(f"{{{NS}}}name") == agent
