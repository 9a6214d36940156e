"""The chosen public surface of gateway.retry (changing it is a decision, not an accident)."""

from __future__ import annotations

import gateway.retry as retry

EXPECTED = {
    "STATE_GAUGE", "BreakerPolicy", "BreakerSnapshot", "BreakerState", "ConcurrencyLimit",
    "Decision", "PartnerLimits", "RetryDecision", "RetryPolicy", "TokenBucket", "decide",
    "format_duration",
}


def test_public_names() -> None:
    assert set(retry.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(retry, name) is not None


def test_public_classes_and_functions_have_docstrings() -> None:
    for name in EXPECTED - {"STATE_GAUGE", "Decision", "BreakerState"}:
        assert getattr(retry, name).__doc__, name
