"""The poller's claim on the deliveries it is about to ask about, so several gateway instances
never poll one delivery twice in one interval.

The claim is the row itself, not a lease table: :func:`claim_stale` moves ``status_checked_at``
of the stale rows it was given to ``now`` in one ``UPDATE … WHERE id IN (…) AND <still stale>
RETURNING id``. Only the rows still stale when the update runs are returned; on PostgreSQL an
instance whose update waits for another's row lock re-reads the row when that one commits (its
``WHERE`` is evaluated again on the new version) and finds it checked already; SQLite runs every
writer in turn. So each delivery goes to one instance per interval, and the database alone says
what is due: a restart (or a kill -9) polls what is stale, no more and no less. A claimed
delivery whose poll did not happen (the instance died) is due again one interval later.

Belongs beside ``StatusEvents.stale``/``touch_checked`` in :mod:`gateway.store.statuses`
(owned elsewhere now); it writes through the store's one door (``store.db``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, update

from gateway.store import Store
from gateway.store.models import deliveries


async def claim_stale(store: Store, ids: Sequence[str], older_than: datetime,
                      now: datetime) -> set[str]:
    """Of ``ids``, those still not checked since ``older_than``, now marked checked at ``now``
    (this caller polls them; nobody else will before the interval has passed again)."""
    if not ids:
        return set()
    d = deliveries.c
    stale = or_(d.status_checked_at < older_than,
                and_(d.status_checked_at.is_(None), d.delivered_at < older_than))
    async with store.db.write("claim deliveries to poll") as conn:
        rows = await conn.execute(update(deliveries).where(d.id.in_(list(ids)), stale)
                                  .values(status_checked_at=now).returning(d.id))
        return {r[0] for r in rows}
