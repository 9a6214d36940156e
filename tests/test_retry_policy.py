"""Table-driven tests of the pure retry decision (gateway.retry.policy)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import RetrySettings
from gateway.outcome import Outcome
from gateway.retry.policy import Decision, RetryPolicy, decide, format_duration
from tests.harness import TEST_SECRETS

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 30, 9, 0, 0, tzinfo=CST)

NO_JITTER = RetryPolicy(initial_wait=1, multiplier=2, max_wait=600, jitter="none", max_attempts=6,
                        max_age=86400, retry_after_cap=3600, throttle_codes=frozenset({"42900"}),
                        throttle_wait=60)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


RETRY_5XX = Outcome.retryable("Service Unavailable", http_status=503)


@pytest.mark.parametrize(
    ("name", "policy", "outcome", "attempts", "now", "kind", "delay", "reason"),
    [
        ("delivered", NO_JITTER, Outcome.delivered("R-1", partner_code="0"), 1, at(0),
         Decision.DELIVERED, None, "0 ok"),
        ("permanent keeps partner code and message", NO_JITTER,
         Outcome.permanent("申请人证件号码无效", partner_code="40012", http_status=200), 1, at(0),
         Decision.DEAD, None, "permanent: 40012 申请人证件号码无效"),
        ("permanent without code falls back to HTTP status", NO_JITTER,
         Outcome.permanent("Bad Request", http_status=400), 1, at(0),
         Decision.DEAD, None, "permanent: 400 Bad Request"),
        ("first retry waits initial", NO_JITTER, RETRY_5XX, 1, at(0), Decision.RETRY, 1.0, None),
        ("second retry doubles", NO_JITTER, RETRY_5XX, 2, at(10), Decision.RETRY, 2.0, None),
        ("fifth retry", NO_JITTER, RETRY_5XX, 5, at(100), Decision.RETRY, 16.0, None),
        ("max attempts reached keeps the last answer", NO_JITTER, RETRY_5XX, 6, at(100),
         Decision.DEAD, None, "max attempts 6 reached; last: HTTP 503 Service Unavailable"),
        ("beyond max attempts", NO_JITTER, RETRY_5XX, 9, at(100), Decision.DEAD, None,
         "max attempts 6 reached; last: HTTP 503 Service Unavailable"),
        ("max age exceeded keeps the last answer", NO_JITTER, RETRY_5XX, 2, at(86400),
         Decision.DEAD, None, "max age 1 day exceeded; last: HTTP 503 Service Unavailable"),
        ("max age: the partner's code and words", NO_JITTER,
         Outcome.retryable("系统繁忙", partner_code="50001", http_status=200), 3, at(86400),
         Decision.DEAD, None, "max age 1 day exceeded; last: 50001 系统繁忙"),
        ("max age: a timeout has no status", NO_JITTER,
         Outcome.retryable("timeout: no reply within 10s"), 3, at(86400),
         Decision.DEAD, None, "max age 1 day exceeded; last: timeout: no reply within 10s"),
        ("max age: a message naming its status is not repeated", NO_JITTER,
         Outcome.retryable("HTTP 502", http_status=502), 3, at(86400),
         Decision.DEAD, None, "max age 1 day exceeded; last: HTTP 502"),
        ("backoff shortened to end at the deadline", NO_JITTER, RETRY_5XX, 5, at(86400 - 4),
         Decision.RETRY, 4.0, None),
        ("Retry-After longer than backoff wins", NO_JITTER,
         Outcome.retryable("busy", http_status=503, retry_after=120), 1, at(0),
         Decision.RETRY, 120.0, None),
        ("Retry-After shorter than backoff is a floor only", NO_JITTER,
         Outcome.retryable("busy", http_status=503, retry_after=3), 5, at(0),
         Decision.RETRY, 16.0, None),
        ("Retry-After capped", NO_JITTER,
         Outcome.retryable("busy", http_status=503, retry_after=7 * 86400), 1, at(0),
         Decision.RETRY, 3600.0, None),
        ("negative Retry-After ignored as zero", NO_JITTER,
         Outcome.retryable("busy", http_status=503, retry_after=-5), 1, at(0),
         Decision.RETRY, 1.0, None),
        ("Retry-After beyond max age is dead, not shortened", NO_JITTER,
         Outcome.retryable("busy", http_status=503, retry_after=600), 2, at(86400 - 60),
         Decision.DEAD, None, "max age 1 day exceeded; last: HTTP 503 busy"),
        ("HTTP 429 without Retry-After waits throttle_wait", NO_JITTER,
         Outcome.retryable("Too Many Requests", http_status=429), 1, at(0),
         Decision.RETRY, 60.0, None),
        ("partner throttling code waits throttle_wait", NO_JITTER,
         Outcome.retryable("请求过于频繁", partner_code="42900", http_status=200), 1, at(0),
         Decision.RETRY, 60.0, None),
        ("throttling with Retry-After uses Retry-After", NO_JITTER,
         Outcome.retryable("slow down", http_status=429, retry_after=5), 1, at(0),
         Decision.RETRY, 5.0, None),
        ("other retryable business code is plain backoff", NO_JITTER,
         Outcome.retryable("系统繁忙", partner_code="50001", http_status=200), 3, at(0),
         Decision.RETRY, 4.0, None),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_decision_table(name: str, policy: RetryPolicy, outcome: Outcome, attempts: int,
                        now: datetime, kind: Decision, delay: float | None,
                        reason: str | None) -> None:
    d = decide(policy, outcome=outcome, attempts=attempts, first_attempt_at=T0, now=now,
               rng=random.Random(1))
    assert d.kind is kind
    if kind is Decision.RETRY:
        assert d.delay == pytest.approx(delay)
        assert d.next_attempt_at == now + timedelta(seconds=delay)
    else:
        assert d.next_attempt_at is None
    if reason is not None:
        assert d.reason == reason


def test_retry_reason_names_the_source_of_the_wait() -> None:
    d = decide(NO_JITTER, outcome=Outcome.retryable("busy", http_status=503, retry_after=7200),
               attempts=2, first_attempt_at=T0, now=T0)
    assert d.reason == "503 busy; attempt 2 of 6, retry in 1 hour (Retry-After 2 hours capped)"
    d = decide(NO_JITTER, outcome=RETRY_5XX, attempts=1, first_attempt_at=T0, now=T0)
    assert d.reason == "503 Service Unavailable; attempt 1 of 6, retry in 1s (backoff)"
    d = decide(NO_JITTER, outcome=Outcome.retryable("x", http_status=429), attempts=1,
               first_attempt_at=T0, now=T0)
    assert d.reason.endswith("(throttled)")


def test_wait_is_capped() -> None:
    policy = RetryPolicy(initial_wait=1, multiplier=10, max_wait=300, jitter="none",
                         max_attempts=100, max_age=10 * 86400)
    waits = [decide(policy, outcome=RETRY_5XX, attempts=n, first_attempt_at=T0, now=T0).delay
             for n in range(1, 8)]
    assert waits == [1, 10, 100, 300, 300, 300, 300]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = RetryPolicy(multiplier=1000, max_wait=60, jitter="none", max_attempts=10**6,
                         max_age=10**9)
    assert policy.backoff_ceiling(10**5) == 60


def test_seeded_rng_is_deterministic() -> None:
    policy = RetryPolicy(jitter="full")
    a = decide(policy, outcome=RETRY_5XX, attempts=3, first_attempt_at=T0, now=T0,
               rng=random.Random(42))
    b = decide(policy, outcome=RETRY_5XX, attempts=3, first_attempt_at=T0, now=T0,
               rng=random.Random(42))
    assert a == b


def test_naive_datetimes_work_when_both_are_naive() -> None:
    naive = T0.replace(tzinfo=None)
    d = decide(NO_JITTER, outcome=RETRY_5XX, attempts=1, first_attempt_at=naive, now=naive)
    assert d.next_attempt_at == naive + timedelta(seconds=1)


def test_attempts_must_count_the_attempt_just_made() -> None:
    with pytest.raises(ValueError):
        decide(NO_JITTER, outcome=RETRY_5XX, attempts=0, first_attempt_at=T0, now=T0)


def test_decorrelated_waits_spread_around_the_exponential_curve() -> None:
    """Derived from the attempt count (nothing stores the previous wait): from 1 s doubling,
    attempt n draws from [1 s, 3 × 2^(n-2) s], so the waits still grow and still spread."""
    policy = RetryPolicy(jitter="decorrelated", max_age=10**9)
    rng = random.Random(3)
    for attempts, upper in ((1, 3), (2, 3), (3, 6), (5, 24), (9, 384), (12, 600)):
        waits = [decide(policy, outcome=RETRY_5XX, attempts=attempts, first_attempt_at=T0,
                        now=T0, rng=rng).delay for _ in range(200)]
        assert all(w is not None and 1 <= w <= upper for w in waits), attempts
        if upper < policy.max_wait:
            assert len({round(w or 0, 3) for w in waits}) > 150  # spread, not one value


def test_defaults_are_the_settings_defaults() -> None:
    assert RetryPolicy() == RetryPolicy.from_settings(RetrySettings())


def test_policy_from_settings() -> None:
    s = RetrySettings(initial_wait="2s", max_wait="5m", max_age="2h", jitter="decorrelated",
                      throttle_codes=["42900", 503])
    p = RetryPolicy.from_settings(s)
    assert (p.initial_wait, p.max_wait, p.max_age, p.jitter) == (2, 300, 7200, "decorrelated")
    assert p.throttle_codes == frozenset({"42900", "503"})


@pytest.mark.parametrize("kwargs", [
    {"initial_wait": 0}, {"initial_wait": 10, "max_wait": 5}, {"multiplier": 0.5},
    {"max_attempts": 0}, {"max_age": 0}, {"retry_after_cap": -1},
])
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("seconds", "text"), [
    (86400, "1 day"), (172800, "2 days"), (3600, "1 hour"), (7200, "2 hours"), (60, "1 minute"),
    (600, "10 minutes"), (90, "90s"), (1, "1s"), (2.5, "2.5s"), (0, "0s"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --- jitter bounds, for any policy and attempt --------------------------------------------------

policies = st.builds(
    lambda initial, mult, cap_extra, jitter: RetryPolicy(
        initial_wait=initial, multiplier=mult, max_wait=initial + cap_extra, jitter=jitter,
        max_attempts=1000, max_age=10**9),
    st.floats(0.01, 100), st.floats(1, 10), st.floats(0, 5000),
    st.sampled_from(["full", "decorrelated", "none"]),
)


@settings(max_examples=300, deadline=None)
@given(policy=policies, attempts=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_jittered_wait_within_bounds(policy: RetryPolicy, attempts: int, seed: int) -> None:
    d = decide(policy, outcome=RETRY_5XX, attempts=attempts, first_attempt_at=T0, now=T0,
               rng=random.Random(seed))
    assert d.kind is Decision.RETRY and d.delay is not None
    assert 0 <= d.delay <= policy.max_wait
    if policy.jitter == "full":
        assert d.delay <= policy.backoff_ceiling(attempts)
    elif policy.jitter == "decorrelated":
        previous = policy.backoff_ceiling(attempts - 1) if attempts > 1 else policy.initial_wait
        assert min(policy.initial_wait, policy.max_wait) <= d.delay
        assert d.delay <= max(policy.initial_wait, 3 * previous) + 1e-9
    else:
        assert d.delay == policy.backoff_ceiling(attempts)


@settings(max_examples=300, deadline=None)
@given(retry_after=st.floats(-10, 10**7), attempts=st.integers(1, 5), seed=st.integers(0, 99),
       jitter=st.sampled_from(["full", "decorrelated", "none"]))
def test_retry_after_is_honoured_up_to_the_cap(retry_after: float, attempts: int, seed: int,
                                               jitter: str) -> None:
    policy = RetryPolicy(jitter=jitter,  # type: ignore[arg-type]
                         max_age=10**9, retry_after_cap=3600)
    d = decide(policy, outcome=Outcome.retryable("busy", http_status=503, retry_after=retry_after),
               attempts=attempts, first_attempt_at=T0, now=T0, rng=random.Random(seed))
    assert d.delay is not None
    assert d.delay >= min(max(retry_after, 0), 3600)
    assert d.delay <= max(min(max(retry_after, 0), 3600), policy.max_wait)


@settings(max_examples=200, deadline=None)
@given(elapsed=st.floats(0, 2 * 86400), attempts=st.integers(1, 5), seed=st.integers(0, 99))
def test_never_scheduled_after_max_age(elapsed: float, attempts: int, seed: int) -> None:
    policy = RetryPolicy(jitter="full", max_attempts=6, max_age=86400)
    now = at(elapsed)
    d = decide(policy, outcome=RETRY_5XX, attempts=attempts, first_attempt_at=T0, now=now,
               rng=random.Random(seed))
    if d.kind is Decision.RETRY:
        assert d.next_attempt_at is not None and d.next_attempt_at <= at(86400)
    else:
        assert d.reason == "max age 1 day exceeded; last: HTTP 503 Service Unavailable"


# --- age, not a count, ends the retries (issue 10, section 6) ------------------------------------

def test_default_policy_counts_no_attempts_and_age_binds() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts is None and policy.max_age == 86400
    for attempts, elapsed in ((6, 40), (50, 3600), (500, 23 * 3600)):
        d = decide(policy, outcome=RETRY_5XX, attempts=attempts, first_attempt_at=T0,
                   now=at(elapsed), rng=random.Random(attempts))
        assert d.kind is Decision.RETRY, (attempts, elapsed, d)
        assert f"attempt {attempts}, retry in" in d.reason and " of " not in d.reason
        assert d.delay is not None and d.delay <= 600  # capped exponential wait
    d = decide(policy, outcome=RETRY_5XX, attempts=500, first_attempt_at=T0, now=at(86400))
    assert (d.kind, d.reason) == (Decision.DEAD,
                                  "max age 1 day exceeded; last: HTTP 503 Service Unavailable")


def test_shipped_configuration_counts_no_attempts() -> None:
    from gateway.config import load_settings
    for name, p in load_settings(env=dict(TEST_SECRETS)).partners.items():
        assert p.retry.max_attempts is None, name
        # a day at least (the binding limit for cases sent out; what partners sent Beijing
        # may be kept longer for the city platform)
        assert p.retry.max_age >= 86400, name
        assert p.retry.max_wait <= 600, name
    assert RetrySettings().max_attempts is None
    assert RetrySettings(max_attempts=40).max_attempts == 40
    with pytest.raises(ValueError):
        RetrySettings(max_attempts=0)


def test_permanent_and_delivered_reasons_are_unchanged_by_the_last_answer() -> None:
    d = decide(RetryPolicy(), outcome=Outcome.permanent("bad", partner_code="40003"),
               attempts=1, first_attempt_at=T0, now=T0)
    assert d.reason == "permanent: 40003 bad"
