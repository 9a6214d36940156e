"""Every golden fixture under mappings/tests renders to its expected output and validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.mapping import MappingRegistry
from gateway.mapping.golden import discover, run_case

ROOT = Path(__file__).resolve().parent.parent
MAPPINGS, SCHEMAS = ROOT / "mappings", ROOT / "schemas"
CASES = discover(MAPPINGS)


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load(MAPPINGS, SCHEMAS)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(registry: MappingRegistry, case) -> None:  # type: ignore[no-untyped-def]
    result = run_case(registry, case)
    assert result.ok, result.detail


def test_every_national_mapping_has_golden_fixtures(registry: MappingRegistry) -> None:
    # partner mappings (tianjin/, hebei/) carry their own fixtures and tests
    covered = {c.mapping for c in CASES}
    missing = [n for n in registry.names() if n.startswith("national/") and n not in covered]
    assert not missing, f"mappings without golden fixtures: {missing}"


def test_national_submit_covers_every_sample_case() -> None:
    samples = {p.stem for p in (ROOT / "samples" / "cases").glob("*.json")}
    cases = {c.case for c in CASES if c.mapping == "national/case-submit"}
    assert samples <= cases
