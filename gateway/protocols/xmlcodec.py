"""Bytes → checked UTF-8 for libxml2: Python decides the encoding, libxml2 never does.

A DOCTYPE check on raw bytes is blind to UTF-16 and UTF-32 (``<!DOCTYPE`` is then interleaved
with NULs), and libxml2 *does* read those encodings — and then, with lxml's ``collect_ids=False``,
loaded the external DTD subset a document named (``/etc/passwd``; ``/dev/stdin`` froze the
process). So the document is decoded here, strictly, with the encoding XML 1.0 Appendix F
prescribes (byte order mark, first bytes, then the declaration); the *decoded text* is checked
for DTD constructs; and libxml2 receives UTF-8 with a declaration that says so.

GBK family: partners declare ``GBK`` or ``GB2312`` but write characters from GB18030 (rare
characters in names); GB18030 is a strict superset of both, so such documents are decoded as
GB18030. A GBK-declared document whose bytes are valid UTF-8 (and not plain ASCII) is refused
instead: GB18030 would "decode" it into mojibake without an error, and a garbled applicant name
is worse than a clear rejection. (Real GBK text is almost never valid UTF-8: any run of Chinese
longer than a few characters breaks UTF-8's continuation-byte rules.)
"""

from __future__ import annotations

import codecs
import re

from gateway.errors import GatewayError


class XmlError(GatewayError):
    """A document that is not well-formed, too large, or uses a forbidden construct.

    ``forbidden`` distinguishes an attack-shaped document (DOCTYPE, entities, external
    references) from a merely broken one; both are permanent for the message that carried them.
    """

    def __init__(self, reason: str, *, forbidden: bool = False) -> None:
        self.reason = reason
        self.forbidden = forbidden
        super().__init__(reason)


GBK_FAMILY = frozenset({"gbk", "gb2312", "gb_2312", "gb-2312", "gb18030", "cp936", "ms936",
                        "euc-cn", "x-gbk", "windows-936"})

# Python codec names (codecs.lookup(label).name) a document may declare: Unicode, ASCII, the
# ISO-8859 and Windows single-byte sets, and the Chinese multi-byte sets. Not the codecs Python
# also knows that are no charset at all (unicode_escape, idna, utf-7 …).
_ALLOWED = frozenset({"utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
                      "utf-32-be", "ascii", "latin-1", "gb18030", "gbk", "gb2312", "big5",
                      "big5hkscs"}
                     | {f"iso8859-{n}" for n in range(1, 17)}
                     | {f"cp{n}" for n in range(1250, 1259)})

_BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
         (b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))
# Appendix F without a byte order mark: where the first "<" sits tells the code unit width.
_FIRST = ((b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"),
          (b"\x00\x00<\x00", None), (b"\x00<\x00\x00", None), (b"Lo\xa7\x94", None),
          (b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le"))

DECL_BYTES = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>")
_DECL = re.compile(r"<\?xml\s+version\s*=\s*([\"'])(1\.\d+)\1"
                   r"(?:\s+encoding\s*=\s*([\"'])([A-Za-z][A-Za-z0-9._-]*)\3)?"
                   r"(?:\s+standalone\s*=\s*([\"'])(yes|no)\5)?\s*\?>")
_FORBIDDEN = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def codec_for(label: str) -> str:
    """The Python codec for a declared encoding label (GBK family → GB18030)."""
    if label.lower() in GBK_FAMILY:
        return "gb18030"
    try:
        name = codecs.lookup(label).name
    except LookupError:
        name = ""
    if name not in _ALLOWED:
        raise XmlError(f"unsupported encoding {label!r}")
    return "gb18030" if name in {"gbk", "gb2312"} else name


def declared_label(data: bytes) -> str | None:
    """The encoding named in an ASCII-compatible XML declaration, lower-cased, or ``None``."""
    m = DECL_BYTES.match(data[:200])
    return m.group(1).decode("ascii").lower() if m else None


def decode(data: bytes, encoding: str | None = None) -> str:
    """The document's text. ``encoding`` (a label) overrides what the bytes say."""
    bom, sniffed = _sniff(data)
    if encoding is not None:
        codec = codec_for(encoding)
    elif sniffed in (None, "utf-8"):
        label = declared_label(data[bom:])
        codec = codec_for(label) if label else "utf-8"
        if codec.startswith(("utf-16", "utf-32")):
            raise XmlError(f"declares {label} but its first bytes are not {label}")
        if bom and codec != "utf-8":
            raise XmlError(f"starts with a UTF-8 byte order mark but declares {label}")
        if codec == "gb18030" and _is_utf8(data[bom:]):
            raise XmlError(f"declares {label} but its bytes are UTF-8; refused rather than read "
                           "as GB18030 mojibake")
    else:
        codec = sniffed
    try:
        text = data[bom:].decode(codec)
    except UnicodeDecodeError as e:
        raise XmlError(f"bytes {e.start}-{e.end - 1} are not valid {codec.upper()}: {e.reason}") from e
    if encoding is None and sniffed not in (None, "utf-8"):
        m = _DECL.match(text)
        label = m.group(4) if m else None
        family = sniffed[:6]  # "utf-16" or "utf-32"
        if label and not codec_for(label).startswith(family):
            raise XmlError(f"declares {label} but is encoded as {family.upper()}")
    return text


def _sniff(data: bytes) -> tuple[int, str | None]:
    """(length of the byte order mark, codec it or the first bytes imply, or ``None``)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return len(bom), codec
    for first, found in _FIRST:
        if data.startswith(first):
            if found is None:
                raise XmlError("unsupported encoding (UCS-4 in an unusual byte order or EBCDIC)")
            return 0, found
    return 0, None


def _is_utf8(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def utf8_document(text: str) -> bytes:
    """Check decoded text and encode it for libxml2: no DTD construct, no NUL, and a
    declaration (if any) that names UTF-8 — the only encoding libxml2 is ever given."""
    if "\x00" in text:
        raise XmlError("NUL character in the document (UTF-16 or UTF-32 without a byte order "
                       "mark?)")
    if _FORBIDDEN.search(text):
        raise XmlError("DOCTYPE and entity declarations are forbidden", forbidden=True)
    if text.startswith("<?xml") and text[5:6].isspace():
        m = _DECL.match(text)
        if m is None:
            raise XmlError("malformed XML declaration")
        standalone = f' standalone="{m.group(6)}"' if m.group(6) else ""
        text = f'<?xml version="{m.group(2)}" encoding="UTF-8"{standalone}?>' + text[m.end():]
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise XmlError(f"character {e.start} is a lone surrogate, not text") from e
