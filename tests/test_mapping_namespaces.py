"""The bytes a mapping writes say what the partner schema says about namespaces (issue 16).

Each schema is written here: qualified (``elementFormDefault="qualified"``), unqualified (the XSD
and JAX-WS default), one of each form mixed through an import, and a ``form="qualified"``
override on one element. For each, a mapping renders bytes that lxml validates against the
schema after parsing them, and zeep, parsing the same bytes with the same schema, reads back the
values the mapping wrote. The old emission (the root's namespace as the default one, unqualified
children written bare, so read back in the root's namespace) is valid as an lxml tree yet
rejected by ``validate_output``, which now validates the serialized bytes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway import catalog
from gateway.mapping import CompiledMapping, MappingRegistry, OutputInvalid
from gateway.protocols import xml as safexml

XS = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'
A, B = "urn:test:ns:a", "urn:test:ns:b"

QUALIFIED = f"""
<xs:schema {XS} targetNamespace="{A}" xmlns:a="{A}" elementFormDefault="qualified">
  <xs:element name="Order">
    <xs:complexType><xs:sequence>
      <xs:element name="orderNo" type="xs:string"/>
      <xs:element name="qty" type="xs:int"/>
    </xs:sequence><xs:attribute name="channel" type="xs:string"/></xs:complexType>
  </xs:element>
</xs:schema>
"""

UNQUALIFIED = QUALIFIED.replace(' elementFormDefault="qualified"', "")

OVERRIDE = UNQUALIFIED.replace('<xs:element name="qty" type="xs:int"/>',
                               '<xs:element name="qty" type="xs:int" form="qualified"/>')

# A: unqualified, imports B (qualified): a ref to B's global element, a local element of A whose
# type is B's (the element is A's, unqualified; its children are B's, qualified)
MIXED_A = f"""
<xs:schema {XS} targetNamespace="{A}" xmlns:a="{A}" xmlns:b="{B}">
  <xs:import namespace="{B}" schemaLocation="b.xsd"/>
  <xs:element name="Order">
    <xs:complexType><xs:sequence>
      <xs:element name="orderNo" type="xs:string"/>
      <xs:element ref="b:note"/>
      <xs:element name="party" type="b:Party"/>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"""
MIXED_B = f"""
<xs:schema {XS} targetNamespace="{B}" xmlns:b="{B}" elementFormDefault="qualified">
  <xs:element name="note" type="xs:string"/>
  <xs:complexType name="Party"><xs:sequence>
    <xs:element name="name" type="xs:string"/>
    <xs:element name="idNo" type="xs:string"/>
  </xs:sequence></xs:complexType>
</xs:schema>
"""

SIMPLE_MAPPING = """
version: "1"
target: {kind: xml, schema: s.xsd, element: Order}
fields:
  "@channel": {const: WINDOW}
  qty: qty
  orderNo: no
"""
MIXED_MAPPING = f"""
version: "1"
target:
  kind: xml
  schema: a.xsd
  element: "a:Order"
  namespaces: {{a: "{A}", b: "{B}"}}
fields:
  orderNo: no
  note: {{const: "urgent"}}
  party: {{fields: {{name: name, idNo: {{const: "110101199001011234"}}}}}}
