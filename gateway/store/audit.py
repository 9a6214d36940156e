"""The audit log: one hash-chained record per message in or out, in the transaction of its change.

What is recorded (``audit_log.kind``), always in the same transaction as the state change, so a
change and its record commit together or not at all:

``intake``               a case stored (actor: the caller). A duplicate submission answered with
                         the stored case changes nothing and gets no record: the log records
                         changes and the messages that made them, and a client retrying the same
                         case must not grow a 12-month log (nor turn a read into a write).
``attempt``              one send to a partner, case or status push (actor: the worker): outcome,
                         HTTP status, partner code, and SHA-256 + size of the exact request and
                         reply bytes (:mod:`gateway.protocols.transport` captures them).
``status_event``         a status a partner reported (callback or poll; actor: the partner), with
                         the push it queued. A repeated event changes nothing: no record.
``inbound``              a case a partner submitted to Beijing, stored with its push to the city
                         platform (actor: ``partner:<name>``; :mod:`gateway.store.inbound`): the
                         request's digest, the receipt, the body's digest. A resend gets no record.
``dead_letter_replay``, ``dead_letter_discard``, ``operator_action`` (reload), and
``reconcile_redeliver``: what operators and reconcile runs did (actor: the operator / run).
``anchor``               written by :func:`prune`: where the kept chain starts.

No record holds a body, a name, an ID number or a free text: ids, codes, digests and sizes only,
so the log can be kept for its retention period (``audit.retention_days``, 12 months by default).

The chain. Each record carries ``seq`` (1, 2, 3 …), the previous record's hash and its own hash:
SHA-256 over a canonical JSON of all its fields and that previous hash (:func:`record_hash`).
One row of ``audit_head`` holds the last ``seq`` and hash; a writer locks it (``FOR UPDATE`` on
PostgreSQL; SQLite's write lock already makes every writer take turns) as the last step of its
transaction, so instances writing concurrently still form one total order, and the lock is held
only from the append to the commit. A group-commit batch appends all its records at once.

Never blocking delivery: an audit write failing fails its transaction, so the change it records
is not lost silently: it is retried as any failed write is (the caller's retry, the worker's
hand-back). Retention keeps the log from filling the disk: every gateway instance prunes past
``audit.retention_days`` by itself (:func:`keep_retention`), and ``gateway audit prune`` does it
on demand; pruning never blocks writers for long (one small transaction for the anchor, then
deletes in batches).

``gateway audit verify`` (:func:`verify`) walks the chain in ``seq`` order, in pages, and names the
first record that was altered (its hash does not match its fields), deleted (a gap, or a break
in the previous-hash link) or inserted (a link break, or a record beyond the head). Limits: whoever
can rewrite the database can rewrite the whole chain from a point on, head row included; publish
the head hash (``verify`` prints it) somewhere else to detect that.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import StoreError
from gateway.store.models import audit_head, audit_log
from gateway.store.types import utcnow

if TYPE_CHECKING:
    from gateway.store.repository import AttemptResult

GENESIS = "0" * 64
"""The previous hash of record 1."""

#: The fields a record's hash covers, in the canonical document (plus ``prev_hash``).
HASHED = ("seq", "at", "kind", "actor", "case_id", "delivery_id", "partner", "outcome",
          "http_status", "partner_code", "request_sha256", "request_bytes", "reply_sha256",
          "reply_bytes", "detail", "prev_hash")

ANCHOR = "anchor"
PAGE = 2000

log = logging.getLogger("gateway.store")


@dataclass(frozen=True)
class Digest:
    """SHA-256 and size of some exact bytes."""

    sha256: str
    size: int

    @classmethod
    def of(cls, data: bytes) -> Digest:
        return cls(hashlib.sha256(data).hexdigest(), len(data))


@dataclass(frozen=True)
class Entry:
    """One record to append; ``seq``, time and hashes are given by :func:`append`."""

    kind: str
    actor: str
    case_id: str | None = None
    delivery_id: str | None = None
    partner: str | None = None
    outcome: str | None = None
    http_status: int | None = None
    partner_code: str | None = None
    request: Digest | None = None
    reply: Digest | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def intake(case_row: Mapping[str, Any], deliveries: int) -> Entry:
    """The record of a stored case (its row as inserted): who sent it and the body's digest."""
    return Entry(kind="intake", actor=case_row.get("submitted_by") or "anonymous",
                 case_id=case_row["id"],
                 detail={"bodySha256": case_row["body_hash"], "deliveries": deliveries})


