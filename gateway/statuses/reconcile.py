"""Both views of every case, compared: the gateway's deliveries against a partner's bulk status
export, drift reported per case, and what is safe repaired.

The comparison is a merge of two streams ordered by the partner's receipt number: the export's
pages (:mod:`gateway.statuses.export_reader`, in receipt order as the contract says) and the
partner's deliveries read in the same order (:mod:`gateway.statuses.reconcile_rows`). Memory
stays flat whatever the population: at most two export pages, one chunk of rows, the receipts of
the previous page (to recognise a repeated record), and the few records matched some other way.

Drift, per case (:class:`DriftKind`):

``missing_at_partner``  we delivered it (receipt, or a delivered case) and the export does not list
                        it. Repaired by re-delivering it (pending again, fresh retry budget, an
                        ``operator_actions`` row): once in its life, only after a *complete* walk
                        (an export that failed half way proves nothing about the rest), only when
                        delivered longer than ``reconcile.grace`` ago, never a case whose status
                        is terminal, at most ``reconcile.max_redeliveries`` a run. The rest listed.
``behind``              the partner is further along: the missed update is applied through
                        :meth:`StatusEvents.apply` (source ``reconcile``; pushed to the city
                        platform like any change).
``ahead``               we are further along than the partner says (its status would be a
                        regression here): listed, never "repaired" backwards.
``conflict``            both say 办结 with different result codes: listed for an operator.
``unknown_case``        the partner lists a case we do not have: listed.
``unmapped``            the partner's code is in no table: listed.

A record whose receipt we do not hold (our receipt differs, we recorded none, or its case is
outside ``--since``) is looked up by the idempotency key it carries (a unique index), per page.

Several instances: one reconcile at a time (:mod:`gateway.statuses.reconcile_lock`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import aiohttp

from gateway.config import ReconcilePartnerSettings, Settings
from gateway.errors import ConfigError
from gateway.mapping import CompiledMapping, MappingError, MappingRegistry
from gateway.observability.metrics import Metrics
from gateway.status import TERMINAL, CaseStatus, Result, Rule, decide
from gateway.statuses.export_reader import (ExportEndpoint, ExportPage, ExportReader,
                                            ExportUnavailable)
from gateway.statuses.reconcile_lock import single_run
from gateway.statuses.reconcile_rows import ReconcileRows
from gateway.store import Source, StatusEvent, StatusEvents, Store
from gateway.store.states import DeliveryState
from gateway.store.types import utcnow

log = logging.getLogger("gateway.reconcile")


class DriftKind(StrEnum):
    MISSING = "missing_at_partner"
    BEHIND = "behind"
    AHEAD = "ahead"
    CONFLICT = "conflict"
    UNKNOWN = "unknown_case"
    UNMAPPED = "unmapped"


@dataclass(frozen=True)
class Drift:
    """One case whose two views differ, and what the run did about it (``action``)."""

    kind: DriftKind
    partner: str
    receipt_no: str | None
    idempotency_key: str | None
    delivery_id: str | None = None
    ours: str | None = None      # our status (and result), e.g. "FINISHED/APPROVED"
    theirs: str | None = None    # the partner's, canonical where mapped
    action: str = "listed"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "partner": self.partner, "receiptNo": self.receipt_no,
                "idempotencyKey": self.idempotency_key, "deliveryId": self.delivery_id,
                "ours": self.ours, "theirs": self.theirs, "action": self.action}


@dataclass
class Report:
    """What one run of one partner found and did (counts; the drifts went to ``on_drift``, the
    first ``examples`` of them are kept here too)."""

    run_id: str
    partner: str
    dry_run: bool
    since: datetime | None = None
    complete: bool = False
    error: str | None = None
    resume_cursor: str | None = None
    pages: int = 0
    records: int = 0
    repeated: int = 0
    out_of_order: int = 0
    page_retries: int = 0
    deliveries: int = 0
    in_sync: int = 0
    drift: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    examples: list[Drift] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["since"] = self.since.isoformat() if self.since else None
        d["examples"] = [e.as_dict() for e in self.examples]
        return d


def _show(status: Any, result: Any) -> str | None:
    if not status:
        return None
    return f"{status}/{result}" if result else str(status)


def export_endpoint(settings: Settings, partner: str) -> tuple[ExportEndpoint,
                                                               ReconcilePartnerSettings]:
    """The export of ``partner`` as configured (``reconcile.partners.<name>`` with the partner's
    URL, envelope, credentials and success codes); ``ConfigError`` naming the key otherwise."""
    file = settings.source_file
    rp = settings.reconcile.partners.get(partner)
    if rp is None:
        raise ConfigError(f"no export configured for partner {partner!r} (configured: "
                          f"{', '.join(sorted(settings.reconcile.partners)) or 'none'})",
                          file=file, key="reconcile.partners")
    p = settings.partners.get(partner)
    if p is None:
        raise ConfigError(f"{partner!r} is not a partner", file=file,
                          key=f"reconcile.partners.{partner}")
    return ExportEndpoint.of_partner(partner, p, rp.export_url, page_size=rp.page_size,
                                     timeout=rp.timeout, max_bytes=rp.max_reply_bytes), rp


class Reconciler:
    """Compares and repairs, one partner per :meth:`run`; :meth:`run_all` holds the one-at-a-
    time lock around several. ``on_drift`` receives every drift as it is found (a command
    prints it, a job logs it); nothing about a case is logged here (no personal data)."""

    def __init__(self, store: Store, settings: Settings, mappings: MappingRegistry,
                 http: aiohttp.ClientSession, *,
                 on_drift: Callable[[Drift], None] | None = None, examples: int = 100,
                 chunk: int = 5000, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics  # status changes it applies (gateway_status_changes_total)
        self.settings = settings
        self.mappings = mappings
        self.http = http
        self.on_drift = on_drift
        self.examples = examples
        self.chunk = chunk
        self.rows = ReconcileRows(store)
        self.events = StatusEvents(store)

    async def run_all(self, partners: Sequence[str] | None = None, *,
                      since: datetime | None = None, repair: bool = True) -> list[Report]:
        """Every named partner (default: every configured export) under the lock
        (:class:`~gateway.statuses.reconcile_lock.AlreadyRunning` if another run holds it)."""
        names = list(partners) if partners else sorted(self.settings.reconcile.partners)
        for name in names:
            export_endpoint(self.settings, name)   # every name checked before anything runs
        async with single_run(self.store):
            return [await self.run(name, since=since, repair=repair) for name in names]

    async def run(self, partner: str, *, since: datetime | None = None,
                  repair: bool = True) -> Report:
        """One partner, without the lock (:meth:`run_all` takes it)."""
        endpoint, rp = export_endpoint(self.settings, partner)
        cfg = self.settings.reconcile
        walk = _Walk(self, partner, rp, self.mappings.get(rp.mapping),
                     Report(uuid.uuid4().hex[:12], partner, dry_run=not repair, since=since),
                     repair=repair, since=since)
        reader = ExportReader(self.http, endpoint, retries=cfg.page_retries,
                              retry_wait=cfg.retry_wait)
        started = time.perf_counter()
        try:
            await walk.merge(reader)
        except ExportUnavailable as e:
            walk.report.error, walk.report.resume_cursor = str(e), e.cursor
        walk.report.page_retries = reader.retried
        walk.report.seconds = round(time.perf_counter() - started, 3)
        log.info("reconcile %s of %s: %s, %d records, %d deliveries, in sync %d, drift %s, "
                 "repaired %s", walk.report.run_id, partner,
                 "complete" if walk.report.complete else "incomplete", walk.report.records,
                 walk.report.deliveries, walk.report.in_sync, walk.report.drift,
                 walk.report.repaired)
        return walk.report


class _Walk:
    """The state of one partner's merge (see the module docstring)."""

    def __init__(self, rec: Reconciler, partner: str, rp: ReconcilePartnerSettings,
                 mapping: CompiledMapping, report: Report, *, repair: bool,
                 since: datetime | None) -> None:
        self.r = rec
        self.partner = partner
        self.rp = rp
        self.mapping = mapping
        self.report = report
        self.repair = repair
        self.since = since
        cfg = rec.settings.reconcile
        # like the callbacks and the poller: pushed only when that partner is configured
        self.push_to = cfg.push_to if cfg.push_to in rec.settings.partners else None
        self.cap = cfg.max_redeliveries if repair else 0
        self.grace_before = utcnow() - timedelta(seconds=cfg.grace)
        self.codes: dict[tuple[Any, ...], tuple[CaseStatus | None, Result | None]] = {}
        self.matched_by_key: set[str] = set()
        self.lost: list[Any] = []   # rows to re-deliver once the walk is complete (≤ cap)
        self.applier = _Applier(self, workers=4 if rec.rows.postgres else 2)

    # -- the merge -------------------------------------------------------------------------------
    async def merge(self, reader: ExportReader) -> None:
        async with self.applier:
            await self._merge(reader)
        await self.repair_lost()

    async def _merge(self, reader: ExportReader) -> None:
        rf, report = self.rp.receipt_field, self.report
        ours = self.r.rows.in_receipt_order(self.partner, self.since, chunk=self.r.chunk)
        rows: Sequence[Any] = ()
        at = 0
        more = True

        async def refill() -> bool:
            nonlocal rows, at, more
            if not more:
                return False
            try:
                rows, at = await ours.__anext__(), 0
            except StopAsyncIteration:
                rows, at, more = (), 0, False
                return False
            report.deliveries += len(rows)
            return more

        try:
            await refill()
            last: str | None = None
            previous: set[str] = set()
            async for page in reader.pages():
                report.pages += 1
                report.records += len(page.records)
                seen: set[str] = set()
                others: list[dict[str, Any]] = []
                for record in page.records:
                    receipt = record.get(rf)
                    if not isinstance(receipt, str):
                        others.append(record)
                        continue
                    if last is not None and receipt <= last:
                        if receipt in previous or receipt in seen:
                            report.repeated += 1   # a page that starts where the last ended
                        else:
                            report.out_of_order += 1
                            others.append(record)
                        continue
                    last = receipt
                    seen.add(receipt)
                    while True:
                        if at >= len(rows) and not await refill():
                            others.append(record)
                            break
                        row = rows[at]
                        if row.receipt_no < receipt:
                            at += 1
                            self.ours_only(row)
                        elif row.receipt_no == receipt:
                            at += 1
                            await self.compare(row, record)
                            break
                        else:
                            others.append(record)
                            break
                previous = seen
                await self.by_key(others, page)
            while True:
                while at < len(rows):
                    self.ours_only(rows[at])
                    at += 1
                if not await refill():
                    break
        finally:
            await ours.aclose()
        async for part in self.r.rows.delivered_without_receipt(self.partner, self.since,
                                                               chunk=self.r.chunk):
            report.deliveries += len(part)
            for row in part:
                if row.id not in self.matched_by_key:
                    self.ours_only(row)
        report.complete = True

    async def by_key(self, records: list[dict[str, Any]], page: ExportPage) -> None:
        """Records the merge did not match by receipt, looked up by idempotency key."""
        if not records:
            return
        kf = self.rp.key_field
        keys = [k for r in records if isinstance(k := r.get(kf), str)]
        found = await self.r.rows.by_keys(self.partner, keys)
        for record in records:
            row = found.get(record.get(kf))  # type: ignore[arg-type]
            if row is None:
                self.drift(DriftKind.UNKNOWN, record, None,
                           theirs=_show(*self.canonical(record)))
            elif self.since is not None and row.created_at < self.since:
                continue   # a case outside the window: not this run's business
            else:
                self.matched_by_key.add(row.id)
                await self.compare(row, record)

    # -- one case --------------------------------------------------------------------------------
    def canonical(self, record: dict[str, Any]) -> tuple[CaseStatus | None, Result | None]:
        """The canonical status and result of a record, through the partner's status mapping,
        once per distinct combination of its status fields."""
        key = tuple(record.get(f) for f in self.rp.status_fields)
        got = self.codes.get(key)
        if got is None:
            try:
                event = self.event(record)
                got = (event.status, event.result)
            except MappingError:
                got = (None, None)
            if len(self.codes) < 10_000:
                self.codes[key] = got
        return got

    def event(self, record: dict[str, Any]) -> StatusEvent:
        """The record as a status event (``MappingError`` when it cannot be mapped). It names
        its case by the idempotency key only: that is the unique index (the receipt has none),
        and the merge has already matched the record to exactly this delivery."""
        doc = self.mapping.render(record, {"partner": self.partner})
        code = record.get(self.rp.status_fields[0]) if self.rp.status_fields else None
        return StatusEvent.from_document(
            self.partner, Source.RECONCILE, doc,
            partner_code=None if code is None else str(code)[:64],
            idempotency_key=str(record.get(self.rp.key_field) or "") or None,
            receipt_no=None, national_case_no=None, application_no=None)

    async def compare(self, row: Any, record: dict[str, Any]) -> None:
        status, result = self.canonical(record)
        if status is None:
            self.drift(DriftKind.UNMAPPED, record, row,
                       theirs=str(record.get(self.rp.status_fields[0])))
            return
        if status == row.partner_status and result == row.result:
            self.report.in_sync += 1
            return
        event = self.event(record)
        assert event.status is not None
        ours = CaseStatus(row.partner_status) if row.partner_status else None
        v = decide(ours, event.status, current_at=row.status_at, incoming_at=event.occurred_at)
        theirs = _show(event.status, event.result)
        if v.applied or (v.rule is Rule.DUPLICATE and row.result is None
                         and event.result is not None):
            if self.repair:
                await self.applier.put((event, record, row, theirs))
            else:
                self.drift(DriftKind.BEHIND, record, row, theirs=theirs, action="would apply")
        elif v.rule is Rule.DUPLICATE and row.result and event.result \
                and row.result != event.result:
            self.drift(DriftKind.CONFLICT, record, row, theirs=theirs)
        elif v.rule is Rule.DUPLICATE:
            self.report.in_sync += 1   # we know the result, the export does not say it
        else:
            self.drift(DriftKind.AHEAD, record, row, theirs=theirs)

    def ours_only(self, row: Any) -> None:
        """A delivery the export does not list: lost by the partner, if it was delivered."""
        if row.state != DeliveryState.DELIVERED:
            return   # not (or no longer) with the partner: in flight, retrying, dead, re-sent
        if row.partner_status in _TERMINAL:
            why = "listed: terminal here, not re-sent"
        elif row.delivered_at is not None and row.delivered_at > self.grace_before:
            why = "listed: delivered within the grace period"
        elif len(self.lost) < self.cap:
            self.lost.append(row)   # judged once the walk is complete
            return
        else:
            why = ("would redeliver" if not self.repair
                   else "listed: over reconcile.max_redeliveries this run")
        self.drift(DriftKind.MISSING, None, row, action=why)

    async def repair_lost(self) -> None:
        lost = [r for r in self.lost if r.id not in self.matched_by_key]
        self.lost = []
        if not lost:
            return
        done = await self.r.rows.redeliver(
            [r.id for r in lost], run_id=self.report.run_id,
            reason=f"not in {self.partner}'s status export (reconcile {self.report.run_id})")
        for row, res in zip(lost, done, strict=True):
            if res.done:
                self.repaired("redelivered")
            self.drift(DriftKind.MISSING, None, row,
                       action=res.reason if res.done else f"listed: {res.reason}")

    async def apply(self, event: StatusEvent, record: dict[str, Any], row: Any,
                    theirs: str | None) -> None:
        """Apply one missed update (pushed to the city platform like a callback's)."""
        applied = await self.r.events.apply(event, push_to=self.push_to)
        if applied.applied:
            self.repaired("applied")
            if self.r.metrics is not None:
                self.r.metrics.status_changed(self.partner, applied.status, "reconcile")
        self.drift(DriftKind.BEHIND, record, row, theirs=theirs,
                   action="applied" if applied.applied
                   else f"not applied ({applied.flag or 'duplicate'})")

    # -- bookkeeping -----------------------------------------------------------------------------
    def repaired(self, what: str) -> None:
        self.report.repaired[what] = self.report.repaired.get(what, 0) + 1

    def drift(self, kind: DriftKind, record: dict[str, Any] | None, row: Any, *,
              theirs: str | None = None, action: str = "listed") -> None:
        d = Drift(kind, self.partner,
                  receipt_no=(row.receipt_no if row is not None
                              else str(record.get(self.rp.receipt_field) or "") or None
                              if record is not None else None),
                  idempotency_key=(row.idempotency_key if row is not None else
                                   str(record.get(self.rp.key_field) or "") or None
                                   if record is not None else None),
                  delivery_id=row.id if row is not None else None,
                  ours=_show(row.partner_status, row.result) if row is not None else None,
                  theirs=theirs, action=action)
        self.report.drift[str(kind)] = self.report.drift.get(str(kind), 0) + 1
        if len(self.report.examples) < self.r.examples:
            self.report.examples.append(d)
        if self.r.on_drift is not None:
            self.r.on_drift(d)


