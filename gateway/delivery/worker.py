"""The delivery worker: claim due deliveries → map → validate → send → record.

It knows no protocol details (clients translate the wire into :class:`Outcome`) and makes no
retry decision itself (:func:`gateway.retry.policy.decide` does). A failing delivery is parked
alone; every other delivery keeps moving.

Order after a send: decide → record the attempt (fenced by the lease token) → only then feed the
partner's shared breaker, and only if the result came back while the lease was still valid. A
late result of an instance that was paused past its lease is dropped (the lease was taken over)
or recorded as history, but never counted by the breaker.

Ask before resending (issue 13): a delivery whose previous send has an unknown outcome
(:attr:`~gateway.store.Claim.outcome_unknown`: claimed again after its lease expired mid-send,
handed back while its send was on the wire, or last answered by a timeout after the request was
written, :func:`~gateway.protocols.status_query.in_doubt`) is not sent blind to a partner that
offers a status query: the partner is asked first, by receipt or idempotency key. Found: the
attempt records the partner's receipt ("found at partner, not resent") and nothing is sent.
Not found: it is sent. The query failed: a retryable attempt, still in doubt, asks again next
time. A partner without a status query gets the resend, and dedupes it. A database error while recording is
logged (delivery and correlation id, no data) and the delivery handed back for its next try.

The database reaches the worker only as :class:`~gateway.errors.StoreError` (the store translates
its drivers' errors), and that is the one error the worker outlives by trying again; anything else
in a claim round is a bug and stops the worker, so ``/readyz`` says so.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
import uuid
from pathlib import Path
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from gateway.observability.case_log import CaseEvent, case_event
from gateway.config import Settings
from gateway.contracts import ContractsHolder
from gateway.errors import ConfigError, GatewayError, PermanentError, StoreError
from gateway.mapping.context import delivery_context
from gateway.observability.metrics import Metrics
from gateway.outcome import Outcome
from gateway.delivery.gates import PartnerGates
from gateway.protocols import transport
from gateway.protocols.base import PartnerClient
from gateway.protocols.status_query import AnswerKind, CaseRef, in_doubt, status_query_of
from gateway.retry.policy import RetryPolicy, decide
from gateway.routing import view as _routing_view
from gateway.store import Claim, DeliveryState, Store
from gateway.store.audit import Digest
from gateway.store.types import utcnow

log = logging.getLogger("gateway.worker")
_DEFAULT_POLICY = RetryPolicy()


def delivery_view(case: dict[str, Any], item_nos: list[str],
                  region: str | None = None) -> dict[str, Any]:
    """The case as one delivery sees it: only its items, and the materials serving them; a
    多地联办 item with the delivery's own handling region (gateway.routing.view)."""
    return _routing_view.delivery_view(case, item_nos, region)


def message_source(claim: Claim) -> dict[str, Any]:
    """What a delivery's mapping renders: the delivery's own document when it carries one (a
    status push's event, a back-flow batch's records, an inbound case's unified document, or
    any kind added later), else the case as this delivery sees it. Decided by the payload, not
    by a list of kinds: a list forgot each new kind and rendered it from the anchor case."""
    d = claim.delivery
    if d.payload is not None:
        return d.payload
    return delivery_view(claim.case_body, d.item_nos, d.region)


