"""The chosen public surface of gateway.retry (changing it is a decision, not an accident)."""

from __future__ import annotations

import gateway.retry as retry

EXPECTED = {
    "STATE_GAUGE", "BreakerPolicy", "BreakerSnapshot", "BreakerState", "BusinessCodes",
    "CircuitBreaker", "ConcurrencyLimit", "Decision", "PartnerLimits", "RetryDecision",
    "RetryPolicy", "TokenBucket", "classify_business_code", "classify_exception", "classify_http",
    "classify_soap_fault", "decide", "is_transient", "format_duration", "outcome_from_http",
    "parse_retry_after",
}


def test_public_names() -> None:
    assert set(retry.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(retry, name) is not None


def test_public_classes_and_functions_have_docstrings() -> None:
    for name in EXPECTED - {"STATE_GAUGE", "Decision", "BreakerState"}:
        assert getattr(retry, name).__doc__, name
