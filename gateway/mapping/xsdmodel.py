"""The partner XSD, seen the way a mapping needs it: for each element its namespace-qualified tag,
its children in schema order with cardinality, its attributes and how to write its text.

Read once at load through ``xmlschema`` (which follows imports and includes; standard schemas come
from :mod:`gateway.catalog`; remote locations and local files outside the schema folders are
refused). The render path never touches xmlschema: the compiler bakes tags, order and text
conversion into the generated code.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import xmlschema

from gateway import catalog

_BOOL = {"boolean"}
_NUM = {"decimal", "float", "double", "integer", "int", "long", "short", "byte",
        "nonNegativeInteger", "positiveInteger", "unsignedInt", "unsignedLong", "unsignedShort",
        "unsignedByte", "negativeInteger", "nonPositiveInteger"}


def load_schema(path: Path, *folders: Path) -> xmlschema.XMLSchemaBase:
    """Load an XSD (or a WSDL's inline schemas: :mod:`gateway.protocols.wsdl_types`) offline,
    reading only the catalog, the schema's own folder and ``folders``
    (:func:`gateway.catalog.xmlschema_options`); ``xmlschema`` errors propagate for the caller
    to translate.

    xmlschema treats an unreadable import or include as a warning and carries on (failing later,
    if at all, on a missing type); a location the confinement refused raises
    :class:`gateway.catalog.SchemaAccessError` naming it instead."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            opts = catalog.xmlschema_options(Path(path).parent, *folders)
            if Path(path).suffix.lower() == ".wsdl":   # its inline schemas, as one schema
                from gateway.protocols import xml as safexml
                from gateway.protocols.wsdl_types import xmlschema_sources
                sources: list[Any] = list(xmlschema_sources(path, *folders, parse=safexml.parse))
                schema = xmlschema.XMLSchema(sources, base_url=str(Path(path).resolve().parent),
                                             **opts)
            else:
                schema = xmlschema.XMLSchema(str(path), **opts)
        except Exception as e:
            _raise_refused(seen, e)
            raise
    _raise_refused(seen, None)
    for w in seen:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return schema


def _raise_refused(seen: list[warnings.WarningMessage], cause: Exception | None) -> None:
    refused = next((str(w.message) for w in seen  # ours, or xmlschema's own allow="local"
                    if "refusing to" in str(w.message) or "block access to" in str(w.message)),
                   None)
    if refused:
        raise catalog.SchemaAccessError(refused) from cause


def _text_kind(simple: Any) -> str:
    try:
        prim = simple.primitive_type.local_name
        base = simple
        while base is not None and getattr(base, "local_name", None) not in _NUM | _BOOL:
            base = getattr(base, "base_type", None)
        name = base.local_name if base is not None else prim
    except AttributeError:
        return "str"
    if name in _BOOL:
        return "bool"
    if name in _NUM:
        return "num"
    return "str"


def _qualified(decl: Any) -> bool:
    """Written with its namespace: global, a ``ref`` to a global, or form="qualified"."""
    return bool(decl.qualified or decl.is_global() or getattr(decl, "ref", None) is not None)


@dataclass
class XAttr:
    name: str          # as written in the document (Clark notation when qualified)
    local: str
    type: Any
    required: bool
    kind: str


@dataclass(eq=False)
class XChoice:
    """One ``xs:choice`` among an element's children (the outermost one, when choices nest):
    its branches (each the element names of one particle, in schema order; a branch that is a
    sequence has several), whether the content model demands one, whether it repeats."""

    branches: tuple[tuple[str, ...], ...]
    required: bool
    repeated: bool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for b in self.branches for n in b)

    @property
    def key(self) -> str:
        """How a mapping names the choice as a whole: ``"person|org|orgNo"``."""
        return "|".join(self.names)

    def branch_of(self, name: str) -> int:
        return next(i for i, b in enumerate(self.branches) if name in b)

    def cardinality(self) -> str:
        return f"{1 if self.required else 0}..{'*' if self.repeated else 1}"


