"""Standard schemas that partner WSDLs and XSDs import, bundled so nothing is fetched; and the
confinement every schema loader runs in.

Government networks are often cut off from the internet, and fetching a schema at run time is
both a reliability and a security risk. Every loader in the gateway (xmlschema, lxml, zeep) is
pointed at :data:`CATALOG`, which maps the well-known locations (and namespaces, for imports
without ``schemaLocation``) to files in ``gateway/catalog/schemas``; any other remote location
is refused.

Local locations are confined too: a WSDL or XSD written by someone else can name any path in an
``import``/``include`` (``/etc/passwd``, ``../../secrets.xsd``, a FIFO that blocks the reader).
Each loader is built with the *schema folders* it may read (the folder of the document being
loaded, the configured schemas folder) and reads only regular files under those folders or the
bundled catalog (:func:`confined_path`); everything else is refused with
:class:`SchemaAccessError`, before any file is opened.
"""

from __future__ import annotations

import email.message
import io
import os
import stat
import urllib.error
import urllib.request
import urllib.response
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SCHEMAS = Path(__file__).resolve().parent / "schemas"

_XML = "http://www.w3.org/XML/1998/namespace"
_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
_SOAPENC = "http://schemas.xmlsoap.org/soap/encoding/"
_WSDL = "http://schemas.xmlsoap.org/wsdl/"
_WSDLSOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
_XMIME = "http://www.w3.org/2005/05/xmlmime"
_DSIG = "http://www.w3.org/2000/09/xmldsig#"
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

NAMESPACES: dict[str, Path] = {
    _XML: SCHEMAS / "xml.xsd",
    _SOAP11: SCHEMAS / "soap11-envelope.xsd",
    _SOAP12: SCHEMAS / "soap12-envelope.xsd",
    _SOAPENC: SCHEMAS / "soap11-encoding.xsd",
    _WSDL: SCHEMAS / "wsdl11.xsd",
    _WSDLSOAP: SCHEMAS / "wsdl11-soap.xsd",
    _XMIME: SCHEMAS / "xmlmime.xsd",
    _DSIG: SCHEMAS / "xmldsig-core-schema.xsd",
    _WSSE: SCHEMAS / "wsse-secext.xsd",
    _WSU: SCHEMAS / "wsse-utility.xsd",
}
"""Namespace → bundled schema (for ``xs:import`` without a usable ``schemaLocation``)."""

CATALOG: dict[str, Path] = {
    "http://www.w3.org/2001/xml.xsd": NAMESPACES[_XML],
    "https://www.w3.org/2001/xml.xsd": NAMESPACES[_XML],
    "http://www.w3.org/XML/1998/namespace": NAMESPACES[_XML],
    "http://schemas.xmlsoap.org/soap/envelope/": NAMESPACES[_SOAP11],
    "http://www.w3.org/2003/05/soap-envelope": NAMESPACES[_SOAP12],
    "http://www.w3.org/2003/05/soap-envelope/": NAMESPACES[_SOAP12],
    "http://schemas.xmlsoap.org/soap/encoding/": NAMESPACES[_SOAPENC],
    "http://schemas.xmlsoap.org/wsdl/": NAMESPACES[_WSDL],
    "http://schemas.xmlsoap.org/wsdl/soap/": NAMESPACES[_WSDLSOAP],
    "http://www.w3.org/2005/05/xmlmime": NAMESPACES[_XMIME],
    "http://www.w3.org/2000/09/xmldsig#": NAMESPACES[_DSIG],
    "http://www.w3.org/TR/xmldsig-core/xmldsig-core-schema.xsd": NAMESPACES[_DSIG],
    _WSSE: NAMESPACES[_WSSE],
    _WSU: NAMESPACES[_WSU],
}
"""Well-known schema URL → bundled file."""


def lookup(url: str) -> Path | None:
    """The bundled file for a well-known URL (or namespace), else ``None``."""
    return CATALOG.get(url) or NAMESPACES.get(url)


def is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://", "ftp://"))


def uri_mapper(url: str) -> str:
    """For xmlschema's ``uri_mapper``: well-known URLs → bundled files; other URLs unchanged
    (xmlschema then refuses them because loaders run with ``allow="local"``)."""
    found = lookup(url)
    return found.as_uri() if found else url


def xmlschema_locations() -> list[tuple[str, str]]:
    """For xmlschema's ``locations``: namespace → bundled file, for imports without a location."""
    return [(ns, str(p)) for ns, p in NAMESPACES.items()]


class SchemaAccessError(OSError):
    """A schema location the loaders refuse to read (remote, outside the schema folders, not a
    regular file). An ``OSError``, so zeep and xmlschema report it as an unreadable location."""


def roots(*folders: Path | str) -> tuple[Path, ...]:
    """The folders a loader may read: ``folders`` (resolved) and the bundled catalog."""
    return tuple(dict.fromkeys([Path(f).resolve() for f in folders] + [SCHEMAS]))


