"""The one hardened XML parser of the gateway.

Every byte of XML that enters the gateway (partner replies, simulator requests, vendored schemas,
XML carried inside strings) is parsed here, so the defences live in one place:

* a size cap is checked before anything else looks at the bytes;
* the encoding is decided and the bytes decoded strictly in Python (:mod:`xmlcodec`); any
  ``<!DOCTYPE``/``<!ENTITY`` in the *decoded* text is refused, whatever the encoding (UTF-16 and
  UTF-32 included), and libxml2 only ever receives UTF-8 with the encoding forced;
* libxml2 itself is configured so it cannot load anything: no DTD loading or validation, no
  entity resolution, no network, and a resolver that refuses every external document (DTD,
  entity, XInclude) with the same message whatever the target, so there is no file-existence
  oracle. ``collect_ids`` stays on: lxml implements ``collect_ids=False`` by setting a libxml2
  flag that, on libxml2 2.14, makes it load the external DTD subset (seen with strace);
* ``huge_tree`` stays off (libxml2's depth limit of 256 and its text-node limits stay in force);
  more than :data:`MAX_ATTRIBUTES` attributes on an element or :data:`MAX_NAMESPACES` namespace
  declarations in a document are refused; comments and processing instructions are kept out
  of the tree.

lxml parsers are not safe to share between threads, so each thread gets its own (the event loop
thread and any executor thread that parses a large reply or loads a WSDL).
"""

from __future__ import annotations

import itertools
import re
import threading
from pathlib import Path
from typing import cast

from lxml import etree

from gateway.protocols.xmlcodec import (
    GBK_FAMILY,
    XmlError,
    declared_label,
    decode,
    utf8_document,
)

__all__ = ["GBK_FAMILY", "MAX_ATTRIBUTES", "MAX_NAMESPACES", "MAX_XML_BYTES", "XmlError",
           "declared_encoding", "load_schema", "parse", "parse_declared", "parse_text", "parser",
           "schema_errors", "to_bytes"]

MAX_XML_BYTES = 8 * 1024 * 1024
"""Default cap for one document; partner messages are far below it (a case is a few KB)."""
MAX_ATTRIBUTES = 256
"""Attributes on one element. No contract comes near it; 100k attributes is an attack."""
MAX_NAMESPACES = 256
"""Namespace declarations in one document (a "namespace bomb" declares them by the thousand)."""

_SCHEMAS = Path(__file__).resolve().parent.parent.parent / "schemas"
_REFUSED = "external reference refused: documents may not load DTDs, entities or other files"


class _RefuseAll(etree.Resolver):
    """Asked whenever libxml2 wants another document; never lets it have one."""

    def resolve(self, url: str, pubid: str, context: object) -> None:  # type: ignore[override]
        raise XmlError(_REFUSED, forbidden=True)


def _new_parser() -> etree.XMLParser:
    p = etree.XMLParser(
        encoding="utf-8",         # xmlcodec hands over UTF-8 only; the declaration is not asked
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        strip_cdata=True,
    )
    p.resolvers.add(_RefuseAll())
    return p


_local = threading.local()


def parser() -> etree.XMLParser:
    """This thread's hardened parser (lxml parsers must not be shared across threads)."""
    p: etree.XMLParser | None = getattr(_local, "parser", None)
    if p is None:
        p = _new_parser()
        _local.parser = p
    return p


