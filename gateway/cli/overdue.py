"""``gateway overdue``: the items past their promised time (办理时限) without a terminal status,
straight from the database (read-only; the gateway may be stopped). The deadlines come from the
configuration's mappings folder (``deadlines/``, ``calendar/``: :mod:`gateway.domain.deadlines`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from gateway.cli.database import on_store
from gateway.cli.options import config_and_database, config_error, read_settings
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.store import Store
    from gateway.store.overdue import OverdueItem


@click.command()
@config_and_database
@click.option("--partner", help="only the parts this partner holds")
@click.option("--json", "as_json", is_flag=True, help="a JSON list instead of a table")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="at most this many rows (the longest overdue first)")
def overdue(config: str | None, database_url: str | None, partner: str | None, as_json: bool,
            limit: int | None) -> None:
    """List cases with an item past its deadline: application number, item, partner, status,
    deadline (+08:00) and days over. Exit status 0 whether or not any is found."""
    from rich.console import Console
    from rich.table import Table

    from gateway.domain.deadlines import load_deadlines
    from gateway.store.overdue import OverdueItems
    s = read_settings(config, database_url)
    try:
        deadlines = load_deadlines(s.path(s.mappings_dir))
    except ConfigError as e:
        raise config_error(e) from None

    async def find(store: Store) -> list[OverdueItem]:
        return await OverdueItems(store, deadlines).find(partner=partner, limit=limit)
    found = on_store(s, find, readonly=True)
    if as_json:
        click.echo(json.dumps([o.as_dict() for o in found], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(found)} overdue item part(s)")
    for col in ("application no", "item", "partner", "status", "deadline", "days over"):
        table.add_column(col)
    for o in found:
        table.add_row(o.application_no, o.item_no, o.partner, o.status.value,
                      o.as_dict()["deadline"], str(o.days_over))
    Console(width=160).print(table)
