"""National back-flow records → the city platform's records, through the mapping files
``mappings/backflow/{case-result,licence,dataset}.yaml``, each compiled once.

Each record is first checked against its kind's schema (``schemas/national/backflow-*.schema.json``,
the compiled yes/no check: a few microseconds); one that fails is skipped and counted under the
JSON pointer of its first problem — never its values (a holder's name is personal data)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from gateway.errors import GatewayError
from gateway.mapping import MappingRegistry
from gateway.schemacheck import fast_validity
from gateway.store.backflow import Mapped

MAPPINGS = {"CASE_RESULT": "backflow/case-result", "LICENCE": "backflow/licence",
            "DATASET": "backflow/dataset"}
SCHEMAS = {"CASE_RESULT": "national/backflow-case-result.schema.json",
           "LICENCE": "national/backflow-licence.schema.json",
           "DATASET": "national/backflow-dataset.schema.json"}


def _checks(schemas_dir: Path | None) -> dict[str, tuple[Any, Any]]:
    """kind → (compiled yes/no, jsonschema validator for the pointer of a no)."""
    out: dict[str, tuple[Any, Any]] = {}
    if schemas_dir is None:
        return out
    for kind, rel in SCHEMAS.items():
        doc = json.loads((schemas_dir / rel).read_text(encoding="utf-8"))
        out[kind] = (fast_validity(doc), Draft202012Validator(doc))
    return out


@dataclass
class MappedPage:
    records: list[Mapped]
    #: records that could not be mapped, by reason (kind unknown, mapping refused): counted and
    #: logged by kind and position, never by content
    invalid: dict[str, int] = field(default_factory=dict)


class RecordMapper:
    def __init__(self, mappings: MappingRegistry, source: str,
                 schemas_dir: Path | None = None) -> None:
        self.by_kind = {kind: mappings.get(name) for kind, name in MAPPINGS.items()}
        self.checks = _checks(schemas_dir)
        self.context: Mapping[str, Any] = {"caseId": None, "deliveryId": None,
                                           "idempotencyKey": None, "partner": source,
                                           "now": None, "deliveryRegion": None}

    def map_page(self, records: Sequence[dict[str, Any]]) -> MappedPage:
        out = MappedPage([])
        by_kind, ctx = self.by_kind, self.context
        for rec in records:
            m = by_kind.get(rec.get("kind"))  # type: ignore[arg-type]
            if m is None:
                out.invalid["unknown kind"] = out.invalid.get("unknown kind", 0) + 1
                continue
            check = self.checks.get(rec["kind"])
            if check is not None and not (check[0] is not None and check[0](rec)):
                err = next(iter(check[1].iter_errors(rec)), None)
                if err is not None:
                    why = f"{rec['kind']} invalid at /{'/'.join(map(str, err.absolute_path))}"
                    out.invalid[why] = out.invalid.get(why, 0) + 1
                    continue
            try:
                doc = m.render(rec, ctx)
            except GatewayError:
                out.invalid[f"{rec['kind']} not mapped"] = \
                    out.invalid.get(f"{rec['kind']} not mapped", 0) + 1
                continue
            v = doc.get("version")
            if not isinstance(v, int) or isinstance(v, bool):
                out.invalid["version not an integer"] = \
                    out.invalid.get("version not an integer", 0) + 1
                continue
            out.records.append(Mapped(doc["kind"], str(doc["key"])[:200], v, doc))
        return out


__all__ = ["MAPPINGS", "SCHEMAS", "MappedPage", "RecordMapper"]
