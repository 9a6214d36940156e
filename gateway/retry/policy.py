"""The long retry schedule as a pure function: an outcome in, a decision out.

The worker calls :func:`decide` after every attempt and only *records* the result (``DELIVERED``,
``RETRY`` at ``next_attempt_at``, or ``DEAD`` with a reason). Nothing here sleeps, reads a clock or
touches the database, so the schedule is tested by tables of cases and survives restarts because
the worker stores ``next_attempt_at``.

Order of the rules, and why:

1. ``DELIVERED`` is final.
2. ``PERMANENT`` goes straight to the dead letters: sending the same bytes again cannot succeed.
3. ``RETRYABLE`` after ``max_attempts`` attempts is dead: the budget is spent. ``max_attempts``
   is ``None`` (no count) by default: a partner down for an hour is ordinary, and counting
   attempts would dead-letter its deliveries long before anyone fixed anything. Age binds.
4. The wait is exponential backoff with jitter (:func:`jittered`), capped at ``max_wait``.
   ``Retry-After`` and
   throttling (HTTP 429 or one of the partner's ``throttle_codes``) set a *floor* on that
   wait, capped at ``retry_after_cap``, so we never come back earlier than the partner asked
   and a partner cannot park a delivery forever.
5. ``max_age`` bounds the whole life of a delivery. A backoff wait that would cross it is shortened
   to end at the deadline (one last try); a wait the partner imposed (``Retry-After``/throttling)
   is not shortened, so the delivery is dead instead.

A delivery that dies of age or of its attempt count keeps the partner's last answer in its
reason (``max age 1 day exceeded; last: HTTP 503 Service Unavailable``): the dead letter tells
an operator what actually went wrong, not only that the budget ran out.

With the shipped defaults (1 s doubling to a 10-minute cap, full jitter, one day) a delivery is
tried about a dozen times in its first quarter hour and then every five minutes or so until a day has
passed since its first attempt. A partner's circuit breaker holds its deliveries back without
any attempt being spent, so an outage costs each held delivery nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from gateway.config import RetrySettings
from gateway.outcome import Outcome, OutcomeKind

Jitter = Literal["full", "decorrelated", "none"]
_RNG = random.Random()  # shared default: seeding a fresh generator per decision costs more
_DEFAULTS = RetrySettings()


@dataclass(frozen=True)
class RetryPolicy:
    """Value object with the knobs of :class:`gateway.config.RetrySettings` (seconds throughout).

    Its defaults are the settings' defaults, declared once in :mod:`gateway.config`.
    """

    initial_wait: float = _DEFAULTS.initial_wait
    multiplier: float = _DEFAULTS.multiplier
    max_wait: float = _DEFAULTS.max_wait
    jitter: Jitter = _DEFAULTS.jitter
    max_attempts: int | None = _DEFAULTS.max_attempts  # None: ``max_age`` alone ends retries
    max_age: float = _DEFAULTS.max_age
    retry_after_cap: float = _DEFAULTS.retry_after_cap
    throttle_codes: frozenset[str] = frozenset(_DEFAULTS.throttle_codes)
    throttle_wait: float = _DEFAULTS.throttle_wait

    def __post_init__(self) -> None:
        if self.initial_wait <= 0 or self.max_wait < self.initial_wait:
            raise ValueError("need 0 < initial_wait <= max_wait")
        if self.multiplier < 1 or self.max_age <= 0 or (
                self.max_attempts is not None and self.max_attempts < 1):
            raise ValueError("need multiplier >= 1, max_attempts >= 1 (or None), max_age > 0")
        if self.retry_after_cap < 0 or self.throttle_wait < 0:
            raise ValueError("retry_after_cap and throttle_wait must not be negative")

    @classmethod
    def from_settings(cls, s: RetrySettings) -> RetryPolicy:
        return cls(initial_wait=s.initial_wait, multiplier=s.multiplier, max_wait=s.max_wait,
                   jitter=s.jitter, max_attempts=s.max_attempts, max_age=s.max_age,
                   retry_after_cap=s.retry_after_cap, throttle_codes=frozenset(s.throttle_codes),
                   throttle_wait=s.throttle_wait)

    def backoff_ceiling(self, attempts: int) -> float:
        """The un-jittered wait after ``attempts`` attempts: ``initial × multiplier^(n-1)``, capped."""
        n = max(attempts, 1) - 1
        # Compare in log space would be exact; a loop bound keeps big exponents from overflowing.
        wait = self.initial_wait
        for _ in range(n):
            wait *= self.multiplier
            if wait >= self.max_wait:
                return self.max_wait
        return min(wait, self.max_wait)


class Decision(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class RetryDecision:
    """What the worker records: the decision, its reason and, for a retry, when.

    ``delay`` is the wait chosen, in seconds (it is in the reason; nothing stores it).
    """

    kind: Decision
    reason: str
    next_attempt_at: datetime | None = None
    delay: float | None = None


def decide(policy: RetryPolicy, *, outcome: Outcome, attempts: int, first_attempt_at: datetime,
           now: datetime, rng: random.Random | None = None) -> RetryDecision:
    """Decide what happens after attempt number ``attempts`` (1-based) ended with ``outcome``.

    ``first_attempt_at`` and ``now`` must both be aware or both naive. ``rng`` defaults to a
    module-wide ``random.Random()``; pass a seeded one for reproducible tests.
    """
    if attempts < 1:
        raise ValueError("attempts counts the attempt just made, so it is at least 1")
    if outcome.kind is OutcomeKind.DELIVERED:
        return RetryDecision(Decision.DELIVERED, _describe(outcome) or "delivered")
    if outcome.kind is OutcomeKind.PERMANENT:
        return RetryDecision(Decision.DEAD, f"permanent: {_describe(outcome)}")
    last = f"; last: {_last(outcome)}"
    if policy.max_attempts is not None and attempts >= policy.max_attempts:
        return RetryDecision(Decision.DEAD, f"max attempts {policy.max_attempts} reached{last}")
    deadline = first_attempt_at + timedelta(seconds=policy.max_age)
    age_reason = f"max age {format_duration(policy.max_age)} exceeded{last}"
    if now >= deadline:
        return RetryDecision(Decision.DEAD, age_reason)

    rng = rng if rng is not None else _RNG
    backoff = jittered(policy, attempts, rng)
    floor, why = _partner_floor(policy, outcome)
    delay, source = (floor, why) if floor is not None and floor > backoff else (backoff, "backoff")
    next_at = now + timedelta(seconds=delay)
    if next_at > deadline:
        if source != "backoff":
            return RetryDecision(Decision.DEAD, age_reason)
        next_at, delay, source = deadline, (deadline - now).total_seconds(), "max age"
    of = f" of {policy.max_attempts}" if policy.max_attempts is not None else ""
    reason = (f"{_describe(outcome)}; attempt {attempts}{of}, "
              f"retry in {format_duration(delay)} ({source})")
    return RetryDecision(Decision.RETRY, reason, next_at, delay)


def jittered(policy: RetryPolicy, attempts: int, rng: random.Random) -> float:
    """The backoff wait after ``attempts`` attempts, a function of the attempt count only.

    * ``none``: the ceiling, ``initial × multiplier^(attempts-1)`` capped at ``max_wait``;
    * ``full``: uniform in [0, ceiling];
    * ``decorrelated``: uniform in [``initial_wait``, 3 × the *previous* attempt's ceiling],
      capped at ``max_wait`` (so from 1 s doubling: up to 1.5 × this attempt's ceiling).

    AWS's decorrelated jitter draws from 3 × the previous *chosen* wait, a random walk. Nothing
    stores the wait chosen (a delivery keeps only its ``next_attempt_at``), so the previous wait
    is the un-jittered one of the attempt count: the draws spread deliveries as widely, but they
    are independent around the exponential curve instead of a walk that remembers a short draw.
    """
    ceiling = policy.backoff_ceiling(attempts)
    if policy.jitter == "none":
        return ceiling
    if policy.jitter == "full":
        return rng.uniform(0.0, ceiling)
    previous = policy.backoff_ceiling(attempts - 1) if attempts > 1 else policy.initial_wait
    upper = max(policy.initial_wait, previous * 3)
    return min(policy.max_wait, rng.uniform(policy.initial_wait, upper))


def _partner_floor(policy: RetryPolicy, outcome: Outcome) -> tuple[float | None, str]:
    """The earliest the partner allows us back, from Retry-After or throttling, capped."""
    throttled = outcome.http_status == 429 or (
        outcome.partner_code is not None and outcome.partner_code in policy.throttle_codes)
    if outcome.retry_after is not None:
        wanted = max(outcome.retry_after, 0.0)
        capped = min(wanted, policy.retry_after_cap)
        note = "Retry-After" + (f" {format_duration(wanted)} capped" if capped < wanted else "")
        return capped, ("throttled, " + note) if throttled else note
    if throttled:
        return min(policy.throttle_wait, policy.retry_after_cap), "throttled"
    return None, ""


def _describe(outcome: Outcome) -> str:
    """``<partner code> <message>``, falling back to the HTTP status; the partner's words kept."""
    code = outcome.partner_code if outcome.partner_code is not None else (
        str(outcome.http_status) if outcome.http_status is not None else None)
    return " ".join(p for p in (code, outcome.message) if p)


def _last(outcome: Outcome) -> str:
    """The partner's last answer for a dead letter: its code, else ``HTTP <status>``, and its
    words (``HTTP 503 Service Unavailable``, ``50001 系统繁忙``, ``timeout: …``)."""
    if outcome.partner_code is not None:
        head: str | None = outcome.partner_code
    elif outcome.http_status is not None and not outcome.message.startswith("HTTP "):
        head = f"HTTP {outcome.http_status}"
    else:
        head = None
    return " ".join(p for p in (head, outcome.message) if p) or outcome.kind.value


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def format_duration(seconds: float) -> str:
    """``86400`` → ``1 day``, ``7200`` → ``2 hours``, ``90`` → ``90s``, ``2.5`` → ``2.5s``."""
    if seconds >= 60 and float(seconds).is_integer():
        for name, size in _UNITS:
            if seconds % size == 0:
                n = int(seconds // size)
                return f"{n} {name}{'s' if n != 1 else ''}"
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.1f}s"
