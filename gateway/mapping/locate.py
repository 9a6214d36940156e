"""Where in the source document a mapping error comes from, and what the partner wants, in words.

A render error is raised at a target path (``DATA.RECORD[].SQRZJLX``); a schema violation of the
output is reported by libxml2 at an XPath (``/*/*/*[7]/*/*[2]``) or by jsonschema at a list of
keys. Neither names the field of the case that must change. The compiler knows it: for each
target path the source pointers its value is read from (``Report.sources``), and for each loop
which source list it walks (``Report.loops``). This module joins the two:

1. the failing output location becomes a target path plus the position of each repeated element
   on the way (the 2nd ``RECORD``, the 1st ``LBDQ``);
2. each position binds the ``*`` of the loop's source list (``/items/*`` → ``/items/1``);
3. the target path's source pointers are bound, and any ``*`` left is expanded over the source
   document, preferring the element whose value is the one the partner refused.

For a render error the positions come from the loop counters of the generated function's frame.
Everything here runs only when something failed; the render path pays nothing but a counter per
loop.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from gateway.mapping.codegen_util import Report, _join
from gateway.schemacheck import describe_pattern

Step = tuple[str, int]  # (repeated target path + "[]", 0-based position)


@dataclass(frozen=True)
class SourceProblem:
    """One thing a partner cannot take: ``target`` in the mapping's notation, ``message`` in
    words (what the partner's schema wants, and what came), ``sources`` the JSON pointers of the
    source document it comes from (``()`` when no source field feeds it: a constant or context
    value), ``where`` the output location as a readable path."""

    target: str
    message: str
    sources: tuple[str, ...]
    where: str = ""

    def text(self) -> str:
        src = f" (source field {', '.join(self.sources)})" if self.sources else ""
        return f"{self.where or self.target}{src}: {self.message}"


# ---- source pointers ----------------------------------------------------------------------------

def _bind(template: str, bindings: Mapping[str, str]) -> str:
    for key in sorted(bindings, key=len, reverse=True):
        if template == key or template.startswith(key + "/"):
            return bindings[key] + template[len(key):]
    return template


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def resolve(doc: Any, pointer: str) -> tuple[bool, Any]:
    """(found, value) of a concrete pointer in ``doc``."""
    cur = doc
    for raw in pointer.split("/")[1:]:
        part = _unescape(raw)
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False, None
    return True, cur


def _expand(doc: Any, template: str) -> list[str]:
    """Concrete pointers for a template with ``*``: every index of the lists on the way. A
    missing container ends the walk with the template's remaining path kept as written."""
    parts = template.split("/")[1:]
    out: list[str] = []

    def walk(cur: Any, i: int, base: str) -> None:
        if i == len(parts):
            out.append(base)
            return
        part = parts[i]
        if part == "*":
            if isinstance(cur, list) and cur:
                for n, x in enumerate(cur):
                    walk(x, i + 1, f"{base}/{n}")
            else:
                out.append(base + "/" + "/".join(parts[i:]).replace("*", "0"))
            return
        key = _unescape(part)
        nxt = cur.get(key) if isinstance(cur, dict) else \
            cur[int(key)] if isinstance(cur, list) and key.isdigit() and int(key) < len(cur) \
            else None
        walk(nxt, i + 1, f"{base}/{part}")
    walk(doc, 0, "")
    return out


def _same(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == wanted.lower()
    return value is not None and not isinstance(value, (dict, list)) and str(value) == wanted


def _inside(doc: Any, pointer: str, wanted: str) -> list[str]:
    """Pointers of the scalars under the container at ``pointer`` equal to ``wanted``."""
    found, value = resolve(doc, pointer)
    if not found:
        return []
    out: list[str] = []
    stack = [(pointer, value)]
    while stack:
        ptr, v = stack.pop()
        if isinstance(v, dict):
            stack.extend((f"{ptr}/{_escape(str(k))}", x) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((f"{ptr}/{n}", x) for n, x in enumerate(v))
        elif _same(v, wanted):
            out.append(ptr)
    return sorted(out)


def source_pointers(report: Report, doc: Any, target: str, steps: Iterable[Step],
                    value: str | None = None) -> tuple[str, ...]:
    """The pointers of ``doc`` the value at ``target`` (reached through ``steps``) came from."""
    bindings: dict[str, str] = {}
    leaf_loop: str | None = None
    for key, pos in steps:
        loop = report.loops.get(key)
        if loop is None or loop.element is None:
            continue
        bindings[loop.element] = f"{_bind(loop.element[:-2], bindings)}/{pos}"
        leaf_loop = loop.element if key == target + "[]" else None
    templates = list(report.sources.get(target, []))
    if not templates:  # a structured element: what its fields are read from
        for key, ptrs in report.sources.items():
            if key.startswith((target + ".", target + "[].", target + "#")):
                templates += [p for p in ptrs if p not in templates]
    if leaf_loop is not None:  # a repeated simple element: one per entry of the list it reads
        templates = [leaf_loop if leaf_loop.startswith(t + "/") else t for t in templates]
    out: list[str] = []
    for t in templates:
        for p in _expand(doc, _bind(t, bindings)):
            if p not in out:
                out.append(p)
    if value is not None and out:
        exact = [p for p in out if _same(resolve(doc, p)[1], value)]
        if exact:
            out = exact
        elif len(out) == 1 and (inner := _inside(doc, out[0], value)):
            out = inner  # a whole object was read (formData): name the entry that failed
    return tuple(out)


def frame_steps(report: Report, target: str, local_vars: Mapping[str, Any]) -> list[Step]:
    """Positions of the loops enclosing ``target`` as the failing frame left them."""
    steps = []
    for key, loop in report.loops.items():
        inside = target in (key, key[:-2]) or target.startswith((key + ".", key + "#"))
        if inside:
            pos = local_vars.get(loop.index_var)
            if isinstance(pos, int):
                steps.append((key, pos))
    return sorted(steps, key=lambda s: len(s[0]))


# ---- output locations ---------------------------------------------------------------------------

def xml_location(report: Report, el: Any, prefix: str = "") -> tuple[str, list[Step], str]:
    """(target path, steps, readable path) of an element of a rendered XML target; ``prefix`` is
    the target path of the document's root (empty for the mapping's own target element)."""
    chain = []
    cur = el
    while cur is not None:
        chain.append(cur)
        cur = cur.getparent()
    chain.reverse()
    root, below = chain[0], chain[1:]
    tpl, steps = prefix, []
    readable = "/" + etree.QName(root).localname
    target = prefix
    for node in below:
        name = etree.QName(node).localname
        target = _join(tpl, name)
        parent = node.getparent()
        same = [c for c in parent if c.tag == node.tag] if parent is not None else [node]
        readable += f"/{name}" + (f"[{same.index(node) + 1}]" if len(same) > 1 else "")
        if target in report.repeated or target + "[]" in report.loops:
            steps.append((target + "[]", same.index(node)))
            tpl = target + "[]"
        else:
            tpl = target
    return target, steps, readable


def json_location(report: Report, path: Iterable[Any], prefix: str = "") -> tuple[str, list[Step],
                                                                                  str]:
    """(target path, steps, JSON pointer) of a location in a rendered JSON target."""
    tpl, target, steps, pointer = prefix, prefix, [], ""
    for part in path:
        pointer += "/" + _escape(str(part))
        if isinstance(part, int):
            steps.append((target + "[]", part))
            tpl = target + "[]"
            target = tpl
        else:
            target = _join(tpl, str(part))
            tpl = target
    return target, steps, pointer


# ---- libxml2 messages in words ------------------------------------------------------------------

_ELEMENT = re.compile(r"^Element '([^']*)'(?:, attribute '([^']*)')?: ")
_FACET = re.compile(r"^\[facet '(\w+)'\] ")
_BUILTIN_WORDS = {"integer": "a whole number", "int": "a whole number", "long": "a whole number",
                  "nonNegativeInteger": "a whole number ≥ 0",
                  "positiveInteger": "a whole number ≥ 1", "decimal": "a number",
                  "boolean": "true or false", "date": "a date YYYY-MM-DD",
                  "dateTime": "a date-time YYYY-MM-DDThh:mm:ss", "double": "a number",
                  "float": "a number"}


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].split(":")[-1]


@dataclass(frozen=True)
class XsdMessage:
    element: str | None       # local name of the element the message is about
    attribute: str | None     # attribute name, if about an attribute
    words: str                # the problem in words
    missing: str | None = None  # a required child that is missing (its local name)
    type_name: str | None = None  # the schema type named by an "atomic type" message
    sibling: bool = False     # ``missing`` is a sibling expected before this element


def xsd_words(message: str) -> XsdMessage:
    """A libxml2 schema-validation message about one element as words (no regex)."""
    m = _ELEMENT.match(message)
    element = _local(m.group(1)) if m else None
    attribute = m.group(2) if m else None
    rest = message[m.end():] if m else message
    rest = rest.strip().rstrip(".")
    facet = _FACET.match(rest)
    if facet:
        kind, body = facet.group(1), rest[facet.end():]
        value = re.search(r"The value '(.*)' ", body, re.DOTALL)
        got = f"; got {value.group(1)!r}" if value else ""
        if kind == "pattern":
            pat = re.search(r"pattern '(.*)'$", body, re.DOTALL)
            return XsdMessage(element, attribute, f"must be {describe_pattern(pat.group(1))}{got}"
                              if pat else body)
        if kind in ("maxLength", "minLength", "length"):
            n = re.findall(r"'(\d+)'", body)
            if len(n) >= 2:
                have, limit = n[0], n[-1]
                if kind == "minLength" and limit == "1":
                    return XsdMessage(element, attribute, "must not be empty")
                bound = {"maxLength": "at most", "minLength": "at least", "length": "exactly"}[kind]
                return XsdMessage(element, attribute,
                                  f"is {have} characters long; {bound} {limit} are allowed")
        if kind == "enumeration":
            opts = re.search(r"set \{(.*)\}", body)
            allowed = ", ".join(re.findall(r"'([^']*)'", opts.group(1))) if opts else ""
            return XsdMessage(element, attribute, f"must be one of {allowed}{got}")
        if kind in ("maxInclusive", "minInclusive", "maxExclusive", "minExclusive"):
            n = re.findall(r"'([^']*)'", body)
            word = {"maxInclusive": "at most", "minInclusive": "at least",
                    "maxExclusive": "below", "minExclusive": "above"}[kind]
            return XsdMessage(element, attribute, f"must be {word} {n[-1]}; got {n[0]}"
                              if len(n) >= 2 else body)
        return XsdMessage(element, attribute, body)
    atomic = re.match(r"^'(.*)' is not a valid value of the (?:local )?(?:atomic|list|union) "
                      r"type(?: '([^']*)')?", rest, re.DOTALL)
    if atomic:
        tname = _local(atomic.group(2)) if atomic.group(2) else None
        builtin = (atomic.group(2) or "").startswith(("xs:", "xsd:", "{http://www.w3.org/2001/"))
        what = _BUILTIN_WORDS.get(tname or "", tname) if builtin else \
            (f"a valid {tname}" if tname else "a valid value")
        return XsdMessage(element, attribute, f"must be {what}; got {atomic.group(1)!r}",
                          type_name=tname if not builtin else None)
    missing = re.match(r"^Missing child element\(s\)\. Expected is(?: one of)? \( ?([^ ,)]+)", rest)
    if missing:
        return XsdMessage(element, attribute, "is required but missing",
                          missing=_local(missing.group(1)))
    if rest.startswith("This element is not expected"):
        expected = re.search(r"Expected is(?: one of)? \( ?([^ ,)]+)", rest)
        if expected:  # usually: a required element before this one is missing
            return XsdMessage(element, attribute, "is required but missing",
                              missing=_local(expected.group(1)), sibling=True)
        return XsdMessage(element, attribute, "is not expected here (the mapping writes an "
                          "element the partner's schema does not allow at this place)")
    if "attribute" in rest and "is required but missing" in rest:
        name = re.search(r"attribute '([^']*)'", rest)
        return XsdMessage(element, name.group(1) if name else attribute, "is required but missing")
    return XsdMessage(element, attribute, rest)


def describe_value(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


__all__ = ["SourceProblem", "frame_steps", "json_location", "resolve", "source_pointers",
           "xml_location", "xsd_words"]