_TERMINAL = frozenset(str(s) for s in TERMINAL)

_Job = tuple[StatusEvent, dict[str, Any], Any, str | None]


class _Applier:
    """Missed updates applied by a few tasks beside the merge, through a short queue: each apply
    is a transaction of its own (a commit, an fsync on SQLite), and the merge need not wait for
    it. The queue bounds what is held; the first failure stops the walk (raised on exit)."""

    def __init__(self, walk: _Walk, *, workers: int, size: int = 256) -> None:
        self.walk = walk
        self.workers = workers
        self.queue: asyncio.Queue[_Job | None] = asyncio.Queue(size)
        self.tasks: list[asyncio.Task[None]] = []
        self.failed: BaseException | None = None

    async def put(self, job: _Job) -> None:
        if self.failed is not None:
            raise self.failed
        await self.queue.put(job)

    async def _work(self) -> None:
        while (job := await self.queue.get()) is not None:
            if self.failed is None:
                try:
                    await self.walk.apply(*job)
                except Exception as e:  # noqa: BLE001 - handed to the walk, raised there
                    self.failed = e

    async def __aenter__(self) -> _Applier:
        self.tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Waits for the queued updates, also when the walk stopped half way (each one is safe
        on its own); only a cancellation drops them."""
        if exc[0] is asyncio.CancelledError:
            for t in self.tasks:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            return
        for _ in self.tasks:
            await self.queue.put(None)
        await asyncio.gather(*self.tasks)
        if self.failed is not None and exc[0] is None:
            raise self.failed
