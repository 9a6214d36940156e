"""``gateway dlq list|show|replay|discard``: operators' hands on the dead-letter queue.

Works directly on the database the configuration names, so it works with the gateway stopped
too; running instances pick replayed deliveries up at their next poll.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from gateway.store import Store, create_engine
from gateway.store.dlq import DeadLetterFilter, DeadLetters
from gateway.store.engine import DatabaseMissing, create_readonly_engine, sqlite_file

T = TypeVar("T")


def _run(config: str | None, database_url: str | None,
         fn: Callable[[DeadLetters], Awaitable[T]], *, readonly: bool = False) -> T:
    """Run ``fn`` on the configured database, which must exist: a listing opens it read-only
    (never creating it); a missing, unmigrated or unreachable database is one line, exit 1."""
    from gateway.cli import _settings, database_errors
    s = _settings(config, database_url)

    async def go() -> T:
        if readonly:
            engine = create_readonly_engine(s.database.url)
        else:
            if (path := sqlite_file(s.database.url)) is not None and not path.is_file():
                raise DatabaseMissing(path)
            engine = create_engine(s.database.url)
        store = Store(engine)
        try:
            return await fn(DeadLetters(store))
        finally:
            await store.close()
    with database_errors(s.database.url):
        return asyncio.run(go())


def _filter(ids: tuple[str, ...], partner: str | None, code: str | None,
            application_no: str | None, everything: bool) -> DeadLetterFilter:
    f = DeadLetterFilter(ids=ids, partner=partner, code=code, application_no=application_no,
                         everything=everything)
    if f.is_empty():
        raise click.UsageError("name delivery ids, a filter (--partner/--code/--application-no) "
                               "or --all")
    return f


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    from gateway.cli import config_option, db_option
    for deco in reversed([
        config_option, db_option,
        click.argument("ids", nargs=-1),
        click.option("--partner"), click.option("--code", help="the partner's last code"),
        click.option("--application-no"),
        click.option("--all", "everything", is_flag=True, help="every dead letter"),
    ]):
        fn = deco(fn)
    return fn


@click.group("dlq")
def cli() -> None:
    """Dead letters: deliveries parked after a permanent failure or an exhausted retry policy."""


@cli.command("list")
@_common
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", type=int, default=100, show_default=True)
def list_(config: str | None, database_url: str | None, ids: tuple[str, ...],
          partner: str | None, code: str | None, application_no: str | None, everything: bool,
          as_json: bool, limit: int) -> None:
    """List dead letters (all of them unless filtered)."""
    f = DeadLetterFilter(ids=ids, partner=partner, code=code, application_no=application_no,
                         everything=not (ids or partner or code or application_no))
    found = _run(config, database_url, lambda d: d.find(f, limit=limit), readonly=True)
    if as_json:
        click.echo(json.dumps([{"id": x.delivery.id, "applicationNo": x.application_no,
                                "partner": x.delivery.partner, "attempts": x.delivery.attempts,
                                "code": x.delivery.last_code, "message": x.delivery.last_message}
                               for x in found], ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(found)} dead letter(s)")
    for col in ("delivery", "case", "partner", "attempts", "code", "reason"):
        table.add_column(col)
    for x in found:
        d = x.delivery
        table.add_row(d.id, x.application_no, d.partner, str(d.attempts), d.last_code or "",
                      (d.last_message or "")[:80])
    Console().print(table)


@cli.command("show")
@_common
def show(config: str | None, database_url: str | None, ids: tuple[str, ...], partner: str | None,
         code: str | None, application_no: str | None, everything: bool) -> None:
    """Show dead letters with their attempt history and the operator actions on them."""
    from gateway.api.cases import beijing_iso, delivery_doc
    f = _filter(ids, partner, code, application_no, everything)

    async def go(d: DeadLetters) -> list[dict[str, Any]]:
        out = []
        for x in await d.find(f):
            case = await d.store.get_case(x.delivery.case_id, with_history=True)
            assert case is not None
            full = next(c for c in case.deliveries if c.id == x.delivery.id)
            out.append({"applicationNo": x.application_no, **delivery_doc(full),
                        "operatorActions": [{k: beijing_iso(v) for k, v in a.items()}
                                            for a in await d.actions(x.delivery.id)]})
        return out
    click.echo(json.dumps(_run(config, database_url, go, readonly=True), ensure_ascii=False,
                          indent=2, default=lambda v: str(beijing_iso(v))))


@cli.command("replay")
@_common
@click.option("--current-mapping", is_flag=True,
              help="rebuild with the current mapping version instead of the recorded one")
@click.option("--reason", required=True, help="why (kept in the audit record)")
@click.option("--actor", default=getpass.getuser, show_default="the login name")
def replay(config: str | None, database_url: str | None, ids: tuple[str, ...],
           partner: str | None, code: str | None, application_no: str | None, everything: bool,
           current_mapping: bool, reason: str, actor: str) -> None:
    """Put dead letters back in the queue with a fresh retry budget."""
    f = _filter(ids, partner, code, application_no, everything)
    done = _run(config, database_url, lambda d: d.replay(
        f, actor=actor, reason=reason, current_mapping=current_mapping))
    click.echo(f"replayed {len(done)} delivery(ies)" + "".join(f"\n  {i}" for i in done))


@cli.command("discard")
@_common
@click.option("--reason", required=True, help="why (kept in the audit record)")
@click.option("--actor", default=getpass.getuser, show_default="the login name")
def discard(config: str | None, database_url: str | None, ids: tuple[str, ...],
            partner: str | None, code: str | None, application_no: str | None, everything: bool,
            reason: str, actor: str) -> None:
    """Give dead letters up (kept, marked discarded, never deleted)."""
    f = _filter(ids, partner, code, application_no, everything)
    done = _run(config, database_url, lambda d: d.discard(f, actor=actor, reason=reason))
    click.echo(f"discarded {len(done)} delivery(ies)" + "".join(f"\n  {i}" for i in done))
