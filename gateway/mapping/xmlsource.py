"""Turn a partner's XML (an lxml element, or a string carrying a whole document) into the plain
dict that mapping paths read.

Child local names become keys, text becomes strings, attributes become ``@name``; a name that
occurs several times becomes a list. Paths stay correct whatever the count, because mapping paths
treat a single value and a one-element list alike (``x[0]`` and ``each: x`` work on both), so no
cardinality is guessed on the way out. Parsing is hardened (no network, entities or DTD).
"""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

_DECL = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9_.-]+)[\"']")
_PARSER = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False,
                          huge_tree=False, remove_blank_text=True)


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
    """Parse a whole XML document carried as text, honouring its declared encoding (GBK is read
    as GB18030 so rare characters survive)."""
    data = text if isinstance(text, bytes) else None
    if data is None:
        assert isinstance(text, str)
        m = _DECL.match(text.encode("ascii", errors="ignore")[:200])
        enc = m.group(1).decode() if m else "utf-8"
        if enc.lower() in ("gbk", "gb2312"):
            enc = "gb18030"
        data = text.encode(enc, errors="xmlcharrefreplace")
    m = _DECL.match(data[:200])
    if m and m.group(1).lower() in (b"gbk", b"gb2312"):
        data = data.replace(m.group(1), b"GB18030", 1)
    return etree.fromstring(data, _PARSER)


def xml_to_dict(text: str | bytes) -> dict[str, Any]:
    """A document as ``{root local name: content}``."""
    root = parse_document(text)
    return {etree.QName(root).localname: element_to_dict(root)}