def attempt(result: AttemptResult, attempt_no: int) -> Entry:
    """The record of one recorded attempt: what was sent and answered, as digests."""
    d = result.claim.delivery
    return Entry(kind="attempt", actor=result.worker, case_id=d.case_id, delivery_id=d.id,
                 partner=d.partner, outcome=result.outcome, http_status=result.http_status,
                 partner_code=result.partner_code, request=result.request, reply=result.reply,
                 detail={"attempt": attempt_no, "deliveryKind": d.kind,
                         "state": str(result.state), "receiptNo": result.receipt_no})


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def record_hash(rec: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``rec``'s :data:`HASHED` fields: keys sorted, no
    whitespace, UTF-8 (orjson; the standard library's identical text for what orjson refuses),
    the time in ISO 8601 UTC with microseconds."""
    doc = {k: rec[k] for k in HASHED}
    doc["at"] = _iso(rec["at"])
    try:
        text = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(text).hexdigest()


#: The statements every append runs, built once: a statement object keeps its cache key, so
#: SQLAlchemy neither rebuilds nor re-keys them per transaction (that was a third of what
#: storing one case cost in the writer thread).
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
_APPEND = insert(audit_log)
_ADVANCE = (update(audit_head).where(audit_head.c.id == 1)
            .values(seq=bindparam("head_seq"), hash=bindparam("head_hash")))


def _lock_head(conn: Connection) -> tuple[int, str]:
    """The chain's head, locked until the transaction ends (created on first use)."""
    row = conn.execute(_HEAD).first()
    if row is None:
        # two first writers on PostgreSQL: one insert wins, the other waits on its row lock
        # and then finds it (the primary key refuses the second)
        ins = (insert(audit_head).values(id=1, seq=0, hash=GENESIS))
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert
            ins = pg_insert(audit_head).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing()
        conn.execute(ins)
        row = conn.execute(_HEAD).one()
    return int(row.seq), str(row.hash)


def append(conn: Connection, entries: Sequence[Entry], *, now: datetime | None = None) -> None:
    """Append ``entries`` to the chain inside the caller's transaction (call it last in the
    transaction: the head stays locked until the commit)."""
    if not entries:
        return
    seq, prev = _lock_head(conn)
    at = now or utcnow()
    rows: list[dict[str, Any]] = []
    for e in entries:
        seq += 1
        rec: dict[str, Any] = {
            "seq": seq, "at": at, "kind": e.kind, "actor": e.actor[:128], "case_id": e.case_id,
            "delivery_id": e.delivery_id, "partner": e.partner, "outcome": e.outcome,
            "http_status": e.http_status, "partner_code": e.partner_code,
            "request_sha256": e.request.sha256 if e.request else None,
            "request_bytes": e.request.size if e.request else None,
            "reply_sha256": e.reply.sha256 if e.reply else None,
            "reply_bytes": e.reply.size if e.reply else None,
            "detail": dict(e.detail), "prev_hash": prev}
        rec["hash"] = prev = record_hash(rec)
        rows.append(rec)
    conn.execute(_APPEND, rows)
    conn.execute(_ADVANCE, {"head_seq": seq, "head_hash": prev})


async def append_async(conn: AsyncConnection, entries: Sequence[Entry], *,
                       now: datetime | None = None) -> None:
    """:func:`append` on an async connection (the same transaction)."""
    if entries:
        await conn.run_sync(lambda sync: append(sync, entries, now=now))


# -- verify ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """What :func:`verify` found: ``problem`` is None when the chain is intact."""

    count: int
    first_seq: int | None
    head_seq: int
    head_hash: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


async def _pages(conn: AsyncConnection, after: int) -> AsyncIterator[Sequence[Any]]:
    """Every record with ``seq > after`` in order, a page at a time (keyset: never all in memory)."""
    while True:
        rows = (await conn.execute(select(audit_log).where(audit_log.c.seq > after)
                                   .order_by(audit_log.c.seq).limit(PAGE))).all()
        if not rows:
            return
        yield rows
        after = rows[-1].seq


async def verify(conn: AsyncConnection) -> Verdict:
    """Walk the chain from its start (the latest anchor's, or record 1) to the head.

    One snapshot throughout (PostgreSQL: ``REPEATABLE READ``; SQLite: the read transaction), so
    records appended while it walks are neither seen past the head nor reported as inserted."""
    if conn.dialect.name == "postgresql" and not conn.in_transaction():
        await conn.execution_options(isolation_level="REPEATABLE READ")
    head = (await conn.execute(select(audit_head.c.seq, audit_head.c.hash)
                               .where(audit_head.c.id == 1))).first()
    head_seq, head_hash = (int(head.seq), str(head.hash)) if head else (0, GENESIS)
    anchor = (await conn.execute(select(audit_log.c.seq, audit_log.c.detail)
                                 .where(audit_log.c.kind == ANCHOR)
                                 .order_by(audit_log.c.seq.desc()).limit(1))).first()
    expect, prev = 1, GENESIS
    if anchor is not None:
        through = anchor.detail.get("throughSeq")
        last = anchor.detail.get("lastHash")
        if isinstance(through, int) and isinstance(last, str):
            expect, prev = through + 1, last
    start, count, prev2 = expect, 0, None

    def verdict(problem: str | None) -> Verdict:
        return Verdict(count, start if count else None, head_seq, head_hash, problem)

    async for page in _pages(conn, expect - 1):
        for r in page:
            rec = dict(r._mapping)
            if rec["seq"] > head_seq:
                return verdict(f"record {rec['seq']} inserted: beyond the chain head "
                               f"({head_seq})")
            if rec["seq"] != expect:
                return verdict(f"record {expect} deleted: the next record present is "
                               f"{rec['seq']}")
            if rec["prev_hash"] != prev and rec["prev_hash"] == prev2:
                # it follows the record before the previous one (renumbered or not)
                return verdict(f"record {expect - 1} inserted: record {expect} follows "
                               f"record {expect - 2}")
            if record_hash(rec) != rec["hash"]:
                return verdict(f"record {expect} altered: its hash does not match its fields")
            if rec["prev_hash"] != prev:
                return verdict(
                    f"record {expect} does not follow record {expect - 1}: its previous-hash "
                    f"link is broken (a record before it was altered, deleted or inserted)")
            prev2, prev, expect, count = prev, rec["hash"], expect + 1, count + 1
    if expect - 1 < head_seq:
        return verdict(f"record {expect} deleted: the chain head names record {head_seq}")
    if head_seq and prev != head_hash:
        return verdict(f"record {head_seq} does not match the chain head's hash (the head "
                       f"or the last record was altered)")
    return verdict(None)


# -- prune ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pruned:
    through_seq: int
    count: int
    anchor_seq: int | None


def _anchor(conn: Connection, before: datetime, actor: str) -> tuple[int, int]:
    """Append the anchor for every record older than ``before`` (a prefix of the chain: it stops
    at the first record that is not); (through seq, records to delete). (0, 0): nothing to do."""
    head_seq, _ = _lock_head(conn)
    first_kept = conn.execute(select(func.min(audit_log.c.seq))
                              .where(audit_log.c.at >= before)).scalar()
    through = head_seq if first_kept is None else int(first_kept) - 1
    prior = conn.execute(select(audit_log.c.detail).where(audit_log.c.kind == ANCHOR)
                         .order_by(audit_log.c.seq.desc()).limit(1)).scalar()
    done = int(prior.get("throughSeq", 0)) if isinstance(prior, dict) else 0
    if through <= done:
        return 0, 0
    last = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == through)).scalar()
    if last is None:
        raise ValueError(f"audit record {through} is missing: run `gateway audit verify`")
    count = int(conn.execute(select(func.count()).select_from(audit_log).where(
        audit_log.c.seq > done, audit_log.c.seq <= through)).scalar_one())
    append(conn, [Entry(kind=ANCHOR, actor=actor, detail={
        "throughSeq": through, "lastHash": last, "pruned": count, "before": _iso(before)})])
    return through, count


