"""The anti-replay memory every instance shares: accepted nonces in the database, until expiry.

A signed request (the city platform's ``x-tif`` headers, a partner's WS-Security UsernameToken)
is single use inside its time window only if *every* instance that may receive it refuses a
nonce any of them has already accepted: an in-process store would let a captured request be
replayed once per instance. :class:`DbNonceStore` implements
:class:`gateway.protocols.tif.NonceStore` on the ``nonces`` table, whose primary key
``(scope, nonce)`` makes "first time" an atomic fact of the database on both engines.

Each check is a write, on the path of every authenticated request, so concurrent checks share
one transaction (:class:`~gateway.store.batching.GroupCommit`, like the cases they guard): one
``INSERT … ON CONFLICT (scope, nonce) DO UPDATE … WHERE expired RETURNING`` for the whole batch
says which nonces were new (or whose earlier use has expired: its timestamp is refused anyway
by then). Expired rows are deleted in the same transaction at most every ``prune_every``
seconds per instance (indexed on ``expires_at``), so the table holds about one window of traffic.

Generic by ``scope``: the caller's or partner's name (x-tif callers, Hebei's WS-Security).

A case submission does not use this separate path: its nonce (a :class:`PendingNonce`) is
written by :meth:`gateway.store.Store.submit_case` in the case's own transaction, with the same
statement (:func:`claim_nonces`). One commit per submission instead of two, and the nonce is as
durable as the case it admitted: a crash cannot forget the nonce of a case that was kept, so a
captured submission cannot be replayed after a restart. A replayed nonce there stores nothing and
is answered :class:`ReplayedNonce` (a 401 by gateway/api/auth.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete

from gateway.store.batching import GroupCommit
from gateway.store.models import nonces

if TYPE_CHECKING:  # the store imports this module's helpers for its case transactions
    from gateway.store.repository import Store

#: the ``nonces`` columns' widths: a longer value is refused before it reaches the database
MAX_SCOPE = 128
MAX_NONCE = 128


@dataclass(frozen=True)
class _Check:
    scope: str
    nonce: str
    expires_at: datetime


@dataclass(eq=False)
class PendingNonce:
    """A submission's nonce, checked (and remembered) in the transaction that stores its case.

    ``spent`` is set by whoever hands it to a transaction (gateway/intake/accept.py); a request
    that ends without that (refused, answered as an earlier case) must still spend it through
    :meth:`DbNonceStore.remember`, so every authenticated request's nonce is single use."""

    scope: str
    nonce: str
    expires_at: datetime
    spent: bool = field(default=False)

    def __post_init__(self) -> None:
        if len(self.scope) > MAX_SCOPE or len(self.nonce) > MAX_NONCE:
            raise ValueError("scope and nonce are at most 128 characters")


class ReplayedNonce(Exception):
    """The submission's nonce was already used (in ``scope``): nothing was stored."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"nonce already used in scope {scope!r}")
        self.scope = scope


def claim_nonces(conn: Connection, insert: Any, rows: Sequence[dict[str, Any]],
                 now: datetime) -> set[tuple[str, str]]:
    """Insert ``rows`` (distinct ``scope``, ``nonce``, ``expires_at``) in ``conn``'s transaction;
    the (scope, nonce) pairs that were new, or whose earlier use had expired by ``now``.
    ``insert`` is the dialect's ``insert`` (``ON CONFLICT`` on both engines). A concurrent
    transaction holding the same nonce (another instance) makes this one wait for it, then see
    it: the primary key decides, never two "first" answers."""
    if not rows:
        return set()
    # one lock order for every transaction: two instances inserting the same nonces in opposite
    # orders (a replay raced across instances) would otherwise deadlock on PostgreSQL
    rows = sorted(rows, key=lambda r: (r["scope"], r["nonce"]))
    ins = insert(nonces)
    stmt = (ins.on_conflict_do_update(
                index_elements=[nonces.c.scope, nonces.c.nonce],
                set_={"expires_at": ins.excluded.expires_at},
                where=nonces.c.expires_at < now)
            .returning(nonces.c.scope, nonces.c.nonce))
    return {(r[0], r[1]) for r in conn.execute(stmt, list(rows))}


def prune_nonces(conn: Connection, now: datetime) -> int:
    """Delete the rows expired by ``now`` (indexed on ``expires_at``); how many went."""
    return max(conn.execute(delete(nonces).where(nonces.c.expires_at < now)).rowcount, 0)


class DbNonceStore:
    """:class:`gateway.protocols.tif.NonceStore` in the database, shared by every instance.

    ``remember`` raises :class:`~gateway.errors.StoreError` when the database fails: the
    caller must then refuse the request (answering "busy"), never accept it unchecked.
    """

    def __init__(self, store: Store, *, prune_every: float = 60.0, max_batch: int = 128) -> None:
        self._store = store
        self._prune_every = prune_every
        self._last_prune = float("-inf")
        self._insert = store._insert  # noqa: SLF001 - the store's INSERT … ON CONFLICT
        self._writes: GroupCommit[_Check, bool] = GroupCommit(
            self._commit, max_batch=max_batch, name="remember nonce")
        #: rows deleted by pruning so far (tests, metrics)
        self.pruned = 0

    async def remember(self, scope: str, nonce: str, *, expires_at: float) -> bool:
        """``True`` the first time ``nonce`` is seen in ``scope`` (or after its earlier use has
        expired), ``False`` for a replay; returns once the answer is committed."""
        if len(scope) > MAX_SCOPE or len(nonce) > MAX_NONCE:
            raise ValueError("scope and nonce are at most 128 characters")
        return await self._writes.submit(
            _Check(scope, nonce, datetime.fromtimestamp(expires_at, UTC)))

    async def _commit(self, batch: Sequence[_Check]) -> list[bool | BaseException]:
        now = datetime.now(UTC)
        first: dict[tuple[str, str], int] = {}
        rows = []
        for i, c in enumerate(batch):
            if (c.scope, c.nonce) not in first:  # the same nonce twice in one batch: one wins
                first[(c.scope, c.nonce)] = i
                rows.append({"scope": c.scope, "nonce": c.nonce, "expires_at": c.expires_at})
        prune = time.monotonic() - self._last_prune >= self._prune_every
        if prune:
            self._last_prune = time.monotonic()

        def work(conn: Connection) -> tuple[set[tuple[str, str]], int]:
            pruned = prune_nonces(conn, now) if prune else 0
            return claim_nonces(conn, self._insert, rows, now), pruned
        # not durable: a nonce a crash forgets reopens a replay of a request made just before
        # it, and only for what is left of that request's window (seconds) — while waiting for
        # the disk on every authenticated request halved intake (bench_wire, SQLite)
        fresh, pruned = await self._store.db.write_sync("remember nonce", work, durable=False)
        self.pruned += pruned
        return [first[(c.scope, c.nonce)] == i and (c.scope, c.nonce) in fresh
                for i, c in enumerate(batch)]


__all__ = ["DbNonceStore", "PendingNonce", "ReplayedNonce", "claim_nonces", "prune_nonces"]

if __debug__:  # the protocol it implements (checked by mypy)
    from gateway.protocols.tif import NonceStore as _NonceStore

    def _implements(s: DbNonceStore) -> _NonceStore:
        return s