"""
SOURCE = {"no": "BJ-2026-0001", "qty": 3, "name": "北京示例科技有限公司"}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def _load(tmp: Path, schemas: dict[str, str], mapping: str) -> CompiledMapping:
    _write(tmp / "s", schemas)
    _write(tmp / "m", {"p/m.yaml": mapping})
    return MappingRegistry.load(tmp / "m", tmp / "s").get("p/m")


def _zeep_read(xsd: Path, root: Any) -> Any:
    """What zeep, given the schema file, reads from the parsed document."""
    from zeep.loader import load_external
    from zeep.xsd import Schema

    transport = catalog.zeep_transport(xsd.parent)
    settings = catalog.zeep_settings()
    node = load_external(str(xsd), transport, settings=settings)
    schema = Schema(node, transport, location=str(xsd), settings=settings)
    return schema.get_element(f"{{{A}}}Order").parse(root, schema)


def _lxml_valid(xsd: Path, data: bytes) -> bool:
    return bool(safexml.load_schema(xsd, xsd.parent).validate(safexml.parse(data)))


@pytest.mark.parametrize("schema,children_ns", [
    (QUALIFIED, {"orderNo": A, "qty": A}),
    (UNQUALIFIED, {"orderNo": None, "qty": None}),
    (OVERRIDE, {"orderNo": None, "qty": A}),
], ids=["qualified", "unqualified", "form-override"])
def test_one_schema_bytes_validate_and_zeep_reads_the_values(
        tmp_path: Path, schema: str, children_ns: dict[str, str | None]) -> None:
    m = _load(tmp_path, {"s.xsd": schema}, SIMPLE_MAPPING)
    el = m.render(SOURCE, {})
    m.validate_output(el)
    data = etree.tostring(el, encoding="utf-8")
    assert _lxml_valid(tmp_path / "s" / "s.xsd", data), data
    back = safexml.parse(data)
    assert {etree.QName(c).localname: etree.QName(c).namespace for c in back} == children_ns
    if children_ns["orderNo"] is None:   # no namespace may be the default one
        assert b'xmlns="' not in data and data.startswith(b"<ns0:Order xmlns:ns0=")
    else:                                # a qualified schema keeps the default namespace
        assert data.startswith(f'<Order xmlns="{A}"'.encode())
    read = _zeep_read(tmp_path / "s" / "s.xsd", back)
    assert (read.orderNo, read.qty, read.channel) == ("BJ-2026-0001", 3, "WINDOW")


def test_mixed_forms_across_an_import(tmp_path: Path) -> None:
    m = _load(tmp_path, {"a.xsd": MIXED_A, "b.xsd": MIXED_B}, MIXED_MAPPING)
    el = m.render(SOURCE, {})
    m.validate_output(el)
    data = etree.tostring(el, encoding="utf-8")
    assert _lxml_valid(tmp_path / "s" / "a.xsd", data), data
    back = safexml.parse(data)
    assert [(etree.QName(c).namespace, etree.QName(c).localname) for c in back] == \
        [(None, "orderNo"), (B, "note"), (None, "party")]
    assert [etree.QName(c).namespace for c in back[2]] == [B, B]
    assert b'xmlns="' not in data   # A's prefix is the mapping's own: a
    assert data.startswith(f'<a:Order xmlns:a="{A}" xmlns:b="{B}"'.encode())
    read = _zeep_read(tmp_path / "s" / "a.xsd", back)
    assert (read.orderNo, read.note, read.party.name, read.party.idNo) == \
        ("BJ-2026-0001", "urgent", "北京示例科技有限公司", "110101199001011234")


def test_a_declared_default_namespace_is_moved_to_a_prefix(tmp_path: Path) -> None:
    """``namespaces: {"": …}`` on an unqualified schema would put the children in it."""
    mapping = SIMPLE_MAPPING.replace("target: {kind: xml, schema: s.xsd, element: Order}",
                                     f'target: {{kind: xml, schema: s.xsd, element: Order, '
                                     f'namespaces: {{"": "{A}"}}}}')
    m = _load(tmp_path, {"s.xsd": UNQUALIFIED}, mapping)
    el = m.render(SOURCE, {})
    m.validate_output(el)
    data = etree.tostring(el, encoding="utf-8")
    assert b'xmlns="' not in data and _lxml_valid(tmp_path / "s" / "s.xsd", data)


def test_the_old_emission_is_valid_as_a_tree_but_not_as_bytes(tmp_path: Path) -> None:
    m = _load(tmp_path, {"s.xsd": UNQUALIFIED}, SIMPLE_MAPPING)
    old = etree.Element(f"{{{A}}}Order", nsmap={None: A})   # what the compiler used to build
    etree.SubElement(old, "orderNo").text = "BJ-2026-0001"
    etree.SubElement(old, "qty").text = "3"
    assert m.target_schema.validator.validate(old)            # type: ignore[union-attr]
    data = etree.tostring(old)
    assert data == (f'<Order xmlns="{A}"><orderNo>BJ-2026-0001</orderNo><qty>3</qty>'
                    f'</Order>').encode()
    assert not _lxml_valid(tmp_path / "s" / "s.xsd", data)
    with pytest.raises(OutputInvalid) as ei:
        m.validate_output(old)
    assert "orderNo" in str(ei.value)


def test_inside_a_parent_the_bytes_of_the_whole_document_are_validated(tmp_path: Path) -> None:
    """Rendered into a SOAP Body whose envelope declares a default namespace: the partner reads
    the envelope's bytes, so that is what is validated."""
    m = _load(tmp_path, {"s.xsd": UNQUALIFIED}, SIMPLE_MAPPING)
    env = etree.Element("{http://schemas.xmlsoap.org/soap/envelope/}Envelope",
                        nsmap={"soap": "http://schemas.xmlsoap.org/soap/envelope/"})
    body = etree.SubElement(env, "{http://schemas.xmlsoap.org/soap/envelope/}Body")
    el = m.render(SOURCE, {}, parent=body)
    m.validate_output(el)
    bad = etree.Element("Wrapper", nsmap={None: A})   # a wrapper with a default namespace
    bad.append(el)
    with pytest.raises(OutputInvalid):
        m.validate_output(el)


def test_a_nested_document_follows_the_same_rule(tmp_path: Path) -> None:
    """A whole document inside a string field (Tianjin style) of an unqualified schema."""
    mapping = """
    version: "1"
    target: {kind: json}
    fields:
      xmlData:
        document:
          root: Order
          schema: s.xsd
          fields: {orderNo: no, qty: qty}
    """
    m = _load(tmp_path, {"s.xsd": UNQUALIFIED}, textwrap.dedent(mapping))
    out = m.render(SOURCE, {})
    m.validate_output(out)
    text = out["xmlData"]
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?><ns0:Order xmlns:ns0=')
    assert _lxml_valid(tmp_path / "s" / "s.xsd", text.encode())
