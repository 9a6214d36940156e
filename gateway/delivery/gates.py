"""How many deliveries of each partner this instance may send right now.

Two things decide: the partner's circuit breaker, shared by every instance through a database
row (:mod:`gateway.store.breakers`), and this instance's own limits (concurrency, rate).

The breaker row is authoritative for the *state* (closed, open until…, half-open with a probe);
the counts that lead to a trip are kept per instance and only a transition is written, with a
compare-and-set, so a busy partner costs no extra write per message. When another instance
opens a breaker, the next :meth:`PartnerGates.sync` adopts it; a probe is taken by exactly one
instance because taking it is itself a compare-and-set.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from gateway.config import Settings
from gateway.observability.metrics import Metrics
from gateway.outcome import OutcomeKind
from gateway.retry.breaker import (
    STATE_GAUGE,
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
    allow,
    record,
)
from gateway.retry.limits import PartnerLimits
from gateway.store.breakers import BreakerRows

log = logging.getLogger("gateway.gates")


async def shared_breakers(rows: BreakerRows,
                          partners: Iterable[str]) -> dict[str, BreakerSnapshot]:
    """Each partner's breaker as every instance shares it: its database row, closed where no
    instance has written one yet. What any instance shows (the admin API, the case view), with
    a worker or without one; an instance's own :class:`PartnerGates` may lag a poll behind."""
    stored = await rows.load()
    return {p: BreakerSnapshot.from_dict(stored[p]) if p in stored else BreakerSnapshot()
            for p in partners}


def _same_state(a: BreakerSnapshot, b: BreakerSnapshot) -> bool:
    return (a.state, a.opened_at, a.probe_started_at) == (b.state, b.opened_at, b.probe_started_at)


@dataclass
class _Gate:
    policy: BreakerPolicy
    limits: PartnerLimits
    snap: BreakerSnapshot
    row_version: int | None = None  # None: no row yet
    probe_mine: bool = False


