"""``gateway reconcile``: compare the gateway's view of every case with a partner's bulk status
export, report drift per case and repair what is safe (:mod:`gateway.statuses.reconcile`).

Runs beside a running gateway (or instead of its scheduled job: ``reconcile.enabled: false`` and
this command under cron). One reconcile at a time over every instance: a second one says so and
exits 3. Exit 1: the configuration, the database or the export could not be used (an export that
failed half way says the cursor it stopped at; nothing the walk did not see was re-delivered).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.database import on_store
from gateway.cli.options import config_and_database, config_error, read_settings
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.statuses.reconcile import Drift, Report
    from gateway.store import Store

BEIJING = timezone(timedelta(hours=8))
EXIT_ALREADY_RUNNING = 3
_AGO = re.compile(r"^(\d+)([mhd])$")


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``--since``: an ISO 8601 time (no offset: Beijing time) or an age such as ``90m``,
    ``12h``, ``7d``."""
    if value is None:
        return None
    if m := _AGO.match(value.strip()):
        unit = {"m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
        return (now or datetime.now(BEIJING)) - timedelta(**{unit: int(m.group(1))})
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter("an ISO 8601 time (2026-12-01T09:00:00+08:00) or an age "
                                 "(90m, 12h, 7d)", param_hint="--since") from None
    return t if t.tzinfo else t.replace(tzinfo=BEIJING)


@click.command()
@config_and_database
@click.option("--partner", "partners", multiple=True,
              help="only this partner (repeatable; default: every partner under "
                   "reconcile.partners)")
@click.option("--since", help="only cases sent since (ISO 8601, or an age: 90m, 12h, 7d)")
@click.option("--repair/--dry-run", default=True, show_default=True,
              help="repair what is safe, or only report")
@click.option("--json", "as_json", is_flag=True,
              help="JSON lines: one {\"drift\": …} per case, one {\"report\": …} per partner")
def reconcile(config: str | None, database_url: str | None, partners: tuple[str, ...],
              since: str | None, repair: bool, as_json: bool) -> None:
    """Compare our view with each partner's status export; list drift (missing at partner,
    behind, ahead, conflict, unknown case, unmapped) and repair what is safe: apply a missed
    update, re-deliver (once) a case the partner lost."""
    import aiohttp
    from rich.console import Console
    from rich.table import Table

    from gateway.contracts import load_contracts
    from gateway.statuses.export_reader import ReconcileError
    from gateway.statuses.reconcile import Reconciler, export_endpoint
    from gateway.statuses.reconcile_lock import AlreadyRunning
    from gateway.views import beijing_iso
    s = read_settings(config, database_url)
    when = parse_since(since)
    try:
        mappings = load_contracts(s).mappings
        for name in partners or sorted(s.reconcile.partners):
            export_endpoint(s, name)
    except ConfigError as e:
        raise config_error(e) from None
    if not (partners or s.reconcile.partners):
        raise click.ClickException("no partner to reconcile: configure reconcile.partners")
    console = Console(width=160)

    def shown(d: Drift) -> None:
        if as_json:
            click.echo(json.dumps({"drift": d.as_dict()}, ensure_ascii=False))
        else:
            click.echo(f"{d.kind:<19} {d.partner:<10} receipt {d.receipt_no or '-':<22} "
                       f"ours {d.ours or '-':<20} theirs {d.theirs or '-':<20} {d.action}")

    async def go(store: Store) -> list[Report]:
        async with aiohttp.ClientSession() as http:
            rec = Reconciler(store, s, mappings, http, on_drift=shown)
            return await rec.run_all(list(partners) or None, since=when, repair=repair)
    try:
        reports = on_store(s, go)
    except AlreadyRunning as e:
        click.echo(f"reconcile not started: {e}", err=True)
        raise SystemExit(EXIT_ALREADY_RUNNING) from None
    except ReconcileError as e:
        raise click.ClickException(str(e)) from None
    for r in reports:
        if as_json:
            doc: dict[str, Any] = r.as_dict()
            doc.pop("examples")
            click.echo(json.dumps({"report": doc}, ensure_ascii=False))
            continue
        table = Table(title=f"reconcile {r.run_id} of {r.partner}"
                            f"{' (dry run)' if r.dry_run else ''}: "
                            f"{'complete' if r.complete else 'INCOMPLETE'} in {r.seconds:g}s"
                            + (f" since {beijing_iso(r.since)}" if r.since else ""))
        table.add_column("")
        table.add_column("count", justify="right")
        for label, value in (("export pages", r.pages), ("export records", r.records),
                             ("repeated records skipped", r.repeated),
                             ("page retries", r.page_retries), ("our deliveries", r.deliveries),
                             ("in sync", r.in_sync),
                             *((f"drift: {k}", v) for k, v in sorted(r.drift.items())),
                             *((f"repaired: {k}", v) for k, v in sorted(r.repaired.items()))):
            table.add_row(label, str(value))
        console.print(table)
        if r.error:
            console.print(f"[red]stopped:[/red] {r.error}")
    if any(not r.complete for r in reports):
        raise SystemExit(1)
