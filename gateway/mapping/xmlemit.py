"""XML emission for the mapping compiler: elements in XSD order, namespaces and text types from
the partner XSD, attributes, repeated elements, and nested documents serialised into a string.

A mixin of :class:`gateway.mapping.compiler.Compiler`; it only emits Python source lines and
uses the compiler's value, condition and path emitters.
"""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from gateway.mapping.codegen_util import Scope, _const_value, _is_const, _join, _strip
from gateway.mapping.codes import CodeTable
from gateway.mapping.errors import MappingError
from gateway.mapping.jsonview import ANY
from gateway.mapping.xsdmodel import (XChoice, XNode, constant_fits, describe_facets,
                                      global_element)
from gateway.protocols import xml as safexml
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
    #: (name, version or None, line) -> CompiledMapping, for ``fragment:`` (the registry)
    fragments: Any
    _sink: list[str] | None
    _tpath: str
    #: per document being emitted (the target, nested documents): whether it writes an element
    #: in no namespace (then no namespace may be the default one: :func:`scoped_nsmap`)
    _unqualified: list[bool]

    def xml_children(self, fields: Any, line: int, scope: Scope, parent: str, ind: int,
                     tpath: str, node: XNode | None, nsmap: dict[str, str]) -> None:
        """Emit children of ``parent`` (an lxml element variable), in XSD order when typed.

        Keys are element names, ``@attribute``s, ``"*"`` (the type's ``xs:any``: an injected
        document) and ``"a|b"`` (an ``xs:choice`` as a whole). The mapped branches of one
        choice become one chain: the first branch, in mapping order, that writes an element
        wins, so a choice is never written twice."""
        if not isinstance(fields, LDict):
            raise self.err("fields must be a mapping of element name → value", line)
        entries: list[tuple[int, str, Any, int]] = []
        chains: dict[int, list[tuple[str, Any, int]]] = {}   # id(choice) → mapped branches
        for i, (key, spec) in enumerate(fields.items()):
            key = str(key)
            kline = fields.line_of(key)
            if key.startswith("@"):
                entries.append((-1, key, spec, kline))
                continue
            if node is None:
                if "|" in key:
                    raise self.err(f"{key!r}: a choice is read from the schema; this document "
                                   f"has none (add schema:) — map the branch by its name",
                                   kline, key=key)
                entries.append((i, key, spec, kline))
                continue
            if key == "*":
                if not node.wildcards:
                    raise self.err(f"element {node.local} has no xs:any to inject a document "
                                   f"into", kline, key=key)
                entries.append((node.wildcards[0].position, key, spec, kline))
                continue
            if "|" in key:
                ch = self._choice_named(node, key, kline)
                if not isinstance(spec, LDict) or not isinstance(spec.get("fields"), LDict) or \
                        set(spec) - {"fields", "each", "where", "when"}:
                    raise self.err(f"a choice {key!r} takes fields: (its branches; map one, or "
                                   f"several with when:), optionally each: and where: (a "
                                   f"repeated choice) and when:", kline, key=key)
                if "each" in spec and not ch.repeated:
                    raise self.err(f"choice {key} occurs at most once in the schema; each: "
                                   f"needs a repeated choice", spec.line_of("each"), key=key)
                for name in spec["fields"]:
                    if str(name) not in ch.names:
                        raise self.err(f"{name!r} is not a branch of choice {key} (branches: "
                                       f"{', '.join(ch.names)})", spec["fields"].line_of(name),
                                       key=str(name))
                pos = min(node.children[n][0] for n in ch.names)
                if "each" in spec or "when" in spec or ch.repeated:
                    entries.append((pos, key, spec, kline))
                else:
                    if id(ch) not in chains:
                        entries.append((pos, ch.key, None, kline))
                    chains.setdefault(id(ch), []).extend(
                        (str(k), v, spec["fields"].line_of(k)) for k, v in spec["fields"].items())
                continue
            if node.simple or key not in node.children:
                allowed = sorted(node.children) + sorted("@" + a for a in node.attributes) + \
                    [c.key for c in node.choices] + (["*"] if node.wildcards else [])
                raise self.err(f"element {node.local} has no child {key!r} "
                               f"(allowed: {', '.join(allowed) or 'none: text only'})",
                               kline, key=key)
            branch_of = node.choice_of(key)
            if branch_of is not None and not branch_of.repeated:
                if id(branch_of) not in chains:
                    entries.append((min(node.children[n][0] for n in branch_of.names),
                                    branch_of.key, None, kline))
                chains.setdefault(id(branch_of), []).append((key, spec, kline))
                continue
            entries.append((node.children[key][0], key, spec, kline))
        if node is not None:
            for name, (_pos, child) in node.children.items():
                if child.min_occurs >= 1 and name not in fields:
                    self.report.missing_required.append((_join(tpath, name), line))
            for aname, a in node.attributes.items():
                if a.required and "@" + aname not in fields and \
                        not any(str(k).startswith("@") and str(k).split(":")[-1] == aname
                                for k in fields):
                    self.report.missing_required.append((_join(tpath, "@" + aname), line))
            for ch in node.choices:
                mapped = [k for k, v in fields.items() if v is not None and (
                    str(k) in ch.names or ("|" in str(k) and
                                           self._choice_named(node, str(k), 0) is ch and
                                           isinstance(v, LDict) and v.get("each", 1) is not None
                                           and any(b is not None for b in
                                                   (v.get("fields") or {}).values())))]
                if ch.required and not mapped:
                    self.report.missing_required.append((_join(tpath, ch.key), line))
        for _pos, key, spec, kline in sorted(entries, key=lambda e: e[0]):
            if "|" in key and spec is None:
                ch = self._choice_named(node, key, kline)
                self.xml_choice(ch, chains.get(id(ch), []), scope, parent, ind, tpath, node,
                                nsmap)
            elif "|" in key:
                ch = self._choice_named(node, key, kline)
                self.xml_choice_group(ch, key, spec, kline, scope, parent, ind, tpath, node,
                                      nsmap)
            else:
                self.xml_entry(key, spec, kline, scope, parent, ind, tpath, node, nsmap)

    def _choice_named(self, node: XNode | None, key: str, line: int) -> XChoice:
        names = {n.strip() for n in key.split("|")}
        ch = node.choice_of(next(iter(names))) if node is not None else None
        if ch is None or set(ch.names) != names:
            known = ", ".join(c.key for c in node.choices) if node is not None else ""
            raise self.err(f"element {node.local if node else '?'} has no xs:choice of exactly "
                           f"{key!r} (choices here: {known or 'none'})", line, key=key)
        return ch

    def xml_entry(self, key: str, spec: Any, kline: int, scope: Scope, parent: str, ind: int,
                  tpath: str, node: XNode | None, nsmap: dict[str, str]) -> None:
        """One key of ``fields:``: an attribute, an element, or ``"*"``."""
        # an attribute's path names it by local name (``@xml:lang`` is ``@lang``, as coverage)
        kpath = _join(tpath, "@" + key[1:].split(":")[-1] if key.startswith("@") else key)
        if spec is None:   # a placeholder (scaffold's ``null``): not mapped
            self.report.placeholders.append((kpath, kline))
            return
        at = len(self.report.produced)
        self.report.produced.append((kpath, kline))
        if key.startswith("@"):
            self.xml_attr(key[1:], spec, kline, scope, parent, ind, kpath, node, nsmap)
        elif key == "*":
            self.xml_inject(spec, kline, scope, parent, ind, kpath, tpath, node)
        else:
            sub = node.children[key][1] if node is not None else None
            self.xml_element(key, spec, kline, scope, parent, ind, kpath, sub, nsmap)
            if isinstance(spec, LDict) and "fields" in spec and spec.get("text") is None \
                    and len(self.report.produced) == at + 1:
                del self.report.produced[at]   # only placeholders inside: not produced

    def each_source(self, spec: LDict, tpath: str, scope: Scope) -> tuple[str, Any] | None:
        """An ``each:`` source list: its expression and its items' schema, or None for
        scaffold's placeholder (recorded as not mapped). A source that is not a list in the
        source schema is a load error on the ``each:`` line."""
        src = spec["each"]
        if src is None:
            self.report.placeholders.append((tpath + "[]", spec.line_of("each")))
            return None
        expr, schema = self.path(str(src), spec.line_of("each"), scope)
        if schema is not None and self.source is not None and schema is not ANY and \
                not self.source.is_array(schema):
            raise self.err(f"each: {src!r} is not a list in the source schema",
                           spec.line_of("each"))
        return expr, self.source.item(schema) if schema is not None and self.source else None

    def xml_choice(self, ch: XChoice, mapped: list[tuple[str, Any, int]], scope: Scope,
                   parent: str, ind: int, tpath: str, node: XNode | None,
                   nsmap: dict[str, str]) -> None:
        """The mapped branches of one choice as a chain: a branch is tried only while no
        earlier one (mapping order) has written an element; within a branch (a sequence) the
        elements go in schema order. ``check`` wants every branch but the last conditioned."""
        assert node is not None
        order: list[int] = []
        by_branch: dict[int, list[tuple[str, Any, int]]] = {}
        for key, spec, kline in mapped:
            if spec is None:
                self.report.placeholders.append((_join(tpath, key), kline))
                continue
            b = ch.branch_of(key)
            if b not in by_branch:
                order.append(b)
            by_branch.setdefault(b, []).append((key, spec, kline))
        for b in order[:-1]:
            if not any(_conditioned(spec) for _k, spec, _l in by_branch[b]):
                key, _s, kline = by_branch[b][0]
                later = ", ".join(by_branch[o][0][0] for o in order if o != b)
                self.report.choice_problems.append(
                    (_join(tpath, ch.key), kline,
                     f"branch {key} is mapped without when: and so always wins over "
                     f"{later}: give it a when: condition (the first branch whose condition "
                     f"holds is written), or delete the branches not sent"))
        if not order:
            return
        n0 = self.tmp("n")
        self.emit(ind, f"{n0} = len({parent})")
        for i, b in enumerate(order):
            inner = ind
            if i > 0:
                self.emit(ind, f"if len({parent}) == {n0}:")
                inner = ind + 1
            self.emit(inner, "pass")
            for key, spec, kline in sorted(by_branch[b], key=lambda e: node.children[e[0]][0]):
                self.xml_entry(key, spec, kline, scope, parent, inner, tpath, node, nsmap)

    def xml_choice_group(self, ch: XChoice, key: str, spec: LDict, line: int, scope: Scope,
                         parent: str, ind: int, tpath: str, node: XNode | None,
                         nsmap: dict[str, str]) -> None:
        """``"a|b": {each: <list>, fields: {...}}``: one branch per source element (a repeated
        choice, branches interleaved in source order), or ``{when: <cond>, fields: ...}``."""
        branches = [(str(k), v, spec["fields"].line_of(k)) for k, v in spec["fields"].items()]
        if "when" in spec:
            c = self.cond(spec["when"], spec.line_of("when"), scope, ind, _join(tpath, key))
            self.emit(ind, f"if {c}:")
            ind += 1
        if "each" not in spec and ch.repeated:   # branches with each: of their own
            assert node is not None
            for bkey, bspec, bline in sorted(branches, key=lambda e: node.children[e[0]][0]):
                self.xml_entry(bkey, bspec, bline, scope, parent, ind, tpath, node, nsmap)
            return
        if "each" not in spec:
            self.xml_choice(ch, branches, scope, parent, ind, tpath, node, nsmap)
            return
        src = spec["each"]
        gpath = _join(tpath, ch.key)
        each = self.each_source(spec, gpath, scope)
        if each is None:
            return
        expr, el_schema = each
        el = self.tmp("el")
        ix = self.loop(gpath + "[]", str(src), scope, "where" not in spec)
        self.emit(ind, f"for {ix}, {el} in enumerate(_seq({expr})):")
        loop_scope = self.element_scope(el, el_schema, str(src), scope)
        if "where" in spec:
            c = self.cond(spec["where"], spec.line_of("where"), loop_scope, ind + 1, gpath)
            self.emit(ind + 1, f"if not {c}:")
            self.emit(ind + 2, "continue")
        for bkey, bspec, bline in branches:
            if isinstance(bspec, LDict) and "each" in bspec:
                raise self.err(f"inside the choice's each:, branch {bkey} is one element per "
                               f"source element: drop its each:", bline, key=bkey)
        self.xml_choice(ch, branches, loop_scope, parent, ind + 1, tpath, node, nsmap)

    def xml_attr(self, name: str, spec: Any, line: int, scope: Scope, parent: str, ind: int,
                 kpath: str, node: XNode | None, nsmap: dict[str, str]) -> None:
        kind = "str"
        if node is None:
            qname = _qname(name, nsmap, None, self, line)
        else:
            a = node.attributes.get(name.split(":")[-1])
            if a is None:
                raise self.err(f"element {node.local} has no attribute {name!r} (allowed: "
                               f"{', '.join('@' + k for k in sorted(node.attributes)) or 'none'})",
                               line, key="@" + name)
            kind, qname = a.kind, a.name
            if _is_const(spec) and not constant_fits(a.type, _const_value(spec)):
                expected = a.type.prefixed_name if a.type.name else "value"
                self.report.mismatches.append((kpath, line, f"constant {_const_value(spec)!r} "
                                               f"is not a valid {expected}"
                                               f"{_facets_note(a.type)}"))
            self.check_table_fits(spec, a.type, kpath, line,
                                  a.type.prefixed_name if a.type.name else "value")
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
        if isinstance(spec, LDict) and ("raw" in spec or "fragment" in spec):
            if node is not None and not node.open:
                raise self.err(f"element {key} is not xs:anyType (nor holds only xs:any): "
                               f"raw:/fragment: go into such an element or under \"*\"", line,
                               key=key)
            e = self.tmp("e")
            self.emit(ind, f"{e} = _SE({parent}, {tag!r})")
            self.xml_inject(spec, line, scope, e, ind, kpath, kpath, node)
            self.emit(ind, f"if not len({e}) and {e}.text is None and not {e}.attrib:")
            self.emit(ind + 1, f"{parent}.remove({e})")
            return
        nil_only = isinstance(spec, LDict) and "nil" in spec and not set(spec) - {"nil", "when"}
        if node is not None and node.simple is False and not structured and not nil_only:
            raise self.err(f"element {key} has child elements: map it with fields: "
                           f"(children: {', '.join(node.children)})", line, key=key)
        if isinstance(spec, LDict) and "each" in spec and node is not None and not node.repeated:
            raise self.err(f"element {key} occurs at most once in the schema; each: needs "
                           f"maxOccurs > 1 (use items[0] or a path)", line, key=key)
        if node is not None and node.simple and _is_const(spec) and \
                not constant_fits(node.simple_type, _const_value(spec)):
            self.report.mismatches.append((kpath, line, f"constant {_const_value(spec)!r} is not "
                                           f"a valid {node.type_name}"
                                           f"{_facets_note(node.simple_type)}"))
        if node is not None and node.simple:
            self.check_table_fits(spec, node.simple_type, kpath, line, node.type_name)
        if isinstance(spec, LDict) and "nil" in spec:
            if node is not None and not node.nillable:
                raise self.err(f"element {key} is not nillable in the schema: nil: cannot be "
                               f"used (leave the value null to leave the element out)",
                               spec.line_of("nil"), key=key)
            if spec["nil"] is not True:
                raise self.err("nil: takes true (a null value is then written as "
                               "xsi:nil=\"true\")", spec.line_of("nil"), key=key)
            spec = _strip(spec, ("nil",))
            if not set(spec) - {"when"}:   # {nil: true}: always nil
                inner = ind
                if "when" in spec:
                    c = self.cond(spec["when"], spec.line_of("when"), scope, ind, kpath)
                    self.emit(ind, f"if {c}:")
                    inner = ind + 1
                self.emit(inner, f"_SE({parent}, {tag!r}).set({_XSI_NIL!r}, 'true')")
                return
            if repeated or (isinstance(spec, LDict) and "each" in spec):
                raise self.err(f"nil: is for an element that occurs once ({key})",
                               spec.line_of("each") if "each" in spec else line, key=key)
            nil = True
        else:
            nil = False
        kind = node.text_kind if node is not None else "str"
        ind0 = ind
        loop_scope = scope
        self._tpath = kpath
        if repeated:
            self.report.repeated.add(kpath)
        if isinstance(spec, LDict) and "each" in spec:
            src = spec["each"]
            each = self.each_source(spec, kpath, scope)
            if each is None:
                return
            expr, el_schema = each
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
            self.emit(ind + 1, f"{e}.set({_XSI_NIL!r}, 'true')" if nil
                      else f"{parent}.remove({e})")
        else:
            v = self.tmp()
            self.val(spec, line, loop_scope, v, ind, kpath)
            self.emit(ind, f"if {v} is not None:")
            self.emit(ind + 1, f"_SE({parent}, {tag!r}).text = {_conv(kind, v)}")
            if nil:
                self.emit(ind, "else:")
                self.emit(ind + 1, f"_SE({parent}, {tag!r}).set({_XSI_NIL!r}, 'true')")
        del ind0

    def check_table_fits(self, spec: Any, simple_type: Any, kpath: str, line: int,
                         type_name: str) -> None:
        """Every value a code table can yield must be valid for the target's simple type
        (enumeration, pattern, length included): a ``check`` finding, not a render surprise."""
        if not isinstance(spec, LDict) or "code" not in spec or spec.get("pipe") or \
                spec["code"] not in self.tables:
            return
        table = self.tables[spec["code"]]
        unset = CodeTable.__dataclass_fields__["default"].default
        values = list(table.forward.values()) + ([] if table.default is unset
                                                 else [table.default])
        bad = [v for v in values if not constant_fits(simple_type, v)]
        if bad:
            self.report.mismatches.append(
                (kpath, line, f"code table {table.name} yields {', '.join(map(repr, bad))}, "
                              f"not valid {type_name}{_facets_note(simple_type)}"))

    def xml_inject(self, spec: Any, line: int, scope: Scope, parent: str, ind: int,
                   kpath: str, ppath: str, node: XNode | None) -> None:
        """A whole document under ``parent``: ``{raw: <value>}`` (a source field holding an XML
        document as text, parsed at render by the hardened parser; a list gives one document
        each) or ``{fragment: <mapping>}`` (another mapping with an XML target, rendered
        straight under ``parent``). Validated by :meth:`CompiledMapping.validate_output`
        against ``schema:`` / the fragment's target schema / the schema the registry or the
        catalog has for the document's namespace; else the wildcard's processContents rules."""
        if not isinstance(spec, LDict) or ("raw" in spec) == ("fragment" in spec):
            raise self.err("an injected document is {raw: <value>, schema: <xsd>} or "
                           "{fragment: <mapping name>, from: <path>, version: <v>}", line)
        allowed = {"raw", "schema", "when"} if "raw" in spec else \
            {"fragment", "from", "version", "when"}
        if set(spec) - allowed:
            raise self.err(f"unknown key(s) {', '.join(sorted(map(str, set(spec) - allowed)))} "
                           f"in {'raw' if 'raw' in spec else 'fragment'} (allowed: "
                           f"{', '.join(sorted(allowed))})", line)
        inner = ind
        if "when" in spec:
            c = self.cond(spec["when"], spec.line_of("when"), scope, ind, kpath)
            self.emit(ind, f"if {c}:")
            inner = ind + 1
        known = tuple(child.tag for _p, child in node.children.values()) if node else ()
        if "raw" in spec:
            xsd = self.xsd_loader(str(spec["schema"]), spec.line_of("schema")) \
                if "schema" in spec else None
            v = self.tmp()
            self.val(spec["raw"], spec.line_of("raw"), scope, v, inner, kpath)
            self.emit(inner, f"_inject({parent}, {v}, {kpath!r})")
        else:
            if self.fragments is None:
                raise self.err("fragment: needs a mapping registry", line)
            m = self.fragments(str(spec["fragment"]), spec.get("version"),
                               spec.line_of("fragment"))
            if m.target_kind != "xml":
                raise self.err(f"fragment {spec['fragment']} has a {m.target_kind} target; "
                               f"only an XML target can be injected", spec.line_of("fragment"))
            xsd = m.target_schema
            if "from" not in spec and scope.pointer == "" and self._sink is not None:
                self._sink.extend(m.report.reads)   # same source: what it carries, this does
            src = self.tmp()
            self.val(spec.get("from", "."), spec.line_of("from") if "from" in spec else line,
                     scope, src, inner, kpath)
            self.emit(inner, f"if {src} is not None:")
            self.emit(inner + 1, f"{self.bind(m._fn, '_frag')}({src}, ctx, {parent})")
        self.report.injections.append((ppath, kpath, known, xsd))

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


def _conditioned(spec: Any) -> bool:
    """A branch that can decline: it carries a condition of its own."""
    return isinstance(spec, LDict) and bool({"when", "if", "where"} & set(spec))


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


_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def _facets_note(simple_type: Any) -> str:
    words = describe_facets(simple_type)
    return f" ({words})" if words else ""


def inject(parent: Any, value: Any, path: str) -> None:
    """Append the document(s) ``value`` holds under ``parent`` (generated code's ``_inject``):
    text or bytes parsed by the hardened parser (:mod:`gateway.protocols.xml`), an lxml element
    copied; null and empty values are skipped."""
    for x in (value if isinstance(value, list) else (value,)):
        if x is None or x == "":
            continue
        try:
            if isinstance(x, etree._Element):
                el = copy.deepcopy(x)
            elif isinstance(x, (bytes, bytearray)):
                el = safexml.parse(bytes(x))
            elif isinstance(x, str):
                el = safexml.parse_text(x)
            else:
                raise MappingError(f"a document to embed must be XML text, got "
                                   f"{type(x).__name__}", path=path)
        except safexml.XmlError as e:
            raise MappingError(f"the document to embed cannot be used: {e}", path=path) from e
        parent.append(el)


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
