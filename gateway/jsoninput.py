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


def _int(text: str) -> Any:
    # checked on the digits first: int() of 5000 digits raises (and is slow before that)
    if len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_SAFE_INT:
        return _Marker(f"integer {text[:20]}{'…' if len(text) > 20 else ''} is outside "
                       f"±(2^53−1), which not every JSON reader holds exactly; send it as a string")
    return int(text)


def _float(text: str) -> Any:
    v = float(text)
    return v if math.isfinite(v) else _Marker(f"number {text[:20]} overflows to infinity")


def _constant(name: str) -> Any:
    return _Marker(f"{name} is not a JSON number (JSON has no NaN or Infinity)")


def parse_json(raw: bytes) -> Any:
    """Decode a request body to the I-JSON profile; every refusal names line/column or pointer."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"body is not UTF-8 (byte {e.start})") from e
    try:
        doc = json.loads(text, object_pairs_hook=_object, parse_int=_int, parse_float=_float,
                         parse_constant=_constant)
    except json.JSONDecodeError as e:
        raise InputError(f"body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}",
                         [FieldProblem("", f"line {e.lineno} column {e.colno}: {e.msg}")]) from e
    except RecursionError as e:
        raise InputError(f"body is nested deeper than {MAX_DEPTH} levels",
                         [FieldProblem("", f"nested deeper than {MAX_DEPTH} levels")]) from e
    problems = list(_json_problems(doc))
    if problems:
        raise InputError(f"body is not acceptable JSON: {summary(problems)}", problems)
    return doc


def summary(problems: list[FieldProblem]) -> str:
    head = "; ".join(f"{p.path or '(root)'}: {p.message}" for p in problems[:3])
    return head + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")


def _walk(doc: Any) -> Iterator[tuple[tuple[Any, ...], Any, int]]:
    """Every value with its path and depth, without recursion."""
    stack: list[tuple[tuple[Any, ...], Any, int]] = [((), doc, 0)]
    while stack:
        path, value, depth = stack.pop()
        yield path, value, depth
        if depth >= MAX_DEPTH:
            continue
        if isinstance(value, dict):
            stack.extend(((*path, k), v, depth + 1) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), v, depth + 1) for i, v in reversed(list(enumerate(value))))


def _json_problems(doc: Any) -> Iterator[FieldProblem]:
    for path, value, depth in _walk(doc):
        if isinstance(value, _Marker):
            yield FieldProblem(pointer(path), value.message)
        elif isinstance(value, str) and _SURROGATE.search(value):
            yield FieldProblem(pointer(path), "contains a lone UTF-16 surrogate (\\ud800–\\udfff), "
                                              "which is no character")
        elif isinstance(value, (dict, list)) and value and depth >= MAX_DEPTH:
            yield FieldProblem(pointer(path), f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for k in value:
                if _SURROGATE.search(k):
                    yield FieldProblem(pointer((*path, k)),
                                       "the key contains a lone UTF-16 surrogate")
            for k in getattr(value, "duplicates", ()):
                yield FieldProblem(pointer((*path, k)), "key appears more than once in its object")


def describe_char(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def text_problems(doc: Any, multiline: Callable[[tuple[Any, ...]], bool]) -> list[FieldProblem]:
    """Characters no partner can carry. ``multiline(path)`` says where a string is free text that
    may hold line breaks and tabs; every other string (and every key) must be one printable line."""
    out: list[FieldProblem] = []
    for path, value, _ in _walk(doc):
        if isinstance(value, dict):
            out.extend(FieldProblem(pointer((*path, k)), f"the key contains {describe_char(m[0])}, "
                                    "a control character")
                       for k in value if (m := _NOT_XML.search(k) or _LINE_BREAKS.search(k)))
        if not isinstance(value, str):
            continue
        m = _NOT_XML.search(value)
        if m is None and not multiline(path):
            m = _LINE_BREAKS.search(value)
        if m is not None:
            where = "" if m.start() == 0 else f" at character {m.start() + 1}"
            kind = ("a line break or tab, which this field does not allow"
                    if m[0] in "\t\n\r" else "a control character XML partners cannot carry")
            out.append(FieldProblem(pointer(path), f"contains {describe_char(m[0])}{where}, {kind}"))
    return out
