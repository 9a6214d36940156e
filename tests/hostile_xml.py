"""The hostile XML corpus of issue 9, and a FIFO trap that sees a file being opened in C.

A Python audit hook does not see libxml2 open a file (the ``open`` happens in C), so the
documents point their DTDs, entities and XIncludes at a FIFO instead. A writer thread blocks in
``open(fifo, O_WRONLY)``, which returns only when *some* reader opens the FIFO; it counts each
such open, writes :data:`TOKEN` and waits for the next reader. :meth:`FifoTrap.assert_never_opened`
opens the FIFO for reading itself and requires that its own open be the only one ever counted.
Nothing is timed, and a regression cannot hang the suite: every reader is served.
"""

from __future__ import annotations

import os
import re
import select
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

TOKEN = b"the-fifo-was-opened-for-reading"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
SIXTY_MB = 60 * 1024 * 1024
WAIT = 10.0  # seconds before a stuck thread counts as a failure rather than a hang


class FifoTrap:
    """A FIFO at ``path`` that counts the readers that opened it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = 0
        self._stop = False
        self._thread = threading.Thread(target=self._writer, name=f"fifo-writer {path.name}",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def _writer(self) -> None:
        while True:
            fd = os.open(self.path, os.O_WRONLY)  # returns only once a reader has opened it
            self.opened += 1
            try:
                os.write(fd, TOKEN)
            except BrokenPipeError:  # that reader had gone already
                pass
            finally:
                os.close(fd)
            if self._stop:
                return

    def _finish(self) -> bytes:
        """Open as the last reader, let the writer serve it and stop; what it wrote."""
        if not self._thread.is_alive():
            return b""
        self._stop = True
        rfd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # never blocks; frees the writer
        try:
            self._thread.join(WAIT)
            assert not self._thread.is_alive(), "FIFO writer still blocked after our own open"
            return os.read(rfd, 4096) if select.select([rfd], [], [], 0)[0] else b""
        finally:
            os.close(rfd)

    def assert_never_opened(self) -> None:
        """Fail if anything opened the FIFO for reading before this call."""
        got = self._finish()
        assert self.opened <= 1, f"{self.path} was opened for reading {self.opened - 1} time(s)"
        assert got == TOKEN, "the FIFO writer did not serve the final check"

    def release(self) -> None:
        """Free the writer thread whatever happened in the test."""
        self._finish()


def fifo_trap(tmp_path: Path) -> Iterator[FifoTrap]:
    """Body of the ``fifo`` fixture each test module declares (``yield from fifo_trap(...)``)."""
    trap = FifoTrap(tmp_path / "trap.fifo")
    yield trap
    trap.release()


# ---- the corpus ---------------------------------------------------------------------------------

DTD_REFUSED = "DOCTYPE and entity declarations are forbidden"


@dataclass(frozen=True)
class Hostile:
    """One hostile document and what the hardened parser says to it: ``refusal`` matches the
    :class:`~gateway.protocols.xml.XmlError` reason; ``None`` means it parses, because the
    hostile part is inert to the parser and must be refused further up (XInclude left
    unprocessed, a second Body, the wrong SOAP version, a DOCTYPE inside the carried string)."""

    name: str
    data: bytes
    refusal: str | None


class _Base:
    """A genuine envelope taken apart so the variants can be written in one line each."""

    def __init__(self, data: bytes, slot: str, fifo_url: str) -> None:
        text = data.decode("utf-8")
        assert not text.isascii(), "the base must carry Chinese text for the GBK-mislabel case"
        m = re.match(r"<\?xml[^>]*\?>\s*", text)
        self.decl, self.body = (m.group(0), text[m.end():]) if m else ("", text)
        env = re.search(r"<([\w.-]+:)?Envelope\b[^>]*", self.body)
        assert env
        self.env_end = env.end()  # just before the start tag's ">"
        self.root = env.group(0)[1:].split()[0]  # e.g. "soap:Envelope"
        self.slot = slot
        self.url = fifo_url
        self.ns = SOAP11_NS if SOAP11_NS in self.body else SOAP12_NS

    def filled(self, content: str) -> str:
        m = re.search(rf"(<(?:[\w.-]+:)?{self.slot}\b[^>]*>)(.*?)(</(?:[\w.-]+:)?{self.slot}>)",
                      self.body, re.DOTALL)
        assert m, f"no <{self.slot}> in the base document"
        return self.body[:m.start(2)] + content + self.body[m.end(2):]

    def doctype(self, subset: str, content: str | None = None) -> bytes:
        body = self.body if content is None else self.filled(content)
        return (self.decl + f"<!DOCTYPE {self.root} {subset}>" + body).encode()

    def in_slot(self, content: str) -> bytes:
        return (self.decl + self.filled(content)).encode()

    def on_envelope(self, attrs: str) -> bytes:
        end = self.env_end
        return (self.decl + self.body[:end] + attrs + self.body[end:]).encode()

    def wide(self, label: str, codec: str, bom: bytes = b"") -> bytes:
        doc = f"<?xml version='1.0' encoding='{label}'?><!DOCTYPE {self.root} SYSTEM " \
              f'"{self.url}">' + self.body
        return bom + doc.encode(codec)

    def two_bodies(self) -> bytes:
        first = re.search(r"<(?P<p>(?:[\w.-]+:)?)Body\b.*?</(?P=p)Body>", self.body, re.DOTALL)
        assert first
        return (self.decl + self.body[:first.end()] + first.group(0)
                + self.body[first.end():]).encode()

    def other_version(self) -> bytes:
        other = SOAP12_NS if self.ns == SOAP11_NS else SOAP11_NS
        return (self.decl + self.body.replace(self.ns, other)).encode()


_LAUGHS = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">'
                                         for i in range(1, 10))
_VARIANTS: list[tuple[str, str | None, Callable[[_Base], bytes]]] = [
    ("xxe-file", DTD_REFUSED, lambda b: b.doctype(f'[<!ENTITY x SYSTEM "{b.url}">]', "&x;")),
    ("xxe-path", DTD_REFUSED,
     lambda b: b.doctype(f'[<!ENTITY x SYSTEM "{b.url[len("file://"):]}">]', "&x;")),
    ("xxe-url", DTD_REFUSED,
     lambda b: b.doctype('[<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]', "&x;")),
    ("xxe-parameter-entity", DTD_REFUSED,
     lambda b: b.doctype(f'[<!ENTITY % p SYSTEM "{b.url}"> %p;]')),
    ("billion-laughs", DTD_REFUSED, lambda b: b.doctype(f"[{_LAUGHS}]", "&l9;")),
    ("quadratic-blowup", DTD_REFUSED,
     lambda b: b.doctype(f'[<!ENTITY a "{"A" * 50_000}">]', "&a;" * 20_000)),
    ("external-dtd", DTD_REFUSED, lambda b: b.doctype(f'SYSTEM "{b.url}"')),
    ("external-dtd-public", DTD_REFUSED,
     lambda b: b.doctype(f'PUBLIC "-//Hostile//DTD x//EN" "{b.url}"')),
    ("xinclude", None, lambda b: b.in_slot(
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{b.url}" parse="text"/>')),
    ("deep-nesting", "Excessive depth", lambda b: b.in_slot("<a>" * 100_000 + "</a>" * 100_000)),
    ("attributes-100k", "attributes",
     lambda b: b.on_envelope("".join(f' a{i}="x"' for i in range(100_000)))),
    ("namespace-bomb", "namespace declarations", lambda b: b.in_slot("".join(
        "<b " + " ".join(f'xmlns:p{i}_{j}="urn:bomb:{i}:{j}"' for j in range(100)) + ">"
        for i in range(100)) + "</b>" * 100)),
    ("size-60mb", "exceeds", lambda b: b.in_slot("<!--" + "x" * SIXTY_MB + "-->")),
    ("invalid-utf8", "not valid UTF-8",
     lambda b: b.in_slot("@@BAD@@").replace(b"@@BAD@@", b"\xc3\x28\xff")),
    ("gbk-declared-utf8-sent", "declares gbk but its bytes are UTF-8",
     lambda b: ("<?xml version='1.0' encoding='GBK'?>" + b.body).encode()),
    ("utf16le-doctype", DTD_REFUSED, lambda b: b.wide("UTF-16", "utf-16-le", b"\xff\xfe")),
    ("utf16be-doctype", DTD_REFUSED, lambda b: b.wide("UTF-16", "utf-16-be", b"\xfe\xff")),
    ("utf16le-doctype-no-bom", DTD_REFUSED, lambda b: b.wide("UTF-16LE", "utf-16-le")),
    ("utf16be-doctype-no-bom", DTD_REFUSED, lambda b: b.wide("UTF-16BE", "utf-16-be")),
    ("utf32-doctype", DTD_REFUSED, lambda b: b.wide("UTF-32", "utf-32")),
    ("utf32be-doctype-no-bom", DTD_REFUSED, lambda b: b.wide("UTF-32BE", "utf-32-be")),
    ("two-bodies", None, _Base.two_bodies),
    ("two-roots", "well-formed", lambda b: (b.decl + b.body + b.body).encode()),
    ("wrong-soap-version", None, _Base.other_version),
]
_INNER_XXE = ('<?xml version="1.0" encoding="GBK"?><!DOCTYPE PACKAGE [<!ENTITY x SYSTEM "{}">]>'
              "<PACKAGE>&x;</PACKAGE>")
NAMES = [n for n, _, _ in _VARIANTS] + ["xxe-inner-string"]


def corpus(base: bytes | Callable[[], bytes], slot: str, fifo_url: str, *,
           inner_string: bool = False) -> Iterator[Hostile]:
    """Hostile variants of a genuine envelope (UTF-8 bytes, or a function that makes a fresh
    one per variant, e.g. with a new WS-Security nonce), built one at a time (one of them is
    60 MB). Where an attack can take the place of real content it replaces the content of the
    element ``slot`` (``xmlData`` of a request, ``return`` of a reply …), so a document whose
    attack were merely ignored would lack what success needs. ``inner_string``: ``slot``
    carries an XML document as text (Tianjin), where XXE is tried as well."""
    fresh = base if callable(base) else (lambda: base)
    for name, refusal, build in _VARIANTS:
        yield Hostile(name, build(_Base(fresh(), slot, fifo_url)), refusal)
    if inner_string:
        yield Hostile("xxe-inner-string",
                      _Base(fresh(), slot, fifo_url).in_slot(escape(_INNER_XXE.format(fifo_url))),
                      None)


def parser_documents(fifo_url: str) -> dict[str, str]:
    """Bare documents (no SOAP around them) that would make libxml2 open ``fifo_url`` if it
    were allowed to: for the encoding matrix of the parser tests."""
    path = fifo_url[len("file://"):]
    return {
        "external-dtd": f'<!DOCTYPE r SYSTEM "{fifo_url}"><r/>',
        "external-dtd-path": f'<!DOCTYPE r SYSTEM "{path}"><r/>',
        "external-dtd-public": f'<!DOCTYPE r PUBLIC "-//x//EN" "{fifo_url}"><r/>',
        "parameter-entity": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{fifo_url}"> %p;]><r/>',
        "external-entity": f'<!DOCTYPE r [<!ENTITY x SYSTEM "{fifo_url}">]><r>&x;</r>',
        "xinclude": ('<r xmlns:xi="http://www.w3.org/2001/XInclude">'
                     f'<xi:include href="{fifo_url}" parse="text"/></r>'),
    }


ENCODINGS: dict[str, tuple[bytes, str, str | None]] = {
    # name: (byte order mark, Python codec, label for the declaration or None for no declaration)
    "utf-8": (b"", "utf-8", None),
    "utf-8-bom": (b"\xef\xbb\xbf", "utf-8", "UTF-8"),
    "utf-16le-bom": (b"\xff\xfe", "utf-16-le", "UTF-16"),
    "utf-16be-bom": (b"\xfe\xff", "utf-16-be", "UTF-16"),
    "utf-16le-no-bom": (b"", "utf-16-le", "UTF-16LE"),
    "utf-16be-no-bom": (b"", "utf-16-be", "UTF-16BE"),
    "utf-16le-no-bom-no-decl": (b"", "utf-16-le", None),
    "utf-16be-no-bom-no-decl": (b"", "utf-16-be", None),
    "utf-32le-bom": (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    "utf-32be-bom": (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    "utf-32be-no-bom": (b"", "utf-32-be", "UTF-32BE"),
}


def encoded(doc: str, encoding: str) -> bytes:
    bom, codec, label = ENCODINGS[encoding]
    decl = f'<?xml version="1.0" encoding="{label}"?>' if label else ""
    return bom + (decl + doc).encode(codec)
