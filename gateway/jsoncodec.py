"""JSON on the hot path: orjson where it gives the same document, the standard library where not.

Every case is serialised several times on its way in (the stored body, its deliveries' item
lists, the answer) and copied once (the stored form); with :mod:`json` that was the largest
single CPU item of intake after validation. orjson writes the same JSON several times faster,
but refuses what :mod:`json` takes (an integer beyond 64 bits, a key that is not a string), and
reads an integer beyond 64 bits as a float. So: write with orjson and fall back to :mod:`json`
when it refuses; read with orjson only text that cannot hold such an integer (no run of 19
digits: every integer outside the 64-bit range has at least that many) and with :mod:`json`
otherwise, so a stored integer comes back exact; copy with orjson only when its writing
succeeded (then every integer fits, and reading back is exact).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson


def dumps(obj: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """Compact JSON text, non-ASCII kept as it is (``ensure_ascii=False``). Datetimes and other
    values neither writer knows go through ``default`` (both writers call it alike)."""
    try:
        return orjson.dumps(obj, default=default,
                            option=orjson.OPT_PASSTHROUGH_DATETIME).decode("utf-8")
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=default)


#: every digit as ``0``: then 19 digits in a row are one fast substring search (a regular
#: expression over a batch of a thousand records took longer than reading it with :mod:`json`)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def loads(text: str | bytes) -> Any:
    """The document in ``text``, exactly as :func:`json.loads` reads it: orjson when no
    integer can exceed 64 bits (no run of 19 digits; a long number inside a string only sends
    the text to the slower reader) and orjson accepts the text, :mod:`json` otherwise (NaN, a
    lone surrogate, a number beyond a double: what :mod:`json` takes and orjson refuses)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if _LONG_RUN not in data.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


#: what only a float below 1e-4 (or a string holding it) puts in orjson's text: there orjson
#: writes ``0.00001`` and ``1.5e-7`` where :mod:`json` writes ``1e-05`` and ``1.5e-07``; every
#: other number is written alike by both
_SMALL_FLOAT_MARKS = (b"e-", b"0.0000")


def canonical(obj: Any) -> bytes:
    """The canonical UTF-8 JSON of ``obj`` that digests are taken of: keys sorted, no
    whitespace, non-ASCII as it is; byte for byte what ``json.dumps(obj, sort_keys=True,
    ensure_ascii=False, separators=(",", ":"))`` writes, so digests stored before stay valid.
    orjson writes it unless its text may hold a small float (then :mod:`json`, whose spelling
    of those differs) or it refuses (an integer beyond 64 bits, a lone surrogate)."""
    try:
        text = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = b""
    if not text or any(mark in text for mark in _SMALL_FLOAT_MARKS):
        text = json.dumps(obj, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8", "surrogatepass")
    return text


def copy(obj: Any) -> Any:
    """A deep copy of a JSON document (dicts, lists, strings, numbers, booleans, None)."""
    try:
        text = orjson.dumps(obj)
    except TypeError:
        return json.loads(json.dumps(obj))
    return orjson.loads(text)
