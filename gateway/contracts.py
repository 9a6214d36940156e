"""Contracts that change on reload — the route table, the mappings and the promised times with
their calendar — swapped as one.

A reload builds and checks a complete new :class:`Contracts` first; only then is it swapped in.
On any error the old set stays live (a failed reload never leaves the gateway with no routes).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings, load_settings
from gateway.domain.deadlines import Deadlines, load_deadlines
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.routing import RouteTable


@dataclass(frozen=True)
class Contracts:
    routes: RouteTable
    mappings: MappingRegistry
    #: promised times and the working-day calendar (gateway.domain.deadlines): loaded and
    #: checked with the mappings, so a broken file fails start-up or reload, not a case view
    deadlines: Deadlines | None = None


def use_schema_catalogs(settings: Settings) -> None:
    """:func:`gateway.catalog.use_catalogs` with the config's ``schema_catalogs`` (a folder that
    is not there is a ConfigError naming the key)."""
    from gateway import catalog
    from gateway.protocols import xml as safexml

    try:
        catalog.use_catalogs((settings.path(d) for d in settings.schema_catalogs), safexml.parse)
    except catalog.SchemaAccessError as e:
        raise ConfigError(str(e), file=settings.source_file, key="schema_catalogs") from e


def load_contracts(settings: Settings) -> Contracts:
    """Load mappings and routes and check that every route's mapping exists (ConfigError).

    The engineer's schema catalogs (``schema_catalogs``) are put in force first: every schema
    loader after this, the WSDL loader of the SOAP clients included, reads them."""
    use_schema_catalogs(settings)
    mappings = MappingRegistry.load(settings.path(settings.mappings_dir),
                                    settings.path(settings.schemas_dir))
    for p in settings.partners.values():
        mappings.get(p.mapping, p.mapping_version)
    routes = RouteTable.build(settings.routes, settings.partners, settings.home_region,
                              source=settings.source_file)
    for rule, mapping, version in routes.mapping_refs():
        try:
            mappings.get(mapping, version)
        except ConfigError as e:
            raise ConfigError(f"route {rule!r}: {e.reason}", file=settings.source_file,
                              key="routes") from e
    return Contracts(routes=routes, mappings=mappings,
                     deadlines=load_deadlines(settings.path(settings.mappings_dir)))


def reload_contracts(running: Settings) -> Contracts:
    """Read the configuration file again and load its routes with fresh mappings.

    Routes and mappings change at reload; partners (URLs, credentials, protocol clients) change
    at restart, so a file whose partners differ from the running ones is refused as a whole
    rather than half applied.
    """
    if running.source_file is None:
        return load_contracts(running)
    fresh = load_settings(running.source_file)
    if fresh.partners != running.partners:
        changed = sorted(set(fresh.partners) ^ set(running.partners) | {
            n for n in set(fresh.partners) & set(running.partners)
            if fresh.partners[n] != running.partners[n]})
        raise ConfigError(f"partners changed ({', '.join(changed)}): restart to apply them; "
                          "a reload applies routes and mappings only",
                          file=running.source_file, key="partners")
    return load_contracts(running.model_copy(update={
        "routes": fresh.routes, "mappings_dir": fresh.mappings_dir,
        "schemas_dir": fresh.schemas_dir}))


class ContractsHolder:
    """The live contracts; readers take ``current`` once per message."""

    def __init__(self, contracts: Contracts) -> None:
        self.current = contracts
        self.generation = 1

    def swap(self, contracts: Contracts) -> None:
        self.current = contracts
        self.generation += 1
