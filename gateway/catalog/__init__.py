"""Standard schemas that partner WSDLs and XSDs import, bundled so nothing is fetched.

Government networks are often cut off from the internet, and fetching a schema at run time is
both a reliability and a security risk. Every loader in the gateway (xmlschema, lxml, zeep) is
pointed at :data:`CATALOG`, which maps the well-known locations (and namespaces, for imports
without ``schemaLocation``) to files in ``gateway/catalog/schemas``; any other remote location
is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def lxml_parser() -> Any:
    """A hardened lxml parser (no network, no entities, no DTD) that resolves from the catalog."""
    from lxml import etree

    class _Resolver(etree.Resolver):  # type: ignore[misc]
        def resolve(self, url: str, pubid: str, context: Any) -> Any:  # type: ignore[override]
            found = lookup(url)
            if found is not None:
                return self.resolve_filename(str(found), context)  # type: ignore[attr-defined]
            return None

    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False,
                             huge_tree=False)
    parser.resolvers.add(_Resolver())
    return parser


def zeep_transport() -> Any:
    """A zeep transport that serves catalog files and local files and refuses any other URL."""
    from zeep.transports import Transport

    class CatalogTransport(Transport):  # type: ignore[misc]
        def load(self, url: str) -> bytes:
            found = lookup(url)
            if found is not None:
                return found.read_bytes()
            if is_remote(url):
                raise OSError(f"refusing to fetch {url}: not in the bundled catalog "
                              f"(gateway/catalog); vendor the file next to the WSDL instead")
            return super().load(url)

        def _load_remote_data(self, url: str) -> bytes:
            raise OSError(f"refusing to fetch {url}: no network access for schemas")

    return CatalogTransport()


def zeep_settings(*, catalog_transport: bool = True) -> Any:
    """Hardened zeep settings. With :func:`zeep_transport` the *transport* is the gate to the
    outside (bundled catalog and local files only, every other URL refused), because zeep's
    ``forbid_external`` refuses any http(s) import before the transport is asked — including the
    standard schemas this catalog serves. Without the catalog transport, ``forbid_external`` is on.
    DTDs and entities are always forbidden."""
    from zeep import Settings
    return Settings(forbid_external=not catalog_transport, forbid_dtd=True, forbid_entities=True,
                    strict=True, xml_huge_tree=False)
