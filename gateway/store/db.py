"""The store's one way in to the database: every read and every write of the store passes here.

:class:`Database` owns the engine. :meth:`Database.write` is the one place a writing transaction
begins, for the repository, the dead-letter queue and the breaker rows alike: on SQLite, writers
of one process take turns on an asyncio lock before they ask SQLite for its write lock (``BEGIN
IMMEDIATE``, :mod:`gateway.store.engine`), because SQLite's own busy handler sleeps in steps of up
to 100 ms, which would cap a busy gateway at a few dozen commits per second. Readers never wait
(WAL, deferred ``BEGIN``). On PostgreSQL a write is a plain transaction.

:meth:`Database.write_sync` runs a whole transaction as one synchronous function: on SQLite in
one dedicated thread with the standard driver (the write turn held around it), so its statements
cost no hop between the event loop and a driver thread each; on PostgreSQL through the async
connection (``run_sync``). The hot writes (cases, results, claims) use it.

Both translate what SQLAlchemy, the drivers and the sockets raise into
:class:`~gateway.errors.StoreError` with ``raise … from``, so the worker, the API and the commands
handle one error of ours (:func:`translated` does the same for migrations).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import asyncpg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.errors import StoreError
from gateway.store.engine import sqlite_writer_engine

T = TypeVar("T")

#: What a database call raises besides our own errors: SQLAlchemy's (they wrap the drivers'
#: errors in a statement), the drivers' own where SQLAlchemy does not wrap them (connecting), and
#: the socket's (refused, reset, unreachable; ``OSError`` includes ``TimeoutError``).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
    sqlite3.Error, OSError)


def error_class(e: BaseException) -> str:
    """``IntegrityError (UniqueViolationError)``: which error, without its text."""
    orig = e.orig if isinstance(e, DBAPIError) else None
    return type(e).__name__ + (f" ({type(orig).__name__})" if orig is not None else "")


@contextlib.contextmanager
def translated(operation: str) -> Iterator[None]:
    """Raise a database error from the block as :class:`StoreError` naming ``operation``."""
    try:
        yield
    except DATABASE_ERRORS as e:
        raise StoreError(operation, error_class(e)) from e


class Database:
    """The engine, the SQLite write turn, and the error translation: the store's only door."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._write_turn = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._writer = sqlite_writer_engine(engine)
        self._writer_thread = (ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
                               if self._writer is not None else None)
        #: the writer thread's connection, kept between transactions (a checkout from the pool
        #: and its return, with their events, were a sixth of the writer's time); only that
        #: thread touches it
        self._writer_conn: Connection | None = None

    def _writer_connection(self) -> Connection:
        """The writer thread's connection, opened again if an error invalidated or closed it."""
        conn = self._writer_conn
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                with contextlib.suppress(*DATABASE_ERRORS):
                    conn.close()
            assert self._writer is not None
            conn = self._writer_conn = self._writer.connect()
        return conn

    async def write_sync(self, operation: str, work: Callable[[Connection], T], *,
                         durable: bool = True) -> T:
        """Run ``work`` as one writing transaction (committed when it returns, rolled back if it
        raises) and return what it returns. ``work`` must only use the connection it is given:
        on SQLite it runs in the writer thread.

        ``durable=False`` commits without waiting for the disk (SQLite ``synchronous=NORMAL`` in
        WAL: survives the process dying, not the machine; PostgreSQL ``synchronous_commit =
        off``: the server may lose its last ~0.6 s of such commits if *it* crashes). Only for
        writes whose loss is harmless after a crash (anti-replay nonces: gateway.store.nonces);
        the next durable commit carries them to disk."""
        if self._writer is None or self._writer_thread is None:
            async with self.write(operation) as conn:
                if not durable and self.engine.dialect.name == "postgresql":
                    await conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                return await conn.run_sync(work)

        def run(c: Connection) -> T:
            if durable:
                with c.begin():
                    return work(c)
            raw = c.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA synchronous=NORMAL")  # the driver is in autocommit mode
            try:
                with c.begin():
                    return work(c)
            finally:
                raw.execute("PRAGMA synchronous=FULL")

        def transaction() -> T:
            c = self._writer_connection()
            try:
                return run(c)
            except BaseException:
                # whatever failed (the work, the commit, the disk), the next transaction starts
                # on a fresh connection rather than on one in an unknown state
                self._writer_conn = None
                with contextlib.suppress(*DATABASE_ERRORS):
                    c.close()
                raise
        with translated(operation):
            assert self._write_turn is not None
            async with self._write_turn:
                return await asyncio.get_running_loop().run_in_executor(
                    self._writer_thread, transaction)

    @contextlib.asynccontextmanager
    async def write(self, operation: str) -> AsyncIterator[AsyncConnection]:
        """One writing transaction, committed when the block ends (rolled back if it raises)."""
        with translated(operation):
            async with contextlib.AsyncExitStack() as stack:
                if self._write_turn is not None:
                    await stack.enter_async_context(self._write_turn)
                yield await stack.enter_async_context(self.engine.begin())

    @contextlib.asynccontextmanager
    async def read(self, operation: str) -> AsyncIterator[AsyncConnection]:
        """A connection for reading: on SQLite a deferred ``BEGIN`` that never waits for writers."""
        with translated(operation):
            async with self.engine.connect() as conn:
                yield await conn.execution_options(gateway_readonly=True)

    async def close(self) -> None:
        if self._writer is not None and self._writer_thread is not None:
            writer = self._writer

            def close() -> None:
                if self._writer_conn is not None:
                    self._writer_conn.close()
                    self._writer_conn = None
                writer.dispose()
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, close)
            self._writer_thread.shutdown(wait=False)
        await self.engine.dispose()
