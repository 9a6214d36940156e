"""Untrusted JSON in, plain Python values out — or a 400/422 that names the JSON pointer.

``json.loads`` alone lets through what later code cannot handle: it recurses (a 100k-deep body is
a ``RecursionError``), turns a 5000-digit integer into a ``ValueError`` (Python's int-string
limit), returns NaN/Infinity (PostgreSQL refuses them, SQLite stores them and serves non-standard
JSON), keeps the last of two equal keys silently, and returns lone surrogates that crash the first
``.encode()``. So the body is parsed to the I-JSON profile (RFC 7493): no duplicate keys, no lone
surrogates, finite numbers, integers exactly representable as IEEE doubles (what every JSON parser
a partner runs reads exactly), plus a nesting limit. The hooks cannot know where they are, so they
leave markers that one iterative walk turns into JSON pointers.

:func:`text_problems` is the second layer, about characters rather than JSON: every string must be
something XML 1.0 can carry (partners speak SOAP) and, outside free text, one line of printable
text. Control characters are refused at the door instead of dead-lettering at every XML partner.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from gateway.errors import FieldProblem, InputError

MAX_DEPTH = 32          # a case is 4 deep; formData gets room, but no recursion bombs
MAX_SAFE_INT = 2**53 - 1  # I-JSON: integers beyond this are not read exactly everywhere
_SURROGATE = re.compile("[\ud800-\udfff]")
# Not in XML 1.0's Char production, or C1 controls/DEL that no form field means.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_LINE_BREAKS = re.compile("[\t\n\r]")
#: what of _NOT_XML a JSON text can hold unescaped (strict JSON has no raw control character in
#: a string, and a line break outside one is only whitespace)
_RAW_NOT_TEXT = re.compile("[\x7f-\x9f\ufffe\uffff]")


def pointer(parts: Any) -> str:
    """RFC 6901 pointer of a path (``~`` → ``~0``, ``/`` → ``~1``); the root is ``""``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class _Marker:
    """Stands in for a value the hooks refused; the walk reports it with its pointer."""

    def __init__(self, message: str) -> None:
        self.message = message


class _DuplicateKeys(dict[str, Any]):
    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    out = _DuplicateKeys(d)
    seen: set[str] = set()
    out.duplicates = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    return out


def _object_counting(found: list[int]) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """:func:`_object` that also counts, in ``found``, the objects with a duplicate key."""
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d = _object(pairs)
        if type(d) is _DuplicateKeys:
            found.append(1)
        return d
    return hook


def _huge_int(text: str) -> Any:
    """Only on the slow path, after ``int()`` refused a literal: find which one it was."""
    if len(text.lstrip("-")) > 4000:
        return _Marker(f"integer of {len(text.lstrip('-'))} digits; send it as a string")
    return int(text)


def _constant(name: str) -> Any:
    return _Marker(f"{name} is not a JSON number (JSON has no NaN or Infinity)")


def parse_json(raw: bytes) -> Any:
    """Decode a request body to the I-JSON profile; every refusal names line/column or pointer.

    The common path adds little to ``json.loads``: one hook per object (duplicate keys), a NaN
    hook that only fires on NaN/Infinity, one regex over the text, and one pass over the
    containers for the depth. The scalars are looked at one by one only when the text holds
    something suspect (a surrogate escape, a number of 16 digits, a 3-digit exponent)."""
    return parse_json_text(raw)[0]


