"""``gateway seal keygen|reseal``: keys for encryption at rest, and rotation
(:mod:`gateway.store.sealing` describes both; keys live outside the repository).

``keygen --file PATH`` puts a fresh key first in a keys file (created 0600; the old keys stay,
so values sealed with them still open): point ``GATEWAY_SEAL_KEYS_FILE`` at it and restart.
``reseal`` re-encrypts every value not sealed with the newest key, in batches, and retires the
older keys: remove them from the file afterwards.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from gateway.cli.database import on_store
from gateway.cli.options import config_and_database, config_error, read_settings
from gateway.errors import ConfigError


@click.group()
def seal() -> None:
    """Encryption at rest of case bodies and payloads: keys and rotation."""


@seal.command()
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The keys file (GATEWAY_SEAL_KEYS_FILE); created 0600 if missing.")
@click.option("--kid", default=None, help="Key id (default: k<UTC date and time>).")
def keygen(path: Path, kid: str | None) -> None:
    """Put a new key first in the keys file: it seals from the next start on."""
    from gateway.store.sealing import Keyring, new_key
    kid = kid or datetime.now(UTC).strftime("k%Y%m%d%H%M%S")
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    line = f"{kid} {new_key()}\n"
    try:
        existing = Keyring.from_env({"GATEWAY_SEAL_KEYS_FILE": str(path)}) if old.strip() else None
        Keyring.parse([(kid, line.split()[1])], str(path))
    except ConfigError as e:
        raise config_error(e) from None
    if existing is not None and kid in existing.ids():
        raise click.ClickException(f"{path} already holds a key {kid!r}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(line + old)
    click.echo(f"new sealing key {kid!r} first in {path}; restart to seal with it, then "
               f"`gateway seal reseal`")


@seal.command()
@config_and_database
@click.option("--batch", type=click.IntRange(1, 10_000), default=500, show_default=True)
def reseal(config: str | None, database_url: str | None, batch: int) -> None:
    """Re-encrypt every value with the newest key, then retire the older keys."""
    from gateway.store import Store
    from gateway.store.reseal import Resealed
    from gateway.store.reseal import reseal as run_reseal

    async def go(store: Store) -> Resealed:
        return await run_reseal(store, batch=batch)
    try:
        r = on_store(read_settings(config, database_url), go)
    except ConfigError as e:
        raise config_error(e) from None
    retired = f"; retired {', '.join(r.retired)} (remove from the keys file)" if r.retired else ""
    click.echo(f"resealed {r.resealed} of {r.examined} values with the newest key{retired}")
