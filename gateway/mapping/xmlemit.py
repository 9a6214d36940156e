"""XML emission for the mapping compiler: elements in XSD order, namespaces and text types from
the partner XSD, attributes, repeated elements, and nested documents serialised into a string.

A mixin of :class:`gateway.mapping.compiler.Compiler`; it only emits Python source lines and
uses the compiler's value, condition and path emitters.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from gateway.mapping.codegen_util import Scope, _const_value, _is_const, _join, _strip
from gateway.mapping.codes import CodeTable
from gateway.mapping.jsonview import ANY
from gateway.mapping.xsdmodel import XNode, constant_fits, global_element
from gateway.mapping.yamlload import LDict


class XmlEmitter:
    """Methods that emit lxml-building code; mixed into the Compiler."""

    # provided by the Compiler
    err: Any
    tmp: Any
    bind: Any
    emit: Any
    val: Any
    cond: Any
    path: Any
    source: Any
    report: Any
    xsd_loader: Any
    tables: dict[str, CodeTable]
    element_pointer: Any
    element_scope: Any
    loop: Any
    _tpath: str
    #: per document being emitted (the target, nested documents): whether it writes an element
    #: in no namespace (then no namespace may be the default one: :func:`scoped_nsmap`)
    _unqualified: list[bool]

    def xml_children(self, fields: Any, line: int, scope: Scope, parent: str, ind: int,
                     tpath: str, node: XNode | None, nsmap: dict[str, str]) -> None:
        """Emit children of ``parent`` (an lxml element variable), in XSD order when typed."""
        if not isinstance(fields, LDict):
            raise self.err("fields must be a mapping of element name → value", line)
        entries: list[tuple[int, str, Any]] = []
        for i, (key, spec) in enumerate(fields.items()):
            key = str(key)
            if key.startswith("@"):
                entries.append((-1, key, spec))
                continue
            if node is not None:
                if node.simple or key not in node.children:
                    allowed = sorted(node.children) + sorted("@" + a for a in node.attributes)
                    raise self.err(f"element {node.local} has no child {key!r} "
                                   f"(allowed: {', '.join(allowed) or 'none: text only'})",
                                   fields.line_of(key), key=key)
                entries.append((node.children[key][0], key, spec))
            else:
                entries.append((i, key, spec))
        if node is not None:
            for name, (_pos, child) in node.children.items():
                if child.min_occurs >= 1 and name not in fields:
                    self.report.missing_required.append((_join(tpath, name), line))
            for aname, a in node.attributes.items():
                if a.required and "@" + aname not in fields:
                    self.report.missing_required.append((_join(tpath, "@" + aname), line))
        for _pos, key, spec in sorted(entries, key=lambda e: e[0]):
            kline = fields.line_of(key)
            kpath = _join(tpath, key)
            if spec is None:   # a placeholder (scaffold's ``null``): not mapped
                self.report.placeholders.append((kpath, kline))
                continue
            at = len(self.report.produced)
            self.report.produced.append((kpath, kline))
            if key.startswith("@"):
                self.xml_attr(key[1:], spec, kline, scope, parent, ind, kpath, node, nsmap)
            else:
                sub = node.children[key][1] if node is not None else None
                self.xml_element(key, spec, kline, scope, parent, ind, kpath, sub, nsmap)
                if isinstance(spec, LDict) and "fields" in spec and spec.get("text") is None \
                        and len(self.report.produced) == at + 1:
                    del self.report.produced[at]   # only placeholders inside: not produced

    def xml_attr(self, name: str, spec: Any, line: int, scope: Scope, parent: str, ind: int,
                 kpath: str, node: XNode | None, nsmap: dict[str, str]) -> None:
        kind, qname = "str", _qname(name, nsmap, None, self, line)
        if node is not None:
            a = node.attributes.get(name.split(":")[-1])
            if a is None:
                raise self.err(f"element {node.local} has no attribute {name!r} (allowed: "
                               f"{', '.join('@' + k for k in sorted(node.attributes)) or 'none'})",
                               line, key="@" + name)
            kind, qname = a.kind, a.name
            if _is_const(spec) and not constant_fits(a.type, _const_value(spec)):
                expected = a.type.prefixed_name if a.type.name else "value"
                self.report.mismatches.append((kpath, line, f"constant {_const_value(spec)!r} "
                                               f"is not a valid {expected}"))
        v = self.tmp()
        self.val(spec, line, scope, v, ind, kpath)
        self.emit(ind, f"if {v} is not None:")
        self.emit(ind + 1, f"{parent}.set({qname!r}, {_conv(kind, v)})")

    def xml_element(self, key: str, spec: Any, line: int, scope: Scope, parent: str, ind: int,
                    kpath: str, node: XNode | None, nsmap: dict[str, str]) -> None:
        tag = node.tag if node is not None else _qname(key, nsmap, nsmap.get(""), self, line)
        if not tag.startswith("{") and self._unqualified:
            self._unqualified[-1] = True
        repeated = node.repeated if node is not None else (isinstance(spec, LDict) and "each" in spec)
        structured = isinstance(spec, LDict) and ("fields" in spec or "text" in spec)
        if node is not None and node.simple is False and not structured:
            raise self.err(f"element {key} has child elements: map it with fields: "
                           f"(children: {', '.join(node.children)})", line, key=key)
        if isinstance(spec, LDict) and "each" in spec and node is not None and not node.repeated:
            raise self.err(f"element {key} occurs at most once in the schema; each: needs "
                           f"maxOccurs > 1 (use items[0] or a path)", line, key=key)
        if node is not None and node.simple and _is_const(spec) and \
                not constant_fits(node.simple_type, _const_value(spec)):
            self.report.mismatches.append((kpath, line, f"constant {_const_value(spec)!r} is not "
                                           f"a valid {node.type_name}"))
        if node is not None and node.simple and isinstance(spec, LDict) and "code" in spec \
                and not spec.get("pipe") and spec["code"] in self.tables:
            table = self.tables[spec["code"]]
            bad = [v for v in table.forward.values() if not constant_fits(node.simple_type, v)]
            if bad:
                self.report.mismatches.append(
                    (kpath, line, f"code table {table.name} yields {', '.join(map(repr, bad))}, "
                                  f"not valid {node.type_name}"))
        kind = node.text_kind if node is not None else "str"
        ind0 = ind
        loop_scope = scope
        self._tpath = kpath
        if repeated:
            self.report.repeated.add(kpath)
        if isinstance(spec, LDict) and "each" in spec:
            src = spec["each"]
            if src is None:   # scaffold's placeholder for the source list: not mapped
                self.report.placeholders.append((kpath + "[]", spec.line_of("each")))
                return
            expr, schema = self.path(str(src), spec.line_of("each"), scope)
            if schema is not None and self.source is not None and schema is not ANY and \
                    not self.source.is_array(schema):
                raise self.err(f"each: {src!r} is not a list in the source schema",
                               spec.line_of("each"))
            el_schema = self.source.item(schema) if schema is not None and self.source else None
            el = self.tmp("el")
            exact = "where" not in spec and "value" not in spec and "when" not in spec
            ix = self.loop(kpath + "[]", str(src), scope, exact)
            self.emit(ind, f"for {ix}, {el} in enumerate(_seq({expr})):")
            ind += 1
            loop_scope = self.element_scope(el, el_schema, str(src), scope)
            if "where" in spec:
                c = self.cond(spec["where"], spec.line_of("where"), loop_scope, ind, kpath)
                self.emit(ind, f"if not {c}:")
                self.emit(ind + 1, "continue")
            spec = _strip(spec, ("each", "where"))
            if "value" in spec:
                spec = spec["value"]
                structured = False
        elif repeated and not structured:
            # a repeated simple element fed from one value: one element per list entry
            v = self.tmp()
            self.val(spec, line, scope, v, ind, kpath)
            x = self.tmp("x")
            plain = spec if isinstance(spec, str) else spec.get("from") if isinstance(
                spec, LDict) and set(spec) <= {"from", "required", "default"} else None
            ix = self.loop(kpath + "[]", plain if isinstance(plain, str) else None, scope, True)
            self.emit(ind, f"for {ix}, {x} in enumerate(_seq({v})):")
            self.emit(ind + 1, f"_SE({parent}, {tag!r}).text = {_conv(kind, x)}")
            return
        if structured:
            assert isinstance(spec, LDict)
            when = spec.get("when")
            if when is not None:
                c = self.cond(when, spec.line_of("when"), loop_scope, ind, kpath)
                self.emit(ind, f"if {c}:")
                ind += 1
            e = self.tmp("e")
            self.emit(ind, f"{e} = _SE({parent}, {tag!r})")
            if "text" in spec and spec["text"] is None:
                self.report.placeholders.append((kpath + ".#text", spec.line_of("text")))
            elif "text" in spec:
                t = self.tmp()
                self.val(spec["text"], spec.line_of("text"), loop_scope, t, ind, kpath)
                self.emit(ind, f"if {t} is not None:")
                self.emit(ind + 1, f"{e}.text = {_conv(kind, t)}")
            if "fields" in spec:
                self.xml_children(spec["fields"], spec.line_of("fields"), loop_scope, e, ind,
                                  kpath + ("[]" if repeated else ""), node if node is not None
                                  else None, nsmap)
            self.emit(ind, f"if not len({e}) and {e}.text is None and not {e}.attrib:")
            self.emit(ind + 1, f"{parent}.remove({e})")
        else:
            v = self.tmp()
            self.val(spec, line, loop_scope, v, ind, kpath)
            self.emit(ind, f"if {v} is not None:")
            self.emit(ind + 1, f"_SE({parent}, {tag!r}).text = {_conv(kind, v)}")
        del ind0

    def document(self, spec: Any, line: int, scope: Scope, var: str, ind: int, tpath: str) -> None:
        if not isinstance(spec, LDict) or "root" not in spec or "fields" not in spec:
            raise self.err("document needs root: and fields:", line)
        unknown = set(spec) - {"root", "schema", "encoding", "declaration", "namespaces", "fields"}
        if unknown:
            raise self.err(f"unknown key(s) in document: {', '.join(sorted(unknown))}", line)
        enc = str(spec.get("encoding", "UTF-8"))
        try:
            "".encode(enc)
        except LookupError as e:
            raise self.err(f"unknown encoding {enc!r}", spec.line_of("encoding")) from e
        nsmap = dict(spec.get("namespaces") or {})
        node: XNode | None = None
        xsd = None
        if "schema" in spec:
            xsd = self.xsd_loader(str(spec["schema"]), spec.line_of("schema"))
            try:
                node = global_element(xsd.model, str(spec["root"]))
            except KeyError as ke:
                raise self.err(str(ke.args[0]), spec.line_of("root")) from ke
            tag = node.tag
        else:
            tag = _qname(str(spec["root"]), nsmap, nsmap.get(""), self, spec.line_of("root"))
        d = self.tmp("d")
        nm: dict[str | None, str] = {}   # filled once the children are known (below)
        self.emit(ind, f"{d} = _El({tag!r}, nsmap={self.bind(nm)})")
        self.report.document_roots[tpath] = str(spec["root"])
        self._unqualified.append(False)
        self.xml_children(spec["fields"], spec.line_of("fields"), scope, d, ind,
                          tpath + "#" + str(spec["root"]), node, nsmap)
        nm.update(scoped_nsmap(nsmap, tag, self._unqualified.pop(),
                               default_root=node is not None and not nsmap))
        py_enc = "gb18030" if enc.lower() in ("gbk", "gb2312", "gb18030") else enc
        decl = f'<?xml version="1.0" encoding="{enc}"?>' if spec.get("declaration", True) else ""

        def serialise(el: Any, _enc: str = enc, _py: str = py_enc, _decl: str = decl) -> str:
            raw = etree.tostring(el, encoding=_enc, xml_declaration=False)
            return _decl + raw.decode(_py)
        self.emit(ind, f"{var} = {self.bind(serialise, '_doc')}({d})")
        if xsd is not None:
            self.report.documents.append((tpath, xsd))


def scoped_nsmap(declared: dict[str, str], root_tag: str, unqualified: bool,
                 default_root: bool = True) -> dict[str | None, str]:
    """The namespace declarations of a document's root element.

    ``declared`` is the mapping's ``namespaces:`` (``""`` = default namespace). The root's own
    namespace becomes the default one (``default_root``) unless some element of the document is
    in no namespace (an unqualified local element: ``elementFormDefault="unqualified"``, the
    XSD and JAX-WS default, or ``form="unqualified"``): a reader would put such an element, written
    without a prefix, in the default namespace. Then no namespace is the default one: the root's
    namespace (and a declared default) is bound to a prefix (the declared one, else ``ns0``), so
    unqualified children are written bare and read back in no namespace, as the schema says."""
    nm: dict[str | None, str] = {None if k == "" else k: v for k, v in declared.items()}
    ns = root_tag[1:].split("}")[0] if root_tag.startswith("{") else None
    if unqualified:
        default = nm.pop(None, None)
        for uri in (default, ns):
            if uri and uri not in nm.values():
                n = 0
                while f"ns{n}" in nm:
                    n += 1
                nm[f"ns{n}"] = uri
    elif ns and default_root and ns not in nm.values():
        nm[None] = ns
    return nm


def _conv(kind: str, v: str) -> str:
    return f"_xb({v})" if kind == "bool" else f"str({v})"


def _qname(name: str, nsmap: dict[str, str], default_ns: str | None, comp: Any,
           line: int) -> str:
    if name.startswith("{"):
        return name
    if ":" in name:
        prefix, local = name.split(":", 1)
        if prefix not in nsmap:
            raise comp.err(f"undeclared namespace prefix {prefix!r} in {name!r}", line)
        return f"{{{nsmap[prefix]}}}{local}"
    return f"{{{default_ns}}}{name}" if default_ns else name
