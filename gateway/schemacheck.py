"""JSON Schema read with the semantics JSON Schema gives it, and its problems said in words.

Used for the city platform's cases (:mod:`gateway.intake.validation`) and for the partners'
JSON contracts (:mod:`gateway.mapping.schemas`), so both speak the same language:

* ``pattern`` is an ECMA-262 regex (:func:`ecma_regex`): ``$`` is the end of the string (Python's
  ``$`` also matches before a final newline) and ``\\d`` is ASCII only;
* ``format`` is enforced: ``date`` and ``date-time`` are RFC 3339 with ASCII digits, a real
  calendar date and an offset within ±23:59 (:func:`check_date`, :func:`check_date_time`);
* a missing or unexpected field is reported at its own pointer, ``x-notBlank`` refuses
  strings of spaces (:func:`human_validator`), and every message is in words
  (:func:`describe_error`, :func:`describe_pattern`: never a regular expression);
* a valid document is confirmed by a compiled yes/no check (:func:`fast_validity`, the same
  answer as the jsonschema validator, about ten times faster).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from jsonschema import FormatChecker, ValidationError, validators

BEIJING = timezone(timedelta(hours=8))



@lru_cache(maxsize=256)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """Compile an ECMA-262 ``pattern`` for Python: ``$`` outside a class becomes ``\\Z``, and
    ``\\d``/``\\w`` are ASCII (re.ASCII). Our schemas use no ``.`` (whose line terminators
    also differ) and no lookbehind."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(patrn).search(instance):
        yield ValidationError(f"{instance!r} does not match {patrn!r}")


def _required(validator: Any, required: Any, instance: Any,
              schema: Any) -> Iterator[ValidationError]:
    """One error per missing field, at the pointer of the field itself (jsonschema's points at
    the object that lacks it)."""
    if not validator.is_type(instance, "object"):
        return
    for name in required:
        if name not in instance:
            yield ValidationError(f"{name!r} is a required property", path=[name])


def _additional(validator: Any, allowed: Any, instance: Any,
                schema: Any) -> Iterator[ValidationError]:
    """Unexpected fields named at their own pointer, one error each."""
    if not validator.is_type(instance, "object"):
        return
    props = schema.get("properties", {})
    patterns = [ecma_regex(p) for p in schema.get("patternProperties", {})]
    extras = [k for k in instance if k not in props and not any(p.search(k) for p in patterns)]
    if validator.is_type(allowed, "object"):
        for k in extras:
            yield from validator.descend(instance[k], allowed, path=k)
    elif allowed is False:
        for k in extras:
            yield ValidationError(f"{k!r} was unexpected", path=[k])


_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def _not_blank(validator: Any, wanted: Any, instance: Any,
               schema: Any) -> Iterator[ValidationError]:
    """``x-notBlank``: a name or code must hold more than spaces (any Unicode space, and the
    invisible zero-width characters)."""
    if wanted and validator.is_type(instance, "string") and instance and \
            not instance.strip().strip(_INVISIBLE).strip():
        yield ValidationError("is blank: it holds only spaces")


#: Keywords read with the semantics JSON Schema gives them, reported at the failing pointer.
HUMAN_KEYWORDS = {"pattern": _pattern, "required": _required, "additionalProperties": _additional,
                  "x-notBlank": _not_blank}


def human_validator(cls: Any) -> Any:
    """``cls`` (a jsonschema validator class) with ECMA-262 patterns, missing and unexpected
    fields reported at their own pointer, and ``x-notBlank``; messages come from
    :func:`describe_error`."""
    return validators.extend(cls, HUMAN_KEYWORDS)


# ---- a fast yes for valid documents -------------------------------------------------------------

Check = Callable[[Any], bool]
_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "$defs", "definitions", "title",
                          "description", "examples", "default", "deprecated", "readOnly",
                          "writeOnly", "x-expected"})
_FAST_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties",
                            "patternProperties", "enum", "const", "items", "minItems",
                            "maxItems", "minProperties", "maxProperties", "minLength",
                            "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
                            "exclusiveMaximum", "oneOf", "anyOf", "allOf", "not", "$ref",
                            "format", "x-notBlank"})


class _Unsupported(Exception):
    pass


