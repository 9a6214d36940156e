"""The offline schema catalog (issue 16): the standard schemas partners import over ``https`` as
well as ``http`` (xml.xsd, xmlmime, XOP, WS-Addressing, OASIS WS-Notification with WS-BaseFaults
and WS-Topics), namespace-only imports resolved for libxml2 (a .NET DataSet's ``s:schema``),
and the engineer's own catalog folders (``--catalog DIR`` on the tools, ``schema_catalogs`` in the
config) used instead of editing a partner's files. Every load runs with no network: a location
the catalog does not know is refused, which the controls show."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import xmlschema
from click.testing import CliRunner, Result
from lxml import etree

from gateway import catalog
from gateway.cli.mapping import mapping
from gateway.config import Settings
from gateway.contracts import use_schema_catalogs
from gateway.errors import ConfigError
from gateway.mapping.xsdmodel import load_schema
from gateway.protocols import xml as safexml

STANDARD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
    xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"
    xmlns:xop="http://www.w3.org/2004/08/xop/include" xmlns:xmime="http://www.w3.org/2005/05/xmlmime"
    targetNamespace="urn:test:std" elementFormDefault="qualified">
  <xs:import namespace="http://www.w3.org/2005/08/addressing"/>
  <xs:import namespace="http://docs.oasis-open.org/wsn/b-2"
             schemaLocation="https://docs.oasis-open.org/wsn/b-2.xsd"/>
  <xs:import namespace="http://www.w3.org/2004/08/xop/include"
             schemaLocation="https://www.w3.org/2004/08/xop/include/xop-include.xsd"/>
  <xs:import namespace="http://www.w3.org/2005/05/xmlmime"
             schemaLocation="https://www.w3.org/2005/05/xmlmime"/>
  <xs:import namespace="http://www.w3.org/XML/1998/namespace"
             schemaLocation="https://www.w3.org/2001/xml.xsd"/>
  <xs:element name="Envelope">
    <xs:complexType><xs:sequence>
      <xs:element ref="wsa:ReplyTo"/>
      <xs:element ref="wsnt:Notify"/>
      <xs:element name="scan"><xs:complexType><xs:sequence>
        <xs:element ref="xop:Include"/></xs:sequence>
        <xs:attribute ref="xmime:contentType"/></xs:complexType></xs:element>
    </xs:sequence><xs:attribute ref="xml:lang"/></xs:complexType>
  </xs:element>
</xs:schema>"""

DOCUMENT = b"""<s:Envelope xmlns:s="urn:test:std" xml:lang="zh"
    xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2">
  <wsa:ReplyTo><wsa:Address>http://127.0.0.1/reply</wsa:Address></wsa:ReplyTo>
  <wsnt:Notify><wsnt:NotificationMessage>
    <wsnt:Topic Dialect="http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple">case</wsnt:Topic>
    <wsnt:Message><x xmlns="urn:test:payload"/></wsnt:Message>
  </wsnt:NotificationMessage></wsnt:Notify>
  <s:scan xmlns:xmime="http://www.w3.org/2005/05/xmlmime" xmime:contentType="application/pdf">
    <xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:scan-1"/></s:scan>
</s:Envelope>"""


@pytest.fixture(autouse=True)
def _no_extra_catalogs() -> Iterator[None]:
    catalog.use_catalogs([], safexml.parse)
    yield
    catalog.use_catalogs([], safexml.parse)


def test_standard_imports_over_https_resolve_offline_in_lxml_and_xmlschema(tmp_path: Path) -> None:
    xsd = tmp_path / "std.xsd"
    xsd.write_text(STANDARD, encoding="utf-8")
    lx = catalog.compile_xsd(STANDARD.encode(), xsd.as_uri(), tmp_path)
    doc = etree.fromstring(DOCUMENT)
    assert lx.validate(doc), lx.error_log
    model = load_schema(xsd)
    assert model.is_valid(DOCUMENT.decode())
    # a Notify without its required NotificationMessage: the imported OASIS schema is enforced
    bad = etree.fromstring(DOCUMENT)
    notify = bad.find("{http://docs.oasis-open.org/wsn/b-2}Notify")
    assert notify is not None
    notify.remove(notify[0])
    assert not lx.validate(bad)
    assert not model.is_valid(etree.tostring(bad).decode())


