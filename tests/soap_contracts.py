"""The Tianjin and Hebei contracts' client options, read from ``fixtures/soap/partners.yaml`` (the
same entries as ``config/gateway.yaml``), so the SOAP tests name no contract value of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PARTNERS = Path(__file__).parent / "fixtures" / "soap" / "partners.yaml"


def contract_options(partner: str, **changes: Any) -> dict[str, Any]:
    """``partners.<partner>.options`` of the fixture; a change to ``None`` drops the key."""
    doc = yaml.safe_load(PARTNERS.read_text(encoding="utf-8"))
    options: dict[str, Any] = {**doc["partners"][partner]["options"], **changes}
    return {k: v for k, v in options.items() if v is not None}
