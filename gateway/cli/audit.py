"""``gateway audit verify|prune``: check the hash chain of the audit log, and keep it to its
retention period (:mod:`gateway.store.audit`).

``verify`` reads the chain a page at a time (a million records never sit in memory) and exits 1
with one line naming the first record that was altered, deleted or inserted; 0 with the count
and the head's hash (publish that hash elsewhere to notice a rewrite of the whole chain).
``prune`` deletes the records older than ``--before`` (default: ``audit.retention_days`` ago)
behind an anchor record, so ``verify`` still passes afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from gateway.cli.database import on_store
from gateway.cli.options import config_and_database, read_settings


@click.group()
def audit() -> None:
    """The hash-chained audit log: every message in and out, and what operators did."""


@audit.command()
@config_and_database
def verify(config: str | None, database_url: str | None) -> None:
    """Walk the chain; name the first record altered, deleted or inserted (exit 1)."""
    from gateway.store import Store
    from gateway.store import audit as log

    async def run(store: Store) -> log.Verdict:
        async with store.db.read("verify the audit log") as conn:
            return await log.verify(conn)
    v = on_store(read_settings(config, database_url), run, readonly=True)
    if not v.ok:
        click.echo(f"audit log: {v.problem}", err=True)
        raise SystemExit(1)
    span = f" (records {v.first_seq}-{v.head_seq})" if v.count else ""
    click.echo(f"audit log intact: {v.count} records{span}, head {v.head_hash}")


@audit.command()
@config_and_database
@click.option("--before", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Delete records older than this (UTC; default: audit.retention_days ago).")
def prune(config: str | None, database_url: str | None, before: datetime | None) -> None:
    """Delete records past their retention, keeping the chain verifiable (an anchor record)."""
    from gateway.store import Store
    from gateway.store import audit as log
    settings = read_settings(config, database_url)
    cutoff = (before.replace(tzinfo=UTC) if before is not None
              else datetime.now(UTC) - timedelta(days=settings.audit.retention_days))

    async def run(store: Store) -> log.Pruned:
        return await log.prune(store.db, cutoff)
    p = on_store(settings, run)
    if not p.count:
        click.echo(f"audit log: no record before {cutoff.isoformat()} left to prune")
        return
    click.echo(f"audit log: pruned {p.count} records through {p.through_seq} "
               f"(before {cutoff.isoformat()}); anchor record {p.anchor_seq}")
