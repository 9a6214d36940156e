"""One reconcile at a time, across every gateway instance sharing the database.

PostgreSQL (several instances): a session-level advisory lock, ``pg_try_advisory_lock`` on a
connection held for the whole run. It needs no table and no expiry: the lock lives exactly as
long as the holder's session, so an instance killed mid-run frees it when its connection drops
(a lease row would have to wait for its expiry, and would need a migration).

SQLite (one host: a SQLite database cannot be shared across machines, WAL needs shared memory):
an exclusive ``flock`` on a file beside the database (``<db>.reconcile.lock``). The kernel
releases it when the holder's process dies, and it blocks nobody else: holding SQLite's own
write lock instead would stop every intake and delivery for the minute a reconcile takes. An
in-memory database (tests) has one process by definition: an in-process set of held names.

Nobody waits: a second run is told at once (:class:`AlreadyRunning`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator

from sqlalchemy import text

from gateway.statuses.export_reader import ReconcileError
from gateway.store import Store
from gateway.store.db import translated
from gateway.store.engine import sqlite_file


class AlreadyRunning(ReconcileError):
    """Another reconcile holds the lock (on this instance or another)."""


_HELD_IN_MEMORY: set[tuple[int, str]] = set()


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock`` (the gateway's namespace)."""
    return int.from_bytes(hashlib.sha256(f"gateway:{name}".encode()).digest()[:8], "big",
                          signed=True)


@contextlib.asynccontextmanager
async def single_run(store: Store, name: str = "reconcile") -> AsyncIterator[None]:
    """Hold the ``name`` lock for the block, or raise :class:`AlreadyRunning` at once."""
    engine = store.db.engine
    if engine.dialect.name == "postgresql":
        key = advisory_key(name)
        with translated("take the reconcile lock"):
            conn = await engine.connect()
        try:
            with translated("take the reconcile lock"):
                got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                          {"k": key})).scalar()
                await conn.commit()
            if not got:
                raise AlreadyRunning(f"a {name} is already running (advisory lock held)")
            try:
                yield
            finally:
                try:
                    with translated("release the reconcile lock"):
                        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        await conn.commit()
                except BaseException:
                    # a session that may still hold the lock must not go back to the pool
                    await conn.invalidate()
                    raise
        finally:
            await conn.close()
        return
    path = sqlite_file(engine.url)
    if path is None:
        token = (id(engine), name)
        if token in _HELD_IN_MEMORY:
            raise AlreadyRunning(f"a {name} is already running in this process")
        _HELD_IN_MEMORY.add(token)
        try:
            yield
        finally:
            _HELD_IN_MEMORY.discard(token)
        return
    lock_path = path.with_name(f"{path.name}.{name}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f"a {name} is already running (lock file {lock_path.name} "
                                 "held)") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
