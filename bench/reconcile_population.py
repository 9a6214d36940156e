"""The gateway's side of a generated national export (:func:`gateway.simulators.export.
generated_record`), written straight into a migrated database with drift injected on purpose.

Record ``i`` of the export becomes a case (application number = the record's
``localProjectNo``) and one delivered delivery to ``national`` with the record's receipt,
idempotency key, status, result and time, so both sides agree except where ``drift_every`` says
(``i % drift_every``; 997 by default, a prime, so the drift falls on every kind of status:
the generated status is a function of ``i % 1000``):

* ``== 3``  an extra delivered case (receipt ``<receipt>X``) the export never lists: missing at
  partner, old enough to be re-delivered
* ``== 7``  ours RECEIVED an hour earlier while the partner is further: behind (skipped where the
  partner itself says RECEIVED)
* ``== 11`` ours FINISHED/APPROVED while the partner is not terminal: ahead
* ``== 13`` not inserted: a case the partner lists and we do not have (unknown)

Bulk writes, not the store's API: ``sqlite3.executemany`` on SQLite (datetimes in the text form
the store's UTCDateTime keeps), ``COPY`` through asyncpg on PostgreSQL; a million cases load in
well under a minute either way. Used by ``bench/bench_reconcile.py`` and the reconcile tests.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy.engine import make_url

from gateway.simulators.export import generated_record

BEIJING = timezone(timedelta(hours=8))
NON_TERMINAL = {"RECEIVED", "ACCEPTED", "IN_REVIEW", "SUPPLEMENT_REQUIRED", "SUSPENDED"}
RESULTS = {"1": "APPROVED", "2": "DENIED"}
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Expected:
    """What a reconcile of this population must find."""

    cases: int = 0
    missing: int = 0
    behind: int = 0
    ahead: int = 0
    unknown: int = 0
    missing_ids: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> int:
        return self.cases - self.missing - self.behind - self.ahead


def _rows(n: int, seed: int, drift_every: int,
          expected: Expected) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(case row, delivery row) pairs as plain tuples in column order (see ``_CASE``,
    ``_DELIVERY``); datetimes aware UTC."""
    for i in range(n):
        rec = generated_record(i, seed)
        j = i % drift_every if drift_every else -1
        if j == 13:
            expected.unknown += 1
            continue
        status, result = rec["proStatus"], RESULTS.get(rec.get("resultCode", ""))
        at = datetime.fromisoformat(rec["statusTime"]).replace(tzinfo=BEIJING).astimezone(UTC)
        if j == 7 and status != "RECEIVED":
            status, result, at = "RECEIVED", None, at - timedelta(hours=1)
            expected.behind += 1
        elif j == 11 and status in NON_TERMINAL:
            status, result = "FINISHED", "APPROVED"
            expected.ahead += 1
        yield _pair(rec["localProjectNo"], rec["receiptNo"], rec["idempotencyKey"], status,
                    result, at)
        expected.cases += 1
        if j == 3:
            pair = _pair(rec["localProjectNo"] + "X", rec["receiptNo"] + "X",
                         rec["idempotencyKey"] + "-X", "ACCEPTED", None, at)
            expected.missing += 1
            expected.cases += 1
            if len(expected.missing_ids) < 10_000:
                expected.missing_ids.append(pair[1][0])
            yield pair


def _pair(app: str, receipt: str, key: str, status: str, result: str | None,
          at: datetime) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    case_id, delivery_id = str(uuid.uuid4()), str(uuid.uuid4())
    case = (case_id, app, '{"applicationNo":"' + app + '"}', "0" * 64, "corr-" + app[-12:],
            "[]", LONG_AGO)
    delivery = (delivery_id, case_id, "national", '["1"]', "310115000000", "bench",
                "national/case-submit", key, "delivered", 1, LONG_AGO, LONG_AGO, receipt,
                status, "delivered", LONG_AGO, LONG_AGO, LONG_AGO, 0, 0, result, at, "case")
    return case, delivery


_CASE = ("id", "application_no", "body", "body_hash", "correlation_id", "home_items",
         "received_at")
_DELIVERY = ("id", "case_id", "partner", "item_nos", "region", "route_rule", "mapping",
             "idempotency_key", "state", "attempts", "next_attempt_at", "first_attempt_at",
             "receipt_no", "partner_status", "last_outcome", "created_at", "updated_at",
             "delivered_at", "attempts_base", "replays", "result", "status_at", "kind")


def _sqlite_text(v: Any) -> Any:
    # the text SQLAlchemy's SQLite DateTime writes for a naive UTC value (what UTCDateTime binds)
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def _fill_sqlite(path: str, n: int, seed: int, drift_every: int, expected: Expected,
                 batch: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        cq = f"INSERT INTO cases ({','.join(_CASE)}) VALUES ({','.join('?' * len(_CASE))})"
        dq = (f"INSERT INTO deliveries ({','.join(_DELIVERY)}) "
              f"VALUES ({','.join('?' * len(_DELIVERY))})")
        cs: list[tuple[Any, ...]] = []
        ds: list[tuple[Any, ...]] = []
        for c, d in _rows(n, seed, drift_every, expected):
            cs.append(tuple(map(_sqlite_text, c)))
            ds.append(tuple(map(_sqlite_text, d)))
            if len(cs) >= batch:
                conn.executemany(cq, cs)
                conn.executemany(dq, ds)
                conn.commit()
                cs, ds = [], []
        conn.executemany(cq, cs)
        conn.executemany(dq, ds)
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def _fill_postgres(url: str, n: int, seed: int, drift_every: int, expected: Expected,
                         batch: int) -> None:
    import asyncpg
    u = make_url(url)
    conn = await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username,
                                 password=u.password, database=u.database)
    try:
        cs: list[tuple[Any, ...]] = []
        ds: list[tuple[Any, ...]] = []

        async def flush() -> None:
            await conn.copy_records_to_table("cases", records=cs, columns=_CASE)
            await conn.copy_records_to_table("deliveries", records=ds, columns=_DELIVERY)
            cs.clear()
            ds.clear()
        for c, d in _rows(n, seed, drift_every, expected):
            cs.append(c)
            ds.append(d)
            if len(cs) >= batch:
                await flush()
        await flush()
        await conn.execute("ANALYZE cases; ANALYZE deliveries")
    finally:
        await conn.close()


async def populate(url: str, n: int, *, seed: int = 0, drift_every: int = 997,
                   batch: int = 20_000) -> Expected:
    """Write the gateway's side of an ``n``-record generated export into the (migrated)
    database at ``url``; returns what a reconcile must find."""
    expected = Expected()
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        await asyncio.to_thread(_fill_sqlite, str(u.database), n, seed, drift_every, expected,
                                batch)
    else:
        await _fill_postgres(url, n, seed, drift_every, expected, batch)
    return expected


__all__ = ["Expected", "populate"]
