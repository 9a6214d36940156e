"""Wire protocols: how a mapped payload reaches a partner, and what its answer means.

Each protocol style (``rest-json``, SOAP styles) is a factory registered in :data:`FACTORIES`;
a partner is a configuration entry naming one, so onboarding a partner writes no Python.
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


def create_client(name: str, settings: PartnerSettings, http: aiohttp.ClientSession) -> PartnerClient:
    """Build the client for one configured partner from its protocol style."""
    try:
        target = FACTORIES[settings.protocol]
    except KeyError:
        raise ConfigError(f"unknown protocol {settings.protocol!r}; known: {', '.join(sorted(FACTORIES))}",
                          key=f"partners.{name}.protocol") from None
    module, _, attr = target.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    client: PartnerClient = factory(name, settings, http)
    return client


__all__ = ["FACTORIES", "PartnerClient", "create_client"]
