"""Standard schemas that partner WSDLs and XSDs import, bundled so nothing is fetched; and the
confinement every schema loader runs in.

Government networks are often cut off from the internet, and fetching a schema at run time is
both a reliability and a security risk. Every loader in the gateway (xmlschema, lxml, zeep) is
pointed at :data:`CATALOG`, which maps the well-known locations (and namespaces, for imports
without ``schemaLocation``) to files in ``gateway/catalog/schemas``; any other remote location
is refused.

Engineers add their own catalog folders (``gateway mapping … --catalog DIR``, and the config's
``schema_catalogs``) instead of editing a partner's files: :func:`use_catalogs`. An ``xs:import``
that names only a namespace (no ``schemaLocation``: .NET and WCF write them) is given the
catalog's file for that namespace before libxml2 compiles the schema (:func:`locate_imports`),
because libxml2, unlike xmlschema and zeep, never asks a resolver for such an import.

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
from collections.abc import Callable, Iterable, Mapping
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
_XSD = "http://www.w3.org/2001/XMLSchema"
_WSA = "http://www.w3.org/2005/08/addressing"
_WSA2004 = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
_XOP = "http://www.w3.org/2004/08/xop/include"
_WSNT = "http://docs.oasis-open.org/wsn/b-2"
_WSTOP = "http://docs.oasis-open.org/wsn/t-1"
_WSRF_BF = "http://docs.oasis-open.org/wsrf/bf-2"
_WSRF_R = "http://docs.oasis-open.org/wsrf/r-2"

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
    _WSA: SCHEMAS / "ws-addr.xsd",
    _WSA2004: SCHEMAS / "ws-addr-2004-08.xsd",
    _XOP: SCHEMAS / "xop-include.xsd",
    _WSNT: SCHEMAS / "b-2.xsd",
    _WSTOP: SCHEMAS / "t-1.xsd",
    _WSRF_BF: SCHEMAS / "bf-2.xsd",
    _WSRF_R: SCHEMAS / "r-2.xsd",
}
"""Namespace → bundled schema (for ``xs:import`` without a usable ``schemaLocation``)."""

LIBXML2_ONLY: dict[str, Path] = {_XSD: SCHEMAS / "xsd-schema-element.xsd"}
"""Namespaces only libxml2 needs a file for: ``xs:schema`` itself (a .NET DataSet's
``ref="s:schema"``); xmlschema and zeep know the XML Schema namespace and must not be given it."""

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
    "http://www.w3.org/2006/03/addressing/ws-addr.xsd": NAMESPACES[_WSA],
    "http://www.w3.org/2005/08/addressing/ws-addr.xsd": NAMESPACES[_WSA],
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/": NAMESPACES[_WSA2004],
    "http://www.w3.org/2004/08/xop/include/": NAMESPACES[_XOP],
    "http://www.w3.org/2004/08/xop/include/xop-include.xsd": NAMESPACES[_XOP],
    "http://docs.oasis-open.org/wsn/b-2.xsd": NAMESPACES[_WSNT],
    "http://docs.oasis-open.org/wsn/t-1.xsd": NAMESPACES[_WSTOP],
    "http://docs.oasis-open.org/wsrf/bf-2.xsd": NAMESPACES[_WSRF_BF],
    "http://docs.oasis-open.org/wsrf/r-2.xsd": NAMESPACES[_WSRF_R],
}
"""Well-known schema URL → bundled file. Each also answers for its ``https://`` spelling (schemas
written since the W3C and OASIS moved to https import them so): :func:`lookup`."""


class ExtraCatalog:
    """A catalog folder an engineer added: its ``*.xsd`` files answer for their
    ``targetNamespace`` (namespace-only imports), and an optional ``catalog.xml`` (the OASIS XML
    Catalogs subset ``<uri name=… uri=…/>`` and ``<system systemId=… uri=…/>``, ``uri``
    relative to the folder) maps the URLs a partner's files import to files in it. Read once,
    through the hardened parser the caller passes (:func:`gateway.protocols.xml.parse`: the
    catalog sits below the protocols and may not import them); an entry pointing outside the
    folder is refused."""

    def __init__(self, folder: Path | str, parse: Callable[[bytes], Any]) -> None:
        self.root = Path(folder).resolve()
        if not self.root.is_dir():
            raise SchemaAccessError(f"schema catalog {folder} is not a folder")
        self.urls: dict[str, Path] = {}
        self.namespaces: dict[str, Path] = {}
        for p in sorted(self.root.rglob("*.xsd")):
            try:
                tns = parse(read_confined(str(p), (self.root,))[1]).get("targetNamespace")
            except Exception:  # noqa: BLE001 - unreadable or refused by the hardened parser
                continue   # not a schema this folder can answer for: ignored, as a stray file
            if tns and tns not in self.namespaces:
                self.namespaces[tns] = p
        index = self.root / "catalog.xml"
        if index.is_file():
            try:
                doc = parse(read_confined(str(index), (self.root,))[1])
            except Exception as e:  # noqa: BLE001 - unreadable or refused by the hardened parser
                raise SchemaAccessError(f"{index}: not a usable XML catalog: {e}") from e
            for entry in doc.iter():
                if not isinstance(entry.tag, str):
                    continue
                local = entry.tag.rsplit("}", 1)[-1]
                name = entry.get("name") if local == "uri" else \
                    entry.get("systemId") if local == "system" else None
                target = entry.get("uri")
                if name and target:
                    self.urls[_http(name)] = confined_path(str(self.root / target), (self.root,))


_extra: list[ExtraCatalog] = []


def use_catalogs(folders: Iterable[Path | str], parse: Callable[[bytes], Any]) -> None:
    """Add the engineer's catalog folders to the bundled one (process-wide: the tools' ``--catalog``
    and the config's ``schema_catalogs``); the bundled catalog answers first, so a standard
    namespace cannot be shadowed by accident. Replaces earlier calls' folders. ``parse`` is the
    hardened XML parser (:func:`gateway.protocols.xml.parse`)."""
    new = [ExtraCatalog(f, parse) for f in folders]
    _extra[:] = new


def catalog_folders() -> tuple[Path, ...]:
    """The engineer's catalog folders in force (:func:`use_catalogs`)."""
    return tuple(c.root for c in _extra)


