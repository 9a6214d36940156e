"""The hardened parser refuses attack-shaped XML in every encoding, opens no file, keeps GBK-family
text lossless; schema loaders read only the schema folders and the bundled catalog."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import ConfigError
from gateway.protocols import xml as safexml
from tests.hostile_xml import ENCODINGS, FifoTrap, encoded, fifo_trap, parser_documents


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[FifoTrap]:
    """A FIFO that tells whether anything opened it for reading (``tests/hostile_xml.py``)."""
    yield from fifo_trap(tmp_path)


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
    t.start()
    t.join()
    assert seen[0] is not safexml.parser()


# ---- no file is ever opened, whatever the encoding (issue 9) -------------------------------------

@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_no_dtd_entity_or_xinclude_opens_a_file_in_any_encoding(fifo: FifoTrap, encoding: str):
    """The FIFO sees libxml2 itself: a DTD, parameter entity, external entity or XInclude that
    named it would have been opened in C, where no Python hook looks."""
    answers: dict[str, object] = {}
    for name, doc in parser_documents(fifo.url).items():
        try:
            root = safexml.parse(encoded(doc, encoding))
            answers[name] = [(c.tag, c.text) for c in root]
        except safexml.XmlError as e:
            answers[name] = (e.reason, e.forbidden)
    fifo.assert_never_opened()  # first: what matters most is that nothing was opened
    refused = ("DOCTYPE and entity declarations are forbidden", True)
    assert answers.pop("xinclude") == [("{http://www.w3.org/2001/XInclude}include", None)]
    assert answers == dict.fromkeys(answers, refused)  # nothing processes XInclude


def test_the_libxml2_parser_itself_cannot_load_a_dtd(fifo: FifoTrap):
    """Second line of defence: were a DOCTYPE to slip past the decoded-text check, the parser
    object still loads no external subset or entity (``collect_ids`` stays on: lxml's
    ``collect_ids=False`` made libxml2 2.14 load the external subset) and its resolver refuses."""
    p = safexml.parser()
    texts = [etree.fromstring(doc.encode(), parser=p).findtext(".")
             for doc in parser_documents(fifo.url).values()]
    refusals = []
    for name in (str(fifo.path), fifo.url):  # even told to read a file, it asks the resolver
        with pytest.raises(safexml.XmlError) as e:
            etree.parse(name, parser=p)
        refusals.append(e.value.reason)
    fifo.assert_never_opened()
    assert set(texts) <= {None, ""}
    refused = "external reference refused: documents may not load DTDs, entities or other files"
    assert refusals == [refused, refused]


def test_existing_and_missing_files_get_the_same_answer(tmp_path):
    real = tmp_path / "exists.dtd"
    real.write_text("<!ELEMENT r EMPTY>")
    answers = set()
    for target in (real, tmp_path / "missing.dtd"):
        for data in (f'<!DOCTYPE r SYSTEM "{target}"><r/>'.encode(),
                     f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r SYSTEM "{target}"><r/>'
                     .encode("utf-16")):
            with pytest.raises(safexml.XmlError) as e:
                safexml.parse(data)
            answers.add((e.value.reason, e.value.forbidden))
    assert answers == {("DOCTYPE and entity declarations are forbidden", True)}


# ---- encodings: Python decides, strictly ---------------------------------------------------------

@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_every_unicode_encoding_reads_back_the_same_text(encoding: str):
    root = safexml.parse(encoded('<r a="é">吉\U00020BB7祥</r>', encoding))
    assert root.text == "吉\U00020BB7祥" and root.get("a") == "é"


@pytest.mark.parametrize("data, reason", [
    (b"<r>\xc3\x28</r>", "bytes 3-3 are not valid UTF-8"),
    (b'<?xml version="1.0" encoding="GBK"?><r>' + b"\x81\x20</r>",
     "are not valid GB18030"),
    ('<?xml version="1.0" encoding="GBK"?><r>测试甲</r>'.encode(),
     "declares gbk but its bytes are UTF-8"),
    ('<?xml version="1.0" encoding="ISO-8859-1"?><r/>'.encode("utf-16"),
     "declares ISO-8859-1 but is encoded as UTF-16"),
    (b'\xef\xbb\xbf<?xml version="1.0" encoding="GBK"?><r/>', "UTF-8 byte order mark"),
    (b'<?xml version="1.0" encoding="UTF-16"?><r/>', "first bytes are not utf-16"),
    (b'<?xml version="1.0" encoding="UTF-7"?><r/>', "unsupported encoding 'utf-7'"),
    (b'<?xml version="1.0" encoding="x-nonsense"?><r/>', "unsupported encoding"),
    (b"Lo\xa7\x94\x89\x93", "EBCDIC"),
    (" <r/>".encode("utf-16-le"), "NUL character"),
    (b'<?xml encoding="UTF-8"?><r/>', "malformed XML declaration"),
])
def test_undecodable_or_contradictory_bytes_are_refused_clearly(data: bytes, reason: str):
    with pytest.raises(safexml.XmlError, match=reason) as e:
        safexml.parse(data)
    assert not e.value.forbidden


def test_gbk_declared_utf8_choice_is_refusal_not_mojibake():
    """GB18030 decodes most UTF-8 Chinese without an error, into other characters; the gateway
    refuses such a document. Real GBK bytes still read, and ASCII-only ones are unambiguous."""
    text = "测试甲 北京市朝阳区"
    with pytest.raises(safexml.XmlError, match="UTF-8"):
        safexml.parse(f'<?xml version="1.0" encoding="GBK"?><r>{text}</r>'.encode())
    assert safexml.parse(f'<?xml version="1.0" encoding="GBK"?><r>{text}</r>'.encode("gbk")).text == text
    assert safexml.parse(b'<?xml version="1.0" encoding="GBK"?><r>&#27979;</r>').text == "测"


def test_the_declaration_libxml2_sees_names_utf8():
    """libxml2 is never told another encoding: a GB18030 document reaches it re-encoded."""
    from gateway.protocols.xmlcodec import decode, utf8_document
    data = '<?xml version="1.0" encoding="GB2312" standalone="yes"?><r>吉</r>'.encode("gb18030")
    assert utf8_document(decode(data)) == \
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><r>吉</r>'.encode()


def test_parse_text_refuses_lone_surrogates_and_doctype():
    with pytest.raises(safexml.XmlError, match="surrogate"):
        safexml.parse_text("<r>\ud800</r>")
    with pytest.raises(safexml.XmlError) as e:
        safexml.parse_text('<?xml version="1.0" encoding="GBK"?><!DOCTYPE r SYSTEM "/etc/passwd"><r/>')
    assert e.value.forbidden


# ---- floods ---------------------------------------------------------------------------------------

def test_attribute_and_namespace_floods_are_refused_but_ordinary_counts_pass():
    n = safexml.MAX_ATTRIBUTES
    ok = "<r " + " ".join(f'a{i}="="' for i in range(n)) + "/>"
    assert len(safexml.parse(ok.encode()).attrib) == n
    with pytest.raises(safexml.XmlError, match="attributes") as e:
        safexml.parse(("<r " + " ".join(f'a{i}="x"' for i in range(100_000)) + "/>").encode())
    assert e.value.forbidden
    m = safexml.MAX_NAMESPACES
    decls = " ".join(f'xmlns:p{i}="urn:{i}"' for i in range(m))
    assert safexml.parse(f"<r {decls}/>".encode()).tag == "r"
    bomb = "".join(f'<b xmlns:p{i}="urn:{i}" xmlns:q{i}="urn:q{i}">' for i in range(200)) + "</b>" * 200
    with pytest.raises(safexml.XmlError, match="namespace declarations") as e:
        safexml.parse(bomb.encode())
    assert e.value.forbidden


# ---- schema loaders read only the schema folders and the catalog ----------------------------------

def _xsd(body: str, extra_ns: str = "") -> str:
    return f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"{extra_ns}>{body}</xs:schema>'


@pytest.fixture
def outside(tmp_path):
    """A valid XSD outside the schema folder an import could name."""
    d = tmp_path / "elsewhere"
    d.mkdir()
    (d / "o.xsd").write_text(_xsd('<xs:simpleType name="t"><xs:restriction base="xs:string"/>'
                                  "</xs:simpleType>").replace(
        "<xs:schema ", '<xs:schema targetNamespace="urn:o" '))
    return d / "o.xsd"


@pytest.mark.parametrize("location", ["outside", "outside-url", "dotdot", "fifo", "remote"])
def test_schema_imports_outside_the_schema_folders_are_refused(tmp_path, outside, fifo, location):
    from gateway.catalog import SchemaAccessError
    from gateway.mapping.xsdmodel import load_schema as xmlschema_load

    folder = tmp_path / "schemas"
    folder.mkdir()
    loc = {"outside": str(outside), "outside-url": outside.as_uri(), "dotdot": "../elsewhere/o.xsd",
           "fifo": fifo.url, "remote": "http://schemas.example.invalid/o.xsd"}[location]
    xsd = folder / "m.xsd"
    xsd.write_text(_xsd(f'<xs:import namespace="urn:o" schemaLocation="{loc}"/>'
                        '<xs:element name="r" type="o:t"/>', ' xmlns:o="urn:o"'))
    reason = "refusing to fetch" if location == "remote" else "refusing to read"
    with pytest.raises(ConfigError, match=f"schema import refused: {reason}"):
        safexml.load_schema(xsd)
    with pytest.raises(SchemaAccessError,
                       match="block access to remote" if location == "remote" else reason):
        xmlschema_load(xsd)
    fifo.assert_never_opened()


def test_zeep_transport_serves_the_folder_and_catalog_only(tmp_path, outside, fifo):
    from gateway import catalog

    folder = tmp_path / "schemas"
    folder.mkdir()
    (folder / "in.xsd").write_text(_xsd(""))
    t = catalog.zeep_transport(folder)
    assert t.load(str(folder / "in.xsd")).startswith(b"<xs:schema")
    assert b"xml:lang" in t.load("http://www.w3.org/2001/xml.xsd")  # bundled, not fetched
    for loc in (str(outside), outside.as_uri(), str(folder / ".." / "elsewhere" / "o.xsd"),
                fifo.url, str(fifo.path), "/etc/passwd", "http://example.invalid/x.xsd"):
        with pytest.raises(catalog.SchemaAccessError, match="refusing to"):
            t.load(loc)
    in_folder = folder / "trap.fifo"
    os.mkfifo(in_folder)  # a FIFO inside the folder is refused without being opened
    with pytest.raises(catalog.SchemaAccessError, match="not a regular file"):
        t.load(str(in_folder))
    fifo.assert_never_opened()


def _wsdl_importing(path: Path, location: Path) -> Path:
    path.parent.mkdir()
    path.write_text('<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
                    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t">'
                    '<wsdl:types><xsd:schema><xsd:import namespace="urn:o" '
                    f'schemaLocation="{location}"/></xsd:schema></wsdl:types></wsdl:definitions>')
    return path


def test_scaffold_refuses_a_wsdl_import_outside_its_folder(tmp_path, outside):
    from gateway.mapping.scaffold import ScaffoldError, scaffold

    wsdl = _wsdl_importing(tmp_path / "w" / "s.wsdl", outside)
    with pytest.raises(ScaffoldError, match="refusing to read"):
        scaffold(wsdl, schemas_dir=tmp_path / "w")


def test_partner_wsdls_loaded_at_start_up_are_confined_too(tmp_path, outside):
    from gateway.protocols import soap

    wsdl = _wsdl_importing(tmp_path / "w" / "s.wsdl", outside)
    with pytest.raises(ConfigError, match="refusing to read"):
        soap.load_operation(wsdl, "anything")