@lru_cache(maxsize=32)
def _meta_checked(cls: Any, schema_text: str) -> None:
    cls.check_schema(json.loads(schema_text))


def load_checked_schema(cls: Any, schema_text: str) -> Any:
    """Parse a JSON Schema and check it against its metaschema, the check once per process
    per text: it costs ~0.5 s for the case schema, and every app built in a process (two per
    gateway, many per test run) checks the same file. ``ValueError`` for bad JSON and
    ``SchemaError`` for a bad schema, never cached."""
    _meta_checked(cls, schema_text)
    return json.loads(schema_text)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_TYPES: dict[str, Check] = {
    "string": lambda x: isinstance(x, str), "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list), "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None, "number": _is_number,
    "integer": lambda x: _is_number(x) and (isinstance(x, int) or float(x).is_integer()),
}
_BOUND_OK: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": lambda x, b: bool(x >= b), "maximum": lambda x, b: bool(x <= b),
    "exclusiveMinimum": lambda x, b: bool(x > b), "exclusiveMaximum": lambda x, b: bool(x < b)}


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality as jsonschema's ``enum``/``const`` use it (true is not 1; 1 is 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _plain_object(props: dict[str, Check], required: list[str], extra: Check | None, lo: int,
                  hi: int | None, *, closed: bool = False) -> Check:
    """The properties/required/additionalProperties check of an object without
    patternProperties (nearly all of ours), its loop as short as it can be: a closed object
    (``additionalProperties: false``) compares its keys as one set operation, an object with
    nothing to check per key does not loop at all."""
    names = frozenset(props)
    req = tuple(required)

    def sized(x: dict[str, Any]) -> bool:
        n = len(x)
        if n < lo or (hi is not None and n > hi):
            return False
        for name in req:
            if name not in x:
                return False
        return True

    if closed:
        def closed_obj(x: Any) -> bool:
            if not isinstance(x, dict):
                return True
            if not sized(x) or not x.keys() <= names:
                return False
            for k, v in x.items():
                if not props[k](v):
                    return False
            return True
        return closed_obj
    if not props and extra is None:
        return lambda x: not isinstance(x, dict) or sized(x)

    def obj(x: Any) -> bool:
        if not isinstance(x, dict):
            return True
        if not sized(x):
            return False
        get = props.get
        for k, v in x.items():
            c = get(k)
            if c is None:
                if extra is not None and not extra(v):
                    return False
            elif not c(v):
                return False
        return True
    return obj


_NUMBER_KEYWORDS = frozenset({"type", "minimum", "maximum", "exclusiveMinimum",
                              "exclusiveMaximum"})


def _number_check(node: Mapping[str, Any]) -> Check:
    """``{"type": "integer"|"number"}`` with its bounds, as one function (a record's version)."""
    kind = _TYPES[node["type"]]
    bounds = [(k, node[k]) for k in ("minimum", "maximum", "exclusiveMinimum",
                                     "exclusiveMaximum") if k in node]
    if not bounds:
        return kind
    if len(bounds) == 1 and bounds[0][0] == "minimum":  # a record's version: the common case
        lo = bounds[0][1]
        return lambda x: kind(x) and x >= lo
    return lambda x: kind(x) and all(_BOUND_OK[k](x, b) for k, b in bounds)


_STRING_KEYWORDS = frozenset({"type", "minLength", "maxLength", "pattern"})


def _string_check(node: Mapping[str, Any]) -> Check:
    """``{"type": "string"}`` with any of minLength, maxLength and pattern, as one function."""
    lo, hi = node.get("minLength", 0), node.get("maxLength")
    rx = ecma_regex(node["pattern"]).search if "pattern" in node else None
    if rx is None:
        if hi is None:
            return lambda x: isinstance(x, str) and len(x) >= lo
        return lambda x: isinstance(x, str) and lo <= len(x) <= hi
    if hi is None:
        return lambda x: isinstance(x, str) and len(x) >= lo and rx(x) is not None
    return lambda x: isinstance(x, str) and lo <= len(x) <= hi and rx(x) is not None


def _combine(key: str, subs: list[Check]) -> Check:
    if key == "allOf":
        return lambda x: all(c(x) for c in subs)
    if key == "anyOf":
        return lambda x: any(c(x) for c in subs)
    return lambda x: sum(1 for c in subs if c(x)) == 1


