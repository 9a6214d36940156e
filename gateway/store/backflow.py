"""National data back-flow in the store: records deduplicated by version, a checkpoint per
source, and the batches for the city platform queued in the outbox — one transaction per page.

:meth:`BackflowStore.store_page` is the whole of the puller's durability:

1. the source's checkpoint row is locked (``FOR UPDATE``; SQLite's write turn) and must still
   hold the cursor the page was asked with — another puller that moved on fences this one out;
2. the page's records are compared with the stored versions of their keys (one read): a new
   key is inserted, a higher version replaces, an older or equal one is ignored and counted
   (within the page too: a key twice keeps its highest version);
3. the records that changed are queued for the city platform as ``deliveries`` rows of kind
   ``backflow`` (the batch in ``payload``, its id the idempotency key the platform dedupes on),
   so the worker sends them with its retries, breaker, dead letters and replay;
4. the checkpoint moves to the page's next cursor.

All of it commits together or not at all: a SIGKILL between pages resumes at the first page not
stored, and a page stored twice (a repeat, a resend) changes nothing the second time.

The batches of a source hang off one anchor row of ``cases`` (``BACKFLOW-<SOURCE>``, migration
0006 says why), which also names them in the dead-letter queue.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, String, bindparam, select, update
from sqlalchemy import any_ as sa_any
from sqlalchemy.dialects.postgresql import ARRAY

from gateway.store import audit
from gateway.store.models import backflow_checkpoints, backflow_records, cases, deliveries
from gateway.store.repository import Store
from gateway.store.states import DeliveryState
from gateway.store.types import utcnow

KIND_BACKFLOW = "backflow"
BATCH_MAPPING = "backflow/city-batch"
REGION = "110000000000"
_ANCHOR_NAMESPACE = uuid.UUID("0c5e0d1a-8b7e-4c55-9d0b-6a1f2e3d4c5b")


class Fenced(Exception):
    """The checkpoint no longer holds the cursor this page was asked with (another puller)."""


@dataclass(frozen=True)
class Mapped:
    """One record as mapped for the city platform: kind, natural key, version, document."""

    kind: str
    key: str
    version: int
    body: dict[str, Any]

    @property
    def rkey(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True)
class PageResult:
    records: int
    kept: int
    replaced: int
    ignored: int
    batches: int


@dataclass(frozen=True)
class Checkpoint:
    source: str
    cursor: str | None
    pages: int
    records: int
    kept: int
    replaced: int
    ignored: int
    batches: int
    done: bool
    updated_at: datetime | None


def anchor_id(source: str) -> str:
    """The id of the anchor case row of ``source``'s batches (stable)."""
    return str(uuid.uuid5(_ANCHOR_NAMESPACE, source))


def _anchor_row(source: str, now: datetime) -> dict[str, Any]:
    return {"id": anchor_id(source), "application_no": f"BACKFLOW-{source.upper()}",
            "body": {"backflow": source}, "body_hash": "", "correlation_id": f"backflow-{source}",
            "home_items": [], "received_at": now}


def _batch_row(source: str, partner: str, batch_id: str, records: list[dict[str, Any]],
               now: datetime) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "case_id": anchor_id(source), "partner": partner,
            "item_nos": [], "region": REGION, "route_rule": f"backflow {source}",
            "mapping": BATCH_MAPPING, "mapping_version": None, "idempotency_key": batch_id,
            "state": DeliveryState.PENDING, "attempts": 0, "next_attempt_at": now,
            "created_at": now, "updated_at": now, "attempts_base": 0, "replays": 0,
            "kind": KIND_BACKFLOW,
            "payload": {"batchId": batch_id, "source": source, "records": records}}


