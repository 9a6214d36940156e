"""JSON on the hot path: orjson where it gives the same document, the standard library where not.

Every case is serialised several times on its way in (the stored body, its deliveries' item
lists, the answer) and copied once (the stored form); with :mod:`json` that was the largest
single CPU item of intake after validation. orjson writes the same JSON several times faster,
but refuses what :mod:`json` takes (an integer beyond 64 bits, a key that is not a string), and
reads an integer beyond 64 bits as a float. So: write with orjson and fall back to :mod:`json`
when it refuses; read with :mod:`json` (a stored integer must come back exact); copy with orjson
only when its writing succeeded (then every integer fits, and reading back is exact).
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


def copy(obj: Any) -> Any:
    """A deep copy of a JSON document (dicts, lists, strings, numbers, booleans, None)."""
    try:
        text = orjson.dumps(obj)
    except TypeError:
        return json.loads(json.dumps(obj))
    return orjson.loads(text)