def fast_validity(root: Any, formats: Mapping[str, Callable[[Any], bool]] | None = None
                  ) -> Check | None:
    """A compiled yes/no check giving exactly the answer of :data:`SchemaValidator` (with
    ``formats`` asserted as the format checker does, or not at all), for the keywords our
    schemas use; ``None`` when ``root`` uses any other keyword. About ten times faster than
    ``iter_errors`` (which stays the way to learn *what* is wrong: call it only on a no)."""
    built: dict[int, Check] = {}

    def resolve(ref: str) -> Any:
        if not ref.startswith("#"):
            raise _Unsupported(ref)
        node = root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def comp(node: Any) -> Check:
        if node is True or node == {}:
            return lambda x: True
        if node is False:
            return lambda x: False
        if not isinstance(node, dict):
            raise _Unsupported(node)
        if id(node) in built:
            return built[id(node)]
        unknown = set(node) - _FAST_KEYWORDS - _ANNOTATIONS
        if unknown and not all(k.startswith("x-") for k in unknown):
            raise _Unsupported(sorted(unknown))
        if node.get("type") == "string" and set(node) - _ANNOTATIONS <= _STRING_KEYWORDS:
            built[id(node)] = _string_check(node)  # most leaves: one call instead of 2–4
            return built[id(node)]
        if node.get("type") in ("integer", "number") and \
                set(node) - _ANNOTATIONS <= _NUMBER_KEYWORDS:
            built[id(node)] = _number_check(node)
            return built[id(node)]
        checks: list[Check] = []

        def check(x: Any) -> bool:
            for c in checks:
                if not c(x):
                    return False
            return True
        built[id(node)] = check
        if "$ref" in node:  # (a cycle meets the check registered above: it terminates)
            checks.append(comp(resolve(node["$ref"])))
        if "type" in node:
            kinds = [node["type"]] if isinstance(node["type"], str) else list(node["type"])
            fns = [_TYPES[k] for k in kinds]
            checks.append(fns[0] if len(fns) == 1 else lambda x: any(f(x) for f in fns))
        if "enum" in node:
            options = list(node["enum"])
            if all(isinstance(o, str) for o in options):
                allowed = frozenset(options)
                checks.append(lambda x: isinstance(x, str) and x in allowed)
            else:
                checks.append(lambda x: any(_json_equal(x, o) for o in options))
        if "const" in node:
            const = node["const"]
            if isinstance(const, str):  # the common case (a record's kind): no generic compare
                checks.append(lambda x: isinstance(x, str) and x == const)
            else:
                checks.append(lambda x: _json_equal(x, const))
        if "minLength" in node or "maxLength" in node:
            lo, hi = node.get("minLength", 0), node.get("maxLength")
            checks.append(lambda x: not isinstance(x, str) or
                          (len(x) >= lo and (hi is None or len(x) <= hi)))
        if "pattern" in node:
            rx = ecma_regex(node["pattern"])
            checks.append(lambda x: not isinstance(x, str) or rx.search(x) is not None)
        if node.get("x-notBlank"):
            checks.append(lambda x: not isinstance(x, str) or not x or
                          bool(x.strip().strip(_INVISIBLE).strip()))
        if "format" in node and formats and node["format"] in formats:
            fmt = formats[node["format"]]

            def format_ok(x: Any, fmt: Callable[[Any], bool] = fmt) -> bool:
                try:
                    return bool(fmt(x))
                except ValueError:
                    return False
            checks.append(format_ok)
        bounds = [(k, node[k]) for k in ("minimum", "maximum", "exclusiveMinimum",
                                         "exclusiveMaximum") if k in node]
        if bounds:
            checks.append(lambda x: not _is_number(x) or
                          all(_BOUND_OK[k](x, b) for k, b in bounds))
        if any(k in node for k in ("properties", "required", "additionalProperties",
                                   "patternProperties", "minProperties", "maxProperties")):
            props = {k: comp(v) for k, v in node.get("properties", {}).items()}
            required = list(node.get("required", []))
            patterns = [(ecma_regex(p), comp(v))
                        for p, v in node.get("patternProperties", {}).items()]
            extra = node.get("additionalProperties", True)
            extra_check = None if extra is True else comp(extra)
            lo, hi = node.get("minProperties", 0), node.get("maxProperties")

            def obj(x: Any) -> bool:
                if not isinstance(x, dict):
                    return True
                if len(x) < lo or (hi is not None and len(x) > hi):
                    return False
                for name in required:
                    if name not in x:
                        return False
                for k, v in x.items():
                    c = props.get(k)
                    matched = c is not None
                    if c is not None and not c(v):
                        return False
                    for rx, pc in patterns:
                        if rx.search(k):
                            matched = True
                            if not pc(v):
                                return False
                    if not matched and extra_check is not None and not extra_check(v):
                        return False
                return True
            checks.append(obj if patterns else _plain_object(
                props, required, extra_check, lo, hi, closed=extra is False))
        if any(k in node for k in ("items", "minItems", "maxItems")):
            each = comp(node["items"]) if "items" in node else None
            lo, hi = node.get("minItems", 0), node.get("maxItems")

            def arr(x: Any) -> bool:
                if not isinstance(x, list):
                    return True
                if len(x) < lo or (hi is not None and len(x) > hi):
                    return False
                return each is None or all(each(v) for v in x)
            checks.append(arr)
        for key in ("allOf", "anyOf", "oneOf"):
            if key in node:
                checks.append(_combine(key, [comp(n) for n in node[key]]))
        if "not" in node:
            neg = comp(node["not"])
            checks.append(lambda x: not neg(x))
        if len(checks) == 1:  # no loop for one check (a cycle keeps the wrapper: same answer)
            built[id(node)] = checks[0]
            return checks[0]
        return check

    try:
        return comp(root)
    except (_Unsupported, KeyError, TypeError, re.error):
        return None