def parse_json_text(raw: bytes) -> tuple[Any, bool]:
    """:func:`parse_json`, and whether :func:`text_problems` can have nothing to say about the
    document: its text has no backslash (strict JSON holds no raw control character in a string,
    so without an escape no string or key holds a control character, a tab or a line break) and
    no raw character of the other kinds :func:`text_problems` refuses (DEL, C1 controls, U+FFFE,
    U+FFFF).

    When the text holds nothing suspect, no duplicate key and fewer opening brackets than the
    nesting limit, the walk over the containers is skipped too: it could find nothing."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"body is not UTF-8 (byte {e.start})") from e
    duplicated: list[int] = []
    hook = _object_counting(duplicated)
    try:
        try:
            doc = json.loads(text, object_pairs_hook=hook, parse_constant=_constant)
        except json.JSONDecodeError:
            raise
        except ValueError:  # Python's int-string limit: parse again to learn where
            doc = json.loads(text, object_pairs_hook=hook, parse_constant=_constant,
                             parse_int=_huge_int)
    except json.JSONDecodeError as e:
        raise InputError(f"body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}",
                         [FieldProblem("", f"line {e.lineno} column {e.colno}: {e.msg}")]) from e
    except RecursionError as e:
        raise InputError(f"body is nested deeper than {MAX_DEPTH} levels",
                         [FieldProblem("", f"nested deeper than {MAX_DEPTH} levels")]) from e
    suspect = _SUSPECT.search(text) is not None or "NaN" in text or "Infinity" in text
    if (suspect or duplicated or not isinstance(doc, (dict, list))
            or text.count("{") + text.count("[") >= MAX_DEPTH):
        problems = sorted(_json_problems(doc, scalars=suspect), key=lambda p: p.path)
        if problems:
            raise InputError(f"body is not acceptable JSON: {summary(problems)}", problems)
    return doc, "\\" not in text and _RAW_NOT_TEXT.search(text) is None


# Lone surrogates can only come from \\u escapes (the UTF-8 decoder refuses encoded ones);
# integers beyond 2^53 need 16 digits; an infinite float needs a 3-digit exponent or 309 digits.
# A number follows ``:``, ``[`` or ``,`` (a document that is one number is walked anyway): 16
# digits inside a string (every resident ID number has 18) are no number.
_SUSPECT = re.compile(r"\\u[dD][89a-fA-F]|[:\[,]\s*-?[0-9]{16}|[0-9][eE][+-]?[0-9]{3}")


def summary(problems: list[FieldProblem]) -> str:
    head = "; ".join(f"{p.path or '(root)'}: {p.message}" for p in problems[:3])
    return head + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")


Path = tuple[Any, ...]
_CONTAINERS = frozenset({dict, list, _DuplicateKeys})


def _containers(doc: Any) -> Iterator[tuple[Path, Any, int]]:
    """Every object and array with its path and depth, without recursion; the caller looks at
    the scalars inside (building a path for each of a million scalars would cost seconds)."""
    stack: list[tuple[Path, Any, int]] = [((), doc, 0)]
    while stack:
        path, value, depth = stack.pop()
        yield path, value, depth
        if depth >= MAX_DEPTH:
            continue
        values = value if type(value) is list else value.values()
        if _CONTAINERS.isdisjoint(map(type, values)):  # at C speed: a flat list of a million
            continue
        children = value.items() if type(value) is not list else enumerate(value)
        stack.extend(((*path, k), v, depth + 1) for k, v in children
                     if isinstance(v, (dict, list)))


def _scalar_problem(value: Any) -> str | None:
    t = type(value)
    if t is str:
        if _SURROGATE.search(value):
            return "contains a lone UTF-16 surrogate (\\ud800–\\udfff), which is no character"
    elif t is int:
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            return (f"integer {str(value)[:20]}… is outside ±(2^53−1), which not every JSON "
                    "reader holds exactly; send it as a string")
    elif t is float:
        if not math.isfinite(value):
            return "number overflows to infinity"
    elif t is _Marker:
        return str(value.message)
    return None


def _json_problems(doc: Any, scalars: bool) -> Iterator[FieldProblem]:
    if not isinstance(doc, (dict, list)):
        if why := _scalar_problem(doc):
            yield FieldProblem("", why)
        return
    for path, value, depth in _containers(doc):
        if depth >= MAX_DEPTH:
            if value:
                yield FieldProblem(pointer(path), f"nested deeper than {MAX_DEPTH} levels")
            continue
        if type(value) is list:
            children: Any = enumerate(value)
        else:
            children = value.items()
            if scalars:
                yield from (FieldProblem(pointer((*path, k)), "the key contains a lone UTF-16 "
                                         "surrogate") for k in value if _SURROGATE.search(k))
            yield from (FieldProblem(pointer((*path, k)), "key appears more than once in its "
                                     "object") for k in getattr(value, "duplicates", ()))
        if scalars:
            for k, v in children:
                if (why := _scalar_problem(v)) is not None:
                    yield FieldProblem(pointer((*path, k)), why)


def describe_char(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def text_problems(doc: Any, multiline: Callable[[Path], bool]) -> list[FieldProblem]:
    """Characters no partner can carry. ``multiline(path)`` says where a string is free text that
    may hold line breaks and tabs; every other string (and every key) must be one printable line."""
    out: list[FieldProblem] = []
    if not isinstance(doc, (dict, list)):
        found = _text_problem((), doc, multiline) if isinstance(doc, str) else None
        return [found] if found else []
    for path, value, _ in _containers(doc):
        if type(value) is list:
            children: Any = enumerate(value)
        else:
            children = value.items()
            out.extend(FieldProblem(pointer((*path, k)), f"the key contains {describe_char(m[0])}, "
                                    "a control character")
                       for k in value if (m := _NOT_XML.search(k) or _LINE_BREAKS.search(k)))
        for k, v in children:
            if type(v) is str and (p := _text_problem((*path, k), v, multiline)):
                out.append(p)
    return out


def _text_problem(path: Path, value: str, multiline: Callable[[Path], bool]) -> FieldProblem | None:
    m = _NOT_XML.search(value)
    if m is None and (m := _LINE_BREAKS.search(value)) is not None and multiline(path):
        m = None
    if m is None:
        return None
    where = "" if m.start() == 0 else f" at character {m.start() + 1}"
    kind = ("a line break or tab, which this field does not allow"
            if m[0] in "\t\n\r" else "a control character XML partners cannot carry")
    return FieldProblem(pointer(path), f"contains {describe_char(m[0])}{where}, {kind}")
