"""SOAP base: WSDL facts, envelopes of both versions, fault reading, reply classification."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import ConfigError
from gateway.outcome import OutcomeKind
from gateway.protocols import soap
from gateway.protocols import xml as safexml

FIX = Path(__file__).parent / "fixtures" / "soap"
HB = "http://zwfw.hebei.example/exchange/v1"


def hebei_op() -> soap.SoapOperation:
    return soap.load_operation("schemas/hebei/CaseExchange.wsdl", "SubmitCase")


def test_wsdl_facts():
    hb = hebei_op()
    assert hb.version is soap.SOAP12 and hb.action == "urn:hebei:exchange:SubmitCase"
    assert hb.input_qname == etree.QName(HB, "SubmitCaseRequest")
    assert hb.header_qnames == (etree.QName(HB, "MessageHeader"),)
    tj = soap.load_operation("schemas/tianjin/ExchangeService.wsdl", "submitCase")
    assert tj.version is soap.SOAP11 and tj.action == "" and tj.header_qnames == ()
    assert soap.load_operation("schemas/hebei/CaseExchange.wsdl", "SubmitCase").zeep_client is hb.zeep_client


def test_wsdl_with_external_entity_is_refused(tmp_path):
    evil = tmp_path / "evil.wsdl"
    evil.write_text('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                    '<definitions xmlns="http://schemas.xmlsoap.org/wsdl/">&x;</definitions>')
    with pytest.raises(ConfigError):
        soap.load_operation(evil, "x")


def test_http_headers_per_version():
    assert soap.SOAP11.http_headers("a") == {"Content-Type": "text/xml; charset=utf-8",
                                             "SOAPAction": '"a"'}
    assert soap.SOAP12.http_headers("urn:x") == {
        "Content-Type": 'application/soap+xml; charset=utf-8; action="urn:x"'}


def test_lxml_body_equals_zeep_create_message_body():
    op = hebei_op()
    doc = safexml.parse((FIX / "hebei-request.xml").read_bytes())
    client = op.zeep_client
    from zeep.helpers import serialize_object
    value = serialize_object(client.get_element(op.input_qname.text).parse(doc, client.wsdl.types), dict)
    zenv = client.create_message(client.service, "SubmitCase", **value,
                                 _soapheaders={"header": {"messageId": "k", "senderCode": "BJ",
                                                          "sentAt": datetime(2026, 11, 30)}})
    ours = soap.parse_envelope(soap.build_envelope(soap.SOAP12, doc))
    zbody = zenv.find(f"{{{soap.SOAP12_NS}}}Body")[0]
    def canon(el: etree._Element) -> str:
        return etree.canonicalize(etree.tostring(el, encoding="unicode"), strip_text=True,
                                 rewrite_prefixes=True)
    assert canon(ours.body[0]) == canon(zbody)
    assert zenv.find(f"{{{soap.SOAP12_NS}}}Header/{{{HB}}}MessageHeader/{{{HB}}}messageId").text == "k"


@pytest.mark.parametrize("version,code,retryable", [
    (soap.SOAP12, "Sender", False), (soap.SOAP12, "Receiver", True),
    (soap.SOAP11, "Sender", False), (soap.SOAP11, "Receiver", True),
])
def test_fault_round_trip(version, code, retryable):
    detail = etree.Element(etree.QName(HB, "FaultDetail"))
    etree.SubElement(detail, etree.QName(HB, "errorCode")).text = "1001"
    data = soap.build_fault(version, code, "原因", subcode=etree.QName(HB, "Invalid"), detail=detail)
    env = soap.parse_envelope(data)
    assert env.version is version and env.fault is not None
    assert env.fault.retryable is retryable and env.fault.reason == "原因"
    assert env.fault.subcode == "1001"  # the partner's own code wins over the subcode


def test_subcode_without_detail():
    env = soap.parse_envelope(soap.build_fault(soap.SOAP12, "Sender", "x",
                                               subcode=etree.QName("urn:s", "FailedAuthentication")))
    assert (env.fault.code, env.fault.subcode) == ("Sender", "FailedAuthentication")


def reply(status: int, body: bytes, **headers: str) -> soap.HttpReply:
    return soap.HttpReply(status, headers, body, 0.01)


OK12 = soap.build_envelope(soap.SOAP12, etree.Element(etree.QName(HB, "SubmitCaseResponse")))
F_SENDER = soap.build_fault(soap.SOAP12, "Sender", "bad")
F_RECEIVER = soap.build_fault(soap.SOAP12, "Receiver", "down")


@pytest.mark.parametrize("r,kind", [
    (reply(200, OK12), None),
    (reply(400, F_SENDER), OutcomeKind.PERMANENT),
    (reply(500, F_RECEIVER), OutcomeKind.RETRYABLE),
    (reply(503, F_SENDER, **{"Retry-After": "3"}), OutcomeKind.RETRYABLE),
    (reply(500, b"<html>oops"), OutcomeKind.RETRYABLE),
    (reply(502, b""), OutcomeKind.RETRYABLE),
    (reply(200, b"<soap:Envelope"), OutcomeKind.RETRYABLE),
    (reply(404, b"not found"), OutcomeKind.PERMANENT),
    (reply(501, b"not implemented"), OutcomeKind.PERMANENT),
    (reply(500, soap.build_fault(soap.SOAP12, "Sender", "spyne style")), OutcomeKind.PERMANENT),
    (reply(200, soap.build_envelope(soap.SOAP11, etree.Element("x"))), OutcomeKind.PERMANENT),
    (reply(429, OK12, **{"Retry-After": "5"}), OutcomeKind.RETRYABLE),
    (reply(200, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'), OutcomeKind.RETRYABLE),
])
def test_classify_reply(r, kind):
    got = soap.classify_reply(r, soap.SOAP12)
    if kind is None:
        assert isinstance(got, soap.Envelope)
    else:
        assert got.kind is kind, got


def test_retry_after_kept():
    got = soap.classify_reply(reply(503, F_SENDER, **{"Retry-After": "3"}), soap.SOAP12)
    assert got.retry_after == 3.0


def test_not_an_envelope():
    with pytest.raises(soap.SoapError):
        soap.parse_envelope(b"<a/>")
    with pytest.raises(soap.SoapError):
        soap.parse_envelope(b'<e:Envelope xmlns:e="' + soap.SOAP12_NS.encode() + b'"/>')


@pytest.mark.parametrize("raw,want", [("abc-1.2_x", "abc-1.2_x"), ("办件 #42", "42"),
                                      ("", "-"), ("a" * 100, "a" * 64)])
def test_token(raw, want):
    assert soap.token(raw) == want