# ---- messages for people ------------------------------------------------------------------------

_TYPE_WORDS = {"object": "an object {…}", "array": "a list […]", "string": "a string",
               "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "null": "null"}
_FORMAT_WORDS = {"date": "a date YYYY-MM-DD",
                 "date-time": "a date-time YYYY-MM-DDThh:mm:ss with Z or an offset ±hh:mm"}


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def expected_words(schema: Any) -> str | None:
    """What a value of this (resolved) schema node looks like, in words: its ``x-expected``
    text, else a description of its ``pattern``."""
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("x-expected"), str):
        return str(schema["x-expected"])
    if isinstance(schema.get("pattern"), str):
        return describe_pattern(schema["pattern"])
    return None


def describe_error(e: ValidationError) -> str:
    """A jsonschema error as a sentence about the value at ``e.absolute_path``: what was
    expected, in words, and what came (shortened). No regular expressions."""
    kw = e.validator
    # Unset only on an error built by hand; every error a validator yields carries both
    want: Any = e.validator_value
    got: Any = e.instance
    schema = e.schema if isinstance(e.schema, dict) else {}
    if kw == "required":
        name = e.path[-1] if e.path else "?"
        sub = schema.get("properties", {}).get(name) if isinstance(name, str) else None
        what = expected_words(sub) if isinstance(sub, dict) and "$ref" not in sub else None
        return "is required but missing" + (f" (expected {what})" if what else "")
    if kw == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return ("is not a field of this object" +
                (f" (allowed: {', '.join(allowed)})" if allowed else ""))
    if kw == "pattern":
        what = expected_words(schema) or "a value of the documented form"
        return f"must be {what}; got {_shown(got)}"
    if kw == "enum":
        return f"must be one of {', '.join(map(str, want))}; got {_shown(got)}"
    if kw == "const":
        return f"must be {want!r}; got {_shown(got)}"
    if kw == "type":
        kinds = [want] if isinstance(want, str) else list(want)
        return (f"must be {' or '.join(_TYPE_WORDS.get(k, k) for k in kinds)}; got "
                f"{_json_type(got)}")
    if kw == "minLength":
        return ("must not be empty" if want == 1 else
                f"is {len(got)} characters long; at least {want} are needed")
    if kw == "maxLength":
        return f"is {len(got)} characters long; at most {want} are allowed"
    if kw == "minItems":
        return f"has {len(got)} entries; at least {want} are needed"
    if kw == "maxItems":
        return f"has {len(got)} entries; at most {want} are allowed"
    if kw == "maxProperties":
        return f"has {len(got)} fields; at most {want} are allowed"
    if kw == "minimum":
        return f"is {got}; the smallest allowed is {want}"
    if kw == "maximum":
        return f"is {got}; the largest allowed is {want}"
    if kw == "format":
        why = f": {e.cause}" if e.cause is not None else ""
        return f"must be {_FORMAT_WORDS.get(want, want)}{why}; got {_shown(got)}"
    return e.message