class BackflowStore:
    """The back-flow tables of ``store``, written through its one door (``store.db``). Every
    method raises :class:`~gateway.errors.StoreError` when the database fails."""

    def __init__(self, store: Store, *, partner: str = "city", batch_size: int = 1000) -> None:
        self.store = store
        self.partner = partner
        self.batch_size = batch_size
        self._insert = store._insert  # noqa: SLF001 - the dialect's INSERT … ON CONFLICT

    async def checkpoint(self, source: str) -> Checkpoint | None:
        async with self.store.db.read("read back-flow checkpoint") as conn:
            row = (await conn.execute(select(backflow_checkpoints).where(
                backflow_checkpoints.c.source == source))).first()
        return Checkpoint(**row._mapping) if row is not None else None

    async def checkpoints(self) -> list[Checkpoint]:
        async with self.store.db.read("read back-flow checkpoints") as conn:
            rows = (await conn.execute(select(backflow_checkpoints)
                                       .order_by(backflow_checkpoints.c.source))).all()
        return [Checkpoint(**r._mapping) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Records held per kind."""
        from sqlalchemy import func
        async with self.store.db.read("count back-flow records") as conn:
            rows = (await conn.execute(select(backflow_records.c.kind, func.count())
                                       .group_by(backflow_records.c.kind))).all()
        return {k: n for k, n in rows}

    async def store_page(self, source: str, cursor: str | None, next_cursor: str | None,
                         records: Sequence[Mapped], *, now: datetime | None = None) -> PageResult:
        """Store one page and move the checkpoint, in one transaction (module docstring).
        :class:`Fenced` if the checkpoint does not hold ``cursor``."""
        now = now or utcnow()
        return await self.store.db.write_sync(
            "store back-flow page",
            lambda conn: self._page(conn, source, cursor, next_cursor, records, now))

    def _page(self, conn: Connection, source: str, cursor: str | None, next_cursor: str | None,
              records: Sequence[Mapped], now: datetime) -> PageResult:
        cp = backflow_checkpoints.c
        row = conn.execute(select(backflow_checkpoints).where(cp.source == source)
                           .with_for_update()).first()
        if row is None:
            conn.execute(self._insert(cases).values(_anchor_row(source, now))
                         .on_conflict_do_nothing(index_elements=[cases.c.id]))
            conn.execute(backflow_checkpoints.insert().values(
                source=source, cursor=None, pages=0, records=0, kept=0, replaced=0, ignored=0,
                batches=0, done=False, updated_at=now))
            row = conn.execute(select(backflow_checkpoints).where(cp.source == source)).one()
        if row.cursor != cursor:
            raise Fenced(f"checkpoint of {source} is at {row.cursor!r}, not {cursor!r}")
        seq = row.pages + 1
        # the newest of each key within the page; equal versions: the first stays
        best: dict[str, Mapped] = {}
        for m in records:
            had = best.get(m.rkey)
            if had is None or m.version > had.version:
                best[m.rkey] = m
        ignored = len(records) - len(best)
        stored = _versions(conn, list(best))
        rows: list[tuple[Any, ...]] = []
        changed: list[dict[str, Any]] = []
        new = 0
        when = _driver_time(conn, now)
        # the column's own bind processing: sealed when sealing is on, then JSON text
        to_driver = backflow_records.c.body.type.bind_processor(conn.dialect) or _json_text
        for rkey, m in best.items():
            old = stored.get(rkey)
            if old is not None and old >= m.version:
                ignored += 1
                continue
            new += old is None
            rows.append((rkey, source, m.kind, m.key, m.version, seq, to_driver(m.body), when))
            changed.append(m.body)
        if rows:
            # one driver-level executemany for new and newer alike: the rows are plain tuples
            # (bodies serialised once here), so no per-row work in SQLAlchemy's statement
            # machinery; the WHERE keeps a newer stored version even if the read above were
            # stale (PostgreSQL: asyncpg pipelines the executions; one INSERT … SELECT FROM
            # unnest() of the page's columns measured no faster, bench/README.md)
            conn.exec_driver_sql(_upsert_sql(conn.dialect.name), rows)
        batches = self._queue(conn, source, f"{source}-{seq:09d}", changed, now)
        conn.execute(update(backflow_checkpoints).where(cp.source == source).values(
            cursor=next_cursor if next_cursor is not None else cursor,
            pages=seq, records=row.records + len(records), kept=row.kept + new,
            replaced=row.replaced + len(rows) - new, ignored=row.ignored + ignored,
            batches=row.batches + batches, done=next_cursor is None, updated_at=now))
        # the page in the audit chain, in its own transaction: which (key, version) pairs were
        # applied, as a digest (no record bodies in the audit log), and the counts
        applied = "\n".join(f"{r[0]}:{r[4]}" for r in rows).encode()
        audit.append(conn, [audit.Entry(
            kind="backflow.page", actor=f"backflow:{source}", partner=source,
            request=audit.Digest.of(applied),
            detail={"page": seq, "cursor": cursor, "nextCursor": next_cursor,
                    "records": len(records), "kept": new, "replaced": len(rows) - new,
                    "ignored": ignored, "batches": batches})], now=now)
        return PageResult(len(records), new, len(rows) - new, ignored, batches)

    def _queue(self, conn: Connection, source: str, prefix: str, bodies: list[dict[str, Any]],
               now: datetime) -> int:
        rows = [_batch_row(source, self.partner, f"{prefix}-{n:04d}",
                           bodies[i:i + self.batch_size], now)
                for n, i in enumerate(range(0, len(bodies), self.batch_size), start=1)]
        if rows:
            conn.execute(deliveries.insert(), rows)
        return len(rows)

    async def records(self, source: str, *, kind: str | None = None, first_seq: int | None = None,
                      last_seq: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """The stored records of ``source`` (mapped bodies), streamed, in page order."""
        r = backflow_records.c
        stmt = select(r.body).where(r.source == source).order_by(r.seq, r.rkey)
        if kind is not None:
            stmt = stmt.where(r.kind == kind)
        if first_seq is not None:
            stmt = stmt.where(r.seq >= first_seq)
        if last_seq is not None:
            stmt = stmt.where(r.seq <= last_seq)
        async with self.store.db.read("read back-flow records") as conn:
            async for row in await conn.stream(stmt):
                yield row.body

    async def replay(self, source: str, *, kind: str | None = None, first_seq: int | None = None,
                     last_seq: int | None = None) -> tuple[int, int]:
        """Queue the stored records (a kind, a range of pages) for the city platform again, in
        new batches: (records, batches). The platform keeps the newest version of each key, so
        a replayed record it holds already changes nothing there."""
        tag = uuid.uuid4().hex[:8]
        total = batches = 0
        chunk: list[dict[str, Any]] = []

        async def flush() -> None:
            nonlocal batches, chunk
            now = utcnow()
            prefix = f"{source}-replay-{tag}-{batches + 1:06d}"
            await self.store.db.write_sync(
                "queue back-flow replay",
                lambda conn: self._queue(conn, source, prefix, chunk, now))
            batches += 1
            chunk = []
        async for body in self.records(source, kind=kind, first_seq=first_seq,
                                       last_seq=last_seq):
            chunk.append(body)
            total += 1
            if len(chunk) >= self.batch_size:
                await flush()
        if chunk:
            await flush()
        return total, batches

    async def outbox(self, source: str) -> dict[str, int]:
        """The source's batches by delivery state."""
        from sqlalchemy import func
        d = deliveries.c
        async with self.store.db.read("count back-flow batches") as conn:
            rows = (await conn.execute(select(d.state, func.count())
                                       .where(d.case_id == anchor_id(source),
                                              d.kind == KIND_BACKFLOW)
                                       .group_by(d.state))).all()
        return {str(s): n for s, n in rows}


_COLUMNS = ("rkey", "source", "kind", "natural_key", "version", "seq", "body", "updated_at")


@functools.cache
def _upsert_sql(dialect: str) -> str:
    marks = (", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1)) if dialect == "postgresql"
             else ", ".join("?" * len(_COLUMNS)))
    return (f"INSERT INTO backflow_records ({', '.join(_COLUMNS)}) VALUES ({marks}) "
            "ON CONFLICT (rkey) DO UPDATE SET version = excluded.version, seq = excluded.seq, "
            "body = excluded.body, updated_at = excluded.updated_at "
            "WHERE backflow_records.version < excluded.version")


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _driver_time(conn: Connection, now: datetime) -> Any:
    """``now`` as the driver takes it for a UTCDateTime column (naive UTC text on SQLite)."""
    process = backflow_records.c.updated_at.type.bind_processor(conn.dialect)
    return process(now) if process is not None else now


def _versions(conn: Connection, rkeys: list[str]) -> dict[str, int]:
    """The stored version of each of ``rkeys`` that is stored. PostgreSQL gets one array
    parameter (``= ANY``): an ``IN`` list of hundreds of parameters was planned as a scan of
    the whole table, seconds per page at 10,000 rows; SQLite gets them as one JSON array."""
    r = backflow_records.c
    if conn.dialect.name == "postgresql":
        stmt = select(r.rkey, r.version).where(
            r.rkey == sa_any(bindparam("keys", type_=ARRAY(String()))))
        return {k: v for k, v in conn.execute(stmt, {"keys": rkeys})}
    # SQLite: the keys as one JSON array parameter (json_each), one statement for the page; an
    # IN list of 500 parameters took SQLAlchemy's expansion of each one, 8 µs a record
    rows = conn.exec_driver_sql(
        "SELECT rkey, version FROM backflow_records WHERE rkey IN "
        "(SELECT value FROM json_each(?))", (orjson.dumps(rkeys).decode(),))
    return {k: v for k, v in rows}


__all__ = ["BATCH_MAPPING", "KIND_BACKFLOW", "BackflowStore", "Checkpoint", "Fenced", "Mapped",
           "PageResult", "anchor_id"]