@dataclass
class XWildcard:
    """An ``xs:any`` among an element's children (mapped under the key ``"*"``)."""

    position: int
    namespace: str
    process_contents: str
    min_occurs: int
    max_occurs: int | None


@dataclass
class XNode:
    """One element declaration, lazily expanded (recursive types are fine)."""

    decl: Any
    tag: str = ""
    local: str = ""
    min_occurs: int = 1
    max_occurs: int | None = 1
    _children: dict[str, tuple[int, XNode]] | None = field(default=None, repr=False)
    #: child local name → the choice it is a branch of (filled with ``children``)
    _choices: dict[str, XChoice] = field(default_factory=dict, repr=False)
    _wildcards: list[XWildcard] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        qualified = _qualified(self.decl)
        self.tag = self.decl.name if qualified else self.decl.local_name
        if self.tag and not self.tag.startswith("{") and self.decl.target_namespace and qualified:
            self.tag = f"{{{self.decl.target_namespace}}}{self.decl.local_name}"
        self.local = self.decl.local_name
        self.min_occurs = self.decl.min_occurs
        self.max_occurs = self.decl.max_occurs

    @property
    def repeated(self) -> bool:
        return self.max_occurs is None or self.max_occurs > 1

    @property
    def simple(self) -> bool:
        """Text-only element (no children, maybe attributes)."""
        t = self.decl.type
        return bool(t.is_simple() or t.has_simple_content())

    @property
    def simple_type(self) -> Any:
        t = self.decl.type
        if t.is_simple():
            return t
        if t.has_simple_content():
            return t.content
        return None

    @property
    def text_kind(self) -> str:
        st = self.simple_type
        return _text_kind(st) if st is not None else "str"

    @property
    def type_name(self) -> str:
        t = self.decl.type
        st = self.simple_type
        named = st if st is not None and st.name else t
        return named.prefixed_name if getattr(named, "name", None) else "anonymous"

    @property
    def children(self) -> dict[str, tuple[int, XNode]]:
        """Local name → (position in schema order, node). A child's ``min_occurs`` and
        ``max_occurs`` are what the content model allows it in the document: 0 inside a choice
        or an optional group, unbounded inside a repeated one."""
        if self._children is None:
            self._children = {}
            t = self.decl.type
            if not self.simple and t.content is not None:
                self._walk(t.content, True, False, None, [0])
        return self._children

    def _walk(self, group: Any, required: bool, repeated: bool, choice: XChoice | None,
              pos: list[int]) -> None:
        """Collect the children of one model group (xmlschema's ``XsdGroup``), recording
        effective occurrences, the outermost choice of each child and the wildcards."""
        assert self._children is not None
        for particle in group:
            req = required and particle.min_occurs >= 1 and choice is None
            rep = repeated or particle.max_occurs is None or particle.max_occurs > 1
            if hasattr(particle, "model"):   # a nested group (sequence, choice, all)
                inner = choice
                if particle.model == "choice" and choice is None:
                    inner = XChoice(tuple(_names(p) for p in particle if _names(p)),
                                    required and particle.min_occurs >= 1,
                                    rep)
                self._walk(particle, req and particle.model != "choice", rep, inner, pos)
                continue
            pos[0] += 1
            local = getattr(particle, "local_name", None)
            if local is None:   # xs:any
                ns = particle.namespace
                self._wildcards.append(XWildcard(
                    pos[0], ns if isinstance(ns, str) else " ".join(sorted(map(str, ns))),
                    str(getattr(particle, "process_contents", "strict")),
                    0 if not req else particle.min_occurs, None if rep else particle.max_occurs))
                continue
            if local in self._children:
                continue
            child = XNode(particle)
            child.min_occurs = particle.min_occurs if req else 0
            child.max_occurs = None if rep else particle.max_occurs
            self._children[local] = (pos[0], child)
            if choice is not None:
                self._choices[local] = choice

    @property
    def choices(self) -> list[XChoice]:
        """The choices among the children, in schema order."""
        _ = self.children
        out: list[XChoice] = []
        for c in self._choices.values():
            if c not in out:
                out.append(c)
        return out

    def choice_of(self, name: str) -> XChoice | None:
        _ = self.children
        return self._choices.get(name)

    @property
    def wildcards(self) -> list[XWildcard]:
        _ = self.children
        return self._wildcards

    @property
    def open(self) -> bool:
        """Content is only a wildcard (``xs:anyType``, or a type holding just ``xs:any``): the
        element is written from an injected document, not field by field."""
        return not self.simple and not self.children and bool(self.wildcards)

    @property
    def nillable(self) -> bool:
        return bool(getattr(self.decl, "nillable", False))

    def facets(self) -> str:
        """The simple type's enumeration, pattern and length, in words (scaffold comments)."""
        return describe_facets(self.simple_type)

    @cached_property
    def attributes(self) -> dict[str, XAttr]:
        out: dict[str, XAttr] = {}
        for name, a in getattr(self.decl.type, "attributes", {}).items():
            if name is None or not hasattr(a, "local_name"):
                continue
            out[a.local_name] = XAttr(a.name if _qualified(a) else a.local_name,
                                      a.local_name, a.type, a.use == "required", _text_kind(a.type))
        return out

    def cardinality(self) -> str:
        hi = "*" if self.max_occurs is None else str(self.max_occurs)
        return f"{self.min_occurs}..{hi}"


