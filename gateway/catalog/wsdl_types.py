"""The schemas inside a WSDL (``wsdl:types/xs:schema``), usable as a mapping's target schema
without extracting them by hand.

Most third-party WSDLs carry their types inline, often as several ``xs:schema`` blocks that
import each other by namespace alone (no ``schemaLocation``: .NET and WCF write them so), and
sometimes in other WSDLs pulled in with ``wsdl:import`` (WCF's deep chains). Each block is taken
out with the namespace declarations in scope on the WSDL (``tns:``, ``s:`` prefixes declared on
``wsdl:definitions`` are what its ``type=`` attributes mean), then:

- for lxml (:func:`compile_wsdl_types`) every block gets a virtual location beside the WSDL,
  blocks of one namespace are joined by a virtual per-namespace document that includes them
  (libxml2 imports a namespace once), imports between blocks point at those documents, and a
  driver schema imports every namespace, so one validator checks any element the types declare;
- for xmlschema (:func:`xmlschema_sources`) the blocks are handed over as one list of sources,
  which resolves imports between them by namespace.

All reading goes through :mod:`gateway.catalog`'s confinement: a ``wsdl:import`` or
``xs:import`` location outside the schema folders or off the catalog is refused as anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from gateway import catalog

WSDL = "http://schemas.xmlsoap.org/wsdl/"
XSD = "http://www.w3.org/2001/XMLSchema"


@dataclass(frozen=True)
class InlineSchema:
    url: str            # virtual location beside its WSDL (relative imports resolve from there)
    namespace: str      # its targetNamespace ("" when none)
    data: bytes         # the block as a schema document of its own


def _parse(location: str, allowed: tuple[Path, ...]) -> tuple[Path, Any]:
    from gateway.protocols import xml as safexml

    path, data = catalog.read_confined(location, allowed)
    return path, safexml.parse(data)


def inline_schemas(wsdl: Path | str, *folders: Path | str) -> list[InlineSchema]:
    """Every ``xs:schema`` of ``wsdl`` and of the WSDLs it imports (depth first, each once)."""
    wsdl = Path(wsdl).resolve()
    allowed = catalog.roots(wsdl.parent, *folders)
    out: list[InlineSchema] = []
    seen: set[Path] = set()

    def walk(location: str) -> None:
        path, root = _parse(location, allowed)
        if path in seen:
            return
        seen.add(path)
        for imp in root.findall(f"{{{WSDL}}}import"):
            where = imp.get("location")
            if where and not where.lower().endswith(".xsd"):
                walk(where if catalog.is_remote(where) else str(path.parent / where))
        for n, schema in enumerate(root.iterfind(f"{{{WSDL}}}types/{{{XSD}}}schema")):
            url = (path.parent / f"{path.name}.types-{n}.xsd").as_uri()
            out.append(InlineSchema(url, schema.get("targetNamespace") or "",
                                    etree.tostring(schema)))  # in-scope namespaces kept
    walk(str(wsdl))
    if not out:
        raise catalog.SchemaAccessError(f"{wsdl.name} has no inline schema (wsdl:types/xs:schema)")
    return out


def _bundle_url(wsdl: Path, namespace: str) -> str:
    key = "".join(c if c.isalnum() else "_" for c in namespace)[-60:] or "no-namespace"
    return (wsdl.parent / f"{wsdl.name}.ns-{key}.xsd").as_uri()


def compile_wsdl_types(wsdl: Path | str, *folders: Path | str) -> Any:
    """One lxml ``XMLSchema`` for every element the WSDL's types declare (module docstring)."""
    wsdl = Path(wsdl).resolve()
    blocks = inline_schemas(wsdl, *folders)
    bundles: dict[str, list[InlineSchema]] = {}
    for b in blocks:
        bundles.setdefault(b.namespace, []).append(b)
    documents: dict[str, bytes] = {}
    for b in blocks:
        root = etree.fromstring(b.data)
        for imp in root.iter(f"{{{XSD}}}import"):
            ns = imp.get("namespace") or ""
            if not imp.get("schemaLocation") and ns in bundles:
                imp.set("schemaLocation", _bundle_url(wsdl, ns))
        documents[b.url] = etree.tostring(root)
    for ns, group in bundles.items():
        tns = f' targetNamespace="{_attr(ns)}"' if ns else ""
        documents[_bundle_url(wsdl, ns)] = (
            f'<xs:schema xmlns:xs="{XSD}"{tns}>'
            + "".join(f'<xs:include schemaLocation="{_attr(b.url)}"/>' for b in group)
            + "</xs:schema>").encode()
    driver = (f'<xs:schema xmlns:xs="{XSD}">'
              + "".join(f'<xs:import{f" namespace={chr(34)}{_attr(ns)}{chr(34)}" if ns else ""}'
                        f' schemaLocation="{_attr(_bundle_url(wsdl, ns))}"/>' for ns in bundles)
              + "</xs:schema>").encode()
    return catalog.compile_xsd(driver, (wsdl.parent / f"{wsdl.name}.types.xsd").as_uri(),
                               wsdl.parent, *folders, documents=documents)


def xmlschema_sources(wsdl: Path | str, *folders: Path | str) -> list[str]:
    """The WSDL's schema blocks as texts, for ``xmlschema.XMLSchema([...], base_url=…)``."""
    return [b.data.decode("utf-8") for b in inline_schemas(wsdl, *folders)]


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
