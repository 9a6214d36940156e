"""The commands' hands on the database: open the store the configuration names, and say in one
line what is wrong with a database that cannot be used.

Commands that only read (``case show``, ``dlq list|show``) open it read-only and never create
it; commands that change dead letters need it to exist; only ``db upgrade`` creates one. A
missing file, a schema never created, a server that is down or refuses the login: each is one
line naming the database (file, or host:port/name) and what to do, exit 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import click

from gateway.config import Settings
from gateway.errors import StoreError

if TYPE_CHECKING:  # the store (SQLAlchemy) is imported when a command runs, not at start-up
    from gateway.store import Store

T = TypeVar("T")

_UNREACHABLE = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH,
                errno.ETIMEDOUT, errno.EHOSTDOWN, errno.ECONNABORTED}
_CREATE_HINT = "create it with `gateway db upgrade` (same --config / --database-url)"


def _database_where(url: str) -> str:
    """The database a URL names, for one line: the SQLite file, or host:port/name."""
    from sqlalchemy.engine import make_url

    from gateway.store.engine import sqlite_file
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return str(sqlite_file(u) or u.database or ":memory:")
    return f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"


def database_problem(url: str, e: BaseException) -> str | None:
    """One line for an operator about a database that cannot be used (None: not such an error).

    The store's :class:`StoreError` carries the driver's error as its cause: read there, for this
    terminal only (its text may quote values, which is why the store's own message never does).
    """
    from sqlalchemy import exc as sa

    from gateway.store.engine import DatabaseMissing
    where = _database_where(url)
    if isinstance(e, DatabaseMissing):
        return f"no database at {e.path}: {_CREATE_HINT}"
    store_error = isinstance(e, StoreError)
    if store_error and e.__cause__ is not None:
        e = e.__cause__
    orig = e.orig if isinstance(e, sa.DBAPIError) else e
    text = " ".join(str(orig).split()) or type(orig).__name__
    if "no such table" in text or getattr(orig, "sqlstate", None) == "42P01":
        return (f"the database at {where} has no gateway tables yet: create them with "
                "`gateway db upgrade` (same --config / --database-url)")
    if isinstance(orig, TimeoutError) or (
            isinstance(orig, OSError) and (orig.errno in _UNREACHABLE or isinstance(
                orig, socket.gaierror))):
        reason = orig.strerror if isinstance(orig, OSError) and orig.strerror else "timed out"
        return (f"cannot reach the database at {where}: {reason} (is the server running? "
                "set database.url, --database-url or $GATEWAY_DATABASE_URL)")
    if store_error or isinstance(e, sa.DBAPIError) or type(orig).__module__.startswith("asyncpg"):
        return f"database at {where}: {text}"
    return None


@contextlib.contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn a database that cannot be used into one line and a non-zero exit (``ClickException``)."""
    from gateway.store.engine import DatabaseMissing
    try:
        yield
    except (StoreError, DatabaseMissing) as e:
        line = database_problem(url, e)
        if line is None:
            raise
        raise click.ClickException(line) from None


def on_store(settings: Settings, fn: Callable[[Store], Awaitable[T]], *,
             readonly: bool = False) -> T:
    """Run ``fn`` on the store of the configured database, which must exist, and close it.

    ``readonly`` opens it read-only (never creating anything); otherwise a SQLite file that is
    not there is :class:`~gateway.store.engine.DatabaseMissing` rather than a new empty one.
    Either way a database that cannot be used is one line (:func:`database_errors`).
    """
    from gateway.store import Store, create_engine
    from gateway.store.engine import DatabaseMissing, create_readonly_engine, sqlite_file
    url = settings.database.url

    async def go() -> T:
        if readonly:
            engine = create_readonly_engine(url)
        else:
            if (path := sqlite_file(url)) is not None and not path.is_file():
                raise DatabaseMissing(path)
            engine = create_engine(url)
        store = Store(engine)
        try:
            return await fn(store)
        finally:
            await store.close()
    with database_errors(url):
        return asyncio.run(go())
