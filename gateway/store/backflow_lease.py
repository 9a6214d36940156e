"""Who walks a back-flow source now: a lease row per source (``backflow_leases``, migration 0009).

Every gateway instance runs the scheduled walk (gateway/backflow/job.py). Without a lease two
instances sharing a database both walked the same export: the checkpoint fence
(:class:`gateway.store.backflow.Fenced`) kept every record right, but the instance fenced out
logged an error each interval and both read every page. Now an instance first takes the
source's lease; while another holds an unexpired one it skips the interval (a debug line).

A row, not a PostgreSQL advisory lock: it works on SQLite too, and it needs no connection held
for the length of a walk. Taking it is one statement (``UPDATE … WHERE owner = me OR expired``)
after making sure the row exists, so two instances racing for it cannot both win. The holder
renews it while it walks and gives it up when done; one that dies leaves it to expire
(``ttl``), after which the next instance takes it. Correctness never rests on the lease — the
checkpoint fence still refuses a page asked from a stale cursor — it only keeps the second
instance from doing the work twice and logging it as a failure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select, update

from gateway.store.models import backflow_leases
from gateway.store.repository import Store
from gateway.store.types import utcnow


class BackflowLeases:
    """The lease rows of ``store``. Every method raises :class:`~gateway.errors.StoreError` when
    the database fails."""

    def __init__(self, store: Store, owner: str) -> None:
        self.store = store
        self.owner = owner[:64]
        self._insert = store._insert  # noqa: SLF001 - the dialect's INSERT … ON CONFLICT

    async def take(self, source: str, ttl: float, *, now: datetime | None = None) -> bool:
        """Take (or renew) the lease of ``source`` for ``ttl`` seconds: False when another
        owner holds it unexpired."""
        at = now or utcnow()
        return await self.store.db.write_sync(
            "take back-flow lease", lambda conn: self._take(conn, source, ttl, at),
            durable=False)

    def _take(self, conn: Connection, source: str, ttl: float, now: datetime) -> bool:
        lc = backflow_leases.c
        conn.execute(self._insert(backflow_leases).values(source=source, owner=None,
                                                          expires_at=None)
                     .on_conflict_do_nothing(index_elements=[lc.source]))
        got = conn.execute(update(backflow_leases).where(
            lc.source == source,
            or_(lc.owner.is_(None), lc.owner == self.owner, lc.expires_at.is_(None),
                lc.expires_at < now))
            .values(owner=self.owner, expires_at=now + timedelta(seconds=ttl)))
        return bool(got.rowcount == 1)

    async def give_up(self, source: str) -> None:
        """Release ``source``'s lease if this owner holds it (the next walk may be anyone's)."""
        lc = backflow_leases.c
        await self.store.db.write_sync(
            "release back-flow lease",
            lambda conn: conn.execute(update(backflow_leases).where(
                lc.source == source, lc.owner == self.owner).values(owner=None,
                                                                    expires_at=None)),
            durable=False)

    async def holder(self, source: str) -> tuple[str | None, datetime | None]:
        """(owner, expires_at) of ``source``'s lease; (None, None) when none was ever taken."""
        lc = backflow_leases.c
        async with self.store.db.read("read back-flow lease") as conn:
            row = (await conn.execute(select(lc.owner, lc.expires_at)
                                      .where(lc.source == source))).first()
        return (row.owner, row.expires_at) if row is not None else (None, None)


__all__ = ["BackflowLeases"]
