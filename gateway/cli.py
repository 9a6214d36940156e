"""The ``gateway`` command: serve, demo, simulate, db, case (+ mapping and route tools)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError


def _settings(config: str | None, database_url: str | None = None) -> Settings:
    try:
        s = load_settings(config)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from e
    if database_url:
        s = s.model_copy(update={"database": s.database.model_copy(update={"url": database_url})})
    from gateway.logs import protect_secrets
    protect_secrets(s)  # the configured credentials never appear in a log line, even by accident
    return s


config_option = click.option("--config", "-c", type=click.Path(dir_okay=False), default=None,
                             help="Configuration file (default: $GATEWAY_CONFIG or config/gateway.yaml).")
db_option = click.option("--database-url", default=None,
                         help="Override database.url (also $GATEWAY_DATABASE_URL).")


@click.group()
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--log-json", is_flag=True, help="Write logs as JSON lines.")
def main(log_level: str, log_json: bool) -> None:
    """Cross-region interoperability gateway for government services."""
    from gateway.logs import configure
    configure(log_level.upper(), json=log_json)


@main.command()
@config_option
@db_option
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
def serve(config: str | None, database_url: str | None, host: str | None, port: int | None) -> None:
    """Run the gateway (API + delivery worker) until SIGINT/SIGTERM."""
    from aiohttp import web

    from gateway.app import create_app
    s = _settings(config, database_url)
    try:
        app = create_app(s, reload_on_sighup=True)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from e
    web.run_app(app, host=host or s.server.host, port=port or s.server.port,
                print=lambda msg: click.echo(msg, err=True))


@main.command()
@config_option
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default="data",
              show_default=True, help="Folder for the embedded SQLite database.")
@click.option("--samples", type=click.Path(exists=True, file_okay=False), default="samples/cases",
              show_default=True)
@click.option("--exit-after", is_flag=True,
              help="Exit when the samples are through; non-zero if any was not delivered.")
@click.option("--timeout", type=float, default=60.0, show_default=True)
@click.option("--port", type=int, default=None, help="Gateway port (default from config).")
def demo(config: str | None, data_dir: str, samples: str, exit_after: bool, timeout: float,
         port: int | None) -> None:
    """Start the gateway and the partner simulators, push the sample cases through."""
    from gateway.demo import run_demo
    s = _settings(config)
    code = asyncio.run(run_demo(s, data_dir=Path(data_dir), samples=Path(samples),
                                exit_after=exit_after, timeout=timeout, port=port))
    sys.exit(code)


@main.command()
@click.argument("partner")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
def simulate(partner: str, host: str, port: int) -> None:
    """Run one partner simulator on its own (national, tianjin, hebei)."""
    from aiohttp import web

    from gateway.simulators import simulator_factory
    try:
        factory = simulator_factory(partner)
    except (KeyError, ImportError) as e:
        raise click.ClickException(str(e)) from e
    web.run_app(factory(), host=host, port=port, print=lambda msg: click.echo(msg, err=True))


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@config_option
@db_option
@click.option("--revision", default="head", show_default=True)
def db_upgrade(config: str | None, database_url: str | None, revision: str) -> None:
    """Apply migrations up to REVISION."""
    from gateway.store import create_engine
    from gateway.store.migrate import current_revision, upgrade
    s = _settings(config, database_url)

    async def run() -> str | None:
        engine = create_engine(s.database.url)
        try:
            await upgrade(engine, revision)
            return await current_revision(engine)
        finally:
            await engine.dispose()
    click.echo(f"database at revision {asyncio.run(run())}")


@main.group()
def case() -> None:
    """Look cases up."""


@case.command("show")
@config_option
@db_option
@click.argument("case_id")
def case_show(config: str | None, database_url: str | None, case_id: str) -> None:
    """Print a case, its deliveries and their attempt history as JSON."""
    from gateway.api.cases import case_doc
    from gateway.store import Store, create_engine
    s = _settings(config, database_url)

    async def run() -> dict[str, Any] | None:
        store = Store(create_engine(s.database.url))
        try:
            found = await store.get_case(case_id, with_history=True)
            if found is None:
                found = await store.find_case_by_application_no(case_id)
                if found is not None:
                    found = await store.get_case(found.id, with_history=True)
            return case_doc(found) if found else None
        finally:
            await store.close()
    doc = asyncio.run(run())
    if doc is None:
        raise click.ClickException(f"no case with id or application number {case_id}")
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))


def _add_tool_groups() -> None:
    """The tool groups live beside their subjects (mapping, routing, dead letters)."""
    from gateway.dlq_cli import cli as dlq
    from gateway.mapping.cli import cli as mapping
    from gateway.routing.cli import route
    for group in (mapping, route, dlq):
        main.add_command(group)


_add_tool_groups()