def _http(url: str) -> str:
    return "http://" + url[len("https://"):] if url.startswith("https://") else url


def lookup(url: str) -> Path | None:
    """The catalog file for a well-known URL (or namespace, ``http`` or ``https``) — bundled
    first, then the engineer's folders — else ``None``."""
    key = _http(url)
    found = CATALOG.get(key) or NAMESPACES.get(key)
    if found is None:
        found = next((c.urls.get(key) or c.namespaces.get(key) for c in _extra
                      if c.urls.get(key) or c.namespaces.get(key)), None)
    return found


def namespace_file(namespace: str, *, for_libxml2: bool = False) -> Path | None:
    """The catalog file for an import that names only ``namespace``."""
    if for_libxml2 and namespace in LIBXML2_ONLY:
        return LIBXML2_ONLY[namespace]
    return lookup(namespace)


def is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://", "ftp://"))


def uri_mapper(url: str) -> str:
    """For xmlschema's ``uri_mapper``: well-known URLs → bundled files; other URLs unchanged
    (xmlschema then refuses them because loaders run with ``allow="local"``)."""
    found = lookup(url)
    return found.as_uri() if found else url


def xmlschema_locations() -> list[tuple[str, str]]:
    """For xmlschema's ``locations``: namespace → catalog file, for imports without a location
    (bundled, then the engineer's folders)."""
    out = [(ns, str(p)) for ns, p in NAMESPACES.items()]
    for c in _extra:
        out += [(ns, str(p)) for ns, p in c.namespaces.items() if ns not in NAMESPACES]
    return out


class SchemaAccessError(OSError):
    """A schema location the loaders refuse to read (remote, outside the schema folders, not a
    regular file). An ``OSError``, so zeep and xmlschema report it as an unreadable location."""


def roots(*folders: Path | str) -> tuple[Path, ...]:
    """The folders a loader may read: ``folders`` (resolved), the bundled catalog and the
    engineer's catalog folders."""
    return tuple(dict.fromkeys([Path(f).resolve() for f in folders] + [SCHEMAS]
                               + list(catalog_folders())))


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


_XS_IMPORT = f"{{{_XSD}}}import"


def locate_imports(root: Any, *, for_libxml2: bool = True) -> bool:
    """Give each ``xs:import`` without ``schemaLocation`` (in ``root``, a schema or a WSDL) the
    catalog's file for its namespace, in place; True if any was changed. libxml2 skips such an
    import silently and then fails on the first reference into the namespace; xmlschema and zeep
    look namespaces up themselves. Namespaces the catalog does not know are left alone."""
    changed = False
    for imp in root.iter(_XS_IMPORT):
        ns = imp.get("namespace")
        if imp.get("schemaLocation") or not ns:
            continue
        found = namespace_file(ns, for_libxml2=for_libxml2)
        if found is not None:   # zeep takes a path (it rewrites a file: URL it joins to https)
            imp.set("schemaLocation", found.as_uri() if for_libxml2 else str(found))
            changed = True
    return changed


