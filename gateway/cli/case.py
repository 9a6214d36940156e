"""``gateway case show``: a case as ``GET /api/v1/cases/{id}`` shows it (:mod:`gateway.views`),
looked up by id or application number, straight from the database (the gateway may be stopped).
``--timeline`` prints its life as a table instead: intake, routing, attempts, status events and
pushes to the city platform, in time order (+08:00).
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
@click.option("--timeline", "as_timeline", is_flag=True,
              help="the case's timeline as a table instead of the JSON document")
def case_show(config: str | None, database_url: str | None, case_id: str,
              as_timeline: bool) -> None:
    """Print a case, its deliveries, their attempt history and its timeline as JSON."""
    from gateway.contracts import load_contracts
    from gateway.store.timeline import read_timeline
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
        return case_doc(found, contracts.mappings, deadlines=contracts.deadlines,
                        timeline=await read_timeline(store, found.id))
    try:
        doc = on_store(s, find, readonly=True)
    except ConfigError as e:  # the mappings the view reads do not load
        raise config_error(e) from None
    if doc is None:
        raise click.ClickException(f"no case with id or application number {case_id}")
    if as_timeline:
        print_timeline(doc)
    else:
        click.echo(dumps(doc, indent=2))


def _what(e: dict[str, Any]) -> tuple[str, str]:
    """(who, what) of one timeline entry, in words."""
    kind = e["kind"]
    if kind == "intake":
        return "city platform", f"received {e['applicationNo']}"
    if kind == "routed":
        return e["partner"], f"routed items {', '.join(e['items'])} by rule {e['route']}"
    if kind == "attempt":
        extra = ", ".join(f"{k} {e[k]}" for k in ("code", "httpStatus") if e.get(k) is not None)
        return e["partner"], f"attempt {e['attempt']}: {e['outcome']}" + (f" ({extra})"
                                                                            if extra else "")
    if kind == "status":
        said = e["status"] or f"unmapped code {e['partnerCode']}"
        if e.get("result"):
            said += f"/{e['result']}"
        verdict = "applied" if e["applied"] else f"not applied: {e['flag'] or 'duplicate'}"
        return e["partner"], (f"{e['source']}: {said} (code {e['partnerCode']}, partner time "
                              f"{e['partnerTime'] or '-'}) {verdict}")
    receipt = f", receipt {e['receiptNo']}" if e.get("receiptNo") else ""
    return e["to"], f"push {e['eventId']}: {e['state']}, {e['attempts']} attempt(s){receipt}"


def print_timeline(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"case {doc['applicationNo']} ({doc['id']}): "
                        f"{doc['bundle'].get('status')}")
    for col in ("time (+08:00)", "kind", "who", "what"):
        table.add_column(col)
    for e in doc["timeline"]:
        who, what = _what(e)
        table.add_row(e["at"], e["kind"], who, what)
    Console(width=180).print(table)
