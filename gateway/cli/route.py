"""``gateway route``: explain how a case routes, and check the route table before deploying it.

Both commands read the same configuration file as the server, so what they say is what the
server would do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gateway.cli.options import config_error, config_option, read_settings
from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError
from gateway.routing.rules import describe_specificity
from gateway.routing.table import RouteTable
from gateway.inbound.service import PUSH_PARTNER as INBOUND_PUSH
from gateway.store.inbound_status import notify_partner
from gateway.statuses.receive import PUSH_PARTNER


def _load(config: str | None) -> tuple[Settings, RouteTable]:
    settings = read_settings(config)
    try:
        table = RouteTable.build(settings.routes, settings.partners, settings.home_region,
                                 source=settings.source_file)
    except ConfigError as e:
        raise config_error(e) from e
    return settings, table


def _read_case(path: Path, settings: Settings) -> dict[str, Any]:
    try:
        case = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise click.ClickException(f"cannot read {path}: {e}") from e
    if not isinstance(case, dict):
        raise click.ClickException(f"{path}: a case is a JSON object")
    schema_file = settings.path(settings.schemas_dir) / "beijing" / "case.schema.json"
    if schema_file.exists():
        from jsonschema import Draft202012Validator
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
        errors = sorted(Draft202012Validator(schema).iter_errors(case), key=lambda e: e.path)
        if errors:
            lines = [f"  /{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:20]]
            raise click.ClickException(f"{path} is not a valid Beijing case:\n" +
                                       "\n".join(lines))
    return case


@click.group()
def route() -> None:
    """Inspect and check the route table."""


@route.command()
@click.argument("case_file", metavar="CASE.json",
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
def explain(case_file: Path, config: str | None, as_json: bool) -> None:
    """Show, per item, the rules considered, the one chosen and why.

    Exits 1 when an item has no route (intake would answer 422).
    """
    settings, table = _load(config)
    case = _read_case(case_file, settings)
    try:
        explanation = table.explain(case)
    except GatewayError as e:
        raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(explanation.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(explanation.render())
        if explanation.routable:
            plan = table.plan(case)
            click.echo("deliveries:")
            for d in plan.deliveries:
                version = f"@{d.mapping_version}" if d.mapping_version else ""
                click.echo(f"  {d.key}  -> {d.partner} items {', '.join(d.item_nos)} "
                           f"(mapping {d.mapping}{version}, rule {d.rule})")
            if not plan.deliveries:
                click.echo("  none")
            click.echo(f"home items: {', '.join(plan.home_items) or 'none'}")
    if not explanation.routable:
        raise SystemExit(1)


@route.command()
@config_option
def check(config: str | None) -> None:
    """Validate the route table against the partners and the mappings they reference."""
    settings, table = _load(config)
    click.echo(f"route table: {settings.source_file}")
    for rule in table.rules:
        where = f"routes[{rule.index}]" if rule.index >= 0 else "built-in"
        click.echo(f"  {where:<11} {rule.name} -> {rule.target}  "
                   f"({describe_specificity(rule.specificity)})")
    problems = _check_mappings(settings, table)
    warnings = _coverage_warnings(settings, table)
    for w in warnings:
        click.echo(f"warning: {w}")
    if problems:
        for p in problems:
            click.echo(f"error: {p}", err=True)
        raise click.ClickException(f"{len(problems)} problem(s) in the route table")
    click.echo(f"OK: {sum(not r.builtin for r in table.rules)} rules, "
               f"{len(settings.partners)} partners, no ties")


def _check_mappings(settings: Settings, table: RouteTable) -> list[str]:
    """Every mapping a rule or a partner names must load."""
    from gateway.mapping import MappingRegistry
    try:
        registry = MappingRegistry.load(settings.path(settings.mappings_dir),
                                        settings.path(settings.schemas_dir))
    except (GatewayError, OSError) as e:
        return [f"mappings cannot be loaded: {e}"]
    refs = table.mapping_refs() + [(f"partner {name}", p.mapping, p.mapping_version)
                                   for name, p in settings.partners.items()]
    problems = []
    seen = set()
    for owner, mapping, version in refs:
        if (mapping, version) in seen:
            continue
        seen.add((mapping, version))
        try:
            registry.get(mapping, version)
        except GatewayError as e:  # the registry's ConfigError: unknown name or version
            shown = f"{mapping}@{version}" if version else mapping
            problems.append(f"{owner}: mapping {shown} not found ({e})")
    click.echo(f"mappings: {len(seen)} referenced, {len(seen) - len(problems)} found")
    return problems


def _coverage_warnings(settings: Settings, table: RouteTable) -> list[str]:
    out = []
    targets = {r.target for r in table.rules}
    # the city platform receives status pushes, back-flow batches and inbound cases (those
    # partners submit to Beijing), and a partner's <partner>-status its inbound cases' statuses,
    # never routed cases: no rule is right
    receivers = {PUSH_PARTNER, INBOUND_PUSH} | {s.push_to for s in settings.backflow.sources.values()}
    receivers |= {notify_partner(p) for p in settings.partners}
    for name in sorted(set(settings.partners) - targets - receivers):
        out.append(f"partner {name} is configured but no rule routes to it")
    if not any(not r.conditions for r in table.rules):
        out.append("no catch-all rule: items outside the listed regions and codes get 422")
    return out
