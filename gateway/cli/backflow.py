"""``gateway backflow status|run|replay``: the national data back-flow (:mod:`gateway.backflow`).

``status``  each source's checkpoint (cursor, pages, records new / replaced / ignored, batches),
            the records held per kind and the source's batches by delivery state
``run``     walk a source's export from its checkpoint to the end (or ``--pages N``), with a
            progress bar; a SIGKILL loses nothing: the next run resumes at the checkpoint
``replay``  queue stored records again for the city platform (a kind, a range of pages)

Exit 1: the configuration, the database or the export could not be used (a failed page names
the cursor the checkpoint holds; the next run resumes there).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.database import on_store
from gateway.cli.options import config_and_database, config_error, read_settings
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.backflow.pull import PullReport
    from gateway.store import Store

_SOURCE = click.option("--source", default="national", show_default=True,
                       help="the source under backflow.sources")


@click.group()
def backflow() -> None:
    """National data back-flow (数据回流): pull, status, replay."""


@backflow.command()
@config_and_database
@click.option("--json", "as_json", is_flag=True, help="one JSON object")
def status(config: str | None, database_url: str | None, as_json: bool) -> None:
    """Where each source's walk stands and what the outbox holds of it."""
    from dataclasses import asdict

    from gateway.store.backflow import BackflowStore
    s = read_settings(config, database_url)

    async def go(store: Store) -> dict[str, Any]:
        bs = BackflowStore(store)
        cps = await bs.checkpoints()
        return {"sources": [{**asdict(c), "updated_at": c.updated_at and c.updated_at.isoformat(),
                             "batches_by_state": await bs.outbox(c.source)} for c in cps],
                "records": await bs.counts()}
    doc = on_store(s, go, readonly=True)
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    if not doc["sources"]:
        click.echo("no back-flow walk has stored a page yet")
    for c in doc["sources"]:
        click.echo(f"{c['source']}: {'walked to the end' if c['done'] else 'walking'}, "
                   f"cursor {c['cursor'] or '(start)'}, {c['pages']} page(s), "
                   f"{c['records']} record(s): {c['kept']} new, {c['replaced']} replaced, "
                   f"{c['ignored']} ignored; {c['batches']} batch(es) "
                   f"{json.dumps(c['batches_by_state'])}")
    click.echo("records held: " + (", ".join(f"{k} {n}" for k, n in
                                             sorted(doc["records"].items())) or "none"))


@backflow.command()
@config_and_database
@_SOURCE
@click.option("--pages", type=click.IntRange(min=1), help="stop after this many pages")
@click.option("--quiet", is_flag=True, help="no progress bar")
def run(config: str | None, database_url: str | None, source: str, pages: int | None,
        quiet: bool) -> None:
    """Walk the source's export from its checkpoint."""
    import aiohttp
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from gateway.backflow.pull import Puller, endpoint
    from gateway.contracts import load_contracts
    from gateway.gctuning import tuned_gc
    from gateway.statuses.export_reader import ReconcileError
    from gateway.store.backflow import Fenced, PageResult
    s = read_settings(config, database_url)
    try:
        mappings = load_contracts(s).mappings
        endpoint(s, source)
    except ConfigError as e:
        raise config_error(e) from None

    async def go(store: Store) -> PullReport:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                      TextColumn("{task.completed:,.0f} records"), TimeElapsedColumn(),
                      disable=quiet, transient=False) as bar:
            task = bar.add_task(f"back-flow {source}", total=None)

            def page(res: PageResult) -> None:
                bar.advance(task, res.records)
            async with aiohttp.ClientSession() as http, \
                    tuned_gc(s.server.gc_threshold, s.server.gc_collect_every):
                return await Puller(store, s, mappings, http, source, on_page=page).run(
                    max_pages=pages)
    try:
        r = on_store(s, go)
    except (ReconcileError, Fenced) as e:
        raise click.ClickException(str(e)) from None
    rate = r.records / r.seconds if r.seconds else 0.0
    click.echo(f"{source}: {r.pages} page(s), {r.records} record(s) in {r.seconds:.1f}s "
               f"({rate:,.0f}/s): {r.kept} new, {r.replaced} replaced, {r.ignored} ignored; "
               f"{r.batches} batch(es) queued; {r.statuses} case status(es) moved; "
               f"{r.retried} page retr(ies)" + ("; end of export" if r.done else "")
               + "".join(f"; skipped {n}: {why}" for why, n in sorted(r.invalid.items())))


@backflow.command()
@config_and_database
@_SOURCE
@click.option("--kind", type=click.Choice(["caseResult", "licence", "dataset"]),
              help="only records of this kind")
@click.option("--from-page", "first", type=click.IntRange(min=1),
              help="only records last changed by this checkpoint page or later")
@click.option("--to-page", "last", type=click.IntRange(min=1),
              help="only records last changed by this checkpoint page or earlier")
def replay(config: str | None, database_url: str | None, source: str, kind: str | None,
           first: int | None, last: int | None) -> None:
    """Queue stored records for the city platform again (new batches; the platform keeps the
    newest version of each key, so what it holds already changes nothing)."""
    from rich.progress import Progress

    from gateway.backflow.pull import source_settings
    from gateway.store.backflow import BackflowStore
    s = read_settings(config, database_url)
    try:
        src = source_settings(s, source)
    except ConfigError as e:
        raise config_error(e) from None

    async def go(store: Store) -> tuple[int, int]:
        with Progress(transient=True) as bar:
            bar.add_task(f"replaying {source}", total=None)
            return await BackflowStore(store, partner=src.push_to,
                                       batch_size=src.batch_size).replay(
                source, kind=kind, first_seq=first, last_seq=last)
    n, batches = on_store(s, go)
    click.echo(f"queued {n} record(s) of {source} in {batches} batch(es) for {src.push_to}")