def parse(data: bytes, *, max_bytes: int = MAX_XML_BYTES,
          encoding: str | None = None) -> etree._Element:
    """Parse ``data`` safely, honouring its byte order mark and declaration (a GBK-family
    declaration is read as GB18030); ``encoding`` overrides both.

    Raises :class:`XmlError` for anything but a well-formed, DTD-free document.
    """
    if not isinstance(data, bytes | bytearray):
        raise XmlError("XML must be given as bytes so its declared encoding is honoured")
    if len(data) > max_bytes:
        raise XmlError(f"document of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    return _parse_utf8(utf8_document(decode(bytes(data), encoding)))


def _parse_utf8(data: bytes) -> etree._Element:
    _check_namespaces(data)
    try:
        root = etree.fromstring(data, parser=parser())
    except etree.XMLSyntaxError as e:
        raise XmlError(f"not well-formed XML: {e.msg}") from e
    if root is None:
        raise XmlError("empty document")
    if root.getroottree().docinfo.doctype:  # unreachable after utf8_document; kept as a tripwire
        raise XmlError("DOCTYPE is forbidden", forbidden=True)
    _check_attributes(data, root)
    return root


# Attribute and namespace floods, checked in linear time without Python work per declaration.
_NS_DECL = re.compile(rb"\sxmlns(?::[^\s=>]+)?\s*=")


def _check_namespaces(data: bytes) -> None:
    """Counted in the bytes (before libxml2 builds anything), so a declaration-shaped string in
    text — an escaped document carried in a string — counts too; such an inner document would
    be refused in its turn when parsed."""
    found = sum(1 for _ in itertools.islice(_NS_DECL.finditer(data), MAX_NAMESPACES + 1))
    if found > MAX_NAMESPACES:
        raise XmlError(f"more than {MAX_NAMESPACES} namespace declarations", forbidden=True)


def _check_attributes(data: bytes, root: etree._Element) -> None:
    """Only a document with more ``=`` than the limit can break it; only then is the tree walked."""
    if data.count(b"=") <= MAX_ATTRIBUTES:
        return
    worst = max(len(el.attrib) for el in root.iter())
    if worst > MAX_ATTRIBUTES:
        raise XmlError(f"an element has {worst} attributes (limit {MAX_ATTRIBUTES})",
                       forbidden=True)


def declared_encoding(data: bytes) -> str | None:
    """The encoding named in the XML declaration, lower-cased, or ``None``."""
    return declared_label(data)


def parse_declared(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse a document honouring its declaration, reading any GBK-family name as GB18030
    (what :func:`parse` does; kept for callers that say so explicitly)."""
    return parse(data, max_bytes=max_bytes)


def parse_text(text: str, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse an XML document carried as a string (e.g. ``xmlData`` or ``<return>``).

    The characters are already Unicode, so the string's own declaration is only a label: it may
    name the GBK family or UTF-8 (or be absent), and a rare character outside GBK, raw or as a
    reference, is never lost on the way.
    """
    if not isinstance(text, str):
        raise XmlError("an embedded document must be given as text")
    label = declared_encoding(text[:200].encode("ascii", "replace"))
    if label is not None and (label not in GBK_FAMILY and label not in {"utf-8", "utf8"}):
        raise XmlError(f"embedded document declares unsupported encoding {label!r}")
    if len(text) > max_bytes:  # each character is at least one byte; the exact check follows
        raise XmlError(f"document of {len(text)} characters exceeds the {max_bytes}-byte limit")
    data = utf8_document(text)
    if len(data) > max_bytes:
        raise XmlError(f"document of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    return _parse_utf8(data)


def load_schema(path: Path | str, *folders: Path | str) -> etree.XMLSchema:
    """Compile a vendored XSD (or a WSDL's inline schemas, all of them). Its
    ``xsd:import``/``include`` locations resolve from the bundled catalog, the schema's own
    folder, the project's ``schemas/`` and ``folders``; any other location is refused
    (:mod:`gateway.catalog`).

    Raises :class:`gateway.errors.ConfigError` naming the file: a broken schema is a broken
    deployment, found at start-up.
    """
    from gateway import catalog
    from gateway.errors import ConfigError

    path = Path(path)
    try:
        if path.suffix.lower() == ".wsdl":   # its inline schemas (gateway/protocols/wsdl_types.py)
            from gateway.protocols.wsdl_types import compile_wsdl_types
            return cast(etree.XMLSchema, compile_wsdl_types(path, _SCHEMAS, *folders, parse=parse))
        data = utf8_document(decode(path.read_bytes()))
        return cast(etree.XMLSchema, catalog.compile_xsd(
            data, path.resolve().as_uri(), path.resolve().parent, _SCHEMAS, *folders))
    except catalog.SchemaAccessError as e:
        raise ConfigError(f"schema import refused: {e}", file=str(path)) from e
    except OSError as e:
        raise ConfigError(f"cannot read schema: {e.strerror}", file=str(path)) from e
    except XmlError as e:
        raise ConfigError(f"invalid schema: {e.reason}", file=str(path)) from e
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as e:
        raise ConfigError(f"invalid schema: {e}", file=str(path)) from e


def schema_errors(schema: etree.XMLSchema, root: etree._Element, limit: int = 5) -> list[str]:
    """Validate and return at most ``limit`` readable messages (empty list = valid)."""
    if schema.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:limit]]


def to_bytes(root: etree._Element, *, encoding: str = "utf-8", declaration: bool = True) -> bytes:
    """Serialise. With a non-Unicode ``encoding``, characters it cannot hold become numeric
    character references (``&#134071;``) — lossless by construction, never a ``?``."""
    return etree.tostring(root, encoding=encoding, xml_declaration=declaration)
