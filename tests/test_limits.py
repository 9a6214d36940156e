"""Per-partner concurrency and rate limits (gateway.retry.limits), on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import LimitSettings
from gateway.retry.limits import ConcurrencyLimit, PartnerLimits, TokenBucket


class FakeClock:
    """Monotonic seconds that only move when someone sleeps on them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


# --- concurrency ----------------------------------------------------------------------------------

async def test_concurrency_limit_caps_in_flight() -> None:
    limit = ConcurrencyLimit(2)
    peak = 0
    tried = 0
    release = asyncio.Event()

    async def send() -> None:
        nonlocal peak, tried
        tried += 1  # then straight into acquire: in or waiting before the next task runs
        async with limit:
            peak = max(peak, limit.in_flight)
            await release.wait()

    tasks = [asyncio.create_task(send()) for _ in range(5)]
    while tried < 5:  # every send has asked for a slot (no timed sleep)
        await asyncio.sleep(0)
    assert limit.in_flight == 2 and limit.available == 0
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 2 and limit.in_flight == 0


async def test_try_acquire_never_waits_and_never_jumps_the_queue() -> None:
    limit = ConcurrencyLimit(1)
    assert await limit.try_acquire()
    assert not await limit.try_acquire()
    waiter = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    limit.release()               # the slot goes to the waiter, not to a later try_acquire
    assert not await limit.try_acquire()
    await waiter
    assert limit.in_flight == 1
    limit.release()
    assert await limit.try_acquire()
    limit.release()


async def test_release_without_acquire_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        ConcurrencyLimit(1).release()
    with pytest.raises(ValueError):
        ConcurrencyLimit(0)


async def test_slot_is_released_when_the_send_fails() -> None:
    limit = ConcurrencyLimit(1)
    with pytest.raises(ZeroDivisionError):
        async with limit:
            1 / 0  # noqa: B018
    assert limit.in_flight == 0


# --- token bucket ---------------------------------------------------------------------------------

def test_bucket_starts_full_and_refills_at_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock, sleep=clock.sleep)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert bucket.time_until_available() == pytest.approx(0.5)
    clock.now += 0.5
    assert bucket.try_acquire() and not bucket.try_acquire()
    clock.now += 100  # never more than burst
    assert bucket.tokens == pytest.approx(3)


def test_clock_going_backwards_does_not_mint_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.try_acquire()
    clock.now -= 50
    assert not bucket.try_acquire()


async def test_acquire_waits_on_the_injected_sleep() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, burst=1, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(5):
        await bucket.acquire()
    assert clock.now - start == pytest.approx(1.0)  # 1 free + 4 at 0.25 s each
    assert clock.slept == pytest.approx([0.25] * 4)


async def test_concurrent_waiters_are_served_in_order_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock, sleep=clock.sleep)
    served: list[tuple[int, float]] = []

    async def take(i: int) -> None:
        await bucket.acquire()
        served.append((i, clock.now))

    await asyncio.gather(*(take(i) for i in range(6)))
    assert [i for i, _ in served] == list(range(6))
    times = [t - 1000.0 for _, t in served]
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])


async def test_try_acquire_does_not_jump_ahead_of_waiters() -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        await gate.wait()
        clock.now += seconds

    bucket = TokenBucket(rate=1, burst=1, clock=clock, sleep=slow_sleep)
    assert bucket.try_acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    clock.now += 5  # a token is there, but the waiter came first
    assert not bucket.try_acquire()
    gate.set()
    await waiter


async def test_real_clock_smoke() -> None:
    bucket = TokenBucket(rate=1000, burst=1)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for _ in range(4):
        await bucket.acquire()
    assert loop.time() - t0 < 0.5


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"rate": -1}, {"rate": 1, "burst": 0}])
def test_bucket_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TokenBucket(**kwargs)  # type: ignore[arg-type]


def test_cannot_ask_for_more_than_burst() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=2).try_acquire(3)


# --- both, per partner ----------------------------------------------------------------------------

async def test_partner_limits_take_both_or_neither() -> None:
    clock = FakeClock()
    limits = PartnerLimits.from_settings(LimitSettings(max_concurrency=2, rate=1, burst=1),
                                         clock=clock, sleep=clock.sleep)
    assert await limits.try_acquire() is None                     # slot + token
    wait = await limits.try_acquire()                             # slot free, no token
    assert wait == pytest.approx(1.0)
    assert limits.concurrency.in_flight == 1                      # the slot was given back
    clock.now += 1
    assert await limits.try_acquire() is None
    assert await limits.try_acquire() == 0.0                      # concurrency full
    limits.release()
    limits.release()
    assert limits.concurrency.in_flight == 0


async def test_partner_limits_without_rate() -> None:
    limits = PartnerLimits.from_settings(LimitSettings(max_concurrency=1))
    assert limits.rate is None
    assert await limits.try_acquire() is None
    assert await limits.try_acquire() == 0.0
    limits.release()