def test_namespace_only_import_needs_the_catalog_in_libxml2(tmp_path: Path) -> None:
    """The control: plain lxml cannot compile a namespace-only import (what .NET writes for a
    DataSet); through the catalog it compiles, and a DataSet reply validates."""
    dataset = textwrap.dedent("""\
        <s:schema xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:test:ds"
                  xmlns:wsa="http://www.w3.org/2005/08/addressing"
                  targetNamespace="urn:test:ds" elementFormDefault="qualified">
          <s:import namespace="http://www.w3.org/2001/XMLSchema"/>
          <s:import namespace="http://www.w3.org/2005/08/addressing"/>
          <s:element name="GetCasesResult"><s:complexType><s:sequence>
            <s:element ref="wsa:MessageID" minOccurs="0"/>
            <s:element ref="s:schema"/><s:any processContents="lax"/>
          </s:sequence></s:complexType></s:element>
        </s:schema>""").encode()
    with pytest.raises(etree.XMLSchemaParseError):
        etree.XMLSchema(etree.fromstring(dataset))
    schema = catalog.compile_xsd(dataset, (tmp_path / "ds.xsd").as_uri(), tmp_path)
    reply = etree.fromstring(
        b'<GetCasesResult xmlns="urn:test:ds"><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"'
        b' id="NewDataSet"><xs:element name="Case"/></xs:schema>'
        b'<diffgr:diffgram xmlns:diffgr="urn:schemas-microsoft-com:xml-diffgram-v1"/>'
        b'</GetCasesResult>')
    assert schema.validate(reply), schema.error_log


def test_unknown_remote_location_is_still_refused(tmp_path: Path) -> None:
    xsd = STANDARD.replace("https://docs.oasis-open.org/wsn/b-2.xsd",
                           "https://partner.invalid/b-2.xsd")
    with pytest.raises(catalog.SchemaAccessError, match="partner.invalid"):
        catalog.compile_xsd(xsd.encode(), (tmp_path / "x.xsd").as_uri(), tmp_path)


def _partner_files(tmp_path: Path) -> tuple[Path, Path]:
    """A partner WSDL importing a shared schema by a URL of its own (not reachable here), and the
    engineer's catalog folder holding that schema and a catalog.xml naming the URL."""
    partner = tmp_path / "partner"
    partner.mkdir()
    (partner / "Service.wsdl").write_text(textwrap.dedent("""\
        <definitions xmlns="http://schemas.xmlsoap.org/wsdl/"
            xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:tns="urn:test:svc"
            xmlns:c="urn:test:common" targetNamespace="urn:test:svc">
          <types><xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:test:svc">
            <xs:import namespace="urn:test:common"
                       schemaLocation="https://schemas.partner.invalid/common/v2/common.xsd"/>
          </xs:schema></types>
          <message name="In"><part name="body" element="c:Apply"/></message>
          <portType name="P"><operation name="Apply"><input message="tns:In"/></operation></portType>
          <binding name="B" type="tns:P"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
            <operation name="Apply"><soap:operation soapAction="Apply"/>
              <input><soap:body use="literal"/></input></operation></binding>
        </definitions>"""), encoding="utf-8")
    cat = tmp_path / "my-catalog"
    cat.mkdir()
    (cat / "common.xsd").write_text(textwrap.dedent("""\
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:test:common"
                   elementFormDefault="qualified">
          <xs:element name="Apply"><xs:complexType><xs:sequence>
            <xs:element name="caseNo" type="xs:string"/>
          </xs:sequence></xs:complexType></xs:element>
        </xs:schema>"""), encoding="utf-8")
    (cat / "catalog.xml").write_text(
        '<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">'
        '<uri name="http://schemas.partner.invalid/common/v2/common.xsd" uri="common.xsd"/>'
        '</catalog>', encoding="utf-8")
    return partner / "Service.wsdl", cat


def _scaffold(*args: str | Path) -> Result:
    """``gateway mapping scaffold`` in process (tests/test_onboarding_corpus.py runs the CLI as a
    process of its own)."""
    return CliRunner().invoke(mapping, ["scaffold", *map(str, args)])


