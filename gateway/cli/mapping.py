"""``gateway mapping …``: the tools integration engineers use on mappings every day.

Every command takes ``--mappings`` and ``--schemas`` (defaults ``mappings`` and ``schemas``,
relative to the working directory), and ``--catalog DIR`` (repeatable): a folder of schemas the
partner's files import, added to the bundled catalog (:func:`gateway.catalog.use_catalogs`; the
gateway's config says the same with ``schema_catalogs``).
Exit status: 0 ok, 1 findings or failures, 2 the mappings do not load.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from gateway.domain.regions import normalise as normalise_region
from gateway.errors import ConfigError, GatewayError
from gateway.mapping.check import check_all, check_mapping, coverage
from gateway.mapping.golden import DEFAULT_CONTEXT, run_all
from gateway.mapping.registry import MappingRegistry
from gateway.routing.view import delivery_view


class _Refused(click.ClickException):
    """A tool's refusal: ``Error: <what to change>`` and exit status 2, without the usage
    banner (the options were understood; what they point at cannot be used)."""

    exit_code = 2


def _use_catalogs(ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]) -> None:
    from gateway import catalog
    from gateway.protocols import xml as safexml

    try:
        catalog.use_catalogs(value, safexml.parse)
    except catalog.SchemaAccessError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from e


def _dirs(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--catalog", "catalog", multiple=True, expose_value=False,
                     callback=_use_catalogs, is_eager=True,
                     type=click.Path(file_okay=False, exists=True, path_type=Path),
                     help="A folder of schemas the partner's files import (by URL through its "
                          "catalog.xml, or by namespace); repeatable.")(f)
    f = click.option("--schemas", "schemas", default="schemas", show_default=True,
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Folder of partner and source schemas.")(f)
    return click.option("--mappings", "mappings", default="mappings", show_default=True,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Folder of mapping files.")(f)


def _load(mappings: Path, schemas: Path) -> MappingRegistry:
    try:
        return MappingRegistry.load(mappings, schemas)
    except ConfigError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


@click.group()
def mapping() -> None:
    """Check, test, render and scaffold declarative mappings."""


@mapping.command()
@_dirs
def check(mappings: Path, schemas: Path) -> None:
    """Load every mapping and report what would go wrong at run time."""
    reg = _load(mappings, schemas)
    findings = check_all(reg)
    for f in findings:
        click.echo(str(f))
    errors = sum(f.severity == "error" for f in findings)
    n = len(reg.all())
    click.echo(f"{n} mapping(s), {len(reg.tables)} code table(s): {errors} error(s), "
               f"{len(findings) - errors} warning(s)")
    sys.exit(1 if errors else 0)


@mapping.command("test")
@click.argument("name", required=False)
@_dirs
def test_cmd(name: str | None, mappings: Path, schemas: Path) -> None:
    """Run the golden fixtures under MAPPINGS/tests (optionally of one mapping NAME)."""
    reg = _load(mappings, schemas)
    results = run_all(reg, name)
    failed = [r for r in results if not r.ok]
    for r in results:
        click.echo(f"{'ok  ' if r.ok else 'FAIL'} {r.case.id}")
        if not r.ok:
            click.echo(r.detail)
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed or not results else 0)


def one_delivery(case: dict[str, Any], item_no: str | None, home: str = "11",
                 region: str | None = None) -> dict[str, Any]:
    """The case as the worker hands it to an outbound mapping for one item: the delivery view
    (gateway/routing/view.py) of a delivery for ``region`` (default: the item's handling
    region; a 多地联办 item's part for another region: pass that region)."""
    return delivery_of(case, item_no, home, region)[0]


def delivery_of(case: dict[str, Any], item_no: str | None, home: str = "11",
                region: str | None = None) -> tuple[dict[str, Any], str | None]:
    """:func:`one_delivery` and the delivery's region (``$deliveryRegion`` of the context)."""
    items = case.get("items") or []
    if not items:
        return case, region
    if item_no is not None:
        chosen = [i for i in items if str(i.get("itemNo")) == item_no]
        if not chosen:
            raise click.BadParameter(f"no item {item_no!r} in the case", param_hint="--item")
        item = chosen[0]
    else:
        away = [i for i in items if not str(i.get("handlingRegion", "")).startswith(home)]
        item = (away or items)[0]
    try:
        region = normalise_region(region or str(item.get("handlingRegion")))
        view = delivery_view(case, [item.get("itemNo")], region)
    except (ValueError, KeyError) as e:
        raise click.BadParameter(f"not a region code: {e}", param_hint="--region") from e
    return view, region


@mapping.command()
@click.argument("mapping")
@click.argument("case", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--version", "version", default=None, help="Mapping version (default latest).")
@click.option("--item", "item_no", default=None,
              help="itemNo to send (outbound; default the first item handled outside Beijing).")
@click.option("--region", "region", default=None,
              help="The delivery's region (default: the item's handling region); for a 多地联办 "
                   "item, the region whose part to render.")
@click.option("--context", "context", default=None, help="JSON object merged into the context.")
@click.option("--no-validate", is_flag=True, help="Print without validating.")
@_dirs
def render(mapping: str, case: Path, version: str | None, item_no: str | None,
           region: str | None, context: str | None, no_validate: bool, mappings: Path,
           schemas: Path) -> None:
    """Print what would be sent for CASE (a JSON file) without sending it."""
    reg = _load(mappings, schemas)
    try:
        m = reg.get(mapping, version)
    except ConfigError as e:
        raise click.UsageError(str(e)) from e
    source = json.loads(case.read_text(encoding="utf-8"))
    ctx: dict[str, Any] = dict(DEFAULT_CONTEXT, partner=mapping.split("/")[0])
    if m.direction == "outbound":
        source, ctx["deliveryRegion"] = delivery_of(source, item_no, region=region)
    if context:
        ctx.update(json.loads(context))
    try:
        payload = m.render(source, ctx)
        click.echo(m.pretty(payload).rstrip("\n"))
        if not no_validate:
            m.validate_output(payload, source)   # problems name the source fields
    except GatewayError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


@mapping.command("coverage")
@click.argument("mapping")
@click.option("--version", "version", default=None)
@click.option("--case", "case", default=None,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Also list the fields of this case (JSON) that one delivery leaves behind.")
@click.option("--item", "item_no", default=None, help="With --case: the item (as for render).")
@click.option("--region", "region", default=None, help="With --case: the delivery's region.")
@_dirs
def coverage_cmd(mapping: str, version: str | None, case: Path | None, item_no: str | None,
                 region: str | None, mappings: Path, schemas: Path) -> None:
    """Which target schema fields MAPPING produces, which not, which are required; and which
    source fields it does not carry to the partner (with --case: which of them hold data)."""
    reg = _load(mappings, schemas)
    try:
        m = reg.get(mapping, version)
    except ConfigError as e:
        raise click.UsageError(str(e)) from e
    rows = coverage(m)
    width = max((len(r.path) for r in rows), default=10)
    for r in rows:
        mark = "produced" if r.produced else ("MISSING " if r.required else "-       ")
        click.echo(f"{mark}  {'required' if r.required else 'optional'}  {r.path:<{width}}  {r.type}")
    done = sum(r.produced for r in rows)
    missing = [r.path for r in rows if r.required and not r.produced]
    click.echo(f"{done}/{len(rows)} target fields produced; {len(missing)} required field(s) "
               f"not produced")
    if m.source_fields:
        left = m.uncarried_fields()
        click.echo(f"source fields not carried: {len(left)} of {len(m.source_fields)}"
                   + "".join(f"\n  not carried  {p}" for p in left))
    else:
        click.echo("source fields not carried: unknown (the mapping names no JSON source schema)")
    if case is not None:
        source = json.loads(case.read_text(encoding="utf-8"))
        if m.direction == "outbound":
            source = one_delivery(source, item_no, region=region)
        dropped = m.uncarried_fields(source)
        click.echo(f"this delivery of {case.name} leaves behind: "
                   + (", ".join(dropped) if dropped else "nothing"))
    for f in check_mapping(m, reg):
        click.echo(str(f))
    sys.exit(1 if missing else 0)


@mapping.command()
@click.option("--schema", "schema", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Partner WSDL, XSD or JSON Schema.")
@click.option("--operation", default=None, help="WSDL operation (required when several).")
@click.option("--element", default=None, help="XSD global element (required when several).")
@click.option("--port", default=None, help="WSDL port whose binding to read (default: any).")
@click.option("--binding", default=None,
              help="WSDL binding to read, by name (a WSDL without wsdl:service; default: any).")
@click.option("--header", "header", default=None,
              help="WSDL: the skeleton of this SOAP header part's block mapping instead.")
@click.option("--direction", type=click.Choice(["outbound", "inbound"]), default="outbound",
              help="outbound: the partner's message is the target; inbound: it is the source "
                   "and Beijing's schema the target.")
@click.option("--target", "target", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="inbound: the JSON Schema the mapping writes (default: "
                   "<schemas>/beijing/case.schema.json).")
@click.option("--reply", is_flag=True,
              help="inbound from a WSDL: the operation's reply is the source (a reply mapping).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of standard output (never overwrites).")
@_dirs
def scaffold(schema: Path, operation: str | None, element: str | None, port: str | None,
             binding: str | None, header: str | None, direction: str, target: Path | None,
             reply: bool, output: Path | None, mappings: Path, schemas: Path) -> None:
    """Write a mapping skeleton listing every target field with its type and cardinality.

    A refusal is one line naming what to change, exit status 2 (no usage banner)."""
    from gateway.mapping.scaffold import ScaffoldError, scaffold as build

    if not schema.is_file():
        raise _Refused(f"--schema {schema}: no such file")
    try:
        text = build(schema, operation=operation, element=element, direction=direction,
                     schemas_dir=schemas, port=port, binding=binding, header=header,
                     target=target, reply=reply)
    except ScaffoldError as e:
        raise _Refused(str(e)) from e
    if output is None:
        click.echo(text, nl=False)
    elif output.exists():
        raise _Refused(f"{output} exists; not overwriting")
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
