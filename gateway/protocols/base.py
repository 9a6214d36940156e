"""The seam between the worker and every wire protocol.

A :class:`PartnerClient` takes a payload produced by a compiled mapping (a JSON-able ``dict`` for
REST partners, an lxml element or a ``dict`` of SOAP parameters for SOAP partners) and returns an
:class:`Outcome`. It never raises for partner behaviour: timeouts, resets, HTTP errors, SOAP faults
and business rejections are all classified into an outcome here, at the boundary, so the worker
only records decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class OutcomeKind(StrEnum):
    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Outcome:
    """What one attempt to send achieved, with the partner's own code and message kept."""

    kind: OutcomeKind
    message: str = ""
    receipt_no: str | None = None
    partner_code: str | None = None
    http_status: int | None = None
    retry_after: float | None = None

    @classmethod
    def delivered(cls, receipt_no: str, *, partner_code: str | None = None,
                  message: str = "ok", http_status: int | None = None) -> Outcome:
        return cls(OutcomeKind.DELIVERED, message, receipt_no, partner_code, http_status)

    @classmethod
    def retryable(cls, message: str, *, partner_code: str | None = None,
                  http_status: int | None = None, retry_after: float | None = None) -> Outcome:
        return cls(OutcomeKind.RETRYABLE, message, None, partner_code, http_status, retry_after)

    @classmethod
    def permanent(cls, message: str, *, partner_code: str | None = None,
                  http_status: int | None = None) -> Outcome:
        return cls(OutcomeKind.PERMANENT, message, None, partner_code, http_status)


class PartnerClient(Protocol):
    """Sends one mapped payload to one partner."""

    async def send(self, payload: Any, *, idempotency_key: str, correlation_id: str) -> Outcome:
        """Deliver ``payload``; the partner dedupes on ``idempotency_key``."""
        ...

    async def close(self) -> None:
        """Release what the client holds (not the shared HTTP session)."""
        ...
