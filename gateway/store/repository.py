"""The typed store API: every read and write of cases, deliveries and attempts goes through here.

The claim is one atomic statement on both engines: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE
SKIP LOCKED) RETURNING …``. PostgreSQL skips rows another instance holds; SQLite renders no
``FOR UPDATE`` but runs the whole statement under its single write lock (``BEGIN IMMEDIATE``), so
there too no two workers can claim the same row. Each claim carries a fresh ``lease_token``;
finishing requires the token, so a worker whose lease expired cannot overwrite the result of the
worker that took over.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (Connection, Table, and_, bindparam, case, exists, func, or_, select,
                        text, union_all, update)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import StoreError
from gateway.status import CaseStatus
from gateway.store import audit, sealing
from gateway.store.batching import GroupCommit
from gateway.store.db import Database
from gateway.store.models import attempts, cases, deliveries
from gateway.store.nonces import PendingNonce, ReplayedNonce, claim_nonces, prune_nonces
from gateway.store.states import DeliveryState
from gateway.store.types import utcnow
from gateway.store.upsert import insert_for


#: how often (seconds) a case transaction that carries nonces also deletes the expired ones
NONCE_PRUNE_EVERY = 60.0


@dataclass(frozen=True)
class Lease:
    """A delivery stored already claimed: by ``owner`` under ``token``, for ``seconds``."""

    owner: str
    token: str
    seconds: float


@dataclass(frozen=True)
class NewDelivery:
    partner: str
    item_nos: tuple[str, ...]
    region: str
    route_rule: str
    mapping: str
    mapping_version: str | None
    idempotency_key: str
    #: stored in flight, leased to the worker that takes it from intake (None: pending)
    lease: Lease | None = None


@dataclass(frozen=True)
class NewCase:
    application_no: str
    body: dict[str, Any]
    body_hash: str
    correlation_id: str
    home_items: tuple[str, ...]
    deliveries: tuple[NewDelivery, ...]
    #: the authenticated caller's name (gateway.security.callers): it alone may read the case
    submitted_by: str | None = None
    #: the request's x-tif nonce, remembered in the case's transaction (None: not a request)
    nonce: PendingNonce | None = None


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    case_id: str
    partner: str
    item_nos: list[str]
    region: str
    route_rule: str
    mapping: str
    mapping_version: str | None
    idempotency_key: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    first_attempt_at: datetime | None
    receipt_no: str | None
    partner_status: str | None
    last_outcome: str | None
    last_code: str | None
    last_message: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    attempts_base: int = 0
    replays: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    #: ``case`` (a message of the case to its partner) or ``status_push`` (a status event to
    #: the city platform, rendered from ``payload``: gateway.store.statuses)
    kind: str = "case"
    payload: dict[str, Any] | None = None
    result: str | None = None
    status_at: datetime | None = None
    status_checked_at: datetime | None = None


@dataclass(frozen=True)
class CaseRecord:
    id: str
    application_no: str
    body: dict[str, Any]
    body_hash: str
    correlation_id: str
    home_items: list[str]
    received_at: datetime
    deliveries: list[DeliveryRecord]
    #: the caller that submitted it (None: stored before callers existed)
    submitted_by: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    case: CaseRecord
    created: bool


#: ``deliveries.last_outcome`` of a delivery whose previous send may have reached the partner
#: without the gateway learning so: claimed again after its lease expired while in flight (the
#: claim statement writes it), handed back while its send was on the wire, or last answered by
#: a timeout after the request was written (the worker records it). The next attempt asks the
#: partner before it sends (gateway.delivery.worker).
OUTCOME_UNKNOWN = "unknown"


@dataclass(frozen=True)
class Claim:
    """A delivery leased to one worker, with the case body it needs to build the message."""

    delivery: DeliveryRecord
    lease_token: str
    case_body: dict[str, Any]
    correlation_id: str

    @property
    def outcome_unknown(self) -> bool:
        """The previous send's outcome is not known (:data:`OUTCOME_UNKNOWN`)."""
        return self.delivery.last_outcome == OUTCOME_UNKNOWN


