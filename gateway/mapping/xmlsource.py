"""Turn a partner's XML (an lxml element, or a string carrying a whole document) into the plain
dict that mapping paths read.

Child local names become keys, text becomes strings, attributes become ``@name``; a name that
occurs several times becomes a list. Paths stay correct whatever the count, because mapping paths
treat a single value and a one-element list alike (``x[0]`` and ``each: x`` work on both), so no
cardinality is guessed on the way out. Parsing goes through the gateway's one hardened parser
(:mod:`gateway.protocols.xml`: no DTD, no entities, no network, a size cap, one parser per
thread), so a partner's document cannot do here what it could not do anywhere else.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.protocols import xml as safexml


def element_to_dict(el: Any) -> Any:
    children = [c for c in el if isinstance(c.tag, str)]
    if not children and not el.attrib:
        return el.text
    out: dict[str, Any] = {f"@{etree.QName(k).localname}": v for k, v in el.attrib.items()}
    if el.text and el.text.strip() and not children:
        out["#text"] = el.text
    for c in children:
        key = etree.QName(c).localname
        val = element_to_dict(c)
        if key in out:
            prev = out[key]
            if isinstance(prev, list):
                prev.append(val)
            else:
                out[key] = [prev, val]
        else:
            out[key] = val
    return out


def parse_document(text: str | bytes) -> Any:
    """Parse a whole XML document: bytes honour their encoding (a GBK-family declaration is read
    as GB18030 so rare characters survive), text is already Unicode (its declaration may only name
    the GBK family or UTF-8). Raises :class:`gateway.protocols.xml.XmlError`."""
    if isinstance(text, bytes | bytearray):
        return safexml.parse(bytes(text))
    return safexml.parse_text(text)


def xml_to_dict(text: str | bytes) -> dict[str, Any]:
    """A document as ``{root local name: content}``."""
    root = parse_document(text)
    return {etree.QName(root).localname: element_to_dict(root)}
