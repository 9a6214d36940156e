"""The seam between the worker and every wire protocol.

A :class:`PartnerClient` takes a payload produced by a compiled mapping (a JSON-able ``dict`` for
REST partners, an lxml element or a ``dict`` of SOAP parameters for SOAP partners) and returns an
:class:`~gateway.outcome.Outcome`. It never raises for partner behaviour: timeouts, resets, HTTP
errors, SOAP faults and business rejections are all classified into an outcome at the boundary
(:mod:`gateway.protocols.classify`), so the worker only records decisions.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.outcome import Outcome


class PartnerClient(Protocol):
    """Sends one mapped payload to one partner."""

    async def send(self, payload: Any, *, idempotency_key: str, correlation_id: str) -> Outcome:
        """Deliver ``payload``; the partner dedupes on ``idempotency_key``."""
        ...

    async def close(self) -> None:
        """Release what the client holds (not the shared HTTP session)."""
        ...
