"""Alembic, run programmatically on the gateway's own async engine.

On PostgreSQL an advisory lock makes concurrent start-ups of several instances take turns, so
only the first one migrates and the others find the schema current. Migrations run on the engine
before any :class:`~gateway.store.Store` exists (schema, not data, and before anyone writes), and
their database errors are translated into :class:`~gateway.errors.StoreError` like the store's.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.db import translated

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_ID = 0x6761_7465  # "gate"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate to ``revision``; a database that fails raises :class:`StoreError`."""
    with translated("migrate"):
        await _upgrade_async(engine, revision)


async def _upgrade_async(engine: AsyncEngine, revision: str) -> None:
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_ID})
            await conn.commit()
        try:
            await conn.run_sync(_upgrade, revision)
            await conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_ID})
                await conn.commit()


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    with translated("read schema revision"):
        async with engine.connect() as conn:
            return await conn.run_sync(_current)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
