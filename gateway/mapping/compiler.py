"""Mapping spec (YAML tree with line numbers) → Python source → one compiled ``render`` function.

XML emission lives in :mod:`gateway.mapping.xmlemit` (a mixin), shared pieces in
:mod:`gateway.mapping.codegen_util`.

Why generate source: a mapping runs for every delivery, so it must cost about what a hand-written
function costs. Closures per field would pay a Python call per field; generated straight-line
code pays none. Every check that can be made without data (paths against the source schema,
field names against the target schema, transform arguments, code tables) is made here, at load,
with the file and line of the offending key; the generated code only moves data.

The generated function has the signature ``render(root, ctx)`` and uses locals: ``root`` (source
document), ``ctx`` (context mapping), ``lv_<name>`` (``let`` values) and numbered temporaries.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from lxml import etree

from gateway.domain.regions import within as _within
from gateway.errors import ConfigError
from gateway.mapping.codegen_util import (Loop, Report, Scope, _const_value, _is_const, _join,
                                          _plain)
from gateway.mapping.codes import CodeTable
from gateway.mapping.context import CONTEXT_KEYS
from gateway.mapping.errors import MappingError
from gateway.mapping.jsonview import JsonView
from gateway.mapping.transforms import TRANSFORMS
from gateway.mapping.xmlemit import XmlEmitter, inject
from gateway.mapping.yamlload import LDict, LList

CTX_STANDARD = CONTEXT_KEYS
_PRODUCERS = ("from", "const", "first", "concat", "list", "fields", "document")
_MODIFIERS = {"pipe", "code", "decode", "default", "required", "when"}
_AUX = {"sep", "then", "else", "where", "value", "omit_empty", "text"}
_SEG = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def _xb(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    s = str(v).lower()
    return "true" if s in ("1", "true") else "false" if s in ("0", "false") else s


def _ix(x: Any, i: int) -> Any:
    if x.__class__ is list:
        try:
            return x[i]
        except IndexError:
            return None
    if x is None:
        return None
    return x if i in (0, -1) else None  # a single element where a list was allowed


def _seq(x: Any) -> Any:
    if x.__class__ is list:
        return x
    return () if x is None else (x,)


def _merr(e: Exception, path: str) -> MappingError:
    return MappingError(str(e), path=path)


class Compiler(XmlEmitter):
    """Compiles one mapping file. ``target`` is a JSON Schema node (json) or an XNode (xml)."""

    def __init__(self, file: str, tables: dict[str, CodeTable], source: JsonView | None,
                 ctx_names: set[str], xsd_loader: Any, fragments: Any = None) -> None:
        self.file = file
        self.tables = tables
        self.source = source
        self.ctx_names = ctx_names
        self.xsd_loader = xsd_loader       # (rel path, line) -> XsdSchema
        self.fragments = fragments         # (name, version, line) -> CompiledMapping
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {"_E": {}, "_ix": _ix, "_seq": _seq, "_merr": _merr,
                                   "_xb": _xb, "_SE": etree.SubElement, "_El": etree.Element,
                                   "_MErr": MappingError, "_deepcopy": copy.deepcopy,
                                   "_within": _within, "_inject": inject}
        self.n = 0
        self.lets: dict[str, tuple[str, Any]] = {}
        self.report = Report()
        # source pointers: what a let reads ((pointer, extendable) for a plain path, else the
        # reads made while computing it), and where reads go (None inside a condition)
        self.let_reads: dict[str, tuple[str | None, bool, list[str]]] = {}
        self._sink: list[str] | None = self.report.reads
        # the target path each generated line works for (1-based line n is line_tpaths[n - 1]):
        # a render error raised from generated code is located by its line
        self._tpath = ""
        self.line_tpaths: list[str] = []
        self._unqualified: list[bool] = []

    # ---- helpers -------------------------------------------------------------------------
    def err(self, reason: str, line: int | None, key: str | None = None) -> ConfigError:
        return ConfigError(reason, file=self.file, line=line, key=key)

    def tmp(self, p: str = "v") -> str:
        self.n += 1
        return f"{p}{self.n}"

    def bind(self, value: Any, p: str = "_k") -> str:
        name = self.tmp(p)
        self.ns[name] = value
        return name

    def emit(self, ind: int, text: str) -> None:
        self.lines.append("    " * ind + text)
        self.line_tpaths.append(self._tpath)

    # ---- source paths --------------------------------------------------------------------
    def path(self, raw: str, line: int, scope: Scope) -> tuple[str, Any]:
        if not raw:
            raise self.err("empty source path", line)
        if raw == ".":  # the current element itself (inside each: over a list of values)
            return scope.var, scope.schema
        schema: Any
        if raw.startswith("$"):
            m = re.match(r"\$([A-Za-z_]\w*)", raw)
            if not m:
                raise self.err(f"bad context reference {raw!r}", line)
            name, rest = m.group(1), raw[m.end():]
            if name in self.lets:
                expr, schema = self.lets[name]
            elif name in self.ctx_names:
                expr, schema = f"ctx.get({name!r})", None
            else:
                known = sorted(self.ctx_names | set(self.lets))
                raise self.err(f"unknown context or let name ${name} (known: "
                               f"{', '.join('$' + k for k in known)}; declare extra context "
                               f"keys under 'context:')", line)
            rest = rest[1:] if rest.startswith(".") else rest
        elif raw.startswith("/"):
            expr, schema, rest = "root", self.source.root if self.source else None, raw[1:]
        else:
            expr, schema, rest = scope.var, scope.schema, raw
        pos, walked = 0, raw[: len(raw) - len(rest)]
        while pos < len(rest):
            m = _SEG.match(rest, pos)
            if not m:
                raise self.err(f"bad source path {raw!r} at {rest[pos:]!r}", line)
            pos = m.end()
            if pos < len(rest) and rest[pos] == ".":
                pos += 1
            if m.group(1) is not None:
                key = m.group(1)
                if schema is not None and self.source is not None:
                    if self.source.is_array(schema):
                        raise self.err(f"source path {raw!r}: {walked or 'root'} is a list; "
                                       f"use {walked}[0].{key} or each:", line)
                    child = self.source.child(schema, key)
                    if child is None:
                        known = sorted(self.source.properties(schema) or [])
                        raise self.err(f"unknown source path {raw!r}: no field {key!r} "
                                       f"(known here: {', '.join(known)})", line)
                    schema = child
                expr = f"root.get({key!r})" if expr == "root" else f"({expr} or _E).get({key!r})"
                walked += ("." if walked and not walked.endswith(("/", "$")) else "") + key
            else:
                idx = int(m.group(2))
                if schema is not None and self.source is not None:
                    schema = self.source.item(schema) if self.source.is_array(schema) else schema
                expr = f"_ix({expr}, {idx})"
                walked += f"[{idx}]"
        return expr, schema

    # ---- source pointers (what the output carries; see Report.reads) ---------------------
    def pointer(self, raw: str, scope: Scope) -> tuple[str | None, list[str]]:
        """The JSON pointer ``raw`` reads (``*`` for indices), or None with the reads behind a
        computed ``let``/context value. Only meaningful for paths :meth:`path` accepted."""
        if raw == ".":
            return scope.pointer, []
        if raw.startswith("$"):
            m = re.match(r"\$([A-Za-z_]\w*)", raw)
            name = m.group(1) if m else ""
            rest = raw[m.end():] if m else ""
            if name not in self.let_reads:
                return None, []            # a context value: not from the source
            base, extendable, reads = self.let_reads[name]
            if base is None or not extendable:
                return None, ([base] if base is not None else []) + reads
            rest = rest[1:] if rest.startswith(".") else rest
        elif raw.startswith("/"):
            base, rest = "", raw[1:]
        else:
            if scope.pointer is None:
                return None, []
            base, rest = scope.pointer, raw
        parts = [m.group(1) if m.group(1) is not None else "*" for m in _SEG.finditer(rest)]
        return base + "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts), []

    def note_read(self, raw: str, scope: Scope, tpath: str | None = None) -> None:
        if self._sink is None:
            return
        ptr, extra = self.pointer(raw, scope)
        if ptr is not None:
            self._sink.append(ptr)
        self._sink.extend(extra)
        if tpath is not None:  # where this target value comes from (for error locations)
            here = ([ptr] if ptr is not None else []) + extra
            if not here and not raw.startswith(("/", "$")):
                here = list(scope.origin)  # inside a loop over a computed list
            self.report.note_source(tpath, here)

    def element_scope(self, var: str, schema: Any, src: str, scope: Scope) -> Scope:
        """The scope of one element of the list at ``src`` (for ``each:``)."""
        pointer = self.element_pointer(src, scope)
        origin: tuple[str, ...] = ()
        if pointer is None:
            sink, self._sink = self._sink, None
            base, extra = self.pointer(src, scope)
            self._sink = sink
            origin = tuple(([base] if base else []) + extra) or scope.origin
        return Scope(var, schema, pointer, origin)

    def loop(self, key: str, src: str | None, scope: Scope, exact: bool) -> str:
        """Record a loop making the repeated output ``key`` (target path + ``[]``) from the
        list at source path ``src``; returns the name of its counter variable."""
        ix = self.tmp("ix")
        element = None
        if src is not None:
            sink, self._sink = self._sink, None
            ptr, _ = self.pointer(src, scope)
            self._sink = sink
            element = None if ptr is None else ptr + "/*"
        self.report.loops[key] = Loop(element, exact, ix)
        return ix

    def element_pointer(self, raw: str, scope: Scope) -> str | None:
        """Pointer of one element of the list at ``raw`` (for ``each:`` scopes). A list computed
        by a ``let`` (``{from: formData, pipe: [entries]}``) has none: what the let read is
        carried by iterating it."""
        ptr, extra = self.pointer(raw, scope)
        if ptr is None and self._sink is not None:
            self._sink.extend(extra)
        return None if ptr is None else ptr + "/*"

    # ---- conditions ----------------------------------------------------------------------
    def cond(self, spec: Any, line: int, scope: Scope, ind: int, tpath: str) -> str:
        sink, self._sink = self._sink, None  # what a condition reads is not carried
        try:
            return self._cond(spec, line, scope, ind, tpath)
        finally:
            self._sink = sink

    def _cond(self, spec: Any, line: int, scope: Scope, ind: int, tpath: str) -> str:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise self.err("a condition is one of exists, missing, eq, ne, in, matches, "
                           "within, not, all, any", line)
        op, arg = next(iter(spec.items()))
        line = spec.line_of(op) if isinstance(spec, LDict) else line
        if op == "within":
            if not isinstance(arg, list) or len(arg) != 2:
                raise self.err("within takes [region value, area value] (both values: paths, "
                               "$context or constants)", line)
            a, b = self.tmp(), self.tmp()
            self.val(arg[0], line, scope, a, ind, tpath)
            self.val(arg[1], line, scope, b, ind, tpath)
            return f"_within({a}, {b})"
        if op in ("exists", "missing"):
            v = self.tmp()
            self.val(arg, line, scope, v, ind, tpath)
            return f"({v} is not None and {v} != '')" if op == "exists" else \
                f"({v} is None or {v} == '')"
        if op in ("eq", "ne", "in", "matches"):
            if not isinstance(arg, list) or len(arg) != 2:
                raise self.err(f"{op} takes [value, literal]", line)
            v = self.tmp()
            self.val(arg[0], line, scope, v, ind, tpath)
            lit = arg[1]
            if op == "in":
                if not isinstance(lit, list):
                    raise self.err("in takes [value, [literal, ...]]", line)
                hashable = all(isinstance(x, (str, int)) for x in lit)
                return f"({v} in {self.bind(frozenset(lit) if hashable else tuple(lit))})"
            if op == "matches":
                try:
                    rx = re.compile(str(lit))
                except re.error as e:
                    raise self.err(f"bad regex {lit!r}: {e}", line) from e
                return f"({v} is not None and {self.bind(rx)}.search(str({v})) is not None)"
            return f"({v} {'==' if op == 'eq' else '!='} {self.bind(lit)})"
        if op == "not":
            return f"(not {self.cond(arg, line, scope, ind, tpath)})"
        if op in ("all", "any"):
            if not isinstance(arg, list) or not arg:
                raise self.err(f"{op} takes a list of conditions", line)
            parts = [self.cond(c, getattr(c, "line", line), scope, ind, tpath) for c in arg]
            return "(" + (" and " if op == "all" else " or ").join(parts) + ")"
        raise self.err(f"unknown condition {op!r} (use exists, missing, eq, ne, in, matches, "
                       f"within, not, all, any)", line)

    # ---- transforms ----------------------------------------------------------------------
    def table(self, name: Any, line: int, reverse: bool) -> CodeTable:
        if not isinstance(name, str) or name not in self.tables:
            raise self.err(f"unknown code table {name!r} (known: {', '.join(sorted(self.tables))})",
                           line)
        t = self.tables[name]
        if reverse and t.reverse is None:
            raise self.err(f"code table {name} is not one-to-one; add an explicit 'reverse:' "
                           f"map to it to decode", line)
        return t

    def pipe_fns(self, spec: LDict) -> list[tuple[Any, int, str | None]]:
        """(render function, line, code-table name if a forward code step) for each step."""
        out: list[tuple[Any, int, str | None]] = []
        steps = spec.get("pipe", [])
        if not isinstance(steps, list):
            steps = [steps]
        for step in steps:
            line = getattr(step, "line", spec.line_of("pipe"))
            if isinstance(step, str):
                name, arg = step, None
            elif isinstance(step, dict) and len(step) == 1:
                name, arg = next(iter(step.items()))
            else:
                raise self.err(f"a pipe step is a transform name or {{name: argument}}, got {step!r}",
                               line)
            if name in ("code", "decode"):
                t = self.table(arg, line, name == "decode")
                out.append((t.decode if name == "decode" else t.encode, line,
                            t.name if name == "code" else None))
                continue
            factory = TRANSFORMS.get(name)
            if factory is None:
                raise self.err(f"unknown transform {name!r} (allowed: code, decode, "
                               f"{', '.join(sorted(TRANSFORMS))})", line)
            try:
                out.append((factory(arg), line, None))
            except (ValueError, LookupError, TypeError) as e:
                raise self.err(f"transform {name}: {e}", line) from e
        for key in ("code", "decode"):
            if key in spec:
                t = self.table(spec[key], spec.line_of(key), key == "decode")
                out.append((t.decode if key == "decode" else t.encode, spec.line_of(key),
                            t.name if key == "code" else None))
        return out

    # ---- values --------------------------------------------------------------------------
    def val(self, spec: Any, line: int, scope: Scope, var: str, ind: int, tpath: str,
            tjson: Any = None) -> Any:
        """Emit statements that leave the value of ``spec`` (or None) in ``var``.
        Returns the source schema node when the value is a plain path (for code-table checks)."""
        self._tpath = tpath
        if isinstance(spec, str):
            expr, schema = self.path(spec, line, scope)
            self.note_read(spec, scope, tpath)
            self.emit(ind, f"{var} = {expr}")
            return schema
        if spec is None or isinstance(spec, (bool, int, float)):
            self.emit(ind, f"{var} = {spec!r}")
            return None
        if not isinstance(spec, LDict):
            raise self.err(f"cannot use {type(spec).__name__} {spec!r} as a value "
                           f"(write {{const: ...}} for a constant list)", line)
        line = spec.line
        keys = set(spec)
        if "each" in spec:
            producer = "each"
        elif "if" in spec:
            producer = "if"
        else:
            found = [k for k in _PRODUCERS if k in keys]
            if len(found) != 1:
                raise self.err(f"a value needs exactly one of from, const, first, concat, list, if, "
                               f"each, fields, document (found: {', '.join(sorted(keys)) or 'none'})",
                               line)
            producer = found[0]
        unknown = keys - {producer} - _MODIFIERS - _AUX - ({"fields"} if producer == "each" else set())
        if unknown:
            raise self.err(f"unknown key(s) {', '.join(sorted(map(str, unknown)))} in a {producer} "
                           f"value", spec.line_of(sorted(unknown, key=str)[0]))
        inner = ind
        if "when" in spec:
            c = self.cond(spec["when"], spec.line_of("when"), scope, ind, tpath)
            self.emit(ind, f"{var} = None")
            self.emit(ind, f"if {c}:")
            inner = ind + 1
        src_schema = self.produce(producer, spec, scope, var, inner, tpath, tjson)
        steps = self.pipe_fns(spec)
        if steps and steps[0][2] and src_schema is not None and self.source is not None:
            enum = self.source.enum(src_schema)
            if enum is not None:
                self.report.code_uses.append((steps[0][2], enum, steps[0][1], tpath))
        for fn, _l, _t in steps:
            f = self.bind(fn, "_t")
            self.emit(inner, f"if {var} is not None:")
            self.emit(inner + 1, "try:")
            self.emit(inner + 2, f"{var} = {f}({var})")
            self.emit(inner + 1, "except (ValueError, TypeError, OverflowError, KeyError) as e:")
            self.emit(inner + 2, f"raise _merr(e, {tpath!r}) from e")
        if "default" in spec:
            d = spec["default"]
            expr = f"_deepcopy({self.bind(d)})" if isinstance(d, (list, dict)) else repr(d) \
                if d is None or isinstance(d, (bool, int, float)) else self.bind(d)
            self.emit(inner, f"if {var} is None:")
            self.emit(inner + 1, f"{var} = {expr}")
        if spec.get("required"):
            self.emit(inner, f"if {var} is None:")
            self.emit(inner + 1, f"raise _MErr('required value is missing', path={tpath!r})")
        # a transformed value (``pipe``/``code``) no longer has the source field's schema
        return src_schema if producer == "from" and not steps else None

    def produce(self, producer: str, spec: LDict, scope: Scope, var: str, ind: int,
                tpath: str, tjson: Any) -> Any:
        line = spec.line_of(producer)
        arg = spec[producer]
        if producer == "from":
            return self.val(arg, line, scope, var, ind, tpath)
        if producer == "const":
            if arg is None or isinstance(arg, (bool, int, float)):
                self.emit(ind, f"{var} = {arg!r}")
            elif isinstance(arg, (list, dict)):
                self.emit(ind, f"{var} = _deepcopy({self.bind(_plain(arg))})")
            else:
                self.emit(ind, f"{var} = {self.bind(arg)}")
            return None
        if producer == "first":
            if not isinstance(arg, list) or not arg:
                raise self.err("first takes a non-empty list of values", line)
            self.val(arg[0], getattr(arg[0], "line", line), scope, var, ind, tpath)
            for alt in arg[1:]:
                self.emit(ind, f"if {var} is None or {var} == '':")
                self.val(alt, getattr(alt, "line", line), scope, var, ind + 1, tpath)
            return None
        if producer == "concat":
            if not isinstance(arg, list) or not arg:
                raise self.err("concat takes a non-empty list of values", line)
            sep = spec.get("sep", "")
            parts = []
            for p in arg:
                t = self.tmp()
                self.val(p, getattr(p, "line", line), scope, t, ind, tpath)
                parts.append(t)
            nulls = " or ".join(f"{p} is None" for p in parts)
            joined = self.bind(str(sep)) + ".join((" + ", ".join(f"str({p})" for p in parts) + ",))" \
                if sep else "f'" + "".join(f"{{{p}}}" for p in parts) + "'"
            self.emit(ind, f"{var} = None if {nulls} else {joined}")
            return None
        if producer == "if":
            c = self.cond(arg, line, scope, ind, tpath)
            self.emit(ind, f"if {c}:")
            if "then" not in spec:
                raise self.err("if needs then:", line)
            self.val(spec["then"], spec.line_of("then"), scope, var, ind + 1, tpath, tjson)
            self.emit(ind, "else:")
            if "else" in spec:
                self.val(spec["else"], spec.line_of("else"), scope, var, ind + 1, tpath, tjson)
            else:
                self.emit(ind + 1, f"{var} = None")
            return None
        if producer == "each":
            return self.each_json(spec, scope, var, ind, tpath, tjson)
        if producer == "list":
            if not isinstance(arg, list):
                raise self.err("list takes a list of values", line)
            item_t = self.tview.item(tjson) if tjson is not None and self.tview else None
            self.emit(ind, f"{var} = []")
            for el in arg:
                t = self.tmp()
                self.val(el, getattr(el, "line", line), scope, t, ind, tpath + "[]", item_t)
                self.emit(ind, f"if {t} is not None:")
                self.emit(ind + 1, f"{var}.append({t})")
            if spec.get("omit_empty"):
                self.emit(ind, f"if not {var}:")
                self.emit(ind + 1, f"{var} = None")
            return None
        if producer == "fields":
            self.json_object(arg, spec.line_of("fields"), scope, var, ind, tpath,
                             tjson if tjson is not None else None)
            return None
        if producer == "document":
            self.document(arg, line, scope, var, ind, tpath)
            return None
        raise AssertionError(producer)

    def each_json(self, spec: LDict, scope: Scope, var: str, ind: int, tpath: str,
                  tjson: Any) -> None:
        line = spec.line_of("each")
        src = spec["each"]
        if src is not None and not isinstance(src, str):
            raise self.err("each takes a source path", line)
        each = self.each_source(spec, tpath, scope)
        if each is None:   # scaffold's placeholder for the source list: not mapped
            self.emit(ind, f"{var} = None")
            return
        expr, el_schema = each
        assert isinstance(src, str)
        if ("fields" in spec) == ("value" in spec):
            raise self.err("each needs exactly one of fields: or value:", line)
        item_t = self.tview.item(tjson) if tjson is not None and self.tview else None
        el = self.tmp("el")
        inner = self.element_scope(el, el_schema, src, scope)
        ix = self.loop(tpath + "[]", src, scope, "where" not in spec and "value" not in spec)
        self.emit(ind, f"{var} = []")
        self.emit(ind, f"for {ix}, {el} in enumerate(_seq({expr})):")
        if "where" in spec:
            c = self.cond(spec["where"], spec.line_of("where"), inner, ind + 1, tpath)
            self.emit(ind + 1, f"if not {c}:")
            self.emit(ind + 2, "continue")
        o = self.tmp()
        if "fields" in spec:
            self.json_object(spec["fields"], spec.line_of("fields"), inner, o, ind + 1,
                             tpath + "[]", item_t)
        else:
            self.val(spec["value"], spec.line_of("value"), inner, o, ind + 1, tpath + "[]", item_t)
            self.emit(ind + 1, f"if {o} is None:")
            self.emit(ind + 2, "continue")
        self.emit(ind + 1, f"{var}.append({o})")
        if spec.get("omit_empty"):
            self.emit(ind, f"if not {var}:")
            self.emit(ind + 1, f"{var} = None")

    tview: JsonView | None = None

    def json_object(self, fields: Any, line: int, scope: Scope, var: str, ind: int,
                    tpath: str, tjson: Any) -> None:
        if not isinstance(fields, LDict):
            raise self.err("fields must be a mapping of target field → value", line)
        view = self.tview
        if tjson is not None and view is not None:
            props = view.properties(tjson)
            for key in fields:
                if props is not None and key not in props:
                    raise self.err(f"target has no field {key!r} at {tpath or 'top level'} "
                                   f"(allowed: {', '.join(sorted(props))})", fields.line_of(key),
                                   key=str(key))
            for req in view.required(tjson):
                if req not in fields:
                    self.report.missing_required.append((_join(tpath, req), line))
        self.emit(ind, f"{var} = {{}}")
        for key, spec in fields.items():
            kline = fields.line_of(key)
            kpath = _join(tpath, str(key))
            if spec is None:   # a placeholder (scaffold's ``null``): not mapped
                self.report.placeholders.append((kpath, kline))
                continue
            child_t = view.child(tjson, str(key)) if tjson is not None and view is not None else None
            if child_t is not None and _is_const(spec):
                cval = _const_value(spec)
                if cval is not None and not view.type_ok(child_t, cval):  # type: ignore[union-attr]
                    self.report.mismatches.append(
                        (kpath, kline, f"constant {cval!r} does not fit {view.describe(child_t)}"))  # type: ignore[union-attr]
            v = self.tmp()
            self.val(spec, kline, scope, v, ind, kpath, child_t)
            self.report.produced.append((kpath, kline))
            self.check_codes_target(spec, kpath, kline, child_t)
            self.emit(ind, f"if {v} is not None:")
            self.emit(ind + 1, f"{var}[{key!r}] = {v}")

    def check_codes_target(self, spec: Any, kpath: str, line: int, child_t: Any) -> None:
        """Code table values must fit the target field (json only)."""
        if not isinstance(spec, LDict) or "code" not in spec or child_t is None or not self.tview:
            return
        t = self.tables.get(spec["code"])
        if t is None or spec.get("pipe"):
            return
        for v in t.forward.values():
            if not self.tview.type_ok(child_t, v):
                self.report.mismatches.append(
                    (kpath, line, f"code table {t.name} yields {v!r}, which does not fit "
                                  f"{self.tview.describe(child_t)}"))


__all__ = ["Compiler", "Report", "Scope", "CTX_STANDARD", "LList"]
