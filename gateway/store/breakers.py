"""Shared circuit-breaker rows: read all, write one with compare-and-set on ``version``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from gateway.store.models import partner_breakers
from gateway.store.repository import Store
from gateway.store.types import utcnow


class BreakerRows:
    """The breaker rows of ``store``, read and written through its one door (``store.db``).
    Both methods raise :class:`~gateway.errors.StoreError` when the database fails."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def load(self) -> dict[str, dict[str, Any]]:
        """partner → snapshot dict (as written by ``BreakerSnapshot.to_dict``)."""
        async with self.store.db.read("load breakers") as conn:
            rows = (await conn.execute(select(partner_breakers.c.partner,
                                              partner_breakers.c.snapshot))).all()
        return {p: s for p, s in rows}

    async def compare_and_set(self, partner: str, expected_version: int | None,
                              snapshot: dict[str, Any], version: int) -> bool:
        """Write ``snapshot`` if the row still has ``expected_version`` (None: no row yet)."""
        now = utcnow()
        async with self.store.db.write("write breaker") as conn:
            if expected_version is None:
                try:
                    async with conn.begin_nested():
                        await conn.execute(partner_breakers.insert().values(
                            partner=partner, snapshot=snapshot, version=version, updated_at=now))
                    return True
                except IntegrityError:
                    return False
            res = await conn.execute(update(partner_breakers).where(
                partner_breakers.c.partner == partner,
                partner_breakers.c.version == expected_version).values(
                snapshot=snapshot, version=version, updated_at=now))
            return res.rowcount == 1
