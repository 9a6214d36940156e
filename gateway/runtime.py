"""Contracts that change on reload — the route table and the mappings — swapped as one.

A reload builds and checks a complete new :class:`Contracts` first; only then is it swapped in.
On any error the old set stays live (a failed reload never leaves the gateway with no routes).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.routing import RouteTable


@dataclass(frozen=True)
class Contracts:
    routes: RouteTable
    mappings: MappingRegistry


def load_contracts(settings: Settings) -> Contracts:
    """Load mappings and routes and check that every route's mapping exists (ConfigError)."""
    mappings = MappingRegistry.load(settings.path(settings.mappings_dir),
                                    settings.path(settings.schemas_dir))
    for name, p in settings.partners.items():
        mappings.get(p.mapping, p.mapping_version)
    routes = RouteTable.build(settings.routes, settings.partners, settings.home_region,
                              source=settings.source_file)
    for rule, mapping, version in routes.mapping_refs():
        try:
            mappings.get(mapping, version)
        except ConfigError as e:
            raise ConfigError(f"route {rule!r}: {e.reason}", file=settings.source_file,
                              key="routes") from e
    return Contracts(routes=routes, mappings=mappings)


class ContractsHolder:
    """The live contracts; readers take ``current`` once per message."""

    def __init__(self, contracts: Contracts) -> None:
        self.current = contracts
        self.generation = 1

    def swap(self, contracts: Contracts) -> None:
        self.current = contracts
        self.generation += 1
