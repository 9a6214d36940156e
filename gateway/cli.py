"""The ``gateway`` command: serve, demo, simulate, db, case (+ mapping and route tools)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError, StoreError


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


def _database_where(url: str) -> str:
    """The database a URL names, for one line: the SQLite file, or host:port/name."""
    from sqlalchemy.engine import make_url

    from gateway.store.engine import sqlite_file
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        return str(sqlite_file(u) or u.database or ":memory:")
    return f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"


_UNREACHABLE = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH,
                errno.ETIMEDOUT, errno.EHOSTDOWN, errno.ECONNABORTED}
_CREATE_HINT = "create it with `gateway db upgrade` (same --config / --database-url)"


def database_problem(url: str, e: BaseException) -> str | None:
    """One line for an operator about a database that cannot be used (None: not such an error).

    Missing SQLite file, no gateway tables yet, server unreachable or refusing the login: each
    names the database (file, or host:port/name) and what to do; never a traceback. The store's
    :class:`StoreError` carries the driver's error as its cause: read there, for this terminal
    only (its text may quote values, which is why the store's own message never does).
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


def port_problem(e: OSError, host: str, port: int, what: str, how: str) -> str | None:
    """One line for a port that cannot be listened on (None: not a listening problem)."""
    if e.errno == errno.EADDRINUSE:
        return f"port {port} ({what}) is already in use on {host}: {how}"
    if e.errno in (errno.EACCES, errno.EADDRNOTAVAIL):
        return f"cannot listen on {host}:{port} ({what}): {e.strerror}; {how}"
    return None


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
    host, port = host or s.server.host, port or s.server.port
    try:  # an unknown listening host is named here, not mistaken for the database's below
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror}; "
                                   "choose another with --host or $GATEWAY_HOST") from None
    with database_errors(s.database.url):
        try:
            web.run_app(app, host=host, port=port, print=lambda msg: click.echo(msg, err=True))
        except ConfigError as e:  # a partner client refused its options at start-up
            raise click.ClickException(f"configuration error: {e}") from None
        except OSError as e:
            line = port_problem(e, host, port, "gateway API",
                                "choose another with --port N or $GATEWAY_PORT")
            if line is None:
                raise
            raise click.ClickException(line) from None


@main.command()
@config_option
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default="data",
              show_default=True, help="Folder for the embedded SQLite database.")
@click.option("--samples", type=click.Path(exists=True, file_okay=False), default="samples/cases",
              show_default=True)
@click.option("--exit-after", is_flag=True,
              help="Exit when the samples are through; non-zero if any was not delivered.")
@click.option("--timeout", type=float, default=60.0, show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Gateway port (default: server.port of the config, or $GATEWAY_PORT).")
@click.option("--sim-base-port", type=click.IntRange(1, 65533), default=None,
              envvar="GATEWAY_SIM_BASE_PORT", show_envvar=True,
              help="Put the partner simulators on N, N+1, … (default: the ports of the "
                   "partners' URLs in the config, 8701-8703).")
def demo(config: str | None, data_dir: str, samples: str, exit_after: bool, timeout: float,
         port: int | None, sim_base_port: int | None) -> None:
    """Start the gateway and the partner simulators, push the sample cases through."""
    from gateway.demo import PortUnavailable, run_demo
    s = _settings(config)
    try:
        with database_errors(s.database.url):
            code = asyncio.run(run_demo(s, data_dir=Path(data_dir), samples=Path(samples),
                                        exit_after=exit_after, timeout=timeout, port=port,
                                        sim_base_port=sim_base_port))
    except PortUnavailable as e:
        raise click.ClickException(str(e)) from None
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from None
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
    try:
        web.run_app(factory(), host=host, port=port, print=lambda msg: click.echo(msg, err=True))
    except OSError as e:
        line = port_problem(e, host, port, f"{partner} simulator", "choose another with --port N")
        if line is None:
            raise
        raise click.ClickException(line) from None


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
    with database_errors(s.database.url):
        revision_now = asyncio.run(run())
    click.echo(f"database at revision {revision_now}")


@main.group()
def case() -> None:
    """Look cases up."""


@case.command("show")
@config_option
@db_option
@click.argument("case_id")
def case_show(config: str | None, database_url: str | None, case_id: str) -> None:
    """Print a case, its deliveries and their attempt history as JSON."""
    from gateway.api.cases import beijing_iso, case_doc
    from gateway.runtime import load_contracts
    from gateway.store import Store
    from gateway.store.engine import create_readonly_engine
    s = _settings(config, database_url)

    async def run() -> dict[str, Any] | None:
        store = Store(create_readonly_engine(s.database.url))
        try:
            found = await store.get_case(case_id, with_history=True)
            if found is None:
                found = await store.find_case_by_application_no(case_id)
                if found is not None:
                    found = await store.get_case(found.id, with_history=True)
            return case_doc(found, load_contracts(s).mappings) if found else None
        finally:
            await store.close()
    with database_errors(s.database.url):
        doc = asyncio.run(run())
    if doc is None:
        raise click.ClickException(f"no case with id or application number {case_id}")
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2,
                          default=lambda v: str(beijing_iso(v))))


def _add_tool_groups() -> None:
    """The tool groups live beside their subjects (mapping, routing, dead letters)."""
    from gateway.dlq_cli import cli as dlq
    from gateway.mapping.cli import cli as mapping
    from gateway.routing.cli import route
    for group in (mapping, route, dlq):
        main.add_command(group)


_add_tool_groups()
