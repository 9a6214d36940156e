"""SOAP faults the gateway builds (simulators and its own SOAP endpoints) are valid against the
SOAP envelope schemas of the offline catalog; in particular a SOAP 1.2 fault code keeps a prefix
that is declared where it is written (issue 16: "the env prefix of the fault code is lost when
the fault is re-parented")."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway import catalog
from gateway.protocols import soap
from gateway.protocols import xml as safexml

HB = "http://zwfw.hebei.example/exchange/v1"


def envelope_schema(name: str) -> etree.XMLSchema:
    path = catalog.SCHEMAS / name
    return catalog.compile_xsd(path.read_bytes(), path.as_uri())


@pytest.fixture(scope="module")
def soap12() -> etree.XMLSchema:
    return envelope_schema("soap12-envelope.xsd")


@pytest.fixture(scope="module")
def soap11() -> etree.XMLSchema:
    return envelope_schema("soap11-envelope.xsd")


def detail() -> etree._Element:
    d = etree.Element(f"{{{HB}}}FaultDetail", nsmap={"hb": HB})
    etree.SubElement(d, f"{{{HB}}}errorCode").text = "E1001"
    return d


def resolved(el: etree._Element) -> etree.QName:
    """A QName-valued text resolved against the declarations in scope where it stands."""
    prefix, _, local = (el.text or "").partition(":")
    return etree.QName(el.nsmap[prefix], local)


@pytest.mark.parametrize("code", ["Sender", "Receiver"])
@pytest.mark.parametrize("subcode", [None, etree.QName(HB, "AuthFailed"),
                                     etree.QName(soap.SOAP12_NS, "Sender"),
                                     etree.QName(None, "Busy")])
@pytest.mark.parametrize("with_detail", [False, True])
def test_soap12_fault_is_schema_valid(soap12, code, subcode, with_detail):
    data = soap.build_fault(soap.SOAP12, code, "原因", subcode=subcode,
                            detail=detail() if with_detail else None)
    root = safexml.parse(data)  # the bytes as a partner parses them
    soap12.assertValid(root)
    value = root.find(f".//{{{soap.SOAP12_NS}}}Code/{{{soap.SOAP12_NS}}}Value")
    assert value.text == f"env:{code}" and resolved(value) == etree.QName(soap.SOAP12_NS, code)
    if subcode is not None and subcode.namespace:
        sub = root.find(f".//{{{soap.SOAP12_NS}}}Subcode/{{{soap.SOAP12_NS}}}Value")
        assert resolved(sub) == subcode
    fault = soap.parse_envelope(data).fault
    assert fault is not None and fault.code == code
    assert fault.subcode == ("E1001" if with_detail else subcode.localname if subcode else None)


def test_the_schema_catches_an_undeclared_fault_code_prefix(soap12):
    """What a fault built apart and re-parented looked like: ``env:Sender`` under ``soap:``."""
    broken = (f'<soap:Envelope xmlns:soap="{soap.SOAP12_NS}"><soap:Body><soap:Fault><soap:Code>'
              f'<soap:Value>env:Sender</soap:Value></soap:Code><soap:Reason>'
              f'<soap:Text xml:lang="en">x</soap:Text></soap:Reason></soap:Fault></soap:Body>'
              f'</soap:Envelope>').encode()
    assert not soap12.validate(safexml.parse(broken))


@pytest.mark.parametrize("code", ["Sender", "Receiver"])
def test_soap11_fault_is_schema_valid(soap11, code):
    data = soap.build_fault(soap.SOAP11, code, "reason", detail=detail())
    root = safexml.parse(data)
    soap11.assertValid(root)
    fault_code = root.find(f".//{{{soap.SOAP11_NS}}}Fault/faultcode")
    assert resolved(fault_code) == etree.QName(soap.SOAP11_NS,
                                               {"Sender": "Client", "Receiver": "Server"}[code])
