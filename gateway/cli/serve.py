"""``gateway serve``, ``gateway demo`` and ``gateway simulate``: the commands that listen.

Each runs until SIGINT/SIGTERM (``demo --exit-after`` when the samples are through). A port that
cannot be listened on, an unknown host, a configuration or a database that cannot be used: one
line each, exit 1.

``serve`` listens with TLS when ``server.tls`` is set (client certificates required with its
``client_ca_file``: :mod:`gateway.security.tls`), and refuses to listen on anything but loopback
while callers are not authenticated (``server.auth: off``): an open port without authentication
hands anyone who reaches it every applicant's identity data.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from pathlib import Path

import click

from gateway.cli.database import database_errors
from gateway.cli.options import config_and_database, config_error, config_option, read_settings
from gateway.config import ServerSettings, is_loopback
from gateway.errors import ConfigError
from gateway.ports import PortUnavailable, port_problem


def _event_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def exposure_problem(server: ServerSettings, host: str) -> str | None:
    """One line when listening on ``host`` would expose the API without authentication."""
    if server.auth == "off" and not is_loopback(host):
        return (f"refusing to listen on {host} with server.auth: off: without authentication "
                f"anyone who reaches the port reads and submits cases; listen on 127.0.0.1 "
                f"or turn server.auth on")
    return None


def listening_context(server: ServerSettings) -> ssl.SSLContext | None:
    """``server.tls``'s context (read now, at start-up), or ``None`` for plain HTTP."""
    from gateway.security.tls import server_context
    return None if server.tls is None else server_context(server.tls)


@click.command()
@config_and_database
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
def serve(config: str | None, database_url: str | None, host: str | None, port: int | None) -> None:
    """Run the gateway (API + delivery worker) until SIGINT/SIGTERM."""
    from aiohttp import web

    from gateway.app import create_app
    s = read_settings(config, database_url)
    try:
        app = create_app(s, reload_on_sighup=True)
    except ConfigError as e:
        raise config_error(e) from e
    host, port = host or s.server.host, port or s.server.port
    try:  # an unknown listening host is named here, not mistaken for the database's below
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror}; "
                                   "choose another with --host or $GATEWAY_HOST") from None
    if (problem := exposure_problem(s.server, host)) is not None:
        raise click.ClickException(problem)
    try:
        ssl_context = listening_context(s.server)
    except ConfigError as e:
        raise config_error(e) from None
    with database_errors(s.database.url):
        try:
            web.run_app(app, host=host, port=port, print=lambda msg: click.echo(msg, err=True),
                        loop=_event_loop(s.server.event_loop), ssl_context=ssl_context)
        except ConfigError as e:  # a partner client refused its options at start-up
            raise config_error(e) from None
        except OSError as e:
            line = port_problem(e, host, port, "gateway API",
                                "choose another with --port N or $GATEWAY_PORT")
            if line is None:
                raise
            raise click.ClickException(line) from None


@click.command()
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
    from gateway.demo import ensure_demo_secrets, run_demo
    # the shipped config reads its secrets from the environment: the demo's own, made up
    ensure_demo_secrets(Path(data_dir), write=False)
    s = read_settings(config)
    try:
        with database_errors(s.database.url):
            code = asyncio.run(run_demo(s, data_dir=Path(data_dir), samples=Path(samples),
                                        exit_after=exit_after, timeout=timeout, port=port,
                                        sim_base_port=sim_base_port))
    except PortUnavailable as e:
        raise click.ClickException(str(e)) from None
    except ConfigError as e:
        raise config_error(e) from None
    sys.exit(code)


@click.command()
@click.argument("partner")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
@click.option("--callback-url", default=None,
              help="Post every status change of a case to this URL, in the partner's contract "
                   "(also settable later: POST /__sim/config).")
@click.option("--callback-auth", "callback_auth", multiple=True, metavar="KEY=VALUE",
              help="The partner's credential for the callback receiver, repeatable: tianjin "
                   "auth_code=…, hebei username=… password=…, national app_id=….")
@click.option("--no-dedupe", is_flag=True,
              help="Make a resent submission (same idempotency key) a second case.")
@click.option("--keys", "keys_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="national: sign and encrypt (SM2/SM4) with the keys `gateway keys generate` "
                   "wrote to this folder (national.key, gateway.pub, sm4.key).")
@click.option("--sm2-signature", type=click.Choice(["raw", "der"]), default="raw",
              show_default=True, help="national with --keys: signature encoding.")
def simulate(partner: str, host: str, port: int, callback_url: str | None,
             callback_auth: tuple[str, ...], no_dedupe: bool, keys_dir: str | None,
             sm2_signature: str) -> None:
    """Run one partner simulator on its own (national, tianjin, hebei)."""
    from aiohttp import web

    from gateway.simulators import simulator_factory
    auth = {}
    for item in callback_auth:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--callback-auth")
        auth[key] = value
    try:
        factory = simulator_factory(partner)
    except (KeyError, ImportError) as e:
        raise click.ClickException(str(e)) from e
    options: dict[str, object] = {}  # only what was asked for: a simulator may take none of it
    if callback_url is not None:
        options["callback_url"] = callback_url
    if auth:
        options["callback_auth"] = auth
    if no_dedupe:
        options["dedupe"] = False
    if keys_dir is not None:
        if partner != "national":
            raise click.BadParameter("only the national simulator signs", param_hint="--keys")
        from gateway.simulators.national import platform_security
        options["security"] = platform_security(
            Path(keys_dir), signature="der" if sm2_signature == "der" else "raw")
    try:
        web.run_app(factory(**options), host=host, port=port,
                    print=lambda msg: click.echo(msg, err=True))
    except OSError as e:
        line = port_problem(e, host, port, f"{partner} simulator", "choose another with --port N")
        if line is None:
            raise
        raise click.ClickException(line) from None
