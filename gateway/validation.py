"""Validation of the city platform's JSON against ``schemas/beijing/`` plus the domain checks a
schema cannot express (check digits, unique item numbers, references between parts).

Every problem names its JSON path (RFC 6901 pointer), so the caller can fix its document.

The schema is read with the semantics JSON Schema gives it, not Python's: ``pattern`` is an
ECMA-262 regex, where ``$`` is the end of the string (Python's ``$`` also matches before a final
newline, which let ``"BJ…\\n"`` through as a second application number) and ``\\d`` is ASCII only
(Python's also takes full-width and Arabic-Indic digits). ``format`` is enforced: ``date-time`` is
RFC 3339 with ASCII digits, a real calendar date and an offset within ±23:59, and must convert to
Beijing time (the stored form). Every string must also be text an XML partner can carry
(:func:`gateway.jsoninput.text_problems`); only free text (``/applicant/address`` and values
inside ``/formData``) may hold line breaks and tabs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

from gateway.domain.checkdigits import is_valid_resident_id, is_valid_uscc
from gateway.errors import ConfigError, FieldProblem, ValidationFailed
from gateway.jsoninput import parse_json, pointer, summary, text_problems

__all__ = ["CaseValidator", "diff_paths", "is_multiline", "parse_json"]

MAX_MESSAGE = 300  # a problem echoes the caller's value; a 1 MB value need not come back whole
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


SchemaValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})


def is_multiline(path: tuple[Any, ...]) -> bool:
    """Free text that may hold line breaks and tabs: the address and form values. Names, codes,
    numbers and identifiers are single-line."""
    return path[:1] == ("formData",) or path == ("applicant", "address")


def _message(e: ValidationError) -> str:
    msg = e.message
    if e.validator == "format" and e.cause is not None:
        msg = f"{msg}: {e.cause}"
    return msg if len(msg) <= MAX_MESSAGE else msg[:MAX_MESSAGE - 1] + "…"


class CaseValidator:
    """Validates one Beijing case; built once from the schema file."""

    def __init__(self, schema_path: Path) -> None:
        try:
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
            SchemaValidator.check_schema(schema)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load the case schema: {e}", file=str(schema_path)) from e
        self._v = SchemaValidator(schema, format_checker=format_checker())

    def problems(self, doc: Any) -> list[FieldProblem]:
        found = [FieldProblem(pointer(e.absolute_path), _message(e))
                 for e in self._v.iter_errors(doc)]
        found += text_problems(doc, is_multiline)
        if not found and isinstance(doc, dict):
            found = _domain_problems(doc)
        return sorted(found, key=lambda p: p.path)

    def validate(self, doc: Any) -> dict[str, Any]:
        problems = self.problems(doc)
        if problems:
            raise ValidationFailed(f"{len(problems)} problem(s) in the case: {summary(problems)}",
                                   problems)
        assert isinstance(doc, dict)
        return doc


def _check_cert(path: str, cert_type: str, cert_no: str) -> FieldProblem | None:
    if cert_type == "111" and not is_valid_resident_id(cert_no):
        return FieldProblem(path, "not a valid resident ID number (GB 11643 check digit)")
    if cert_type == "001" and not is_valid_uscc(cert_no):
        return FieldProblem(path, "not a valid unified social credit code (GB 32100 check character)")
    return None


def _domain_problems(doc: dict[str, Any]) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    people = [("/applicant", doc["applicant"])]
    if rep := doc["applicant"].get("legalRepresentative"):
        people.append(("/applicant/legalRepresentative", rep))
    if agent := doc.get("agent"):
        people.append(("/agent", agent))
    for path, p in people:
        if prob := _check_cert(f"{path}/certNo", p["certType"], p["certNo"]):
            out.append(prob)
    if doc["applicant"]["type"] == "LEGAL_PERSON" and doc["applicant"]["certType"] != "001":
        out.append(FieldProblem("/applicant/certType",
                                "a legal person applies with its unified social credit code (001)"))
    seen: dict[str, int] = {}
    for i, item in enumerate(doc["items"]):
        if item["itemNo"] in seen:
            out.append(FieldProblem(f"/items/{i}/itemNo",
                                    f"duplicate itemNo {item['itemNo']!r} (also /items/{seen[item['itemNo']]})"))
        seen.setdefault(item["itemNo"], i)
    for i, m in enumerate(doc.get("materials") or []):
        for j, ref in enumerate(m.get("itemNos") or []):
            if ref not in seen:
                out.append(FieldProblem(f"/materials/{i}/itemNos/{j}", f"no item with itemNo {ref!r}"))
    licence_ids = {e["licenceId"] for e in doc.get("elicences") or []}
    for i, m in enumerate(doc.get("materials") or []):
        if (lid := m.get("elicenceId")) and lid not in licence_ids:
            out.append(FieldProblem(f"/materials/{i}/elicenceId",
                                    "names an e-licence that is not in /elicences"))
    return out


def diff_paths(a: Any, b: Any, path: str = "") -> list[str]:
    """JSON pointers at which two documents differ (for a 409 that says what changed)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            sub = f"{path}/{k}"
            if k not in a or k not in b:
                out.append(sub)
            else:
                out.extend(diff_paths(a[k], b[k], sub))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [path or "/"]
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in diff_paths(x, y, f"{path}/{i}")]
    return [] if a == b else [path or "/"]
