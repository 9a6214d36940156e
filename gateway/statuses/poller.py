"""Statuses are asked for (issue 13): the poller asks partners about delivered cases no callback
spoke of lately, and applies what they say like a callback.

Per partner with a ``status_query`` (``partners.<name>.status_query``) and ``poll.enabled``,
every ``poll.interval``, outside ``poll.quiet_hours`` (Beijing time):

1. up to ``poll.batch_size`` delivered, unfinished deliveries not checked for an interval
   (:meth:`StatusEvents.stale <gateway.store.statuses.StatusEvents.stale>`), claimed by
   :func:`~gateway.statuses.poll_rows.claim_stale` so another instance does not ask too;
2. each asked through the partner's gates, like a delivery: an open (or half-open) breaker stops
   the polls, the partner's per-instance limits (concurrency, rate) bound them, and a failed
   query counts for the breaker like a failed delivery (a good answer like a good one);
3. a found answer read with the inbound ``poll.mapping`` and applied
   (:meth:`StatusEvents.apply <gateway.store.statuses.StatusEvents.apply>`, pushed to the
   ``poll.push_to`` partner when it is configured); a status no table maps is kept flagged
   ``unmapped``; "not found" is logged for reconciliation (the poller never re-delivers);
4. :meth:`touch_checked <gateway.store.statuses.StatusEvents.touch_checked>` once answered.

Nothing is kept in memory that a restart would need: the database says what is due. The clock is
injected (tests move it into quiet hours).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone

from aiohttp import web

from gateway.api.keys import STORE, WORKER
from gateway.config import PartnerSettings, PollSettings
from gateway.delivery.worker import Worker
from gateway.errors import ConfigError, StoreError
from gateway.mapping import MappingError
from gateway.mapping.context import delivery_context
from gateway.outcome import OutcomeKind
from gateway.protocols.status_query import AnswerKind, CaseRef, StatusQuery, status_query_of
from gateway.statuses.poll_rows import claim_stale
from gateway.store import Store
from gateway.store.statuses import Source, StaleDelivery, StatusEvent, StatusEvents
from gateway.store.types import utcnow

log = logging.getLogger("gateway.poller")
BEIJING = timezone(timedelta(hours=8))
#: how often the loop looks whether a partner's interval has come round (seconds, at most)
TICK = 1.0


def _clock(text: str) -> time:
    h, m = (int(x) for x in text.split(":"))
    return time(23, 59, 59, 999999) if h == 24 else time(h, m)


def quiet(now: datetime, ranges: tuple[str, ...]) -> bool:
    """Whether ``now`` falls in one of the Beijing-time ``ranges`` (``"HH:MM-HH:MM"``, start
    included, end excluded; a range whose end is before its start wraps midnight)."""
    local = now.astimezone(BEIJING).time()
    for r in ranges:
        start_text, _, end_text = r.partition("-")
        start, end = _clock(start_text), _clock(end_text)
        if start <= end:
            if start <= local < end:
                return True
        elif local >= start or local < end:
            return True
    return False


@dataclass
class PollReport:
    """What one round of one partner did (for tests, logs and operators)."""

    partner: str
    skipped: str | None = None   # "quiet hours", "breaker open", "no status query", …
    stale: int = 0               # stale deliveries found
    claimed: int = 0             # of them, claimed by this instance
    asked: int = 0
    found: int = 0
    changed: int = 0             # events that moved a delivery
    not_found: int = 0
    failed: int = 0
    pushed: int = 0
    ids: list[str] = field(default_factory=list)


class Poller:
    """Polls every partner that offers a status query (module docstring). Shares the worker's
    clients and gates, so polls and deliveries of one partner count against the same breaker
    and limits."""

    def __init__(self, worker: Worker, store: Store, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.worker = worker
        self.store = store
        self.events = StatusEvents(store)
        self.clock = clock
        self._next: dict[str, float] = {}
        self._stopping = asyncio.Event()

    def partners(self) -> dict[str, tuple[PartnerSettings, StatusQuery]]:
        """Partners polled: a status query, polling enabled, and an inbound mapping."""
        out: dict[str, tuple[PartnerSettings, StatusQuery]] = {}
        for name, p in self.worker.settings.partners.items():
            query = status_query_of(self.worker.clients.get(name))
            if query is not None and p.poll.enabled and p.poll.mapping:
                out[name] = (p, query)
        return out

    async def run(self) -> None:
        """Poll each partner once per its interval until :meth:`stop`; a database error costs
        one round, never the task."""
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            for name, (p, _) in self.partners().items():
                if loop.time() < self._next.get(name, 0.0):
                    continue
                self._next[name] = loop.time() + p.poll.interval
                try:
                    report = await self.poll_once(name)
                except StoreError as e:
                    log.error("status poll of %s failed (%s); next round in %gs", name, e,
                              p.poll.interval)
                    continue
                if report.asked:
                    log.info("status poll of %s: asked %d, found %d (%d changed), not found %d, "
                             "failed %d", name, report.asked, report.found, report.changed,
                             report.not_found, report.failed)
            wait = min([TICK] + [p.poll.interval for p, _ in self.partners().values()])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    def stop(self) -> None:
        self._stopping.set()

    async def poll_once(self, partner: str) -> PollReport:
        """One round for ``partner`` (module docstring, steps 1–4)."""
        report = PollReport(partner)
        entry = self.partners().get(partner)
        if entry is None:
            report.skipped = "no status query"
            return report
        p, query = entry
        now = self.clock()
        if quiet(now, p.poll.quiet_hours):
            report.skipped = "quiet hours"
            return report
        gates = self.worker.gates
        if not gates.closed(partner):
            report.skipped = "breaker open"
            return report
        older_than = now - timedelta(seconds=p.poll.interval)
        stale = await self.events.stale(partner, older_than, limit=p.poll.batch_size)
        report.stale = len(stale)
        mine = await claim_stale(self.store, [s.id for s in stale], older_than, now)
        report.claimed = len(mine)
        for row in (s for s in stale if s.id in mine):
            if not gates.closed(partner):
                report.skipped = "breaker open"
                break
            while not await gates.acquire(partner):  # the partner's limits, as for a send
                if self._stopping.is_set():
                    return report
                await asyncio.sleep(0.05)
            try:
                answer = await query.query_status(CaseRef(row.idempotency_key, row.receipt_no),
                                                  correlation_id=f"poll-{row.id}")
            finally:
                gates.release(partner)
            report.asked += 1
            report.ids.append(row.id)
            at = self.clock()
            if answer.kind is AnswerKind.FAILED:
                report.failed += 1
                kind = answer.outcome.kind if answer.outcome else OutcomeKind.RETRYABLE
                await gates.record(partner, kind, at, answer.message)
                continue
            await gates.record(partner, OutcomeKind.DELIVERED, at, "status query answered")
            if answer.kind is AnswerKind.NOT_FOUND:
                # the partner lost a case it took: reconciliation re-delivers, not the poller
                report.not_found += 1
                log.warning("status poll of %s: delivery %s not found at the partner (%s)",
                            partner, row.id, answer.code)
            else:
                report.found += 1
                applied = await self.events.apply(self._event(partner, p.poll, row, answer.document),
                                                  push_to=self._push_to(p.poll))
                report.changed += int(applied.applied)
                if applied.applied:
                    self.worker.metrics.status_changed(partner, applied.status, "poll")
                report.pushed += int(applied.push_id is not None)
            await self.events.touch_checked([row.id], at)
        return report

    def _push_to(self, poll: PollSettings) -> str | None:
        push = poll.push_to
        return push if push is not None and push in self.worker.settings.partners else None

    def _event(self, partner: str, poll: PollSettings, row: StaleDelivery,
               document: object) -> StatusEvent:
        """The canonical event of an answer; flagged ``unmapped`` when no table maps it."""
        assert poll.mapping is not None  # partners() polls only those with one
        try:
            mapping = self.worker.contracts.current.mappings.get(poll.mapping)
            context = delivery_context(case_id=row.case_id, delivery_id=row.id,
                                       idempotency_key=row.idempotency_key, partner=partner,
                                       region=None, now=self.clock().astimezone(BEIJING))
            doc = mapping.render(document, context)
        except (MappingError, ConfigError) as e:
            log.warning("status poll of %s: answer kept unmapped (%s)", partner,
                        getattr(e, "reason", type(e).__name__))
            return StatusEvent(partner=partner, source=Source.POLL, status=None,
                               receipt_no=row.receipt_no, idempotency_key=row.idempotency_key)
        return StatusEvent.from_document(partner, Source.POLL, doc, receipt_no=row.receipt_no,
                                         idempotency_key=row.idempotency_key)


#: the app's poller (set while the worker runs)
POLLER = web.AppKey("status_poller", Poller)


async def polling(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the poller runs beside the app's worker, and stops before it (append it
    after the delivery context). No worker (``worker.enabled: false``): no poller."""
    worker = app.get(WORKER)
    if worker is None:
        yield
        return
    poller = Poller(worker, app[STORE])
    app[POLLER] = poller
    task = asyncio.create_task(poller.run(), name="status-poller")
    yield
    poller.stop()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 5.0)
    task.cancel()