# ---- regular expressions in words ---------------------------------------------------------------

_CLASS_ESCAPES = {"d": [("0", "9")], "w": [("A", "Z"), ("a", "z"), ("0", "9"), ("_", "_")]}


def _class_words(ranges: list[tuple[str, str]], negated: bool) -> tuple[str, str]:
    """(words, kind) for a character class; kind is "digit" for 0-9 subsets, else "char"."""
    parts = [a if a == b else f"{a}–{b}" for a, b in ranges]
    singles = [f"'{a}'" if a == b and not a.isalnum() else p for (a, b), p in zip(ranges, parts, strict=True)]
    if not negated and all("0" <= a <= b <= "9" for a, b in ranges):
        return ("" if ranges == [("0", "9")] else " " + ", ".join(parts)), "digit"
    return ", ".join(singles), "char"


def _parse_class(p: str, i: int) -> tuple[list[tuple[str, str]], bool, int]:
    """Parse ``[...]`` starting after ``[``; returns (ranges, negated, index after ``]``)."""
    negated = p.startswith("^", i)
    i += negated
    ranges: list[tuple[str, str]] = []
    first = True
    while i < len(p) and (p[i] != "]" or first):
        first = False
        c = p[i]
        if c == "\\":
            esc = p[i + 1]
            if esc in _CLASS_ESCAPES:
                ranges += _CLASS_ESCAPES[esc]
                i += 2
                continue
            if esc.isalnum():
                raise ValueError(esc)
            c = esc
            i += 1
        if i + 2 < len(p) and p[i + 1] == "-" and p[i + 2] != "]":
            hi = p[i + 2]
            if hi == "\\":
                hi = p[i + 3]
                i += 1
            ranges.append((c, hi))
            i += 3
            continue
        ranges.append((c, c))
        i += 1
    if i >= len(p):
        raise ValueError("unterminated class")
    return ranges, negated, i + 1


def _count_words(lo: int, hi: int | None) -> str:
    if hi == lo:
        return str(lo)
    if hi is None:
        return f"at least {lo}" if lo > 1 else ("one or more" if lo == 1 else "any number of")
    return f"optionally {hi}" if lo == 0 and hi == 1 else f"{lo} to {hi}"


def _atoms(p: str) -> list[tuple[str, Any, int, int | None]]:
    """A pattern as (kind, payload, min, max) atoms: kind "class" (ranges, negated) or "lit"."""
    out: list[tuple[str, Any, int, int | None]] = []
    i = 0
    if p.startswith("^"):
        i = 1
    end = len(p) - 1 if p.endswith("$") and not p.endswith("\\$") else len(p)
    while i < end:
        c = p[i]
        if c == "[":
            ranges, neg, i = _parse_class(p, i + 1)
            atom: tuple[str, Any] = ("class", (ranges, neg))
        elif c == "\\":
            esc = p[i + 1]
            atom = ("class", (_CLASS_ESCAPES[esc], False)) if esc in _CLASS_ESCAPES else \
                ("lit", esc)
            if esc.isalnum() and esc not in _CLASS_ESCAPES:
                raise ValueError(esc)
            i += 2
        elif c in "()|.*+?{}^$":
            raise ValueError(c)
        else:
            atom = ("lit", c)
            i += 1
        lo: int = 1
        hi: int | None = 1
        if i < end and p[i] in "*+?":
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[p[i]]
            i += 1
        elif i < end and p[i] == "{":
            close = p.index("}", i)
            body = p[i + 1:close]
            a, _, b = body.partition(",")
            lo = int(a)
            hi = lo if "," not in body else (int(b) if b else None)
            i = close + 1
        out.append((atom[0], atom[1], lo, hi))
    return out


