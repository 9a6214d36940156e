"""National back-flow records → the city platform's records, through the mapping files
``mappings/backflow/{case-result,licence,dataset}.yaml``, each compiled once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError
from gateway.mapping import MappingRegistry
from gateway.store.backflow import Mapped

MAPPINGS = {"CASE_RESULT": "backflow/case-result", "LICENCE": "backflow/licence",
            "DATASET": "backflow/dataset"}


@dataclass
class MappedPage:
    records: list[Mapped]
    #: records that could not be mapped, by reason (kind unknown, mapping refused): counted and
    #: logged by kind and position, never by content
    invalid: dict[str, int] = field(default_factory=dict)


class RecordMapper:
    def __init__(self, mappings: MappingRegistry, source: str) -> None:
        self.by_kind = {kind: mappings.get(name) for kind, name in MAPPINGS.items()}
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


__all__ = ["MAPPINGS", "MappedPage", "RecordMapper"]
