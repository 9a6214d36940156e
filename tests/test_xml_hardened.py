"""The hardened parser refuses attack-shaped XML and keeps GBK-family text lossless."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.errors import ConfigError
from gateway.protocols import xml as safexml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><r/>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, XXE, EXTERNAL_DTD])
def test_doctype_and_entities_refused(doc):
    with pytest.raises(safexml.XmlError) as e:
        safexml.parse(doc)
    assert e.value.forbidden


def test_size_cap_and_malformed():
    with pytest.raises(safexml.XmlError, match="limit"):
        safexml.parse(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)
    with pytest.raises(safexml.XmlError, match="well-formed"):
        safexml.parse(b"<a><b></a>")
    with pytest.raises(safexml.XmlError):
        safexml.parse("<a/>")  # type: ignore[arg-type]


def test_deep_nesting_refused_without_huge_tree():
    deep = b"<a>" * 300_000 + b"</a>" * 300_000
    with pytest.raises(safexml.XmlError):
        safexml.parse(deep, max_bytes=10**7)


def test_gbk_declared_bytes_read_as_gb18030():
    text = "吉\U00020BB7祥"
    data = b'<?xml version="1.0" encoding="GBK"?><r>' + text.encode("gb18030") + b"</r>"
    assert safexml.parse_declared(data).text == text


def test_gbk_text_with_reference_and_raw_rare_char():
    assert safexml.parse_text('<?xml version="1.0" encoding="GBK"?><r>&#134071;</r>').text == "\U00020BB7"
    # a partner that put the raw character in a GBK-declared string still gets it back
    assert safexml.parse_text('<?xml version="1.0" encoding="GBK"?><r>\U00020BB7</r>').text == "\U00020BB7"
    assert safexml.parse_text("<r>无声明</r>").text == "无声明"
    with pytest.raises(safexml.XmlError, match="unsupported"):
        safexml.parse_text('<?xml version="1.0" encoding="Shift_JIS"?><r/>')


def test_serialise_gbk_uses_references():
    r = etree.Element("r")
    r.text = "\U00020BB7"
    assert b"&#134071;" in safexml.to_bytes(r, encoding="GBK")


def test_load_schema_reports_file(tmp_path):
    bad = tmp_path / "bad.xsd"
    bad.write_text("<xsd:schema xmlns:xsd='http://www.w3.org/2001/XMLSchema'><xsd:nope/></xsd:schema>")
    with pytest.raises(ConfigError) as e:
        safexml.load_schema(bad)
    assert e.value.file == str(bad)
    with pytest.raises(ConfigError):
        safexml.load_schema(tmp_path / "missing.xsd")


def test_one_parser_per_thread():
    import threading
    seen = []
    t = threading.Thread(target=lambda: seen.append(safexml.parser()))
    t.start(); t.join()
    assert seen[0] is not safexml.parser()
