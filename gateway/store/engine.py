"""Engines for both databases: SQLite with WAL and a busy timeout, PostgreSQL with a pool."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway import jsoncodec


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine for ``url``; creates the SQLite file's folder when needed."""
    u = make_url(url)
    # SQL parameters are case bodies: never in a log line or an exception message ([parameters: …])
    kwargs: dict[str, Any] = {"hide_parameters": True, "json_serializer": jsoncodec.dumps,
                              "json_deserializer": jsoncodec.loads}
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
        # No pre-ping: it costs a round trip per transaction. A connection broken by a server
        # restart fails one transaction (the worker retries; intake answers 500, nothing stored)
        # and SQLAlchemy then invalidates the pool; recycling bounds a connection's age.
        kwargs["pool_recycle"] = 1800
    engine = create_async_engine(u, **kwargs)
    if u.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def sqlite_writer_engine(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine on the same SQLite file as ``engine`` (the standard ``sqlite3``
    driver, the same pragmas and ``BEGIN IMMEDIATE``), for transactions run whole in one thread:
    through aiosqlite every statement is several hops between the event loop and the driver's
    thread (cursor, execute, fetch, close), about a quarter of a millisecond each here, so a
    three-statement transaction took ~4 ms of which the database needed ~0.5. None for other
    engines, a read-only engine and a database in memory (another connection would see another
    database)."""
    u = engine.url
    if (u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:"
            or engine.get_execution_options().get("gateway_readonly")
            or str(u.query.get("uri", "")).lower() in ("true", "1")):
        return None
    sync = sa_create_engine(u.set(drivername="sqlite"), hide_parameters=True,
                            json_serializer=jsoncodec.dumps, json_deserializer=jsoncodec.loads,
                            connect_args={"timeout": 30}, pool_size=1, max_overflow=0)
    event.listen(sync, "connect", _sqlite_pragmas)
    event.listen(sync, "begin", _sqlite_begin_immediate)
    return sync


class DatabaseMissing(FileNotFoundError):
    """A SQLite database file that a reading command needs does not exist (``path``)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no database at {path}")
        self.path = path


def sqlite_file(url: str | URL) -> Path | None:
    """The absolute path of the file a SQLite URL names (None: not SQLite, or in memory)."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    name = u.database
    if str(u.query.get("uri", "")).lower() in ("true", "1"):
        if not name.startswith("file:"):
            return None
        name = unquote(name[len("file:"):].split("?", 1)[0])
        if name in ("", ":memory:") or name.startswith("//"):
            return None  # in memory, or a file://host/ form this check does not follow
    return Path(name).absolute()


def create_readonly_engine(url: str) -> AsyncEngine:
    """An engine for commands that only read: it never creates a database, a file or a folder.

    SQLite is opened read-only (``file:…?mode=ro``, deferred BEGIN); a file that is not there
    raises :class:`DatabaseMissing` here, before anything is opened. Other engines are opened
    as they are (a read-only command issues no write).
    """
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        # asyncpg waits 60 s for an unreachable host by default; a command answers sooner
        return create_async_engine(u, hide_parameters=True, pool_size=1, max_overflow=0,
                                   connect_args={"timeout": 10})
    path = sqlite_file(u)
    if path is None:  # in memory: nothing on disk to protect
        return create_engine(url)
    if not path.is_file():
        raise DatabaseMissing(path)
    ro = u.set(database="file:" + quote(str(path)),
               query={**{k: v for k, v in u.query.items() if k not in ("uri", "mode")},
                      "mode": "ro", "uri": "true"})
    engine = create_async_engine(ro, hide_parameters=True, connect_args={"timeout": 30},
                                 execution_options={"gateway_readonly": True})
    event.listen(engine.sync_engine, "connect", _sqlite_readonly_pragmas)
    event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_readonly_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # The writers' pragmas minus journal_mode (setting it is a write); BEGIN is ours, deferred.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is turned off so that BEGIN IMMEDIATE below is ours:
    # every writing transaction takes the write lock up front, so two writers never deadlock on
    # a lock upgrade. synchronous=FULL: a committed case survives power loss, not only kill -9.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Readers (engine.connect()) get a deferred BEGIN: in WAL mode they never wait for writers.
    if conn.get_execution_options().get("gateway_readonly"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
