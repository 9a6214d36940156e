"""Small shared pieces of the mapping compiler: the compile report, the source scope, and
helpers on YAML spec nodes. Kept apart so the JSON and XML emitters can both use them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.mapping.yamlload import LDict


@dataclass
class Report:
    """What ``check`` and ``coverage`` need to know, gathered while compiling."""

    produced: list[tuple[str, int]] = field(default_factory=list)
    missing_required: list[tuple[str, int]] = field(default_factory=list)
    code_uses: list[tuple[str, list[Any], int, str]] = field(default_factory=list)
    mismatches: list[tuple[str, int, str]] = field(default_factory=list)
    documents: list[tuple[str, Any]] = field(default_factory=list)
    #: source JSON pointers whose values reach the output (``*`` for any array index);
    #: reads inside conditions (``when``, ``where``, ``if``) are not counted
    reads: list[str] = field(default_factory=list)
    #: target path (``DATA.RECORD[].SXBM``) → the source pointers its value is read from
    sources: dict[str, list[str]] = field(default_factory=dict)
    #: repeated output (target path + ``[]``) → the loop that makes one per source element
    loops: dict[str, Loop] = field(default_factory=dict)
    #: XML target paths of elements the schema repeats (their children sit under ``path[]``)
    repeated: set[str] = field(default_factory=set)
    #: ``document:`` target path → its root element name as written in the mapping
    document_roots: dict[str, str] = field(default_factory=dict)
    #: (target path, line) of each ``null`` left in place of a value (what ``gateway mapping
    #: scaffold`` writes for every field): not mapped, so not produced, and a ``check`` error
    placeholders: list[tuple[str, int]] = field(default_factory=list)
    #: (choice target path ``a.b|c``, line, what is wrong): several branches of one choice
    #: mapped so that the first always wins (a ``check`` error)
    choice_problems: list[tuple[str, int, str]] = field(default_factory=list)
    #: documents injected by ``raw:``/``fragment:``: (target path of the element they go
    #: under, the mapping key's target path, the tags its schema declares there (an injected
    #: element is any other), the XSD to validate them against or None: look it up by
    #: namespace)
    injections: list[tuple[str, str, tuple[str, ...], Any]] = field(default_factory=list)

    def note_source(self, tpath: str, pointers: list[str]) -> None:
        known = self.sources.setdefault(tpath, [])
        known.extend(p for p in pointers if p not in known)


@dataclass(frozen=True)
class Loop:
    """One ``each:`` (or a repeated element fed from one list value): the n-th output it makes
    comes from the n-th element of ``element`` (a source pointer ending in ``/*``; None when the
    list is computed, e.g. by a ``let``) unless ``exact`` is False (a ``where:`` filter or
    skipped empty values shift positions). ``index_var`` is the loop counter in the generated
    code, read back from the frame when rendering fails inside the loop."""

    element: str | None
    exact: bool
    index_var: str


@dataclass
class Scope:
    var: str                  # python expression of the current source element
    schema: Any               # its JSON Schema node (None = unchecked)
    pointer: str | None = None  # its JSON pointer in the source (``*`` per array level)
    #: for an element of a computed list (no pointer): the source pointers the list was made
    #: from (``formData`` for ``{from: formData, pipe: [entries]}``)
    origin: tuple[str, ...] = ()


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _is_const(spec: Any) -> bool:
    return (spec is not None and isinstance(spec, (bool, int, float))) or \
        (isinstance(spec, LDict) and set(spec) <= {"const", "when"} and "const" in spec)


def _const_value(spec: Any) -> Any:
    return spec["const"] if isinstance(spec, dict) else spec


def _strip(spec: LDict, keys: tuple[str, ...]) -> LDict:
    out = LDict({k: v for k, v in spec.items() if k not in keys})
    out.line, out.key_lines = spec.line, spec.key_lines
    return out
