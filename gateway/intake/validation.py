"""Validation of the city platform's JSON against ``schemas/beijing/`` plus the domain checks a
schema cannot express (region codes, identifiers, unique item numbers, references between parts).

Every problem names its JSON path (RFC 6901 pointer), so the caller can fix its document, and
says in words what was expected (:func:`describe_error`): a missing field is named at its own
pointer, an unexpected one too; a ``pattern`` is described by the field's ``x-expected`` text in
the schema (or :func:`describe_pattern`), never shown as a regular expression. The domain checks
(:mod:`gateway.domain`): every region a case names is a current GB/T 2260 division
(``gateway/domain/gb2260.tsv``); a resident ID number (certificate type 111) and a unified social
credit code (001) are checked part by part (length, characters, the case of ``X``, region
prefix, birth date, check character) and the first thing wrong is said. Names and codes marked
``x-notBlank`` must hold more than spaces.

A valid document is confirmed by a compiled check (:func:`fast_validity`, the same answer as the
jsonschema validator, about ten times faster); only a document that fails it is walked by
jsonschema to learn every problem.

The schema is read with the semantics JSON Schema gives it, not Python's: ``pattern`` is an
ECMA-262 regex, where ``$`` is the end of the string (Python's ``$`` also matches before a final
newline, which let ``"BJ…\\n"`` through as a second application number) and ``\\d`` is ASCII only
(Python's also takes full-width and Arabic-Indic digits). ``format`` is enforced: ``date-time`` is
RFC 3339 with ASCII digits, a real calendar date and an offset within ±23:59, and must convert to
Beijing time (the stored form). Every string must also be text an XML partner can carry
(:func:`gateway.intake.jsoninput.text_problems`); only free text (``/applicant/address`` and values
inside ``/formData``) may hold line breaks and tabs.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from gateway.domain.checkdigits import resident_id_problem, uscc_problem
from gateway.domain.regions import region_problem
from gateway.errors import ConfigError, FieldProblem, ValidationFailed
from gateway.intake.jsoninput import parse_json, pointer, summary, text_problems
from gateway.schemacheck import (check_date, check_date_time, describe_error, fast_validity,
                                 format_checker, human_validator, load_checked_schema)

__all__ = ["CaseValidator", "diff_paths", "is_multiline", "parse_json"]

MAX_MESSAGE = 300  # a problem echoes the caller's value; a 1 MB value need not come back whole
BEIJING = timezone(timedelta(hours=8))

SchemaValidator = human_validator(Draft202012Validator)


def is_multiline(path: tuple[Any, ...]) -> bool:
    """Free text that may hold line breaks and tabs: the address and form values. Names, codes,
    numbers and identifiers are single-line."""
    return path[:1] == ("formData",) or path == ("applicant", "address")


def _message(e: ValidationError) -> str:
    msg = describe_error(e)
    return msg if len(msg) <= MAX_MESSAGE else msg[:MAX_MESSAGE - 1] + "…"


class CaseValidator:
    """Validates one Beijing case; built once from the schema file."""

    def __init__(self, schema_path: Path) -> None:
        try:
            schema = load_checked_schema(SchemaValidator, schema_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load the case schema: {e}", file=str(schema_path)) from e
        self._v = SchemaValidator(schema, format_checker=format_checker())
        self._fast = fast_validity(schema, {"date": check_date, "date-time": check_date_time})

    def problems(self, doc: Any, *, plain_text: bool = False) -> list[FieldProblem]:
        """Every problem of ``doc``; ``plain_text``: its JSON text holds nothing
        :func:`text_problems` refuses (:func:`~gateway.intake.jsoninput.parse_json_text`)."""
        found = [] if self._fast is not None and self._fast(doc) else \
            [FieldProblem(pointer(e.absolute_path), _message(e)) for e in self._v.iter_errors(doc)]
        if not plain_text:
            found += text_problems(doc, is_multiline)
        if not found and isinstance(doc, dict):
            found = _domain_problems(doc)
        return sorted(found, key=lambda p: p.path)

    def validate(self, doc: Any, *, plain_text: bool = False) -> dict[str, Any]:
        problems = self.problems(doc, plain_text=plain_text)
        if problems:
            raise ValidationFailed(f"{len(problems)} problem(s) in the case: {summary(problems)}",
                                   problems)
        assert isinstance(doc, dict)
        return doc


def _check_cert(path: str, cert_type: str, cert_no: str) -> FieldProblem | None:
    if cert_type == "111" and (why := resident_id_problem(cert_no)):
        return FieldProblem(path, f"not a valid resident ID number: {why}")
    if cert_type == "001" and (why := uscc_problem(cert_no)):
        return FieldProblem(path, f"not a valid unified social credit code: {why}")
    return None


def _region_problems(doc: dict[str, Any]) -> list[FieldProblem]:
    """Every region a case names must be a current GB/T 2260 division (gateway/domain)."""
    found = [("/receivingRegion", doc["receivingRegion"])]
    for i, item in enumerate(doc["items"]):
        found.append((f"/items/{i}/handlingRegion", item["handlingRegion"]))
        found += [(f"/items/{i}/jointRegions/{j}", r)
                  for j, r in enumerate(item.get("jointRegions") or [])]
    return [FieldProblem(path, f"not a region code in use: {why}")
            for path, code in found if (why := region_problem(code))]


def _domain_problems(doc: dict[str, Any]) -> list[FieldProblem]:
    out: list[FieldProblem] = _region_problems(doc)
    people = [("/applicant", doc["applicant"])]
    if rep := doc["applicant"].get("legalRepresentative"):
        people.append(("/applicant/legalRepresentative", rep))
    if agent := doc.get("agent"):
        people.append(("/agent", agent))
    for path, p in people:
        if prob := _check_cert(f"{path}/certNo", p["certType"], p["certNo"]):
            out.append(prob)
    for i, lic in enumerate(doc.get("elicences") or []):
        if prob := _check_cert(f"/elicences/{i}/holderCertNo", lic["holderType"],
                               lic["holderCertNo"]):
            out.append(prob)
    if doc["applicant"]["type"] == "LEGAL_PERSON" and doc["applicant"]["certType"] != "001":
        out.append(FieldProblem("/applicant/certType",
                                "a legal person applies with its unified social credit code (001)"))
    seen: dict[str, int] = {}
    for i, item in enumerate(doc["items"]):
        if item["itemNo"] in seen:
            first = seen[item["itemNo"]]
            out.append(FieldProblem(f"/items/{i}/itemNo",
                                    f"duplicate itemNo {item['itemNo']!r} (also /items/{first})"))
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