def test_catalog_option_on_the_tools(tmp_path: Path) -> None:
    wsdl, cat = _partner_files(tmp_path)
    refused = _scaffold("--schema", wsdl, "--schemas", tmp_path)
    assert refused.exit_code == 2, refused.output
    assert "refusing to fetch https://schemas.partner.invalid/common/v2/common.xsd" \
        in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    done = _scaffold("--schema", wsdl, "--schemas", tmp_path, "--catalog", cat)
    assert done.exit_code == 0, done.output
    assert "caseNo: null" in done.output


def test_catalog_folder_by_namespace_and_https_url(tmp_path: Path) -> None:
    _, cat = _partner_files(tmp_path)
    catalog.use_catalogs([cat], safexml.parse)
    assert catalog.lookup("urn:test:common") == (cat / "common.xsd").resolve()
    assert catalog.lookup("https://schemas.partner.invalid/common/v2/common.xsd") == \
        (cat / "common.xsd").resolve()
    # namespace-only in lxml and xmlschema alike
    xsd = tmp_path / "uses.xsd"
    xsd.write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:c="urn:test:common"'
                   ' targetNamespace="urn:test:uses"><xs:import namespace="urn:test:common"/>'
                   '<xs:element name="Wrap"><xs:complexType><xs:sequence><xs:element ref="c:Apply"/>'
                   '</xs:sequence></xs:complexType></xs:element></xs:schema>', encoding="utf-8")
    lx = catalog.compile_xsd(xsd.read_bytes(), xsd.as_uri(), tmp_path)
    doc = (b'<u:Wrap xmlns:u="urn:test:uses"><c:Apply xmlns:c="urn:test:common">'
           b'<c:caseNo>1</c:caseNo></c:Apply></u:Wrap>')
    assert lx.validate(etree.fromstring(doc))
    assert load_schema(xsd).is_valid(doc.decode())
    # a bundled namespace is not shadowed by the engineer's folder
    (cat / "fake-wsa.xsd").write_text('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" '
                                      'targetNamespace="http://www.w3.org/2005/08/addressing"/>',
                                      encoding="utf-8")
    catalog.use_catalogs([cat], safexml.parse)
    assert catalog.lookup("http://www.w3.org/2005/08/addressing") == catalog.SCHEMAS / "ws-addr.xsd"


def test_catalog_entry_outside_its_folder_is_refused(tmp_path: Path) -> None:
    cat = tmp_path / "cat"
    cat.mkdir()
    (cat / "catalog.xml").write_text('<catalog><uri name="http://x.invalid/a.xsd" '
                                     'uri="../../etc/passwd"/></catalog>', encoding="utf-8")
    with pytest.raises(catalog.SchemaAccessError, match="outside the schema folders"):
        catalog.use_catalogs([cat], safexml.parse)


def test_config_schema_catalogs(tmp_path: Path) -> None:
    _, cat = _partner_files(tmp_path)
    cfg = tmp_path / "gateway.yaml"
    cfg.write_text("", encoding="utf-8")
    use_schema_catalogs(Settings(schema_catalogs=["my-catalog"], source_file=str(cfg)))
    assert catalog.catalog_folders() == (cat.resolve(),)
    with pytest.raises(ConfigError, match="schema_catalogs"):
        use_schema_catalogs(Settings(schema_catalogs=["missing"], source_file=str(cfg)))


def test_xmlschema_does_not_get_the_libxml2_only_stub() -> None:
    """xmlschema keeps its own meta-schema for xs:schema (the stub is for libxml2 only)."""
    assert "http://www.w3.org/2001/XMLSchema" not in dict(catalog.xmlschema_locations())
    s = xmlschema.XMLSchema('<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
                            '<xs:element name="a"/></xs:schema>', **catalog.xmlschema_options())
    assert "a" in s.elements


def test_namespace_only_import_in_a_wsdl_through_zeep(tmp_path: Path) -> None:
    """A WSDL whose inline schema imports the engineer's namespace with no location (what WCF
    and .NET write): zeep reads it through the catalog (it skips such an import otherwise)."""
    wsdl, cat = _partner_files(tmp_path)
    text = wsdl.read_text(encoding="utf-8").replace(
        'schemaLocation="https://schemas.partner.invalid/common/v2/common.xsd"', "")
    wsdl.write_text(text, encoding="utf-8")
    missing = _scaffold("--schema", wsdl, "--schemas", tmp_path)
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    done = _scaffold("--schema", wsdl, "--schemas", tmp_path, "--catalog", cat)
    assert done.exit_code == 0, done.output
    assert "caseNo: null" in done.output
