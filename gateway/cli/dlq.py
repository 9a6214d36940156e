"""``gateway dlq list|show|replay|discard``: operators' hands on the dead-letter queue.

Works directly on the database the configuration names, so it works with the gateway stopped
too; running instances pick replayed deliveries up at their next poll.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from gateway.cli.database import on_store
from gateway.cli.options import config_and_database, read_settings
from gateway.store.dlq import DeadLetterFilter, DeadLetters

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _run(config: str | None, database_url: str | None,
         fn: Callable[[DeadLetters], Awaitable[T]], *, readonly: bool = False) -> T:
    """Run ``fn`` on the dead letters of the configured database, which must exist (a listing
    opens it read-only, never creating it)."""
    return on_store(read_settings(config, database_url), lambda store: fn(DeadLetters(store)),
                    readonly=readonly)


def _filter(ids: tuple[str, ...], partner: str | None, code: str | None,
            application_no: str | None, everything: bool) -> DeadLetterFilter:
    f = DeadLetterFilter(ids=ids, partner=partner, code=code, application_no=application_no,
                         everything=everything)
    if f.is_empty():
        raise click.UsageError("name delivery ids, a filter (--partner/--code/--application-no) "
                               "or --all")
    return f


def _common(fn: F) -> F:
    """The options every dlq command takes: the database, and which dead letters."""
    for deco in reversed([
        click.argument("ids", nargs=-1),
        click.option("--partner"), click.option("--code", help="the partner's last code"),
        click.option("--application-no"),
        click.option("--all", "everything", is_flag=True, help="every dead letter"),
    ]):
        fn = deco(fn)
    return config_and_database(fn)


@click.group()
def dlq() -> None:
    """Dead letters: deliveries parked after a permanent failure or an exhausted retry policy."""


@dlq.command("list")
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


@dlq.command("show")
@_common
def show(config: str | None, database_url: str | None, ids: tuple[str, ...], partner: str | None,
         code: str | None, application_no: str | None, everything: bool) -> None:
    """Show dead letters with their attempt history and the operator actions on them."""
    from gateway.views import dead_letter_doc, dumps
    f = _filter(ids, partner, code, application_no, everything)

    async def go(d: DeadLetters) -> list[dict[str, Any]]:
        out = []
        for x in await d.find(f):
            case = await d.store.get_case(x.delivery.case_id, with_history=True)
            assert case is not None
            full = next(c for c in case.deliveries if c.id == x.delivery.id)
            out.append(dead_letter_doc(x.application_no, full, await d.actions(x.delivery.id)))
        return out
    click.echo(dumps(_run(config, database_url, go, readonly=True), indent=2))


@dlq.command("replay")
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


@dlq.command("discard")
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
