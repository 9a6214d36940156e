"""The inbound case mappings are the outbound ones in reverse: a case Beijing sends Tianjin or
Hebei (the outbound golden fixtures' expected XML), read back with the partner's
``case-inbound`` mapping, is the case it was made from, in Beijing's stored form (12-digit
regions), except what the partner's contract does not carry back (Hebei's formData)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.intake.accept import normalise
from gateway.mapping import MappingRegistry

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "mappings" / "tests"
CTX = {"partner": "test", "now": "2026-11-30T10:00:00+08:00"}


@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load(ROOT / "mappings", ROOT / "schemas")


@pytest.mark.parametrize("partner,fixture,dropped", [
    ("tianjin", "01-person", ()),
    ("hebei", "01-company-agent", ()),
    ("hebei", "03-joint-item-two-hebei-districts", ("formData",)),
])
def test_a_case_sent_to_a_partner_comes_back_the_same(registry: MappingRegistry, partner: str,
                                                      fixture: str,
                                                      dropped: tuple[str, ...]) -> None:
    sent = (TESTS / partner / "case-submit" / f"{fixture}.expected.xml").read_bytes()
    original = json.loads((TESTS / partner / "case-submit" / f"{fixture}.input.json")
                          .read_text(encoding="utf-8"))
    inbound = registry.get(f"{partner}/case-inbound")
    back = inbound.render(sent.decode("utf-8").split("?>", 1)[1].strip(), CTX)
    inbound.validate_output(back, None)
    want = normalise({k: v for k, v in original.items() if k not in dropped})
    assert normalise(back) == want
