"""Wire protocols: how a mapped payload reaches a partner, and what its answer means.

Each protocol style (``rest-json``, SOAP styles) is a factory registered in :data:`FACTORIES`;
a partner is a configuration entry naming one, so onboarding a partner writes no Python. A
partner with a ``status_query`` block also gets its style's status query
(:data:`STATUS_QUERY_FACTORIES`, :mod:`gateway.protocols.status_query`), carried by its client
as ``status_query`` (read it with :func:`~gateway.protocols.status_query.status_query_of`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import aiohttp

from gateway.config import PartnerSettings
from gateway.errors import ConfigError
from gateway.protocols.base import PartnerClient

# protocol style → "module:factory"; factories validate their options and raise ConfigError.
FACTORIES: dict[str, str] = {
    "rest-json": "gateway.protocols.rest:create_client",
    "soap-xml-string": "gateway.protocols.soap_xml_string:create_client",
    "soap-typed": "gateway.protocols.soap_typed:create_client",
}

# protocol style → "module:factory" of its status query, called as factory(name, settings, http,
# auth) where auth is the client's request signer (if it has one).
STATUS_QUERY_FACTORIES: dict[str, str] = {
    "rest-json": "gateway.protocols.status_query_rest:create_status_query",
    "soap-xml-string": "gateway.protocols.status_query_soap:create_xml_string",
    "soap-typed": "gateway.protocols.status_query_soap:create_typed",
}


def _load(target: str) -> Callable[..., Any]:
    module, _, attr = target.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return factory


# styles whose clients render header blocks through mappings (option ``headers``)
MAPPING_AWARE = frozenset({"soap-xml-string", "soap-typed"})


def create_client(name: str, settings: PartnerSettings, http: aiohttp.ClientSession,
                  mappings: Callable[[str, str | None], Any] | None = None) -> PartnerClient:
    """Build the client for one configured partner from its protocol style; ``mappings``
    looks a mapping up by name and version (the live registry's ``get``), for the styles that
    render parts of a message themselves (:data:`MAPPING_AWARE`)."""
    try:
        target = FACTORIES[settings.protocol]
    except KeyError:
        raise ConfigError(f"unknown protocol {settings.protocol!r}; known: {', '.join(sorted(FACTORIES))}",
                          key=f"partners.{name}.protocol") from None
    extra = ({"mappings": mappings}
             if mappings is not None and settings.protocol in MAPPING_AWARE else {})
    client: PartnerClient = _load(target)(name, settings, http, **extra)
    if settings.status_query is not None:
        query = STATUS_QUERY_FACTORIES.get(settings.protocol)
        if query is None:
            raise ConfigError(f"protocol {settings.protocol!r} has no status query",
                              key=f"partners.{name}.status_query")
        client.status_query = _load(query)(  # type: ignore[attr-defined]
            name, settings, http, getattr(client, "auth", None), **extra)
    return client


__all__ = ["FACTORIES", "STATUS_QUERY_FACTORIES", "PartnerClient", "create_client"]
