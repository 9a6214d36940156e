"""Per-partner limits inside one gateway instance: deliveries in flight and sends per second.

Both offer a non-blocking ``try_acquire`` so the worker can *skip* a saturated partner (reschedule
the delivery a moment later) instead of holding one of its slots while waiting: one slow or
strict partner must never hold up deliveries to the others. The blocking forms exist for code
that does want to wait (a replay command, a test).

The token bucket takes an injectable ``clock`` (seconds, monotonic) and ``sleep`` so tests run
without real time passing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config import LimitSettings

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class ConcurrencyLimit:
    """At most ``limit`` deliveries to one partner in flight (an ``asyncio.Semaphore`` wrapper).

    Use ``async with limit:`` to wait for a slot, or ``await try_acquire()`` / ``release()`` to
    take one only if free. ``in_flight`` feeds a gauge.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._sem = asyncio.Semaphore(limit)
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def available(self) -> int:
        return self.limit - self._in_flight

    async def acquire(self) -> None:
        await self._sem.acquire()
        self._in_flight += 1

    async def try_acquire(self) -> bool:
        """Take a slot if one is free right now, without waiting (and without queue-jumping)."""
        if self._sem.locked():
            return False
        # Not locked: Semaphore.acquire returns without suspending, so nothing can interleave.
        await self._sem.acquire()
        self._in_flight += 1
        return True

    def release(self) -> None:
        if self._in_flight <= 0:
            raise RuntimeError("release() without a matching acquire()")
        self._in_flight -= 1
        self._sem.release()

    async def __aenter__(self) -> ConcurrencyLimit:
        await self.acquire()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.release()


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``; one token per send.

    Starts full. ``time_until_available`` tells the worker how far to push back a delivery when it
    would rather reschedule than wait.
    """

    def __init__(self, rate: float, burst: int = 1, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._stamp, 0.0)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._stamp = now

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def time_until_available(self, tokens: int = 1) -> float:
        """Seconds until ``tokens`` could be taken (0.0 if now)."""
        self._check(tokens)
        self._refill()
        return max(tokens - self._tokens, 0.0) / self.rate

    def try_acquire(self, tokens: int = 1) -> bool:
        """Take ``tokens`` if available now; never jumps ahead of callers waiting in ``acquire``."""
        self._check(tokens)
        if self._lock.locked():
            return False
        self._refill()
        if self._tokens >= tokens:
            self._tokens -= tokens
            return True
        return False

    async def acquire(self, tokens: int = 1) -> None:
        """Wait (first come, first served) until ``tokens`` are available, then take them."""
        self._check(tokens)
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return
                await self._sleep((tokens - self._tokens) / self.rate)

    def _check(self, tokens: int) -> None:
        if not 1 <= tokens <= self.burst:
            raise ValueError(f"can take between 1 and burst={self.burst} tokens at once")


@dataclass
class PartnerLimits:
    """The limits of one partner; ``rate`` is ``None`` when the partner has no rate limit."""

    concurrency: ConcurrencyLimit
    rate: TokenBucket | None = None

    @classmethod
    def from_settings(cls, s: LimitSettings, *, clock: Clock = time.monotonic,
                      sleep: Sleep = asyncio.sleep) -> PartnerLimits:
        bucket = TokenBucket(s.rate, s.burst, clock=clock, sleep=sleep) if s.rate else None
        return cls(ConcurrencyLimit(s.max_concurrency), bucket)

    async def try_acquire(self) -> float | None:
        """Take a concurrency slot and a rate token, or neither.

        Returns ``None`` on success (call :meth:`release` when the send is done), else the number
        of seconds after which trying again makes sense (0.0 when only the concurrency is full).
        """
        if not await self.concurrency.try_acquire():
            return 0.0
        if self.rate is not None and not self.rate.try_acquire():
            self.concurrency.release()
            return max(self.rate.time_until_available(), 0.001)
        return None

    def release(self) -> None:
        self.concurrency.release()
