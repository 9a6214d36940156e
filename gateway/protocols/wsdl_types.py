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

An rpc/literal operation's wrapper (named after the operation, in the ``soap:body`` namespace,
one unqualified accessor per part) is declared in none of them; it gets a schema block of its own
written from the binding and the message (:func:`_rpc_wrappers`), so a mapping targets it like
any element.

All reading goes through :mod:`gateway.catalog`'s confinement: a ``wsdl:import`` or
``xs:import`` location outside the schema folders or off the catalog is refused as anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
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


Parse = Callable[[bytes], Any]
"""The hardened parser, :func:`gateway.protocols.xml.parse`, passed in: that module dispatches
a ``.wsdl`` here, so importing it back would be a cycle."""


def inline_schemas(wsdl: Path | str, *folders: Path | str, parse: Parse) -> list[InlineSchema]:
    """Every ``xs:schema`` of ``wsdl`` and of the WSDLs it imports (depth first, each once)."""
    wsdl = Path(wsdl).resolve()
    allowed = catalog.roots(wsdl.parent, *folders)
    out: list[InlineSchema] = []
    seen: set[Path] = set()

    def walk(location: str) -> None:
        path, data = catalog.read_confined(location, allowed)
        root = parse(data)
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
        documents.append((path, root))
    documents: list[tuple[Path, Any]] = []
    walk(str(wsdl))
    out += _rpc_wrappers(documents)
    if not out:
        raise catalog.SchemaAccessError(f"{wsdl.name} has no inline schema (wsdl:types/xs:schema)")
    return out


SOAP_BINDINGS = ("http://schemas.xmlsoap.org/wsdl/soap/", "http://schemas.xmlsoap.org/wsdl/soap12/")


def _rpc_wrappers(documents: list[tuple[Path, Any]]) -> list[InlineSchema]:
    """For each rpc/literal operation, the schema its input and output wrappers follow (what
    SOAP's rpc rules say, WSDL 1.1 §3.5: an element named after the operation — ``…Response``
    for the output — in the ``soap:body`` namespace, one unqualified accessor per message part,
    typed as the part), so a mapping can target the wrapper like any element. rpc/encoded gets
    none: the gateway refuses it (:func:`gateway.protocols.soap.load_operation`)."""
    messages: dict[tuple[str, str], Any] = {}
    port_types: dict[tuple[str, str], Any] = {}
    for _, root in documents:
        tns = root.get("targetNamespace") or ""
        for m in root.iterfind(f"{{{WSDL}}}message"):
            messages[(tns, m.get("name") or "")] = m
        for pt in root.iterfind(f"{{{WSDL}}}portType"):
            port_types[(tns, pt.get("name") or "")] = pt
    out: dict[tuple[str, str], InlineSchema] = {}
    for path, root in documents:
        for binding in root.iterfind(f"{{{WSDL}}}binding"):
            soap_binding = next((c for c in binding if isinstance(c.tag, str)
                                 and etree.QName(c).namespace in SOAP_BINDINGS
                                 and etree.QName(c).localname == "binding"), None)
            default_style = soap_binding.get("style", "document") if soap_binding is not None \
                else "document"
            pt = port_types.get(_qname(binding, binding.get("type") or ""))
            for op in binding.iterfind(f"{{{WSDL}}}operation"):
                soap_op = next((c for c in op if isinstance(c.tag, str)
                                and etree.QName(c).localname == "operation"), None)
                style = (soap_op.get("style") if soap_op is not None else None) or default_style
                if style != "rpc" or pt is None:
                    continue
                abstract = next((o for o in pt.iterfind(f"{{{WSDL}}}operation")
                                 if o.get("name") == op.get("name")), None)
                for kind, suffix in (("input", ""), ("output", "Response")):
                    body = op.find(f"{{{WSDL}}}{kind}/*[@use]")
                    msg_ref = abstract.find(f"{{{WSDL}}}{kind}") if abstract is not None else None
                    if body is None or body.get("use") != "literal" or msg_ref is None:
                        continue
                    message = messages.get(_qname(msg_ref, msg_ref.get("message") or ""))
                    if message is None:
                        continue
                    ns = body.get("namespace") or root.get("targetNamespace") or ""
                    name = f"{op.get('name')}{suffix}"
                    out.setdefault((ns, name), _wrapper_schema(path, ns, name, message))
    return list(out.values())


def _qname(context: Any, value: str) -> tuple[str, str]:
    prefix, _, local = value.rpartition(":")
    return (context.nsmap.get(prefix or None) or "", local)


def _wrapper_schema(wsdl: Path, namespace: str, name: str, message: Any) -> InlineSchema:
    nsmap: dict[str, str] = {"xs": XSD}
    imports: set[str] = set()
    parts = []
    for part in message.iterfind(f"{{{WSDL}}}part"):
        typ, elem = part.get("type"), part.get("element")
        ns, local = _qname(part, typ or elem or "")
        prefix = next((k for k, v in nsmap.items() if v == ns), None)
        if prefix is None:
            prefix = f"p{len(nsmap)}"
            nsmap[prefix] = ns
        if ns not in (XSD, namespace):
            imports.add(ns)
        if elem:
            parts.append(f'<xs:element ref="{prefix}:{_attr(local)}"/>')
        else:
            parts.append(f'<xs:element name="{_attr(part.get("name") or "")}" '
                         f'type="{prefix}:{_attr(local)}" form="unqualified"/>')
    decls = "".join(f' xmlns:{k}="{_attr(v)}"' for k, v in nsmap.items())
    tns = f' targetNamespace="{_attr(namespace)}"' if namespace else ""
    text = (f"<xs:schema{decls}{tns}>"
            + "".join(f'<xs:import namespace="{_attr(n)}"/>' for n in sorted(imports) if n)
            + f'<xs:element name="{_attr(name)}"><xs:complexType><xs:sequence>'
            + "".join(parts) + "</xs:sequence></xs:complexType></xs:element></xs:schema>")
    url = (wsdl.parent / f"{wsdl.name}.rpc-{name}.xsd").as_uri()
    return InlineSchema(url, namespace, text.encode())


def _bundle_url(wsdl: Path, namespace: str) -> str:
    key = "".join(c if c.isalnum() else "_" for c in namespace)[-60:] or "no-namespace"
    return (wsdl.parent / f"{wsdl.name}.ns-{key}.xsd").as_uri()


def compile_wsdl_types(wsdl: Path | str, *folders: Path | str, parse: Parse) -> Any:
    """One lxml ``XMLSchema`` for every element the WSDL's types declare (module docstring)."""
    wsdl = Path(wsdl).resolve()
    blocks = inline_schemas(wsdl, *folders, parse=parse)
    bundles: dict[str, list[InlineSchema]] = {}
    for b in blocks:
        bundles.setdefault(b.namespace, []).append(b)
    documents: dict[str, bytes] = {}
    for b in blocks:
        root = parse(b.data)   # the hardened parser, as every other document here
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


def xmlschema_sources(wsdl: Path | str, *folders: Path | str, parse: Parse) -> list[str]:
    """The WSDL's schema blocks as texts, for ``xmlschema.XMLSchema([...], base_url=…)``."""
    return [b.data.decode("utf-8") for b in inline_schemas(wsdl, *folders, parse=parse)]


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
