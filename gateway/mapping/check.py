"""``check`` and ``coverage``: what an integration engineer wants to know about a mapping beyond
"it loads" — required target fields left unmapped, source codes a table cannot translate,
constants that do not fit the target type, and which target fields are produced at all.

Load errors (unknown source paths, unknown target fields, bad transforms) are already
``ConfigError`` from :meth:`MappingRegistry.load`; these are the findings that need a judgement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.mapping.jsonview import JsonView
from gateway.mapping.registry import CompiledMapping, MappingRegistry
from gateway.mapping.schemas import JsonSchema
from gateway.mapping.xsdmodel import XNode


@dataclass(frozen=True)
class Finding:
    severity: str          # "error" | "warning"
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


def check_mapping(m: CompiledMapping, reg: MappingRegistry) -> list[Finding]:
    out: list[Finding] = []
    for tpath, line in m.report.placeholders:
        out.append(Finding("error", m.file, line, f"target field {tpath} is a null placeholder, "
                                                  f"not mapped: give it a source path or value, "
                                                  f"or delete the line"))
    for tpath, line in m.report.missing_required:
        what = f"required choice {tpath}: no branch is mapped (map one)" \
            if "|" in tpath.split(".")[-1] else f"required target field {tpath} is not mapped"
        out.append(Finding("error", m.file, line, what))
    for table, enum, line, tpath in m.report.code_uses:
        t = reg.tables[table]
        if t.default is not t.__class__.__dataclass_fields__["default"].default:
            continue  # the table has a default: every code translates
        missing = [e for e in enum if e not in t.forward and str(e) not in t.forward]
        if missing:
            out.append(Finding("error", m.file, line,
                               f"{tpath}: code table {table} cannot translate source code(s) "
                               f"{', '.join(map(str, missing))}"))
    for tpath, line, msg in m.report.choice_problems:
        out.append(Finding("error", m.file, line, f"choice {tpath}: {msg}"))
    for tpath, line, msg in m.report.mismatches:
        out.append(Finding("error", m.file, line, f"{tpath}: type mismatch: {msg}"))
    if m.target_schema is None:
        out.append(Finding("warning", m.file, None, "no target schema: output is not validated"))
    return out


def check_all(reg: MappingRegistry) -> list[Finding]:
    return [f for m in reg.all() for f in check_mapping(m, reg)]


@dataclass(frozen=True)
class FieldCoverage:
    path: str
    type: str
    required: bool
    produced: bool


def _json_fields(view: JsonView, node: Any, base: str, depth: int,
                 parent_required: bool) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    if depth > 8:
        return out
    props = view.properties(node) or view.resolve(node).get("properties", {})
    req = set(view.required(node))
    for key, sub in props.items():
        path = f"{base}.{key}" if base else key
        r = key in req and parent_required
        sub = view.resolve(sub)
        out.append((path, view.describe(sub), r))
        if view.is_array(sub):
            item = view.item(sub)
            if "properties" in item:
                out += _json_fields(view, item, path + "[]", depth + 1, r)
        elif "properties" in sub:
            out += _json_fields(view, sub, path, depth + 1, r)
    return out


def _xml_fields(node: XNode, base: str, depth: int, parent_required: bool,
                seen: tuple[Any, ...] = ()) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    if depth > 10 or node.decl.type in seen:
        return out
    for name, a in node.attributes.items():
        out.append((f"{base}.@{name}" if base else f"@{name}", "attribute", a.required and parent_required))
    for ch in node.choices:
        path = f"{base}.{ch.key}" if base else ch.key
        out.append((path, f"xs:choice {ch.cardinality()}", ch.required and parent_required))
    for w in node.wildcards[:1]:   # the "*" slot (an injected document)
        hi = "*" if w.max_occurs is None else w.max_occurs
        out.append((f"{base}.*" if base else "*", f"xs:any {w.min_occurs}..{hi}",
                    w.min_occurs >= 1 and parent_required))
    for name, (_pos, child) in node.children.items():
        path = f"{base}.{name}" if base else name
        r = child.min_occurs >= 1 and parent_required
        out.append((path, f"{child.type_name} {child.cardinality()}", r))
        if (not child.simple or child.attributes) and not child.open:
            out += _xml_fields(child, path + ("[]" if child.repeated else ""), depth + 1, r,
                               seen + (node.decl.type,))
    return out


def coverage(m: CompiledMapping) -> list[FieldCoverage]:
    produced = {p.replace("[]", "") for p, _ in m.report.produced}
    if isinstance(m.target_schema, JsonSchema):
        fields = _json_fields(m.target_schema.view, m.target_schema.doc, "", 0, True)
    elif m.target_node is not None:
        fields = _xml_fields(m.target_node, "", 0, True)
    else:
        return [FieldCoverage(p, "?", False, True) for p, _ in m.report.produced]
    def done(p: str) -> bool:
        if "|" in p.split(".")[-1]:   # a choice: produced when one of its branches is
            head = p.rsplit(".", 1)[0] + "." if "." in p else ""
            return any(head + b in produced for b in p.split(".")[-1].split("|"))
        return p in produced
    return [FieldCoverage(p, t, r, done(p.replace("[]", ""))) for p, t, r in fields]