def confined_path(location: str, allowed: Iterable[Path]) -> Path:
    """The file ``location`` (a path or ``file:`` URL) names, if it lies under one of ``allowed``
    after resolving symbolic links and ``..``; else :class:`SchemaAccessError`. Opens nothing."""
    allowed = tuple(allowed)
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if is_remote(location) or (len(scheme) > 1 and scheme != "file"):  # "c:" is a drive
        raise SchemaAccessError(f"refusing to fetch {location}: not in the bundled catalog "
                                f"(gateway/catalog); vendor the file next to the WSDL instead")
    raw = urllib.request.url2pathname(unquote(parts.path)) if scheme == "file" else location
    path = Path(raw).resolve()
    if not any(path.is_relative_to(r) for r in allowed):
        raise SchemaAccessError(f"refusing to read {location}: outside the schema folders "
                                f"({', '.join(str(r) for r in allowed)})")
    return path


def read_confined(location: str, allowed: Iterable[Path]) -> tuple[Path, bytes]:
    """The bundled file for a well-known URL, else the confined local file: its path and bytes.

    Only a regular file is read: a FIFO or device placed in a schema folder is refused, not
    waited on (checked before opening, and again on the descriptor, opened without blocking,
    in case the file was swapped in between)."""
    path = lookup(location) or confined_path(location, allowed)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise SchemaAccessError(f"refusing to read {location}: not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except SchemaAccessError:
        raise
    except OSError as e:
        raise SchemaAccessError(f"cannot read {location}: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SchemaAccessError(f"refusing to read {location}: not a regular file")
        return path, f.read()


def lxml_parser(*folders: Path | str, refused: list[str] | None = None) -> Any:
    """A hardened lxml parser (no network, no entities, no DTD) that resolves imports from the
    catalog and from ``folders`` and refuses every other location; each refusal's reason is
    appended to ``refused`` (libxml2 swallows the exception while compiling a schema)."""
    from lxml import etree

    allowed = roots(*folders)

    class _Resolver(etree.Resolver):
        def resolve(self, url: str, pubid: str, context: Any) -> Any:  # type: ignore[override]
            try:
                path, data = read_confined(url, allowed)
            except SchemaAccessError as e:
                if refused is not None:
                    refused.append(str(e))
                raise
            return self.resolve_string(data, context, base_url=path.as_uri())

    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False,
                             huge_tree=False)
    parser.resolvers.add(_Resolver())
    return parser


def compile_xsd(data: bytes, base_url: str, *folders: Path | str) -> Any:
    """Compile an XSD (well-formed, DTD-free bytes: the caller checks them) whose imports and
    includes come from the catalog and ``folders`` only. A refused location raises
    :class:`SchemaAccessError` naming it, not libxml2's "failed to parse the XML resource"."""
    from lxml import etree

    refused: list[str] = []
    doc = etree.fromstring(data, lxml_parser(*folders, refused=refused), base_url=base_url)
    try:
        return etree.XMLSchema(doc)
    except etree.XMLSchemaParseError as e:
        if refused:
            raise SchemaAccessError(refused[0]) from e
        raise


def zeep_transport(*folders: Path | str) -> Any:
    """A zeep transport that serves catalog files and regular files under ``folders`` (the WSDL's
    own folder, the schemas folder) and refuses every other path or URL."""
    from zeep.transports import Transport

    allowed = roots(*folders)

    class CatalogTransport(Transport):
        def __init__(self) -> None:  # zeep's is unannotated: called by name, as [tool.mypy] allows
            Transport.__init__(self)

        def load(self, url: str) -> bytes:
            return read_confined(url, allowed)[1]

        def _load_remote_data(self, url: str) -> bytes:
            raise SchemaAccessError(f"refusing to fetch {url}: no network access for schemas")

    return CatalogTransport()


def xmlschema_options(*folders: Path | str) -> dict[str, Any]:
    """Keyword arguments for ``xmlschema.XMLSchema``: catalog locations, local only, and an
    opener that reads regular files under ``folders`` and the catalog, nothing else."""
    allowed = roots(*folders)

    class _ConfinedFiles(urllib.request.BaseHandler):
        def file_open(self, req: urllib.request.Request) -> Any:
            try:
                path, data = read_confined(req.full_url, allowed)
            except SchemaAccessError as e:
                raise urllib.error.URLError(str(e)) from e
            return urllib.response.addinfourl(io.BytesIO(data), email.message.Message(),
                                              path.as_uri())

    opener = urllib.request.OpenerDirector()
    opener.add_handler(_ConfinedFiles())
    return {"uri_mapper": uri_mapper, "locations": xmlschema_locations(), "allow": "local",
            "opener": opener}


def zeep_settings(*, catalog_transport: bool = True) -> Any:
    """Hardened zeep settings. With :func:`zeep_transport` the *transport* is the gate to the
    outside (bundled catalog and the schema folders only, every other location refused), because zeep's
    ``forbid_external`` refuses any http(s) import before the transport is asked — including the
    standard schemas this catalog serves. Without the catalog transport, ``forbid_external`` is on.
    DTDs and entities are always forbidden."""
    from zeep import Settings
    return Settings(forbid_external=not catalog_transport, forbid_dtd=True, forbid_entities=True,
                    strict=True, xml_huge_tree=False)
