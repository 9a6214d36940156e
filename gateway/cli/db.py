"""``gateway db upgrade``: create or migrate the schema (Alembic), the one command that may
create a database."""

from __future__ import annotations

import asyncio

import click

from gateway.cli.database import database_errors
from gateway.cli.options import config_and_database, read_settings


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@config_and_database
@click.option("--revision", default="head", show_default=True)
def db_upgrade(config: str | None, database_url: str | None, revision: str) -> None:
    """Apply migrations up to REVISION."""
    from gateway.store import create_engine
    from gateway.store.migrate import current_revision, upgrade
    s = read_settings(config, database_url)

    async def run() -> str | None:
        engine = create_engine(s.database.url)
        try:
            await upgrade(engine, revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()
    with database_errors(s.database.url):
        revision_now = asyncio.run(run())
    click.echo(f"database at revision {revision_now}")
