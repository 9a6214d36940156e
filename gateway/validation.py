"""Validation of the city platform's JSON against ``schemas/beijing/`` plus the domain checks a
schema cannot express (check digits, unique item numbers, references between parts).

Every problem names its JSON path (RFC 6901 pointer), so the caller can fix its document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from gateway.domain.checkdigits import is_valid_resident_id, is_valid_uscc
from gateway.errors import ConfigError, FieldProblem, InputError, ValidationFailed


def _pointer(parts: Any) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts) if parts else ""


def parse_json(raw: bytes) -> Any:
    """Decode a request body; a syntax error names line and column."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"body is not UTF-8 (byte {e.start})") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}",
                         [FieldProblem("", f"line {e.lineno} column {e.colno}: {e.msg}")]) from e


class CaseValidator:
    """Validates one Beijing case; built once from the schema file."""

    def __init__(self, schema_path: Path) -> None:
        try:
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
            Draft202012Validator.check_schema(schema)
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot load the case schema: {e}", file=str(schema_path)) from e
        self._v = Draft202012Validator(schema, format_checker=FormatChecker())

    def problems(self, doc: Any) -> list[FieldProblem]:
        found = [FieldProblem(_pointer(e.absolute_path), e.message)
                 for e in self._v.iter_errors(doc)]
        if not found and isinstance(doc, dict):
            found = _domain_problems(doc)
        return sorted(found, key=lambda p: p.path)

    def validate(self, doc: Any) -> dict[str, Any]:
        problems = self.problems(doc)
        if problems:
            raise ValidationFailed(f"{len(problems)} problem(s) in the case", problems)
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