def _raised_at(e: BaseException) -> str:
    """``file:line`` of the frame that raised ``e`` (no values), for a bug report."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"


class Worker:
    def __init__(self, *, store: Store, contracts: ContractsHolder,
                 clients: dict[str, PartnerClient], settings: Settings, metrics: Metrics,
                 gates: PartnerGates, worker_id: str | None = None) -> None:
        self.store = store
        self.gates = gates
        self.contracts = contracts
        self.clients = clients
        self.settings = settings
        self.metrics = metrics
        self.worker_id = worker_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.heartbeat = time.monotonic()
        self._synced = -math.inf  # when the breakers were last read from the database
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._reserved = 0  # task slots promised to intake (reserve) and not yet taken
        #: whether due work may be waiting for a slot: a finished send then looks for more at
        #: once; otherwise the next poll or notify() does (a read per finished send was the
        #: largest single cost of the worker's process under load: bench/README.md)
        self._backlog = True
        #: when a partner's rate limit, all that held due work back, has a token again
        #: (monotonic; inf: no such wait)
        self._refill_at = float("inf")
        #: deliveries whose send is on the wire now, and the attempts still in doubt once done
        self._sending: set[str] = set()
        self._doubt: set[str] = set()
        self._policies = {name: RetryPolicy.from_settings(p.retry)
                          for name, p in settings.partners.items()}

    async def reserve(self, partners: Sequence[str]) -> list[bool]:
        """For each delivery intake is about to commit (by partner): will this worker take it
        straight away? Yes where a task slot is free, the partner's breaker is closed and its
        limits give a slot now (taken here; :meth:`take` uses it, :meth:`cancel` gives it back).
        A delivery taken this way is committed already leased to this worker, so it is sent
        without a poll or a claim; one not taken is committed pending and claimed as usual."""
        out: list[bool] = []
        for partner in partners:
            ok = (self.settings.worker.handoff and not self._stopping
                  and self.settings.worker.concurrency - len(self._tasks) - self._reserved > 0
                  and self.gates.closed(partner) and await self.gates.acquire(partner))
            if ok:
                self._reserved += 1
            else:  # committed pending: claimed when a slot or the partner's limits allow
                self._backlog = True
            out.append(ok)
        return out

    def take(self, claims: Sequence[Claim]) -> None:
        """Start sending deliveries intake committed leased to this worker (one reservation
        each)."""
        for c in claims:
            self._reserved -= 1
            self._start(c)

    def cancel(self, partners: Sequence[str]) -> None:
        """Give back reservations that will not be used (the case was not stored, or was stored
        before)."""
        for partner in partners:
            self._reserved -= 1
            self.gates.release(partner)

    @property
    def lease_seconds(self) -> float:
        return self.settings.worker.lease_seconds

    def notify(self) -> None:
        """New work was committed; look now instead of at the next poll."""
        self._backlog = True
        self._wake.set()

    def alive(self, within: float | None = None) -> bool:
        limit = within or max(10.0, self.settings.worker.poll_interval * 20)
        return not self._stopping and time.monotonic() - self.heartbeat < limit

    async def run(self) -> None:
        w = self.settings.worker
        while not self._stopping:
            self.heartbeat = time.monotonic()
            self.metrics.worker_heartbeat.set_to_current_time()
            try:
                claimed = await self._claim_round()
            except StoreError as e:  # the database failed: keep the worker alive, try again
                log.error("claim round failed (%s); trying again after the poll interval", e)
                claimed = 0
            if claimed == 0:
                self._wake.clear()
                refill, self._refill_at = self._refill_at - time.monotonic(), float("inf")
                try:
                    await asyncio.wait_for(self._wake.wait(),
                                           max(0.0, min(w.poll_interval, refill)))
                except TimeoutError:
                    pass

    async def _claim_round(self) -> int:
        """Claim what each partner may take now (breaker, limits) and start sending it: one
        read for the partners with work due, one transaction claiming for all of them."""
        w = self.settings.worker
        free = w.concurrency - len(self._tasks) - self._reserved
        if free <= 0:
            self._backlog = True  # not looked: assume work waits for the next free slot
            return 0
        self._backlog = False  # from here on, set again only if work may be left behind
        due = await self.store.due_partners()
        if not due:
            return 0
        # other instances' breaker changes are adopted at most once per poll interval: a busy
        # worker claims many times a second, and the row says nothing new between polls
        if time.monotonic() - self._synced >= w.poll_interval:
            await self.gates.sync()
            self._synced = time.monotonic()
        caps = await self.gates.capacity(utcnow())
        wants: dict[str, int] = {}
        budget = free
        for partner in sorted(due):
            # a partner no longer configured still gets its deliveries claimed: they fail
            # permanently and park in the dead-letter queue where operators see them
            n = min(caps.get(partner, free), budget, w.batch_size)
            if n > 0:
                wants[partner] = n
                budget -= n
            else:  # due but no slot or limit now: look again when a send finishes
                self._backlog = True
                # …or when the rate limit has a token again: with every send finished
                # already, nothing else would wake the worker before the next poll
                wait = self.gates.rate_wait(partner)
                if wait is not None:
                    self._refill_at = min(self._refill_at, time.monotonic() + wait)
        if not wants:
            return 0
        claimed = 0
        leased = await self.store.claim_for_partners(self.worker_id, wants,
                                                     lease_seconds=w.lease_seconds)
        for partner, claims in leased.items():
            if len(claims) >= wants.get(partner, 0):  # took all it asked for: maybe more due
                self._backlog = True
            if not claims:  # if this was a probe, nothing went: do not wait for its outcome
                self.gates.forget_probe(partner)
            for c in claims:
                if not await self.gates.acquire(partner):
                    await self.store.release(c)
                    self.gates.forget_probe(partner)
                    self._backlog = True
                    continue
                claimed += 1
                self._start(c)
        return claimed

    def _start(self, claim: Claim) -> None:
        task = asyncio.create_task(self._process(claim), name=f"deliver-{claim.delivery.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming; let in-flight sends finish for ``grace`` seconds, then cancel them
        (each is handed back to the queue at once; the partner dedupes a resend)."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _process(self, claim: Claim) -> None:
        try:
            d = claim.delivery
            with self.metrics.tracing.span("deliver", partner=d.partner, delivery_id=d.id,
                                           case_id=d.case_id, attempt=d.attempts + 1):
                await self._process_claimed(claim)
        except asyncio.CancelledError:
            # shutdown ran out of grace: hand the delivery back now, not at lease expiry (the
            # send may have reached the partner: the next worker asks it first where it can)
            await asyncio.shield(self.store.release(
                claim, outcome_unknown=claim.delivery.id in self._sending))
            raise
        except Exception as e:  # noqa: BLE001 - never let a task die unlogged (no traceback:
            # its frames hold the case)
            log.error("delivery %s: unexpected error after its attempt (%s); it returns to the "
                      "queue when its lease expires", claim.delivery.id, type(e).__name__)
            self.gates.forget_probe(claim.delivery.partner)
        finally:
            self._sending.discard(claim.delivery.id)
            self._doubt.discard(claim.delivery.id)
            self.gates.release(claim.delivery.partner)
            if self._backlog:  # a slot is free and work may be waiting for one: look now
                self._wake.set()

    async def _process_claimed(self, claim: Claim) -> None:
        d = claim.delivery
        structlog.contextvars.bind_contextvars(correlation_id=claim.correlation_id,
                                               delivery_id=d.id, partner=d.partner)
        started = utcnow()
        version: str | None = None
        wire: list[transport.Exchange] = []  # this task's exchanges, for the audit log
        transport.exchanges.set(wire)
        try:
            outcome, version = await self._attempt(claim)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must park this delivery, not stop the worker
            # where, not what: the exception's text and frames may hold the case (names are
            # beyond any redaction pattern); the text goes to the dead letter, not the log
            log.error("delivery %s failed unexpectedly: %s at %s", d.id, type(e).__name__,
                      _raised_at(e))
            outcome = Outcome.permanent(f"internal error: {type(e).__name__}: {e}")
        now = utcnow()
        self.metrics.attempts.labels(d.partner, outcome.kind.value).inc()
        policy = self._policies.get(d.partner, _DEFAULT_POLICY)
        attempt_no = d.attempts - d.attempts_base + 1  # of this delivery only (since a replay)
        decision = decide(policy, outcome=outcome, attempts=attempt_no,
                          first_attempt_at=d.first_attempt_at or started, now=now)
        state = DeliveryState.after(decision.kind)
        # still in doubt for the next attempt: a send that may have arrived unseen, or a query
        # asked before a resend that got no answer
        unknown = state is DeliveryState.PENDING and (d.id in self._doubt or in_doubt(outcome))
        try:
            with self.metrics.tracing.span("record", outcome=outcome.kind.value, state=state,
                                           http_status=outcome.http_status):
                ok = await self.store.finish_attempt(
                    claim, worker=self.worker_id, started_at=started,
                    outcome=outcome.kind.value, state=state,
                    next_attempt_at=decision.next_attempt_at, receipt_no=outcome.receipt_no,
                    partner_code=outcome.partner_code,
                    message=decision.reason or outcome.message, http_status=outcome.http_status,
                    mapping_version=version, now=now, outcome_unknown=unknown,
                    request=_digest(wire, "request"), reply=_digest(wire, "reply"))
        except StoreError as e:  # its message names the error's class only, never values
            retry_at = decision.next_attempt_at or now + timedelta(
                seconds=policy.backoff_ceiling(attempt_no))
            await self._unrecorded(claim, e, retry_at)
            return
        # The breaker hears only of attempts recorded under a lease still valid when the result
        # came back. An instance paused past its lease (SIGSTOP, a VM freeze) wakes to sends that
        # "time out"; those say nothing about the partner and must not open its breaker for all.
        if not ok:
            log.warning("delivery %s: lease lost before its result was recorded (another worker "
                        "took it over); result dropped, not counted by the breaker", d.id)
            self.gates.forget_probe(d.partner)
            return
        case_event(CaseEvent.after(decision.kind), correlation_id=claim.correlation_id,
                   delivery_id=d.id, partner=d.partner, attempt=d.attempts + 1,
                   outcome=outcome.kind.value, code=outcome.partner_code,
                   http_status=outcome.http_status, next_attempt_at=decision.next_attempt_at)
        if state is not DeliveryState.PENDING:
            self.metrics.finished.labels(d.partner, state).inc()
        else:
            self.metrics.retried(d.partner)
        expires = d.lease_expires_at
        if expires is not None and now > expires:
            log.warning("delivery %s: result came back %.1fs after its lease expired (this "
                        "instance was paused or starved); recorded, not counted by the breaker",
                        d.id, (now - expires).total_seconds())
            self.gates.forget_probe(d.partner)
            return
        try:
            await self.gates.record(d.partner, outcome.kind, now, outcome.message)
        except StoreError as e:  # the attempt is recorded; the breaker learns later
            log.error("delivery %s: result recorded, but the partner's breaker could not be "
                      "updated (%s)", d.id, e)
            self.gates.forget_probe(d.partner)

    async def _unrecorded(self, claim: Claim, error: StoreError, retry_at: datetime) -> None:
        """The attempt's result could not be stored (database error): say so, and hand the
        delivery back for ``retry_at`` instead of leaving it leased until the lease expires (a
        resend is deduped by the partner). A :class:`StoreError` names the error's class only:
        a database error's text can carry the statement's parameters (partner replies,
        receipts)."""
        d = claim.delivery
        self.gates.forget_probe(d.partner)
        try:
            handed_back = await self.store.release(claim, next_attempt_at=retry_at)
        except StoreError as e:  # the lease brings it back
            log.error("delivery %s: recording its result failed (%s) and so did handing it back "
                      "(%s); it returns to the queue when its lease expires", d.id, error, e)
            return
        log.error("delivery %s: recording its result failed (%s); %s", d.id, error,
                  f"handed back, due again at {retry_at.isoformat()}" if handed_back
                  else "its lease was lost meanwhile")

    async def _attempt(self, claim: Claim) -> tuple[Outcome, str | None]:
        d = claim.delivery
        client = self.clients.get(d.partner)
        if client is None:
            return Outcome.permanent(f"partner {d.partner!r} is not configured"), None
        try:
            mapping = self.contracts.current.mappings.get(d.mapping, d.mapping_version)
        except ConfigError as e:
            return Outcome.permanent(f"mapping unavailable: {e}"), None
        context = delivery_context(case_id=d.case_id, delivery_id=d.id,
                                   idempotency_key=d.idempotency_key, partner=d.partner,
                                   region=d.region)
        try:
            with self.metrics.tracing.span("map", mapping=mapping.name,
                                           mapping_version=mapping.version):
                view = message_source(claim)
                payload = mapping.render(view, context)
                mapping.validate_output(payload, view)  # problems name the case's source fields
        except (PermanentError, ConfigError) as e:
            return Outcome.permanent(f"mapping {mapping.name} v{mapping.version}: {e}"), mapping.version
        except GatewayError as e:
            return Outcome.permanent(str(e)), mapping.version
        if claim.outcome_unknown:
            asked = await self._ask_first(claim, client)
            if asked is not None:
                return asked, mapping.version
        t0 = time.perf_counter()
        self._sending.add(d.id)
        try:
            with self.metrics.tracing.span("send", partner=d.partner):
                outcome = await client.send(payload, idempotency_key=d.idempotency_key,
                                            correlation_id=claim.correlation_id)
        finally:
            self._sending.discard(d.id)
        self.metrics.latency.labels(d.partner).observe(time.perf_counter() - t0)
        return outcome, mapping.version

    async def _ask_first(self, claim: Claim, client: PartnerClient) -> Outcome | None:
        """Before resending a delivery whose previous send has an unknown outcome: ask the
        partner (module docstring). The outcome to record instead of sending, or None: send."""
        d = claim.delivery
        query = status_query_of(client)
        if query is None:  # the partner offers no query: it dedupes a resend
            return None
        answer = await query.query_status(CaseRef(d.idempotency_key, d.receipt_no),
                                          correlation_id=claim.correlation_id)
        if answer.kind is AnswerKind.NOT_FOUND:
            log.info("delivery %s: previous send's outcome unknown; the partner does not hold "
                     "the case (%s): sending", d.id, answer.code)
            return None
        if answer.kind is AnswerKind.FOUND and answer.receipt_no:
            log.info("delivery %s: previous send's outcome unknown; found at the partner, "
                     "not resent", d.id)
            return Outcome.delivered(answer.receipt_no, partner_code=answer.code,
                                     message="found at partner, not resent (status query after "
                                             "a send whose outcome was unknown)")
        self._doubt.add(d.id)  # never send blind: ask again at the next attempt
        if answer.kind is AnswerKind.FOUND:
            return Outcome.retryable("found at partner, but its answer names no usable receipt; "
                                     "not resent", partner_code=answer.code)
        failed = answer.outcome
        return Outcome.retryable(
            f"not resent: the status query before a resend failed: {answer.message}",
            partner_code=failed.partner_code if failed else None,
            http_status=failed.http_status if failed else None,
            retry_after=failed.retry_after if failed else None)


def _digest(wire: list[transport.Exchange], side: str) -> Digest | None:
    """The audit digest of the attempt's last exchange (the send; a status query asked before
    it came first): of the request, or of the reply (None: no complete reply)."""
    if not wire:
        return None
    sent = wire[-1]
    if side == "request":
        return Digest(sent.request_sha256, sent.request_bytes)
    if sent.reply_sha256 is None or sent.reply_bytes is None:
        return None
    return Digest(sent.reply_sha256, sent.reply_bytes)


__all__ = ["Worker", "delivery_view", "message_source"]
