"""The one hardened XML parser of the gateway, and the encoding rules for GBK-family documents.

Every byte of XML that enters the gateway (partner replies, simulator requests, vendored schemas)
is parsed here, so the defences live in one place:

* no DTD is loaded and any ``<!DOCTYPE`` is refused outright (billion laughs, XXE, SSRF via
  external DTDs all need one);
* entities are never resolved, the network is never touched, ``huge_tree`` stays off (libxml2's
  depth and text-node limits stay in force), processing instructions other than the prolog and
  comments are kept out of the tree;
* a size cap is checked before libxml2 sees the bytes.

lxml parsers are not safe to share between threads, so each thread gets its own (the event loop
thread and any executor thread that loads WSDLs).

GBK family: partners declare ``GBK`` or ``GB2312`` but write characters from GB18030 (rare
characters in names). GB18030 is a strict superset of both, so a declared GBK-family document is
always decoded as GB18030; nothing is ever replaced silently.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import cast

from lxml import etree

from gateway.errors import GatewayError

MAX_XML_BYTES = 8 * 1024 * 1024
"""Default cap for one document; partner messages are far below it (a case is a few KB)."""

GBK_FAMILY = frozenset({"gbk", "gb2312", "gb_2312", "gb-2312", "gb18030", "cp936", "ms936",
                        "euc-cn", "x-gbk", "windows-936"})
_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>")


class XmlError(GatewayError):
    """A document that is not well-formed, too large, or uses a forbidden construct.

    ``forbidden`` distinguishes an attack-shaped document (DOCTYPE, entities) from a merely
    broken one; both are permanent for the message that carried them.
    """

    def __init__(self, reason: str, *, forbidden: bool = False) -> None:
        self.reason = reason
        self.forbidden = forbidden
        super().__init__(reason)


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
        strip_cdata=True,
    )


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
    """Parse ``data`` safely; ``encoding`` overrides the declared one (used for GB18030).

    Raises :class:`XmlError` for anything but a well-formed, DTD-free document.
    """
    if not isinstance(data, bytes | bytearray):
        raise XmlError("XML must be given as bytes so its declared encoding is honoured")
    if len(data) > max_bytes:
        raise XmlError(f"document of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:  # both are case-sensitive in XML
        raise XmlError("DOCTYPE and entity declarations are forbidden", forbidden=True)
    p = parser() if encoding is None else _encoding_parser(encoding)
    try:
        root = etree.fromstring(bytes(data), parser=p)
    except etree.XMLSyntaxError as e:
        raise XmlError(f"not well-formed XML: {e.msg}") from e
    except ValueError as e:  # e.g. unknown encoding
        raise XmlError(f"unreadable XML: {e}") from e
    if root is None:
        raise XmlError("empty document")
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise XmlError("DOCTYPE is forbidden", forbidden=True)
    return root


def _encoding_parser(encoding: str) -> etree.XMLParser:
    cache: dict[str, etree.XMLParser] = getattr(_local, "by_encoding", None) or {}
    _local.by_encoding = cache
    p = cache.get(encoding)
    if p is None:
        p = etree.XMLParser(encoding=encoding, resolve_entities=False, no_network=True,
                            load_dtd=False, dtd_validation=False, huge_tree=False,
                            remove_comments=True, remove_pis=True, collect_ids=False,
                            strip_cdata=True)
        cache[encoding] = p
    return p


def declared_encoding(data: bytes) -> str | None:
    """The encoding named in the XML declaration, lower-cased, or ``None``."""
    m = _DECL.match(data[:200])
    return m.group(1).decode("ascii").lower() if m else None


def parse_declared(data: bytes, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse a document honouring its declaration, but read any GBK-family name as GB18030."""
    enc = declared_encoding(data)
    if enc in GBK_FAMILY:
        return parse(data, max_bytes=max_bytes, encoding="GB18030")
    return parse(data, max_bytes=max_bytes)


def parse_text(text: str, *, max_bytes: int = MAX_XML_BYTES) -> etree._Element:
    """Parse an XML document carried as a string (e.g. ``xmlData`` or ``<return>``).

    The string's own declaration may name GBK; the characters are already Unicode, so they are
    re-encoded as GB18030 (which can hold every Unicode character) and parsed as that — a rare
    character is never lost on the way, whatever the declaration says.
    """
    enc = declared_encoding(text[:200].encode("ascii", "replace"))
    if enc is None or enc in GBK_FAMILY:
        return parse(text.encode("gb18030"), max_bytes=max_bytes, encoding="GB18030")
    if enc in {"utf-8", "utf8"}:
        return parse(text.encode("utf-8"), max_bytes=max_bytes)
    raise XmlError(f"embedded document declares unsupported encoding {enc!r}")


def load_schema(path: Path | str) -> etree.XMLSchema:
    """Compile a vendored XSD (its local ``xsd:import``/``include`` files resolve beside it).

    Raises :class:`gateway.errors.ConfigError` naming the file: a broken schema is a broken
    deployment, found at start-up.
    """
    from gateway.errors import ConfigError

    path = Path(path)
    try:
        data = path.read_bytes()
        doc = etree.fromstring(data, parser=parser(), base_url=path.resolve().as_uri())
        return etree.XMLSchema(doc)
    except OSError as e:
        raise ConfigError(f"cannot read schema: {e.strerror}", file=str(path)) from e
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as e:
        raise ConfigError(f"invalid schema: {e}", file=str(path)) from e


def schema_errors(schema: etree.XMLSchema, root: etree._Element, limit: int = 5) -> list[str]:
    """Validate and return at most ``limit`` readable messages (empty list = valid)."""
    if schema.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:limit]]  # type: ignore[call-overload]


def to_bytes(root: etree._Element, *, encoding: str = "utf-8", declaration: bool = True) -> bytes:
    """Serialise. With a non-Unicode ``encoding``, characters it cannot hold become numeric
    character references (``&#134071;``) — lossless by construction, never a ``?``."""
    return cast(bytes, etree.tostring(root, encoding=encoding, xml_declaration=declaration))
