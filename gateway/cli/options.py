"""What the commands that read the gateway's configuration share: ``--config``, ``--database-url``
and the one way to turn them into :class:`~gateway.config.Settings`.

Every such command (serve, demo, db, case, dlq, route) takes the same options with the same
help and the same environment fallbacks, and a configuration that does not load is one line for
all of them (``configuration error: …``, exit 1), never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

config_option = click.option(
    "--config", "-c", "config", type=click.Path(dir_okay=False), default=None,
    help="Configuration file (default: $GATEWAY_CONFIG or config/gateway.yaml).")
db_option = click.option("--database-url", default=None,
                         help="Override database.url (also $GATEWAY_DATABASE_URL).")


def config_and_database(fn: F) -> F:
    """``--config`` and ``--database-url``: for the commands that open the database."""
    return config_option(db_option(fn))


def config_error(e: ConfigError) -> click.ClickException:
    """The one line a command says about a configuration it cannot use."""
    return click.ClickException(f"configuration error: {e}")


def read_settings(config: str | None, database_url: str | None = None) -> Settings:
    """The settings a command runs with: the file ``config`` names (else the default), with
    ``database_url`` in place of ``database.url`` when given. The configured credentials are
    registered with the log redaction first, so they never appear in a log line, even by
    accident."""
    try:
        s = load_settings(config)
    except ConfigError as e:
        raise config_error(e) from e
    if database_url:
        s = s.model_copy(update={"database": s.database.model_copy(update={"url": database_url})})
    from gateway.observability.logs import protect_secrets
    protect_secrets(s)
    return s
