"""Partner simulators: real aiohttp servers that speak each partner's contract.

Used by the demo, the tests and integration engineers (``gateway simulate PARTNER --port N``).
Each module exposes ``create_app(**options) -> web.Application``; :data:`SIMULATORS` names them
lazily so importing one partner's simulator never loads another's WSDL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from aiohttp import web

SIMULATORS: dict[str, str] = {
    "national": "gateway.simulators.national:create_app",
    "tianjin": "gateway.simulators.tianjin:create_app",
    "hebei": "gateway.simulators.hebei:create_app",
    "city": "gateway.simulators.city:create_app",
}


def simulator_factory(partner: str) -> Callable[..., web.Application]:
    """The ``create_app`` of one partner's simulator; ``KeyError`` names the known ones."""
    try:
        target = SIMULATORS[partner]
    except KeyError:
        raise KeyError(f"no simulator for {partner!r}; known: {', '.join(sorted(SIMULATORS))}") from None
    module, _, attr = target.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return factory
