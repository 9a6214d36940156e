"""A circuit breaker per partner, as pure transitions over a serialisable snapshot.

::

    CLOSED ──(N consecutive failures, or failure ratio ≥ r over ≥ m calls in the window)──▶ OPEN
    OPEN ──(cool-down over; the next allow() takes the probe)──▶ HALF_OPEN
    HALF_OPEN ──(probe succeeds)──▶ CLOSED          (cool-down back to its base)
    HALF_OPEN ──(probe fails)──▶ OPEN                (cool-down × multiplier, capped)
    HALF_OPEN ──(probe silent for probe_timeout)──▶ HALF_OPEN with a new probe (its sender died)

Only *retryable* outcomes are failures: a permanent outcome is a partner that answered (it refused
this message, it is not down), so it counts as a success for the breaker.

Why pure: several gateway instances share one breaker per partner through a database row. The
row holds :meth:`BreakerSnapshot.to_dict`; an instance reads it, applies :func:`allow` or
:func:`record`, and writes the result back only if it changed (the functions return the *same*
object when nothing changed) with a compare-and-set on ``version``
(:class:`gateway.delivery.gates.PartnerGates` does). Nothing here reads a clock: the caller passes
``now``.

A late outcome of a call sent before the breaker opened is ignored while OPEN; in HALF_OPEN any
recorded outcome settles the probe (it is evidence about the partner either way).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gateway.config import BreakerSettings
from gateway.outcome import OutcomeKind

_DEFAULTS = BreakerSettings()


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: Values for a Prometheus gauge (``gateway_breaker_state{partner=…}``).
STATE_GAUGE: dict[BreakerState, int] = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1,
                                        BreakerState.OPEN: 2}


@dataclass(frozen=True)
class BreakerPolicy:
    """Thresholds of one partner's breaker (seconds throughout): the knobs of
    :class:`gateway.config.BreakerSettings`, plus ``buckets``, the slices of the sliding window.

    Its defaults are the settings' defaults, declared once in :mod:`gateway.config`.
    """

    enabled: bool = _DEFAULTS.enabled
    failure_threshold: int = _DEFAULTS.failure_threshold
    failure_ratio: float = _DEFAULTS.failure_ratio
    min_calls: int = _DEFAULTS.min_calls
    window: float = _DEFAULTS.window
    cool_down: float = _DEFAULTS.cool_down
    cool_down_multiplier: float = _DEFAULTS.cool_down_multiplier
    max_cool_down: float = _DEFAULTS.max_cool_down
    probe_timeout: float = _DEFAULTS.probe_timeout
    buckets: int = 6

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.min_calls < 1 or self.buckets < 1:
            raise ValueError("failure_threshold, min_calls and buckets must be at least 1")
        if not 0 < self.failure_ratio <= 1:
            raise ValueError("failure_ratio must be in (0, 1]")
        if self.window <= 0 or self.cool_down <= 0 or self.probe_timeout <= 0:
            raise ValueError("window, cool_down and probe_timeout must be positive")
        if self.max_cool_down < self.cool_down or self.cool_down_multiplier < 1:
            raise ValueError("need cool_down <= max_cool_down and cool_down_multiplier >= 1")

    @classmethod
    def from_settings(cls, s: BreakerSettings) -> BreakerPolicy:
        return cls(enabled=s.enabled, failure_threshold=s.failure_threshold,
                   failure_ratio=s.failure_ratio, min_calls=s.min_calls, window=s.window,
                   cool_down=s.cool_down, cool_down_multiplier=s.cool_down_multiplier,
                   max_cool_down=s.max_cool_down, probe_timeout=s.probe_timeout)

    @property
    def bucket_width(self) -> float:
        return self.window / self.buckets


@dataclass(frozen=True)
class BreakerSnapshot:
    """The whole state of a breaker: what a database row holds, what the case view shows.

    ``buckets`` are ``(index, successes, failures)`` for the sliding window, where ``index`` is
    ``int(epoch seconds // bucket_width)``. ``version`` grows by one on every change, for a
    compare-and-set when the row is shared. ``trips`` counts every transition to OPEN.
    """

    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    buckets: tuple[tuple[int, int, int], ...] = ()
    opened_at: datetime | None = None
    open_until: datetime | None = None
    cool_down: float | None = None
    probe_started_at: datetime | None = None
    trips: int = 0
    version: int = 0
    last_failure: str | None = None

    def window_counts(self) -> tuple[int, int]:
        """``(calls, failures)`` in the buckets kept (call :func:`record` first to prune)."""
        return sum(s + f for _, s, f in self.buckets), sum(f for _, _, f in self.buckets)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (ISO 8601 times) for a database row, the admin API and the case view."""
        calls, failures = self.window_counts()
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "buckets": [list(b) for b in self.buckets],
            "opened_at": _iso(self.opened_at),
            "open_until": _iso(self.open_until),
            "cool_down": self.cool_down,
            "probe_started_at": _iso(self.probe_started_at),
            "trips": self.trips,
            "version": self.version,
            "last_failure": self.last_failure,
            "window_calls": calls,
            "window_failures": failures,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BreakerSnapshot:
        """Inverse of :meth:`to_dict`; unknown keys and derived counts are ignored."""
        return cls(
            state=BreakerState(d.get("state", BreakerState.CLOSED.value)),
            consecutive_failures=int(d.get("consecutive_failures", 0)),
            buckets=tuple((int(i), int(s), int(f)) for i, s, f in d.get("buckets") or ()),
            opened_at=_parse(d.get("opened_at")),
            open_until=_parse(d.get("open_until")),
            cool_down=None if d.get("cool_down") is None else float(d["cool_down"]),
            probe_started_at=_parse(d.get("probe_started_at")),
            trips=int(d.get("trips", 0)),
            version=int(d.get("version", 0)),
            last_failure=d.get("last_failure"),
        )


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _parse(v: str | None) -> datetime | None:
    return None if v is None else datetime.fromisoformat(v)


def allow(policy: BreakerPolicy, snap: BreakerSnapshot,
          now: datetime) -> tuple[bool, BreakerSnapshot]:
    """May one delivery be sent now? Returns the answer and the (possibly new) snapshot.

    Taking the probe is a state change (OPEN → HALF_OPEN, ``probe_started_at``), so a shared row
    must be written back before sending; a lost compare-and-set means another instance took it.
    """
    if not policy.enabled or snap.state is BreakerState.CLOSED:
        return True, snap
    if snap.state is BreakerState.OPEN:
        if snap.open_until is not None and now < snap.open_until:
            return False, snap
        return True, replace(snap, state=BreakerState.HALF_OPEN, probe_started_at=now,
                             version=snap.version + 1)
    if snap.probe_started_at is None or (
            now - snap.probe_started_at >= timedelta(seconds=policy.probe_timeout)):
        return True, replace(snap, probe_started_at=now, version=snap.version + 1)
    return False, snap


def record(policy: BreakerPolicy, snap: BreakerSnapshot, kind: OutcomeKind, now: datetime,
           *, detail: str | None = None) -> BreakerSnapshot:
    """Account for one outcome; ``detail`` (e.g. the outcome's message) is kept for operators."""
    if not policy.enabled:
        return snap
    failed = kind is OutcomeKind.RETRYABLE
    if snap.state is BreakerState.OPEN:
        return snap
    if snap.state is BreakerState.HALF_OPEN:
        if not failed:
            return BreakerSnapshot(trips=snap.trips, version=snap.version + 1,
                                   last_failure=snap.last_failure)
        grown = min((snap.cool_down or policy.cool_down) * policy.cool_down_multiplier,
                    policy.max_cool_down)
        return _open(snap, now, grown, detail)
    buckets = _count(policy, snap.buckets, now, failed)
    if not failed:
        return replace(snap, consecutive_failures=0, buckets=buckets, version=snap.version + 1)
    consecutive = snap.consecutive_failures + 1
    calls = sum(s + f for _, s, f in buckets)
    failures = sum(f for _, _, f in buckets)
    tripped = consecutive >= policy.failure_threshold or (
        calls >= policy.min_calls and failures / calls >= policy.failure_ratio)
    snap = replace(snap, consecutive_failures=consecutive, buckets=buckets,
                   version=snap.version + 1, last_failure=detail or snap.last_failure)
    if tripped:
        return _open(snap, now, policy.cool_down, detail)
    return snap


def _open(snap: BreakerSnapshot, now: datetime, cool_down: float,
          detail: str | None) -> BreakerSnapshot:
    return replace(snap, state=BreakerState.OPEN, opened_at=now,
                   open_until=now + timedelta(seconds=cool_down), cool_down=cool_down,
                   probe_started_at=None, trips=snap.trips + 1, version=snap.version + 1,
                   last_failure=detail or snap.last_failure)


def _count(policy: BreakerPolicy, buckets: tuple[tuple[int, int, int], ...], now: datetime,
           failed: bool) -> tuple[tuple[int, int, int], ...]:
    """Add one call to the current bucket and drop buckets that slid out of the window."""
    current = int(now.timestamp() // policy.bucket_width)
    oldest = current - policy.buckets + 1
    kept = [b for b in buckets if oldest <= b[0] < current]
    same = [b for b in buckets if b[0] == current]
    _, s, f = same[0] if same else (current, 0, 0)
    kept.append((current, s + (0 if failed else 1), f + (1 if failed else 0)))
    return tuple(kept)