class PartnerGates:
    def __init__(self, settings: Settings, rows: BreakerRows, metrics: Metrics) -> None:
        self.rows = rows
        self.metrics = metrics
        self.gates = {name: _Gate(BreakerPolicy.from_settings(p.breaker),
                                  PartnerLimits.from_settings(p.limits), BreakerSnapshot())
                      for name, p in settings.partners.items()}
        for name, gate in self.gates.items():  # every partner has a series, closed until told
            metrics.breaker.labels(name).set(STATE_GAUGE[gate.snap.state])

    async def sync(self) -> None:
        """Adopt breaker states other instances wrote."""
        for partner, doc in (await self.rows.load()).items():
            gate = self.gates.get(partner)
            if gate is None:
                continue
            shared = BreakerSnapshot.from_dict(doc)
            gate.row_version = int(doc.get("row_version", shared.version))
            if not _same_state(shared, gate.snap):
                gate.snap = shared
                gate.probe_mine = False
            self.metrics.breaker.labels(partner).set(STATE_GAUGE[gate.snap.state])

    async def capacity(self, now: datetime) -> dict[str, int]:
        """partner → how many deliveries may be claimed now (0 when held back)."""
        out: dict[str, int] = {}
        for partner, gate in self.gates.items():
            free = gate.limits.concurrency.available
            if gate.limits.rate is not None:
                free = min(free, math.floor(gate.limits.rate.tokens))
            if free <= 0:
                out[partner] = 0
                continue
            if gate.snap.state is BreakerState.CLOSED:
                out[partner] = free
                continue
            if gate.snap.state is BreakerState.HALF_OPEN and gate.probe_mine:
                out[partner] = 0  # our probe is in flight; wait for its outcome
                continue
            ok, new = allow(gate.policy, gate.snap, now)
            if not ok:
                out[partner] = 0
                continue
            if new is not gate.snap and not await self._write(partner, gate, new):
                out[partner] = 0  # another instance took the probe
                continue
            gate.snap, gate.probe_mine = new, new.state is BreakerState.HALF_OPEN
            out[partner] = 1 if gate.probe_mine else free
        return out

    def rate_wait(self, partner: str) -> float | None:
        """Seconds until ``partner``'s rate limit gives a token again, when that is all that
        holds its work back (a concurrency slot is free); None otherwise: a finished send, a
        breaker's cool-down or the poll ends those waits."""
        gate = self.gates.get(partner)
        if gate is None or gate.limits.rate is None or gate.limits.concurrency.available <= 0:
            return None
        wait = gate.limits.rate.time_until_available()
        return wait if wait > 0 else None

    def closed(self, partner: str) -> bool:
        """The partner's breaker is closed as this instance last saw it (a configured partner)."""
        gate = self.gates.get(partner)
        return gate is not None and gate.snap.state is BreakerState.CLOSED

    async def acquire(self, partner: str) -> bool:
        gate = self.gates.get(partner)
        if gate is None:  # not configured (any more): nothing to limit, it will dead-letter
            return True
        if not await gate.limits.concurrency.try_acquire():
            return False
        if gate.limits.rate is not None and not gate.limits.rate.try_acquire():
            gate.limits.concurrency.release()
            return False
        return True

    def release(self, partner: str) -> None:
        if (gate := self.gates.get(partner)) is not None:
            gate.limits.release()

    def forget_probe(self, partner: str) -> None:
        """An outcome of ``partner`` will not be recorded (its lease was lost or had expired, the
        database refused it, or a probe's claim found nothing): stop waiting for it as our probe.

        The shared row keeps the probe's start, so the breaker's ``probe_timeout`` rule lets the
        next probe go, from this instance or another, exactly as after a probe whose instance
        died. Without this an instance whose probe went unrecorded would hold the partner back
        for as long as no other instance moved the row. Harmless when the probe is not ours.
        """
        if (gate := self.gates.get(partner)) is not None:
            gate.probe_mine = False

    async def record(self, partner: str, kind: OutcomeKind, now: datetime, detail: str) -> None:
        """Feed one outcome to the partner's breaker. Call it only for an attempt whose result was
        recorded under a lease that was still valid when the result came back: a stale instance's
        late timeouts say nothing about the partner and must not open its breaker for everyone.
        """
        gate = self.gates.get(partner)
        if gate is None:
            return
        new = record(gate.policy, gate.snap, kind, now, detail=detail)
        if _same_state(new, gate.snap):
            gate.snap = new
            return
        for _ in range(3):
            if await self._write(partner, gate, new):
                if new.state is BreakerState.OPEN:
                    # the partner's text stays in the breaker row (admin API): it may quote
                    # the case, and no pattern can redact a name
                    log.warning("breaker for %s opened until %s after %s failures", partner,
                                new.open_until, kind.value)
                elif new.state is BreakerState.CLOSED:
                    log.info("breaker for %s closed again", partner)
                gate.snap, gate.probe_mine = new, False
                self.metrics.breaker.labels(partner).set(STATE_GAUGE[new.state])
                return
            await self.sync()  # someone else moved it; apply our outcome to theirs
            new = record(gate.policy, gate.snap, kind, now, detail=detail)
            if _same_state(new, gate.snap):
                gate.snap = new
                return

    async def _write(self, partner: str, gate: _Gate, new: BreakerSnapshot) -> bool:
        version = (gate.row_version or 0) + 1
        doc = {**new.to_dict(), "row_version": version}
        if await self.rows.compare_and_set(partner, gate.row_version, doc, version):
            gate.row_version = version
            return True
        return False

    def snapshot(self, partner: str) -> dict[str, object] | None:
        """This instance's view of ``partner``'s breaker (:func:`shared_breakers` reads the
        shared one)."""
        gate = self.gates.get(partner)
        if gate is None:
            return None
        doc = gate.snap.to_dict()
        doc.pop("buckets", None)
        return doc
