"""``gateway case show``: a case as ``GET /api/v1/cases/{id}`` shows it (:mod:`gateway.views`),
looked up by id or application number, straight from the database (the gateway may be stopped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from gateway.cli.database import on_store
from gateway.cli.options import config_and_database, config_error, read_settings
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.store import Store


@click.group()
def case() -> None:
    """Look cases up."""


@case.command("show")
@config_and_database
@click.argument("case_id")
def case_show(config: str | None, database_url: str | None, case_id: str) -> None:
    """Print a case, its deliveries and their attempt history as JSON."""
    from gateway.contracts import load_contracts
    from gateway.views import case_doc, dumps
    s = read_settings(config, database_url)

    async def find(store: Store) -> dict[str, Any] | None:
        found = await store.get_case(case_id, with_history=True)
        if found is None:
            found = await store.find_case_by_application_no(case_id)
            if found is not None:
                found = await store.get_case(found.id, with_history=True)
        if found is None:
            return None
        contracts = load_contracts(s)
        return case_doc(found, contracts.mappings, deadlines=contracts.deadlines)
    try:
        doc = on_store(s, find, readonly=True)
    except ConfigError as e:  # the mappings the view reads do not load
        raise config_error(e) from None
    if doc is None:
        raise click.ClickException(f"no case with id or application number {case_id}")
    click.echo(dumps(doc, indent=2))
