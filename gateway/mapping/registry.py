"""Loading mapping files into compiled mappings, and the registry the spine holds.

Hot reload is *build a whole new registry, then swap the reference*: :meth:`MappingRegistry.load`
either returns a registry in which every mapping compiled and every schema loaded, or raises
``ConfigError`` — so a failed reload leaves the previous registry in service untouched.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lxml import etree

from gateway.errors import ConfigError, FieldProblem
from gateway.mapping.codegen_util import _join
from gateway.mapping.codes import CodeTable, load_tables
from gateway.mapping.compiler import CTX_STANDARD, Compiler, Report, Scope
from gateway.mapping.errors import MappingError, OutputInvalid
from gateway.mapping.locate import (SourceProblem, XsdMessage, describe_value, frame_steps,
                                    json_location, resolve, source_pointers, xml_location,
                                    xsd_words)
from gateway.mapping.schemas import JsonSchema, SchemaCache, XsdSchema
from gateway.mapping.xmlemit import scoped_nsmap
from gateway.mapping.xmlsource import element_to_dict, parse_document
from gateway.mapping.xsdmodel import XNode, global_element
from gateway.mapping.yamlload import LDict, load_yaml
from gateway.protocols import xml as safexml
from gateway.protocols.xml import XmlError

_TOP = {"version", "direction", "description", "source", "target", "context", "let", "fields"}
_VERSION_SUFFIX = re.compile(r"^(?P<base>.+)\.v(?P<v>[0-9][0-9.]*)$")
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)
log = logging.getLogger("gateway.mapping")


@dataclass
class CompiledMapping:
    """One version of one mapping, compiled. ``render`` is pure and does no I/O."""

    name: str
    version: str
    file: str
    direction: Literal["outbound", "inbound"]
    target_kind: Literal["json", "xml"]
    description: str
    report: Report
    source_code: str
    target_schema: JsonSchema | XsdSchema | None
    target_node: XNode | None
    _fn: Any = field(repr=False)
    #: leaf fields of the source schema (JSON pointers, ``*`` per array level); empty when the
    #: mapping names no JSON source schema
    source_fields: tuple[str, ...] = ()
    #: ``source_fields`` whose values reach no part of the output, computed once at compile time
    uncarried: tuple[str, ...] = ()
    #: the target path each line of ``source_code`` works for (locates render errors)
    line_tpaths: tuple[str, ...] = ()
    #: namespace -> XsdSchema or None (the registry's schemas, then the catalog): validates
    #: an injected document whose mapping names no schema for it
    schema_for_ns: Any = field(default=None, repr=False)

    def render(self, source: Any, context: Mapping[str, Any], *, parent: Any = None) -> Any:
        """Map one source document. Raises ``MappingError`` (a ``PermanentError``) when the data
        cannot be mapped; the message names the target path.

        XML targets only: ``parent`` (an lxml element, e.g. a SOAP ``Body``) makes the result a
        new child of it. Moving a finished tree into another document costs lxml about as much
        as building it, so a SOAP layer that owns the envelope should pass its Body here."""
        if not isinstance(source, dict):
            if isinstance(source, etree._Element):
                source = element_to_dict(source)
            elif isinstance(source, (str, bytes)):
                source = element_to_dict(parse_document(source))
        try:
            return self._fn(source, context, parent)
        except MappingError as e:
            if not e.located:
                target, sources = self._where_failed(e, source)
                e.locate(sources, target)
            raise
        except _SHAPE_ERRORS as e:
            err = MappingError(f"the source value is not of the kind the mapping reads "
                               f"({type(e).__name__}: {e}) in mapping {self.name} v{self.version}")
            target, sources = self._where_failed(e, source)
            err.locate(sources, target)
            raise err from e

    def _where_failed(self, e: BaseException, source: Any) -> tuple[str | None, tuple[str, ...]]:
        """(target path, source pointers) of a render error: the generated function's frame
        tells the line (hence the target path, unless the error names it) and the loop
        counters (hence which element of each list)."""
        tb, frame = e.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.startswith("<mapping "):
                frame, line = tb.tb_frame, tb.tb_lineno
            tb = tb.tb_next
        target = getattr(e, "path", None)
        if frame is None:
            return target, ()
        if target is None and 0 < line <= len(self.line_tpaths):
            target = self.line_tpaths[line - 1] or None
        if target is None:
            return None, ()
        try:
            steps = frame_steps(self.report, target, frame.f_locals)
        except Exception:  # noqa: BLE001 - locating must never hide the error itself
            steps = []
        return target, self._sources(source, target, steps)

    def _sources(self, source: Any, target: str, steps: list[tuple[str, int]],
                 value: str | None = None) -> tuple[str, ...]:
        """The case fields ``target`` (reached through ``steps``) was read from; ``()`` without
        a source document, or if locating fails (a bug there must not hide the error)."""
        if source is None:
            return ()
        try:
            return self._case_pointers(source, source_pointers(self.report, source, target,
                                                               steps, value))
        except Exception as e:  # noqa: BLE001 - (class name only: the text may hold case data)
            log.warning("mapping %s v%s: could not locate the source of %s (%s)", self.name,
                        self.version, target, type(e).__name__)
            return ()

    @staticmethod
    def _case_pointers(source: Any, pointers: tuple[str, ...]) -> tuple[str, ...]:
        """Pointers of the rendered document as pointers of the case it was cut from (a
        delivery view knows its case; any other document is its own source)."""
        to_case = getattr(source, "case_pointer", None)
        if to_case is None:
            return pointers
        out: list[str] = []
        for p in pointers:
            q = to_case(p)
            if q not in out:
                out.append(q)
        return tuple(out)

    def uncarried_fields(self, source: Any = None) -> tuple[str, ...]:
        """Source fields this mapping does not carry to the partner (JSON pointers, ``*`` for
        any array index), listed at compile time: every leaf of the source schema no value of
        the output is read from (what only a ``when``/``where``/``if`` condition looks at is not
        carried). With ``source`` (the document a delivery renders, e.g. the delivery view):
        only those that hold a value in it, i.e. what this delivery actually leaves behind.
        Empty for a mapping without a JSON source schema (nothing to compare with)."""
        if source is None:
            return self.uncarried
        return tuple(p for p in self.uncarried if _has_value(source, p.split("/")[1:]))

    def validate_output(self, payload: Any, source: Any = None) -> None:
        """Check ``payload`` against the partner schema (and any nested documents against
        theirs); raise ``OutputInvalid`` listing every failing path, each in words and, with
        ``source`` (the document ``payload`` was rendered from), by the source field it came
        from."""
        located: list[SourceProblem] = []
        if isinstance(self.target_schema, JsonSchema):
            for path, message in self.target_schema.errors(payload):
                located.append(self._json_problem(payload, path, message, source))
        elif isinstance(self.target_schema, XsdSchema):
            try:
                wire = as_parsed(payload)
            except XmlError as e:
                located.append(SourceProblem("(document)", f"the serialized document cannot "
                                             f"be read back: {e}", (), ""))
            else:
                own = self._injected_problems(wire)
                located += self._xml_problems(self.target_schema, wire, "", source,
                                              skip=set(own))
                located += [p for ps in own.values() for p in ps]
        for tpath, xsd in self.report.documents:
            text = _locate(payload, tpath.split("#")[0])
            if text is None:
                continue
            try:
                inner = parse_document(text)
            except XmlError as e:
                located.append(SourceProblem(tpath, f"inner document is not well-formed: {e}",
                                             (), tpath))
                continue
            root = self.report.document_roots.get(tpath, etree.QName(inner).localname)
            located += self._xml_problems(xsd, inner, f"{tpath}#{root}", source,
                                          where=tpath.split("#")[0] + "#")
        if located:
            raise OutputInvalid(f"{self.name} v{self.version}",
                                [FieldProblem(p.where, p.message) for p in located], located)

    def _json_problem(self, payload: Any, path: list[Any], message: str,
                      source: Any) -> SourceProblem:
        target, steps, pointer = json_location(self.report, path)
        found, value = resolve(payload, pointer)
        sources = self._sources(source, target, steps, describe_value(value) if found else None)
        return SourceProblem(target, message, sources, pointer or "/")

    def _injected_problems(self, wire: Any) -> dict[Any, list[SourceProblem]]:
        """Each document injected by ``raw:``/``fragment:`` validated against its own schema:
        the one the mapping names, else the one the registry or the catalog has for its
        namespace. Keys: the injected elements that had a schema (the partner schema's strict
        wildcard cannot know them: its "no declaration" complaint about them is dropped)."""
        out: dict[Any, list[SourceProblem]] = {}
        for ppath, kpath, known, xsd in self.report.injections:
            if "#" in ppath:
                continue   # inside a nested document: validated with that document
            for parent in _elements_at(wire, ppath):
                for el in parent:
                    if not isinstance(el.tag, str) or el.tag in known:
                        continue
                    schema = xsd if xsd is not None else self.schema_for_ns(
                        etree.QName(el).namespace) if self.schema_for_ns else None
                    if schema is None:
                        continue   # the partner schema's processContents decides
                    name = etree.QName(el).localname
                    where = "/" + "/".join(etree.QName(a).localname for a in
                                           reversed(list(el.iterancestors()))) + f"/{name}"
                    out[el] = [SourceProblem(kpath, f"embedded document {name}: " + (
                        f"not an element {schema.path.name} declares ({{{etree.QName(el).namespace or ''}}}"
                        f"{name})" if "validation root" in msg else
                        f"{etree.QName(bad).localname if bad is not None else name} "
                        f"{xsd_words(msg).words}"), (), where)
                               for bad, msg in schema.errors(copy.deepcopy(el))]
        return out

    def _xml_problems(self, xsd: XsdSchema, element: Any, prefix: str, source: Any,
                      where: str = "", skip: set[Any] | None = None) -> list[SourceProblem]:
        out: list[SourceProblem] = []
        raw = [(el, msg) for el, msg in xsd.errors(element)
               if not (skip and el in skip and "wildcard" in msg)]
        typed = {id(el): m for el, msg in raw if el is not None
                 and (m := xsd_words(msg)).type_name is not None}
        for el, msg in raw:
            words = xsd_words(msg)
            if el is None:
                out.append(SourceProblem(prefix or "(document)", words.words, (), where))
                continue
            if words.type_name is not None and any(
                    e is el and not xsd_words(m).type_name for e, m in raw):
                continue  # the facet message about the same element says it better
            if words.sibling and el.getparent() is not None:
                if any(etree.QName(c).localname == words.missing for c in el.getparent()):
                    words = XsdMessage(words.element, None, f"is not expected here (the partner's "
                                       f"schema wants {words.missing} at this place)")
                else:
                    el = el.getparent()
            target, steps, readable = xml_location(self.report, el, prefix)
            value: str | None = el.text
            if words.missing:
                target, readable, value = _join(target, words.missing), \
                    f"{readable}/{words.missing}", None
                steps = steps + ([(target + "[]", 0)] if target in self.report.repeated else [])
            elif words.attribute:
                target, readable = _join(target, "@" + words.attribute), \
                    f"{readable}/@{words.attribute}"
                value = el.get(words.attribute)
            message = words.words
            if (t := typed.get(id(el))) is not None and t is not words and t.type_name:
                message += f" (partner type {t.type_name})"
            sources = self._sources(source, target, steps, value)
            out.append(SourceProblem(target, message, sources, where + readable))
        return out

    def pretty(self, payload: Any) -> str:
        """Human-readable rendering for the CLI."""
        if self.target_kind == "xml":
            return etree.tostring(payload, pretty_print=True, encoding="unicode")
        import json
        return json.dumps(payload, ensure_ascii=False, indent=2)


def as_parsed(element: Any) -> Any:
    """``element`` as the partner reads it: its whole document serialized to bytes and parsed
    back through the hardened parser, and the same element found in that tree. Validation
    looks at this, not at the tree that was built, so whatever the bytes say differently (an
    unqualified child written under a default namespace lands in that namespace) is seen."""
    root = element.getroottree().getroot()
    reparsed = safexml.parse(etree.tostring(root, encoding="utf-8"))
    if root is element:
        return reparsed
    steps: list[int] = []
    el = element
    while el is not root:
        parent = el.getparent()
        steps.append(list(parent).index(el))
        el = parent
    found = reparsed
    for i in reversed(steps):
        found = found[i]   # comments and processing instructions are children too: same order
    return found


def _elements_at(root: Any, tpath: str) -> list[Any]:
    """The elements of a rendered XML target at a target path (every repeat)."""
    found = [root]
    for part in [p for p in tpath.split(".") if p]:
        name = part.replace("[]", "")
        found = [c for el in found for c in el
                 if isinstance(c.tag, str) and etree.QName(c).localname == name]
    return found


def _locate(payload: Any, path: str) -> Any:
    cur = payload
    for part in path.split("."):
        if "[]" in part:
            return None
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, etree._Element):
            found = [c for c in cur if isinstance(c.tag, str) and etree.QName(c).localname == part]
            cur = found[0] if found else None
        else:
            return None
    return cur.text if isinstance(cur, etree._Element) else cur


def _has_value(doc: Any, parts: list[str]) -> bool:
    """Does ``doc`` hold a non-empty value at the pointer ``parts`` (``*`` = any index)?"""
    if not parts:
        return doc is not None and doc != "" and doc != [] and doc != {}
    head, rest = parts[0].replace("~1", "/").replace("~0", "~"), parts[1:]
    if head == "*":
        return isinstance(doc, list) and any(_has_value(x, rest) for x in doc)
    return isinstance(doc, dict) and head in doc and _has_value(doc[head], rest)


def source_leaves(view: Any, node: Any = None, base: str = "", depth: int = 0) -> list[str]:
    """Leaf fields of a JSON Schema as pointers: scalars, lists of scalars and open objects
    (free-form data such as ``formData``) are leaves; ``*`` stands for any array index."""
    node = view.root if node is None else node
    props = view.properties(node)
    if props is None or depth > 10:
        return [base] if base else []
    out: list[str] = []
    for key, sub in props.items():
        ptr = f"{base}/{key.replace('~', '~0').replace('/', '~1')}"
        sub = view.resolve(sub)
        if view.is_array(sub):
            item = view.item(sub)
            out += source_leaves(view, item, ptr + "/*", depth + 1) \
                if view.properties(item) else [ptr]
        elif view.properties(sub) is not None:
            out += source_leaves(view, sub, ptr, depth + 1)
        else:
            out.append(ptr)
    return out


def uncarried(leaves: list[str], reads: list[str]) -> tuple[str, ...]:
    """Leaves no read reaches: a read carries the field it names and everything under it; the
    elements of a list (``/x/*``) carry the list."""
    got = set(reads)
    for r in reads:
        while r.endswith("/*"):
            r = r[:-2]
            got.add(r)

    def carried(leaf: str) -> bool:
        parts = leaf.split("/")
        return any("/".join(parts[:i]) in got for i in range(2, len(parts) + 1))
    return tuple(leaf for leaf in leaves if not carried(leaf))


def _version_key(v: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in v.split("."))


def compile_file(path: Path, name: str, tables: dict[str, CodeTable],
                 cache: SchemaCache, fragments: Any = None) -> CompiledMapping:
    """Load and compile one mapping file; every problem is a ``ConfigError`` with file and line."""
    file = str(path)
    raw = load_yaml(path)
    if not isinstance(raw, LDict):
        raise ConfigError("a mapping file must be a YAML mapping", file=file, line=1)
    unknown = set(raw) - _TOP
    if unknown:
        k = sorted(map(str, unknown))[0]
        raise ConfigError(f"unknown top-level key {k!r} (allowed: {', '.join(sorted(_TOP))})",
                          file=file, line=raw.line_of(k), key=k)
    for k in ("version", "target", "fields"):
        if k not in raw:
            raise ConfigError(f"missing required key {k!r}", file=file, line=1, key=k)
    version = raw["version"]
    if not isinstance(version, str) or not re.fullmatch(r"[0-9][0-9.]*", version):
        raise ConfigError(f"version must be a quoted dotted number like \"1\", got {version!r}",
                          file=file, line=raw.line_of("version"), key="version")
    direction = raw.get("direction", "outbound")
    if direction not in ("outbound", "inbound"):
        raise ConfigError("direction must be outbound or inbound", file=file,
                          line=raw.line_of("direction"), key="direction")

    src_view = None
    source = raw.get("source")
    if source is not None:
        if not isinstance(source, LDict) or set(source) - {"schema"}:
            raise ConfigError("source takes {schema: file}", file=file, line=raw.line_of("source"),
                              key="source")
        if "schema" in source and str(source["schema"]).endswith(".json"):
            sp = cache.resolve(str(source["schema"]), file=file, line=source.line_of("schema"))
            src_view = cache.json(sp, file=file, line=source.line_of("schema")).view

    target = raw["target"]
    tline = raw.line_of("target")
    if not isinstance(target, LDict) or target.get("kind") not in ("json", "xml"):
        raise ConfigError("target needs kind: json or kind: xml", file=file, line=tline,
                          key="target")
    unknown = set(target) - {"kind", "schema", "element", "namespaces"}
    if unknown:
        raise ConfigError(f"unknown key(s) in target: {', '.join(sorted(unknown))}", file=file,
                          line=tline, key="target")
    kind = target["kind"]
    ctx_extra = raw.get("context", []) or []
    if not isinstance(ctx_extra, list) or not all(isinstance(c, str) for c in ctx_extra):
        raise ConfigError("context is a list of extra context key names", file=file,
                          line=raw.line_of("context"), key="context")

    def xsd_loader(rel: str, line: int) -> XsdSchema:
        p = cache.resolve(rel, file=file, line=line, base=path.parent)
        return cache.xsd(p, file=file, line=line)

    def fragment(fname: str, fversion: Any, line: int) -> CompiledMapping:
        if fragments is None:
            raise ConfigError("fragment: is resolved through a mapping registry", file=file,
                              line=line, key="fragment")
        return fragments(fname, None if fversion is None else str(fversion), file, line)  # type: ignore[no-any-return]

    comp = Compiler(file, tables, src_view, set(CTX_STANDARD) | set(ctx_extra), xsd_loader,
                    fragment)
    schema_obj: JsonSchema | XsdSchema | None = None
    node: XNode | None = None
    nsmap = {str(k): str(v) for k, v in (target.get("namespaces") or {}).items()}
    if kind == "json":
        if "schema" in target:
            sp = cache.resolve(str(target["schema"]), file=file, line=target.line_of("schema"),
                               base=path.parent)
            schema_obj = cache.json(sp, file=file, line=target.line_of("schema"))
            comp.tview = schema_obj.view
    else:
        if "schema" not in target or "element" not in target:
            raise ConfigError("an xml target needs schema: and element:", file=file, line=tline,
                              key="target")
        schema_obj = xsd_loader(str(target["schema"]), target.line_of("schema"))
        el = str(target["element"])
        if ":" in el and not el.startswith("{"):
            prefix, local = el.split(":", 1)
            if prefix not in nsmap:
                raise ConfigError(f"undeclared prefix {prefix!r} in element", file=file,
                                  line=target.line_of("element"), key="target.element")
            el = f"{{{nsmap[prefix]}}}{local}"
        try:
            node = global_element(schema_obj.model, el)
        except KeyError as e:
            raise ConfigError(str(e.args[0]), file=file, line=target.line_of("element"),
                              key="target.element") from e

    root_scope = Scope("root", src_view.root if src_view else None, "")
    comp.emit(0, "def render(root, ctx, parent=None):")
    lets = raw.get("let") or LDict()
    if not isinstance(lets, LDict):
        raise ConfigError("let is a mapping of name → value", file=file, line=raw.line_of("let"))
    for lname, lspec in lets.items():
        if not isinstance(lname, str) or not re.fullmatch(r"[A-Za-z_]\w*", lname):
            raise ConfigError(f"bad let name {lname!r}", file=file, line=lets.line_of(lname))
        if lname in comp.ctx_names:
            raise ConfigError(f"let name {lname!r} hides a context key", file=file,
                              line=lets.line_of(lname))
        var = f"lv_{lname}"
        reads: list[str] = []
        sink, comp._sink = comp._sink, reads     # a let carries what it reads only when used
        schema = comp.val(lspec, lets.line_of(lname), root_scope, var, 1, f"${lname}")
        comp._sink = sink
        comp.lets[lname] = (var, schema)
        plain = lspec if isinstance(lspec, str) else lspec.get("from") \
            if isinstance(lspec, LDict) and set(lspec) <= {"from", "required", "default"} else None
        if isinstance(plain, str):   # a plain path: $name.rest reads exactly path.rest
            ptr, _ = comp.pointer(plain, root_scope)
            comp.let_reads[lname] = (ptr, True, [])
        else:
            comp.let_reads[lname] = (None, False, reads)
    if kind == "json":
        comp.json_object(raw["fields"], raw.line_of("fields"), root_scope, "out", 1, "",
                         schema_obj.doc if schema_obj is not None else None)  # type: ignore[union-attr]
    else:
        assert node is not None
        nm: dict[str | None, str] = {}   # filled once the children are known (below)
        nm_name = comp.bind(nm)
        comp.emit(1, f"out = _El({node.tag!r}, nsmap={nm_name}) if parent is None else "
                     f"_SE(parent, {node.tag!r}, nsmap={nm_name})")
        comp._unqualified.append(False)
        comp.xml_children(raw["fields"], raw.line_of("fields"), root_scope, "out", 1, "", node,
                          nsmap)
        nm.update(scoped_nsmap(nsmap, node.tag, comp._unqualified.pop()))
    comp.emit(1, "return out")
    code_text = "\n".join(comp.lines) + "\n"
    try:
        code = compile(code_text, f"<mapping {name} v{version}>", "exec")
    except SyntaxError as e:  # a compiler bug, not the author's: say so plainly
        raise ConfigError(f"internal error compiling mapping: {e}", file=file) from e
    ns_env = dict(comp.ns)
    exec(code, ns_env)
    leaves = tuple(source_leaves(src_view)) if src_view is not None else ()
    return CompiledMapping(name, version, file, direction, kind,
                           str(raw.get("description", "")), comp.report, code_text,
                           schema_obj, node, ns_env["render"], leaves,
                           uncarried(list(leaves), comp.report.reads),
                           tuple(comp.line_tpaths), cache.for_namespace)


def mapping_files(mappings_dir: Path) -> list[Path]:
    """Every mapping file: ``*.yaml`` except under ``codes/``, ``tests/`` and the deadline data
    (``deadlines/``, ``calendar/``: gateway.domain.deadlines)."""
    out = []
    for p in sorted(mappings_dir.rglob("*.yaml")):
        rel = p.relative_to(mappings_dir).parts
        if rel[0] in ("codes", "tests", "deadlines", "calendar"):
            continue
        out.append(p)
    return out


def name_of(path: Path, mappings_dir: Path) -> tuple[str, str | None]:
    """(mapping name, version suffix from the file name or None)."""
    rel = path.relative_to(mappings_dir).with_suffix("").as_posix()
    m = _VERSION_SUFFIX.match(rel)
    return (m.group("base"), m.group("v")) if m else (rel, None)


class MappingRegistry:
    """All compiled mappings of one load. Immutable after :meth:`load`; swap to reload."""

    def __init__(self, mappings: dict[str, dict[str, CompiledMapping]],
                 tables: dict[str, CodeTable], mappings_dir: Path, schemas_dir: Path) -> None:
        self._m = mappings
        self.tables = tables
        self.mappings_dir = mappings_dir
        self.schemas_dir = schemas_dir

    @classmethod
    def load(cls, mappings_dir: Path, schemas_dir: Path) -> MappingRegistry:
        """Load and compile everything, or raise ``ConfigError`` (file, line, reason)."""
        mappings_dir, schemas_dir = Path(mappings_dir), Path(schemas_dir)
        if not mappings_dir.is_dir():
            raise ConfigError("mappings folder does not exist", file=str(mappings_dir))
        tables = load_tables(mappings_dir / "codes")
        cache = SchemaCache(schemas_dir)
        found: dict[str, dict[str, CompiledMapping]] = {}
        files = {p: name_of(p, mappings_dir) for p in mapping_files(mappings_dir)}
        done: dict[Path, CompiledMapping] = {}
        busy: list[Path] = []

        def compiled(p: Path) -> CompiledMapping:
            """Compile on first use: a mapping a ``fragment:`` names is compiled first."""
            if p not in done:
                if p in busy:
                    chain = " -> ".join(files[q][0] for q in busy[busy.index(p):] + [p])
                    raise ConfigError(f"fragments refer to each other in a cycle: {chain}",
                                      file=str(p), key="fragment")
                busy.append(p)
                done[p] = compile_file(p, files[p][0], tables, cache, fragment)
                busy.pop()
            return done[p]

        def fragment(fname: str, fversion: str | None, file: str, line: int) -> CompiledMapping:
            cands = [compiled(p) for p, (n, _s) in files.items() if n == fname]
            if fversion is not None:
                cands = [m for m in cands if m.version == fversion]
            if not cands:
                raise ConfigError(f"fragment: no mapping {fname!r}"
                                  f"{f' version {fversion}' if fversion else ''}", file=file,
                                  line=line, key="fragment")
            return max(cands, key=lambda m: _version_key(m.version))

        for path in files:
            name, suffix = files[path]
            m = compiled(path)
            if suffix is not None and suffix != m.version:
                raise ConfigError(f"file name says version {suffix} but the file declares "
                                  f"{m.version}", file=str(path), key="version")
            versions = found.setdefault(name, {})
            if m.version in versions:
                raise ConfigError(f"{name} version {m.version} is also declared in "
                                  f"{versions[m.version].file}", file=str(path), key="version")
            versions[m.version] = m
        return cls(found, tables, mappings_dir, schemas_dir)

    def names(self) -> list[str]:
        return sorted(self._m)

    def versions(self, name: str) -> list[str]:
        return sorted(self._versions(name), key=_version_key)

    def _versions(self, name: str) -> dict[str, CompiledMapping]:
        if name not in self._m:
            raise ConfigError(f"unknown mapping {name!r} (known: {', '.join(self.names()) or 'none'})",
                              key=name)
        return self._m[name]

    def get(self, name: str, version: str | None = None) -> CompiledMapping:
        versions = self._versions(name)
        if version is None:
            return versions[max(versions, key=_version_key)]
        if version not in versions:
            raise ConfigError(f"mapping {name} has no version {version!r} (known: "
                              f"{', '.join(self.versions(name))})", key=name)
        return versions[version]

    def all(self) -> list[CompiledMapping]:
        return [m for n in self.names() for m in (self._m[n][v] for v in self.versions(n))]