def _with_located_imports(data: bytes, base_url: str, *, for_libxml2: bool = True) -> bytes:
    """``data`` (an imported schema's bytes, or a WSDL's) with :func:`locate_imports` applied,
    re-serialised only when something changed."""
    from lxml import etree

    if b"import" not in data:
        return data
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    try:
        root = etree.fromstring(data, parser, base_url=base_url)
    except etree.XMLSyntaxError:
        return data      # libxml2 reports it where it reads it
    return etree.tostring(root) if locate_imports(root, for_libxml2=for_libxml2) else data


def lxml_parser(*folders: Path | str, refused: list[str] | None = None,
                documents: Mapping[str, bytes] | None = None) -> Any:
    """A hardened lxml parser (no network, no entities, no DTD) that resolves imports from
    ``documents`` (URL → bytes held in memory: a WSDL's inline schemas), the catalog and
    ``folders``, and refuses every other location; each refusal's reason is appended to
    ``refused`` (libxml2 swallows the exception while compiling a schema)."""
    from lxml import etree

    allowed = roots(*folders)

    class _Resolver(etree.Resolver):
        def resolve(self, url: str, pubid: str, context: Any) -> Any:  # type: ignore[override]
            if documents and url in documents:
                return self.resolve_string(_with_located_imports(documents[url], url), context,
                                           base_url=url)
            try:
                path, data = read_confined(url, allowed)
            except SchemaAccessError as e:
                if refused is not None:
                    refused.append(str(e))
                raise
            return self.resolve_string(_with_located_imports(data, path.as_uri()), context,
                                       base_url=path.as_uri())

    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False,
                             huge_tree=False)
    parser.resolvers.add(_Resolver())
    return parser


def compile_xsd(data: bytes, base_url: str, *folders: Path | str,
                documents: Mapping[str, bytes] | None = None) -> Any:
    """Compile an XSD (well-formed, DTD-free bytes: the caller checks them) whose imports and
    includes come from the catalog and ``folders`` only. A refused location raises
    :class:`SchemaAccessError` naming it, not libxml2's "failed to parse the XML resource"."""
    from lxml import etree

    refused: list[str] = []
    doc = etree.fromstring(data, lxml_parser(*folders, refused=refused, documents=documents),
                           base_url=base_url)
    locate_imports(doc)
    try:
        return etree.XMLSchema(doc)
    except etree.XMLSchemaParseError as e:
        if refused:
            raise SchemaAccessError(refused[0]) from e
        raise


def zeep_transport(*folders: Path | str) -> Any:
    """A zeep transport that serves catalog files and regular files under ``folders`` (the WSDL's
    own folder, the schemas folder) and refuses every other path or URL; namespace-only imports
    in what it serves get the catalog's file (:func:`locate_imports`)."""
    from zeep.transports import Transport

    allowed = roots(*folders)

    class CatalogTransport(Transport):
        def __init__(self) -> None:  # zeep's is unannotated: called by name, as [tool.mypy] allows
            Transport.__init__(self)

        def load(self, url: str) -> bytes:
            # zeep skips an import naming only a namespace it has not read yet: given the
            # catalog's file (bundled or the engineer's), it reads it like any other import
            path, data = read_confined(url, allowed)
            return _with_located_imports(data, path.as_uri(), for_libxml2=False)

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
    return {"uri_mapper": uri_mapper, "loader_class": _catalog_loader(), "allow": "local",
            "opener": opener}


def _catalog_loader() -> Any:
    """An xmlschema loader that finds the catalog's file for an import naming only a namespace,
    when (and only when) a schema imports it: the catalog's namespaces are *fallback* locations.
    Given as ``locations`` instead, xmlschema imports every one of them into every schema it
    loads (WS-Notification, WSDL, SOAP…: seconds per mapping at start-up, for nothing)."""
    from types import MappingProxyType

    from xmlschema.loaders import SchemaLoader

    class CatalogLoader(SchemaLoader):
        fallback_locations = MappingProxyType(
            {**SchemaLoader.fallback_locations, **dict(xmlschema_locations())})

    return CatalogLoader


def zeep_settings(*, catalog_transport: bool = True) -> Any:
    """Hardened zeep settings. With :func:`zeep_transport` the *transport* is the gate to the
    outside (bundled catalog and the schema folders only, every other location refused), because zeep's
    ``forbid_external`` refuses any http(s) import before the transport is asked — including the
    standard schemas this catalog serves. Without the catalog transport, ``forbid_external`` is on.
    DTDs and entities are always forbidden."""
    from zeep import Settings
    return Settings(forbid_external=not catalog_transport, forbid_dtd=True, forbid_entities=True,
                    strict=True, xml_huge_tree=False)
