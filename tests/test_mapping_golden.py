"""Every golden fixture under mappings/tests renders to its expected output and validates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.mapping import MappingRegistry
from gateway.cli.mapping import one_delivery
from gateway.mapping.golden import DEFAULT_CONTEXT, discover, run_case

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


SAMPLES = sorted((ROOT / "samples" / "cases").glob("*.json"))


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_case_maps_to_a_valid_national_push_and_back(
        registry: MappingRegistry, sample: Path) -> None:
    """Samples other engineers add are covered too, without a fixture per sample."""
    case = one_delivery(json.loads(sample.read_text(encoding="utf-8")), None)
    ctx = dict(DEFAULT_CONTEXT, partner="national")
    out = registry.get("national/case-submit").render(case, ctx)
    registry.get("national/case-submit").validate_output(out)
    back = registry.get("national/case-inbound").render(out, ctx)
    registry.get("national/case-inbound").validate_output(back)
    assert back["applicationNo"] == case["applicationNo"]
