"""Headers, query parameters and path ids, checked before anything reaches the database.

Everything a caller puts outside the JSON body ends up in a bounded column (correlation id
``String(64)``, operator ``String(128)``), in a SQL parameter (PostgreSQL refuses NUL in text; a
surrogate from an undecodable header byte cannot even be encoded), or in a header to a partner.
So each is checked against what it can legitimately be and refused with a 400 naming it
(:class:`~gateway.errors.ParameterError`) — never trimmed or replaced silently, so the caller
learns that what it sent was not used.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping

from aiohttp import web

from gateway.errors import NotFound, ParameterError, ParameterProblem

CORRELATION_ID = "X-Correlation-Id"
OPERATOR = "X-Operator"

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]{1,64}", re.ASCII)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII)
_APPLICATION_NO = re.compile(r"[A-Za-z0-9-]{8,40}", re.ASCII)
# control characters (C0, DEL, C1), lone surrogates, U+FFFE/U+FFFF: never in a name or a code
_NOT_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

Check = Callable[[str], str | None]  # None when fine, else what is wrong (in words)


def _quoted(value: str, limit: int = 40) -> str:
    shown = value if len(value) <= limit else value[:limit] + "…"
    return ascii(shown)


def text(max_len: int) -> Check:
    """One line of printable text (any script), 1 to ``max_len`` characters."""
    def check(value: str) -> str | None:
        if not value:
            return "must not be empty"
        if len(value) > max_len:
            return f"is {len(value)} characters long; at most {max_len} are allowed"
        if m := _NOT_TEXT.search(value):
            return (f"contains U+{ord(m[0]):04X} at character {m.start() + 1}; only printable "
                    "characters are allowed (a byte that is not UTF-8 arrives as U+DCxx)")
        return None
    return check


def application_no(value: str) -> str | None:
    if _APPLICATION_NO.fullmatch(value):
        return None
    return f"{_quoted(value)} is not an application number (8–40 letters, digits or '-')"


def bounded_int(low: int, high: int) -> Check:
    def check(value: str) -> str | None:
        if not value.isascii() or not value.isdigit() or len(value) > len(str(high)):
            return f"{_quoted(value)} is not a whole number from {low} to {high}"
        if not low <= int(value) <= high:
            return f"{value} is not from {low} to {high}"
        return None
    return check


def is_case_id(value: str) -> bool:
    return bool(_UUID.fullmatch(value))


def case_id(value: str) -> str:
    """A case id from a URL path, or 404 before any query: only a UUID can name a case."""
    if not _UUID.fullmatch(value.lower()):
        raise NotFound(f"no case with id {_quoted(value)}: case ids are UUIDs "
                       "like 3f2c1d9e-8b7a-4c6d-9e0f-1a2b3c4d5e6f")
    return value.lower()


def query(request: web.Request, checks: Mapping[str, Check]) -> dict[str, str]:
    """The query parameters, each given at most once, each checked; unknown ones refused (a typo
    such as ``limt=5`` silently ignored would return the default)."""
    problems: list[ParameterProblem] = []
    out: dict[str, str] = {}
    q = request.query
    for name in dict.fromkeys(q.keys()):
        check = checks.get(name)
        if check is None:
            known = ", ".join(checks) or "none"
            problems.append(ParameterProblem("query", _quoted(name, 64),
                                             f"unknown parameter (this endpoint takes: {known})"))
            continue
        values = q.getall(name)
        if len(values) > 1:
            problems.append(ParameterProblem("query", name, "given more than once"))
        elif (why := check(values[0])) is not None:
            problems.append(ParameterProblem("query", name, why))
        else:
            out[name] = values[0]
    if problems:
        raise ParameterError(problems)
    return out


def header(request: web.Request, name: str, check: Check) -> str | None:
    """A header's value when given (once, and valid); ``None`` when absent or empty."""
    values = request.headers.getall(name, [])
    if len(values) > 1:
        raise ParameterError([ParameterProblem("header", name, "given more than once")])
    if not values or not values[0]:
        return None
    if (why := check(values[0])) is not None:
        raise ParameterError([ParameterProblem("header", name, why)])
    return values[0]


def correlation_id_check(value: str) -> str | None:
    if _VISIBLE_ASCII.fullmatch(value):
        return None
    return (f"must be 1–64 visible ASCII characters (no spaces); got {len(value)} characters"
            + ("" if value.isascii() else " including non-ASCII"))


def correlation_id(request: web.Request) -> str:
    """The caller's correlation id, or a fresh one when it sends none. A malformed one is refused
    (400), not replaced: it is the caller's handle for tracing this request, and a silent
    substitute would break its tracing without telling it."""
    return header(request, CORRELATION_ID, correlation_id_check) or uuid.uuid4().hex


def operator(request: web.Request) -> str:
    """Who acts on the admin API (audited in a ``String(128)`` column)."""
    return header(request, OPERATOR, text(128)) or "admin-api"