@lru_cache(maxsize=512)
def describe_pattern(pattern: str) -> str:
    """A regular expression in words, for people: ``[A-Za-z0-9._\\-]{1,64}`` → "1 to 64
    characters from A–Z, a–z, 0–9, '.', '_', '-'"; ``[0-9]{4}-[0-9]{2}`` → "the form
    nnnn-nn (n: a digit)". Patterns beyond plain classes, literals and counts (groups,
    alternatives) come back as "text of the form …" with the expression, the last resort."""
    try:
        atoms = _atoms(pattern)
    except (ValueError, IndexError, KeyError):
        return f"text of the form {pattern}"
    if not atoms:
        return "empty"
    fixed = all(lo == hi for _, _, lo, hi in atoms)
    digits_only = all(kind == "lit" or (kind == "class" and not payload[1] and
                                        payload[0] == [("0", "9")])
                      for kind, payload, _, _ in atoms)
    if fixed and digits_only and any(kind == "lit" for kind, *_ in atoms) and len(atoms) > 1:
        form = "".join(("n" if kind == "class" else payload) * lo
                       for kind, payload, lo, _ in atoms)
        return f"the form {form} (n: a digit)"
    words: list[str] = []
    run = ""  # consecutive single literals, quoted as one text
    for kind, payload, lo, hi in atoms:
        count = _count_words(lo, hi)
        if kind == "lit" and (lo, hi) == (1, 1):
            run += payload
            continue
        if run:
            words.append(f"'{run}'")
            run = ""
        if kind == "lit":
            words.append(f"{count} × '{payload}'")
            continue
        text, what = _class_words(*payload)
        plural = not (lo == 1 and hi == 1)
        if what == "digit":
            noun = "digits" if plural else "a digit"
            words.append(f"{'' if not plural else count + ' '}{noun}{text}")
        else:
            noun = ("characters" if plural else "a character") + \
                (" other than" if payload[1] else " from" if plural else " of")
            words.append(f"{'' if not plural else count + ' '}{noun} {text}")
    if run:
        words.append(f"'{run}'")
    return ", then ".join(words)


_DATE = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_DATE_RE = re.compile(_DATE + r"\Z", re.ASCII)
_DATE_TIME_RE = re.compile(
    _DATE + r"T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-]([0-9]{2}):([0-9]{2}))\Z",
    re.ASCII)


def _calendar_date(y: str, m: str, d: str) -> date:
    if not 1 <= int(m) <= 12:
        raise ValueError(f"month {m} is not 01–12")
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        raise ValueError(f"{y}-{m} has no day {d}") from None


def check_date(value: object) -> bool:
    """RFC 3339 full-date, ASCII digits, a day that exists."""
    if not isinstance(value, str):
        return True
    if (m := _DATE_RE.match(value)) is None:
        raise ValueError("not YYYY-MM-DD with ASCII digits")
    _calendar_date(*m.groups())
    return True


def check_date_time(value: object) -> bool:
    """RFC 3339 date-time with ASCII digits, a real date and time, an offset within ±23:59, and
    representable in Beijing time (the stored form)."""
    if not isinstance(value, str):
        return True
    if (m := _DATE_TIME_RE.match(value)) is None:
        raise ValueError("not YYYY-MM-DDThh:mm:ss[.fraction] followed by Z or ±hh:mm, "
                         "with ASCII digits")
    y, mo, d, hh, mm, ss, _, _, oh, om = m.groups()
    _calendar_date(y, mo, d)
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 59:
        raise ValueError(f"time {hh}:{mm}:{ss} does not exist (leap seconds are not accepted)")
    if oh is not None and (int(oh) > 23 or int(om) > 59):
        raise ValueError(f"offset {value[-6:]} is not within ±23:59")
    try:
        datetime.fromisoformat(value).astimezone(BEIJING)
    except (ValueError, OverflowError):
        raise ValueError("outside the range of representable times") from None
    return True


def format_checker() -> FormatChecker:
    """Only the formats we check strictly ourselves (jsonschema's own are lenient or optional)."""
    fc = FormatChecker(formats=())
    fc.checks("date", raises=ValueError)(check_date)
    fc.checks("date-time", raises=ValueError)(check_date_time)
    return fc