async def prune(db: Any, before: datetime, *, actor: str = "audit prune",
                batch: int = 10_000) -> Pruned:
    """Delete every record older than ``before`` behind an anchor (module docstring).

    ``db`` is the store's :class:`~gateway.store.db.Database`. The anchor commits first, in one
    small transaction; the records it covers are then deleted in batches of ``batch``, each its
    own short transaction, so intake and delivery wait at most for one batch. An interrupted
    prune leaves records that :func:`verify` skips (they are before the anchor's start) and the
    next prune deletes."""
    through, count = await db.write_sync("audit anchor", lambda c: _anchor(c, before, actor))
    anchor = None
    if through:
        async with db.read("audit anchor") as conn:
            anchor = (await conn.execute(select(func.max(audit_log.c.seq))
                                         .where(audit_log.c.kind == ANCHOR))).scalar()
    anchor_seq = int(anchor) if anchor is not None else None
    bound = through
    if bound == 0:  # nothing new to anchor: finish what an interrupted prune left
        async with db.read("audit anchor") as conn:
            prior = (await conn.execute(select(audit_log.c.detail)
                                        .where(audit_log.c.kind == ANCHOR)
                                        .order_by(audit_log.c.seq.desc()).limit(1))).scalar()
        bound = int(prior.get("throughSeq", 0)) if isinstance(prior, dict) else 0
    while bound:
        def one_batch(conn: Connection) -> int:
            ids = select(audit_log.c.seq).where(audit_log.c.seq <= bound).order_by(
                audit_log.c.seq).limit(batch).scalar_subquery()
            return int(conn.execute(delete(audit_log).where(audit_log.c.seq.in_(ids))).rowcount)
        if await db.write_sync("audit prune", one_batch) < batch:
            break
    return Pruned(through, count, anchor_seq)


async def keep_retention(db: Any, retention_days: int, *, first_delay: float = 300.0,
                         interval: float = 6 * 3600.0) -> None:
    """Prune past ``retention_days`` now and then, for as long as the gateway runs (every
    instance may: a prune that finds nothing new to anchor only finishes leftover deletes). A
    failing prune is logged and tried again next time; it never stops anything else."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            done = await prune(db, utcnow() - timedelta(days=retention_days), batch=2000)
            if done.count:
                log.info("audit log: pruned %d records through %d (anchor %s)", done.count,
                         done.through_seq, done.anchor_seq)
        except (StoreError, ValueError) as e:
            log.error("audit log: prune failed (%s); trying again in %.0f s", e, interval)
        await asyncio.sleep(interval)


__all__ = ["ANCHOR", "GENESIS", "Digest", "Entry", "Pruned", "Verdict", "append",
           "append_async", "attempt", "intake", "keep_retention", "prune", "record_hash", "verify"]