DELIVERY_COLUMNS = [c for c in deliveries.c if c.name != "lease_token"]
#: inserts of the hot paths, built once (a statement object keeps its cache key)
_NEW_DELIVERIES = deliveries.insert()
_NEW_ATTEMPTS = attempts.insert()


@functools.lru_cache(maxsize=8)
def _fenced_update(columns: tuple[str, ...]) -> Any:
    """``UPDATE deliveries SET <columns> WHERE id = :b_id AND lease_token = :b_token`` (an
    attempt's result: it changes the row only while the lease is still the attempt's), built
    once per column list."""
    d = deliveries.c
    return (update(deliveries).where(d.id == bindparam("b_id"), d.lease_token == bindparam("b_token"))
            .values({k: bindparam(k) for k in columns}))


def _due_partners() -> Any:
    """The partners with a due delivery (``:now``), at a cost that grows with the number of
    partners, not with the backlog or the history (it was a ``GROUP BY`` over every due row:
    under a backlog of 1,500 rows, 0.8 ms of SQLite per claim round; 20 µs now). The distinct
    partners are walked one index step each (a recursive ``min(partner) > previous``: a loose
    index scan, on SQLite and PostgreSQL alike), and each is asked for one due row: a pending
    one due by now, or one whose lease expired in flight, each one range of
    ``ix_deliveries_due`` (state, partner, due time)."""
    d = deliveries.c
    now = bindparam("now", type_=d.next_attempt_at.type)
    walk = select(func.min(d.partner).label("partner")).cte("known", recursive=True)
    step = deliveries.alias("step")
    walk = walk.union_all(
        select(select(func.min(step.c.partner)).where(step.c.partner > walk.c.partner)
               .scalar_subquery())
        .where(walk.c.partner.is_not(None)))
    due = deliveries.alias("due")
    return select(walk.c.partner).where(walk.c.partner.is_not(None), or_(
        exists().where(due.c.partner == walk.c.partner, due.c.state == DeliveryState.PENDING,
                       due.c.next_attempt_at <= now),
        exists().where(due.c.partner == walk.c.partner, due.c.state == DeliveryState.IN_FLIGHT,
                       due.c.lease_expires_at < now)))


_DUE_PARTNERS = _due_partners()