def _names(particle: Any) -> tuple[str, ...]:
    """Element names inside one particle (an element, or a group flattened)."""
    if hasattr(particle, "model"):
        return tuple(n for p in particle for n in _names(p))
    local = getattr(particle, "local_name", None)
    return (local,) if local else ()


def describe_facets(simple: Any) -> str:
    """``enum A|B``, ``pattern [0-9]{6}``, ``length 1..64`` of a simple type (and its bases)."""
    parts: list[str] = []
    t, depth = simple, 0
    enum = pattern = None
    lo = hi = None
    while t is not None and depth < 10 and getattr(t, "is_simple", lambda: False)():
        enum = enum if enum is not None else getattr(t, "enumeration", None)
        pats = getattr(t, "patterns", None)
        if pattern is None and pats is not None:
            pattern = " or ".join(getattr(pats, "regexps", []) or [])
        lo = lo if lo is not None else getattr(t, "min_length", None)
        hi = hi if hi is not None else getattr(t, "max_length", None)
        t, depth = getattr(t, "base_type", None), depth + 1
    if enum:
        parts.append("enum " + "|".join(map(str, enum)))
    if pattern:
        parts.append(f"pattern {pattern}")
    if lo is not None or hi is not None:
        parts.append(f"length {lo if lo is not None else 0}..{hi if hi is not None else '*'}")
    return ", ".join(parts)


def global_element(schema: xmlschema.XMLSchemaBase, name: str) -> XNode:
    """Find a global element by Clark name or local name (unique)."""
    if name.startswith("{"):
        decl = schema.maps.elements.get(name)
    else:
        found = [e for qn, e in schema.maps.elements.items() if qn.split("}")[-1] == name]
        decl = found[0] if len(found) == 1 else None
    if decl is None:
        known = sorted(q for q in schema.elements)
        raise KeyError(f"no global element {name!r} in the schema (declared: {', '.join(known)})")
    return XNode(decl)


def constant_fits(simple_type: Any, value: Any) -> bool:
    """Whether a constant is valid text for a simple type (load-time type check)."""
    if simple_type is None:
        return True
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    try:
        return bool(simple_type.is_valid(text))
    except Exception:  # noqa: BLE001 - an exotic type: do not block loading on the check itself
        return True
