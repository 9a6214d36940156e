"""Retry, circuit breaking and limits: pure building blocks the worker calls.

* :mod:`.policy` — :func:`decide` turns an attempt's outcome into DELIVERED / RETRY at a time /
  DEAD with a reason (backoff with jitter, caps, max age, max attempts, Retry-After, throttling).
* :mod:`.breaker` — a per-partner circuit breaker as pure transitions over a serialisable snapshot.
* :mod:`.limits` — per-partner concurrency limit and token-bucket rate limit.

Nothing here sleeps on its own account or reads the wall clock: callers pass ``now``. Nothing here
knows a wire protocol either: the clients of :mod:`gateway.protocols` translate what a partner did
into an :class:`~gateway.outcome.Outcome` (:mod:`gateway.protocols.classify`), and that is all
this package sees (``tests/test_layers.py`` keeps it so).
"""

from gateway.retry.breaker import (
    STATE_GAUGE,
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
)
from gateway.retry.limits import ConcurrencyLimit, PartnerLimits, TokenBucket
from gateway.retry.policy import (
    Decision,
    RetryDecision,
    RetryPolicy,
    decide,
    format_duration,
)

__all__ = [
    "STATE_GAUGE",
    "BreakerPolicy",
    "BreakerSnapshot",
    "BreakerState",
    "ConcurrencyLimit",
    "Decision",
    "PartnerLimits",
    "RetryDecision",
    "RetryPolicy",
    "TokenBucket",
    "decide",
    "format_duration",
]
