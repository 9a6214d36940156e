"""Retry, classification, circuit breaking and limits: pure building blocks the worker calls.

* :mod:`.policy` — :func:`decide` turns an attempt's outcome into DELIVERED / RETRY at a time /
  DEAD with a reason (backoff with jitter, caps, max age, max attempts, Retry-After, throttling).
* :mod:`.classify` — one translation of HTTP statuses, exceptions, SOAP faults and business codes
  into outcomes, shared by REST and SOAP clients.
* :mod:`.breaker` — a per-partner circuit breaker as pure transitions over a serialisable snapshot.
* :mod:`.limits` — per-partner concurrency limit and token-bucket rate limit.

Nothing here sleeps on its own account or reads the wall clock: callers pass ``now``.
"""

from gateway.retry.breaker import (
    STATE_GAUGE,
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
)
from gateway.retry.classify import (
    BusinessCodes,
    classify_business_code,
    classify_exception,
    classify_http,
    classify_soap_fault,
    is_transient,
    outcome_from_http,
    parse_retry_after,
)
from gateway.retry.limits import ConcurrencyLimit, PartnerLimits, TokenBucket
from gateway.retry.policy import Decision, RetryDecision, RetryPolicy, decide, format_duration

__all__ = [
    "STATE_GAUGE",
    "BreakerPolicy",
    "BreakerSnapshot",
    "BreakerState",
    "BusinessCodes",
    "CircuitBreaker",
    "ConcurrencyLimit",
    "Decision",
    "PartnerLimits",
    "RetryDecision",
    "RetryPolicy",
    "TokenBucket",
    "classify_business_code",
    "classify_exception",
    "classify_http",
    "classify_soap_fault",
    "decide",
    "format_duration",
    "is_transient",
    "outcome_from_http",
    "parse_retry_after",
]