@functools.lru_cache(maxsize=128)
def _claim_statement(limit: int, scope: Literal["one", "some", "any"]) -> Any:
    """Lease up to ``limit`` due deliveries (``one``: of the partner ``:c_partner``; ``some``:
    of the partners ``:c_partners``; ``any``) to ``:c_worker`` under ``:c_token`` until
    ``:c_expires``, due by ``:c_now``: those whose lease expired in flight first, then the
    pending ones in due order. Built once per limit and scope (it took 0.6 ms to build and key,
    per partner and claim round, on the event loop); :meth:`Store._claim_params` gives the
    values.

    Two candidate sets, not one ``WHERE pending-and-due OR in-flight-and-expired ORDER BY``:
    no index serves that OR in due order, so SQLite read every row of the partner (its whole
    history, through ``ix_deliveries_receipt``) and sorted them on every claim. Apart, each is
    one range of ``ix_deliveries_due`` (state, partner, due time) and a claim reads about the
    rows it takes (tests/test_due_queries.py).

    Each set is a materialized CTE, not an ``IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)``:
    PostgreSQL may rescan such a sub-select once per outer row, each rescan skipping the rows
    this very statement already updated and locking the next n, so a claim of 4 took every due
    row. PostgreSQL refuses ``FOR UPDATE`` on a ``UNION``, so the rows are locked in each set
    and the union only picks at most ``limit`` of them (a row locked beyond it stays unclaimed,
    locked until this transaction ends). The updated rows are not tested for being due a
    second time: each was due when its set locked it (SQLite has one writer; PostgreSQL
    re-checks a row's WHERE as it locks it), and with that test SQLite chose to find the rows
    to update by every due row's index instead of by the candidates' ids."""
    d = deliveries.c
    now = bindparam("c_now", type_=d.next_attempt_at.type)
    where: list[Any] = []
    if scope == "one":
        where.append(d.partner == bindparam("c_partner"))
    elif scope == "some":
        where.append(d.partner.in_(bindparam("c_partners", expanding=True)))
    expired = (select(d.id).where(d.state == DeliveryState.IN_FLIGHT, d.lease_expires_at < now,
                                  *where)
               .limit(limit).with_for_update(skip_locked=True)
               .cte("expired").prefix_with("MATERIALIZED", dialect="postgresql"))
    waiting = (select(d.id).where(d.state == DeliveryState.PENDING, d.next_attempt_at <= now,
                                  *where)
               .order_by(d.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
               .cte("waiting").prefix_with("MATERIALIZED", dialect="postgresql"))
    candidates = (union_all(select(expired.c.id), select(waiting.c.id)).limit(limit)
                  .cte("candidates").prefix_with("MATERIALIZED", dialect="postgresql"))
    return (update(deliveries)
            .where(d.id.in_(select(candidates.c.id)))
            .values(state=DeliveryState.IN_FLIGHT, lease_owner=bindparam("c_worker"),
                    lease_token=bindparam("c_token"),
                    lease_expires_at=bindparam("c_expires", type_=d.lease_expires_at.type),
                    updated_at=now,
                    # a row still in flight had its lease expire mid-send: the partner may hold
                    # it (the SET sees the row as it was before this update)
                    last_outcome=case((d.state == DeliveryState.IN_FLIGHT, OUTCOME_UNKNOWN),
                                      else_=d.last_outcome))
            .returning(*DELIVERY_COLUMNS))


def _delivery_row(case_id: str, d: NewDelivery, now: datetime) -> dict[str, Any]:
    """The row of a new delivery: pending and due at once, or in flight under its lease."""
    lease = d.lease
    return dict(  # noqa: C408 - the columns, as keywords
        id=str(uuid.uuid4()), case_id=case_id, partner=d.partner, item_nos=list(d.item_nos),
        region=d.region, route_rule=d.route_rule, mapping=d.mapping,
        mapping_version=d.mapping_version, idempotency_key=d.idempotency_key,
        state=DeliveryState.PENDING if lease is None else DeliveryState.IN_FLIGHT,
        attempts=0, next_attempt_at=now, first_attempt_at=None,
        lease_owner=lease and lease.owner, lease_token=lease and lease.token,
        lease_expires_at=lease and now + timedelta(seconds=lease.seconds), receipt_no=None,
        partner_status=None, last_outcome=None, last_code=None, last_message=None,
        created_at=now, updated_at=now, delivered_at=None, attempts_base=0, replays=0)


def _record(row: dict[str, Any]) -> DeliveryRecord:
    return DeliveryRecord(**{k: v for k, v in row.items() if k != "lease_token"})


@dataclass(frozen=True)
class AttemptResult:
    """What one finished attempt changes: the delivery's row (fenced by the claim's lease token)
    and one new row of its attempt history."""

    claim: Claim
    worker: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    state: DeliveryState
    next_attempt_at: datetime | None
    receipt_no: str | None
    partner_code: str | None
    message: str
    http_status: int | None
    mapping_version: str | None
    #: the attempt's outcome is in doubt: the row says :data:`OUTCOME_UNKNOWN`, the attempt
    #: row keeps ``outcome``
    outcome_unknown: bool = False
    #: digests of the exact bytes sent and received (the audit log's attempt record)
    request: audit.Digest | None = None
    reply: audit.Digest | None = None


def delivery_from_row(row: Any) -> DeliveryRecord:
    m = row._mapping
    return DeliveryRecord(
        id=m["id"], case_id=m["case_id"], partner=m["partner"], item_nos=list(m["item_nos"]),
        region=m["region"], route_rule=m["route_rule"], mapping=m["mapping"],
        mapping_version=m["mapping_version"], idempotency_key=m["idempotency_key"],
        state=DeliveryState(m["state"]), attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        first_attempt_at=m["first_attempt_at"], receipt_no=m["receipt_no"],
        partner_status=m["partner_status"], last_outcome=m["last_outcome"],
        last_code=m["last_code"], last_message=m["last_message"], created_at=m["created_at"],
        updated_at=m["updated_at"], delivered_at=m["delivered_at"],
        lease_owner=m["lease_owner"], lease_expires_at=m["lease_expires_at"],
        attempts_base=m["attempts_base"], replays=m["replays"], kind=m["kind"],
        payload=m["payload"], result=m["result"], status_at=m["status_at"],
        status_checked_at=m["status_checked_at"],
    )


def _counts_query(states: Collection[DeliveryState] | None) -> Any:
    """(state, partner, count) of the deliveries in ``states`` (None: all), grouped in the order
    of ``ix_deliveries_due`` so that SQLite counts along the index without sorting."""
    query = select(deliveries.c.state, deliveries.c.partner, func.count())
    if states is not None:
        query = query.where(deliveries.c.state.in_(sorted(states)))
    return query.group_by(deliveries.c.state, deliveries.c.partner)


class Store:
    """All persistence. Construct with an engine; the schema is managed by migrations.

    ``db`` is the one door to the database (:class:`gateway.store.db.Database`): the dead-letter
    queue (:class:`gateway.store.dlq.DeadLetters`) and the breaker rows
    (:class:`gateway.store.breakers.BreakerRows`) take this store and write through the same
    door, so on SQLite every writer of the process takes the same turn. Every method raises
    :class:`~gateway.errors.StoreError` when the database fails.
    """

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 128,
                 seal_keys: sealing.Keyring | None = None) -> None:
        # bodies and payloads sealed at rest with these keys, else the environment's (if any)
        sealing.activate(seal_keys or sealing.Keyring.from_env())
        self.db = Database(engine)
        #: concurrent writes of the same kind share a transaction (gateway.store.batching)
        self._case_writes: GroupCommit[tuple[NewCase, datetime], SubmitResult] = GroupCommit(
            self._store_cases, max_batch=max_batch, name="store case")
        #: when this instance last deleted expired nonces in a case transaction (Unix seconds)
        self._nonces_pruned = float("-inf")
        self._result_writes: GroupCommit[AttemptResult, bool] = GroupCommit(
            self._record_results, max_batch=max_batch, name="record attempt")
        #: built once: a statement object keeps its cache key (see gateway.store.upsert)
        self._new_cases = (self._insert(cases)
                           .on_conflict_do_nothing(index_elements=[cases.c.application_no])
                           .returning(cases.c.id))

    @property
    def engine(self) -> AsyncEngine:
        return self.db.engine

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        async with self.db.read("ping") as conn:
            await conn.execute(text("SELECT 1"))

    # -- intake ------------------------------------------------------------------------------
    async def submit_case(self, new: NewCase, *, now: datetime | None = None) -> SubmitResult:
        """Store a case and its planned deliveries, or find the existing one; return once the
        transaction holding it has committed.

        Concurrent submissions share one transaction (:class:`~gateway.store.batching.GroupCommit`,
        :meth:`_store_cases`). The unique application number makes a second submission (even a
        concurrent one, on any instance) return the first case; the caller compares
        ``body_hash`` to tell a replay from a conflict.
        """
        return await self._case_writes.submit((new, now or utcnow()))

    async def _store_cases(self, batch: Sequence[tuple[NewCase, datetime]]
                           ) -> list[SubmitResult | BaseException]:
        """One transaction for a batch of new cases: the submissions' nonces first (one
        ``INSERT … ON CONFLICT DO UPDATE … WHERE expired RETURNING``, :func:`claim_nonces`): a
        case whose nonce was already used is not stored and is answered :class:`ReplayedNonce`.
        Then ``INSERT … ON CONFLICT (application_no) DO NOTHING RETURNING id`` says which cases
        were new; only their deliveries are inserted. A case whose number was taken (earlier, by
        another instance meanwhile, or by an earlier copy in this very batch) is answered as the
        stored case once the batch has committed."""
        case_ids = [str(uuid.uuid4()) for _ in batch]
        nonce_first: dict[tuple[str, str], int] = {}
        nonce_rows: list[dict[str, Any]] = []
        for i, (new, _) in enumerate(batch):
            n = new.nonce
            if n is not None and (n.scope, n.nonce) not in nonce_first:
                nonce_first[(n.scope, n.nonce)] = i
                nonce_rows.append({"scope": n.scope, "nonce": n.nonce,
                                   "expires_at": n.expires_at})
        moment = utcnow()
        prune = bool(nonce_rows) and moment.timestamp() - self._nonces_pruned >= NONCE_PRUNE_EVERY
        if prune:
            self._nonces_pruned = moment.timestamp()
        insert_nonce = self._insert
        first: dict[str, int] = {}
        planned: dict[str, list[dict[str, Any]]] = {}
        stmt = self._new_cases

        def store(conn: Connection) -> tuple[set[str], set[int]]:
            if prune:
                prune_nonces(conn, moment)
            fresh = claim_nonces(conn, insert_nonce, nonce_rows, moment)
            replayed: set[int] = set()
            case_rows: list[dict[str, Any]] = []
            for i, (new, now) in enumerate(batch):
                n = new.nonce
                if n is not None and (nonce_first[(n.scope, n.nonce)] != i
                                      or (n.scope, n.nonce) not in fresh):
                    replayed.add(i)
                    continue
                if new.application_no in first:
                    continue
                first[new.application_no] = i
                case_id = case_ids[i]
                case_rows.append(dict(  # noqa: C408 - the columns, as keywords
                    id=case_id, application_no=new.application_no, body=new.body,
                    body_hash=new.body_hash, correlation_id=new.correlation_id,
                    home_items=list(new.home_items), received_at=now,
                    submitted_by=new.submitted_by))
                planned[case_id] = [_delivery_row(case_id, d, now) for d in new.deliveries]
            # in application-number order: concurrent batches of two instances holding the same
            # numbers take their unique-index locks in one order (no deadlock on PostgreSQL)
            case_rows.sort(key=lambda r: r["application_no"])
            new_ids = set(conn.execute(stmt, case_rows).scalars()) if case_rows else set()
            rows = [r for case_id in new_ids for r in planned[case_id]]
            if rows:
                conn.execute(_NEW_DELIVERIES, rows)
            audit.append(conn, [audit.intake(r, len(planned[r["id"]])) for r in case_rows
                                if r["id"] in new_ids])
            return new_ids, replayed
        inserted, replayed = await self.db.write_sync("store case", store)
        out: list[SubmitResult | BaseException] = []
        for i, (new, now) in enumerate(batch):
            if i in replayed:
                assert new.nonce is not None
                out.append(ReplayedNonce(new.nonce.scope))
                continue
            case_id = case_ids[i]
            if first[new.application_no] == i and case_id in inserted:
                out.append(SubmitResult(CaseRecord(
                    id=case_id, application_no=new.application_no, body=new.body,
                    body_hash=new.body_hash, correlation_id=new.correlation_id,
                    home_items=list(new.home_items), received_at=now,
                    deliveries=[_record(r) for r in planned[case_id]],
                    submitted_by=new.submitted_by), created=True))
                continue
            try:
                existing = await self.find_case_by_application_no(new.application_no)
            except StoreError as e:
                out.append(e)
                continue
            # gone again between the insert and this read: only a purge does that
            out.append(SubmitResult(existing, created=False) if existing is not None else
                       StoreError("store case", "the case it duplicates was removed meanwhile"))
        return out

    def _insert(self, table: Table) -> Any:
        """``INSERT`` with the dialect's ``ON CONFLICT`` clause (SQLite ≥ 3.35 and PostgreSQL)."""
        return insert_for(self.engine.dialect.name)(table)

    # -- reads ---------------------------------------------------------------------------------
    async def find_case_by_application_no(self, application_no: str) -> CaseRecord | None:
        async with self.db.read("find case") as conn:
            row = (await conn.execute(select(cases.c.id).where(
                cases.c.application_no == application_no))).first()
        return await self.get_case(row.id) if row else None

    async def get_case(self, case_id: str, *, with_history: bool = False) -> CaseRecord | None:
        async with self.db.read("get case") as conn:
            row = (await conn.execute(select(cases).where(cases.c.id == case_id))).first()
            if row is None:
                return None
            # the case's own deliveries; its status pushes are in its status history
            drows = (await conn.execute(
                select(*DELIVERY_COLUMNS).where(deliveries.c.case_id == case_id,
                                                deliveries.c.kind == "case")
                .order_by(deliveries.c.created_at, deliveries.c.partner, deliveries.c.id))).all()
            dels = [delivery_from_row(r) for r in drows]
            if with_history and dels:
                hist = await self._history(conn, [d.id for d in dels])
                dels = [DeliveryRecord(**{**d.__dict__, "history": hist.get(d.id, [])})
                        for d in dels]
        m = row._mapping
        return CaseRecord(id=m["id"], application_no=m["application_no"], body=m["body"],
                          body_hash=m["body_hash"], correlation_id=m["correlation_id"],
                          home_items=list(m["home_items"]), received_at=m["received_at"],
                          deliveries=dels, submitted_by=m["submitted_by"])

    async def _history(self, conn: AsyncConnection,
                       ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        rows = (await conn.execute(select(attempts).where(attempts.c.delivery_id.in_(ids))
                                   .order_by(attempts.c.delivery_id, attempts.c.attempt_no))).all()
        out: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            m = dict(r._mapping)
            out.setdefault(m.pop("delivery_id"), []).append(m)
        return out

    async def delivery_counts(self, states: Collection[DeliveryState] | None = None
                              ) -> dict[tuple[str, DeliveryState], int]:
        """(partner, state) → count, for metrics gauges, the console and the demo's progress.

        ``states``: only those. The open states (pending, in flight, dead) are a range of
        ``ix_deliveries_due (state, partner, …)`` that grows with the backlog only; every state
        together is the whole table, which grows with every case ever delivered."""
        async with self.db.read("count deliveries") as conn:
            rows = (await conn.execute(_counts_query(states))).all()
        return {(p, DeliveryState(s)): n for s, p, n in rows}

    # -- the worker's queries -----------------------------------------------------------------
    @staticmethod
    def _due(now: datetime) -> Any:
        state = deliveries.c.state
        return or_(and_(state == DeliveryState.PENDING, deliveries.c.next_attempt_at <= now),
                   and_(state == DeliveryState.IN_FLIGHT, deliveries.c.lease_expires_at < now))

    async def due_partners(self, now: datetime | None = None) -> set[str]:
        """Partners with at least one due delivery: one cheap read, so a worker asks SQLite for
        its write lock (and PostgreSQL for row locks) only where there is work. Its cost does
        not grow with the backlog or the history: :data:`_DUE_PARTNERS`."""
        async with self.db.read("find due partners") as conn:
            rows = await conn.execute(_DUE_PARTNERS, {"now": now or utcnow()})
            return {r[0] for r in rows}

    @staticmethod
    def _claim_params(worker: str, token: str, now: datetime, lease_seconds: float,
                      **scope: Any) -> dict[str, Any]:
        """The values of a :func:`_claim_statement` execution."""
        return {"c_now": now, "c_worker": worker, "c_token": token,
                "c_expires": now + timedelta(seconds=lease_seconds), **scope}

    async def claim_due(self, worker: str, *, limit: int, lease_seconds: float,
                        now: datetime | None = None,
                        partners: Sequence[str] | None = None,
                        check_first: bool = True) -> list[Claim]:
        """Lease up to ``limit`` due deliveries to ``worker`` in one atomic statement.

        ``check_first=False`` skips the read that avoids an idle write (the caller has just
        asked :meth:`due_partners`)."""
        now = now or utcnow()
        due = self._due(now)
        if partners is not None:
            due = and_(due, deliveries.c.partner.in_(list(partners)))
        if check_first:
            # idle polls must not take SQLite's write lock
            async with self.db.read("look for due deliveries") as conn:
                found = await conn.execute(select(deliveries.c.id).where(due).limit(1))
                if found.first() is None:
                    return []
        token = str(uuid.uuid4())
        stmt = _claim_statement(limit, "any" if partners is None else "some")
        params = self._claim_params(worker, token, now, lease_seconds,
                                    **({} if partners is None else {"c_partners": list(partners)}))
        async with self.db.write("claim deliveries") as conn:
            rows = (await conn.execute(stmt, params)).all()
        return await self._with_bodies([delivery_from_row(r) for r in rows], token)

    async def claim_for_partners(self, worker: str, limits: Mapping[str, int], *,
                                 lease_seconds: float,
                                 now: datetime | None = None) -> dict[str, list[Claim]]:
        """Lease up to ``limits[p]`` due deliveries of each partner ``p`` in one transaction:
        one claim statement per partner (each atomic as in :meth:`claim_due`), one commit."""
        now = now or utcnow()
        token = str(uuid.uuid4())
        found: dict[str, list[DeliveryRecord]] = {}
        statements = {partner: (_claim_statement(limit, "one"), self._claim_params(
            worker, token, now, lease_seconds, c_partner=partner))
            for partner, limit in limits.items() if limit > 0}

        def claim(conn: Connection) -> dict[str, list[Any]]:
            return {partner: list(conn.execute(stmt, params).all())
                    for partner, (stmt, params) in statements.items()}
        for partner, rows in (await self.db.write_sync("claim deliveries", claim)).items():
            found[partner] = [delivery_from_row(r) for r in rows]
        claims = await self._with_bodies([d for ds in found.values() for d in ds], token)
        out: dict[str, list[Claim]] = {p: [] for p in limits}
        for c in claims:
            out[c.delivery.partner].append(c)
        return out

    async def _with_bodies(self, dels: list[DeliveryRecord], token: str) -> list[Claim]:
        """The claims of leased deliveries, with their cases' bodies.

        A case's body never changes once stored: it is read after the claim has committed, so
        decoding the bodies does not hold the write turn (SQLite) every writer waits for."""
        if not dels:
            return []
        async with self.db.read("read claimed cases") as conn:
            case_rows = (await conn.execute(
                select(cases.c.id, cases.c.body, cases.c.correlation_id)
                .where(cases.c.id.in_({d.case_id for d in dels})))).all()
        bodies = {r.id: (r.body, r.correlation_id) for r in case_rows}
        # a case purged meanwhile took its deliveries with it (ON DELETE CASCADE)
        return [Claim(d, token, *bodies[d.case_id]) for d in dels if d.case_id in bodies]

    async def finish_attempt(self, claim: Claim, *, worker: str, started_at: datetime,
                             outcome: str, state: DeliveryState, next_attempt_at: datetime | None,
                             receipt_no: str | None = None, partner_code: str | None = None,
                             message: str | None = None, http_status: int | None = None,
                             mapping_version: str | None = None,
                             now: datetime | None = None,
                             outcome_unknown: bool = False,
                             request: audit.Digest | None = None,
                             reply: audit.Digest | None = None) -> bool:
        """Record one attempt and the delivery's new state; False if the lease was lost.

        Results finishing at the same time share one transaction (:meth:`_record_results`);
        this returns once that has committed."""
        return await self._result_writes.submit(AttemptResult(
            claim=claim, worker=worker, started_at=started_at, finished_at=now or utcnow(),
            outcome=outcome, state=state, next_attempt_at=next_attempt_at,
            receipt_no=receipt_no, partner_code=partner_code, message=(message or "")[:2000],
            http_status=http_status, mapping_version=mapping_version,
            outcome_unknown=outcome_unknown, request=request, reply=reply))

    async def _record_results(self, batch: Sequence[AttemptResult]) -> list[bool]:
        """One transaction for a batch of results, in three statements whatever its size: read
        the batch's rows still leased under each claim's token (``FOR UPDATE`` on PostgreSQL,
        the write turn on SQLite, so nobody takes a lease over in between), update those rows
        (one ``executemany``; each row's update is still fenced by its own lease token), and
        insert their attempt rows. A result whose lease was lost changes and records nothing."""
        tokens = {r.claim.delivery.id: r.claim.lease_token for r in batch}
        history: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        audited: list[tuple[AttemptResult, int]] = []
        d = deliveries.c
        select_held = (select(d.id, d.lease_token, d.attempts, d.first_attempt_at,
                              d.mapping_version, d.next_attempt_at, d.receipt_no, d.delivered_at,
                              d.partner_status)
                       .where(d.id.in_(list(tokens)), d.state == DeliveryState.IN_FLIGHT)
                       .with_for_update())

        def record(conn: Connection) -> dict[str, Any]:
            held = {row.id: row for row in conn.execute(select_held).all()
                    if row.lease_token == tokens[row.id]}
            for r in batch:
                row = held.get(r.claim.delivery.id)
                if row is None:
                    continue
                delivered = r.state is DeliveryState.DELIVERED
                changes.append({
                    "b_id": row.id, "b_token": row.lease_token, "state": r.state,
                    "attempts": row.attempts + 1, "lease_owner": None, "lease_token": None,
                    "lease_expires_at": None,
                    "last_outcome": OUTCOME_UNKNOWN if r.outcome_unknown else r.outcome,
                    "last_code": r.partner_code, "last_message": r.message,
                    "updated_at": r.finished_at,
                    "first_attempt_at": row.first_attempt_at or r.started_at,
                    "mapping_version": r.mapping_version or row.mapping_version,
                    "next_attempt_at": r.next_attempt_at or row.next_attempt_at,
                    "receipt_no": r.receipt_no if delivered else row.receipt_no,
                    "delivered_at": r.finished_at if delivered else row.delivered_at,
                    # a status a partner's callback applied before this receipt stays
                    "partner_status": (row.partner_status or CaseStatus.SUBMITTED) if delivered
                    else row.partner_status,
                })
                history.append(dict(  # noqa: C408 - the columns, as keywords
                    delivery_id=row.id, attempt_no=row.attempts + 1, worker=r.worker,
                    started_at=r.started_at, finished_at=r.finished_at, outcome=r.outcome,
                    http_status=r.http_status, partner_code=r.partner_code, message=r.message,
                    mapping_version=r.mapping_version))
                audited.append((r, row.attempts + 1))
            if changes:
                conn.execute(_fenced_update(tuple(k for k in changes[0]
                                                  if not k.startswith("b_"))), changes)
                conn.execute(_NEW_ATTEMPTS, history)
                audit.append(conn, [audit.attempt(r, n) for r, n in audited])
            return held
        held = await self.db.write_sync("record attempt", record)
        return [r.claim.delivery.id in held for r in batch]

    async def release(self, claim: Claim, *, now: datetime | None = None,
                      next_attempt_at: datetime | None = None,
                      outcome_unknown: bool = False) -> bool:
        """Give a claimed delivery back untouched (graceful shutdown before it was sent): due at
        once, or at ``next_attempt_at`` if given (an attempt whose result could not be stored).
        ``outcome_unknown``: its send was on the wire (:data:`OUTCOME_UNKNOWN`)."""
        now = now or utcnow()
        values: dict[str, Any] = {"state": DeliveryState.PENDING, "lease_owner": None,
                                  "lease_token": None, "lease_expires_at": None,
                                  "updated_at": now}
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        if outcome_unknown:
            values["last_outcome"] = OUTCOME_UNKNOWN
        async with self.db.write("release delivery") as conn:
            res = await conn.execute(update(deliveries).where(
                deliveries.c.id == claim.delivery.id,
                deliveries.c.lease_token == claim.lease_token).values(**values))
        return res.rowcount == 1
