"""What one attempt to send achieved: the vocabulary between the wire and the retry decision.

The protocol clients (:mod:`gateway.protocols`) produce an :class:`Outcome`, the retry policy
and the breaker (:mod:`gateway.retry`) decide on it, and the worker records it. It lives in a
module of its own so that neither side imports the other.

Every value an outcome carries may come from an untrusted partner: it is bounded once, here, where
it enters (control characters replaced, messages and codes cut to their column sizes, a receipt
number refused when it could not be used later).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

MAX_MESSAGE = 2000
"""Characters of a partner's message kept (the ``last_message`` and attempt columns)."""
MAX_CODE = 64
"""Characters of a partner's code kept (``String(64)`` columns)."""
MAX_RECEIPT = 128
"""Longest receipt number accepted (``String(128)``); a longer one is not a usable receipt."""

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_RECEIPT = re.compile(rf"[\x21-\x7e\u00a0-\ud7ff\ue000-\U0010ffff]{{1,{MAX_RECEIPT}}}")


def bounded(value: str | None, limit: int) -> str | None:
    """A partner-supplied text made safe to store: control characters and lone surrogates
    replaced, and cut to ``limit`` characters with a visible marker (never a database error)."""
    if value is None:
        return None
    text = _CONTROL.sub("\ufffd", str(value))
    if len(text) > limit:
        text = text[: limit - 12] + "…[truncated]"
    return text


def receipt_problem(receipt: str | None) -> str | None:
    """Why a partner's receipt number cannot be kept, or ``None`` if it can.

    A receipt is an identifier used later (status queries, operators): a truncated one would
    point at nothing, so an unusable receipt makes the reply malformed instead of being cut.
    """
    if receipt is None or receipt == "":
        return "no receipt number"
    if len(receipt) > MAX_RECEIPT:
        return f"receipt number of {len(receipt)} characters (at most {MAX_RECEIPT})"
    if not _RECEIPT.fullmatch(receipt):
        return "receipt number contains spaces or control characters"
    return None


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

    def __post_init__(self) -> None:
        # Every value here may come from an untrusted partner: bound it once, where it enters.
        object.__setattr__(self, "message", bounded(self.message, MAX_MESSAGE) or "")
        object.__setattr__(self, "partner_code", bounded(self.partner_code, MAX_CODE))
        if self.receipt_no is not None and receipt_problem(self.receipt_no):
            raise ValueError("an Outcome's receipt_no must pass receipt_problem() first")
        if self.retry_after is not None and not 0 <= self.retry_after < 1e9:
            object.__setattr__(self, "retry_after", None)

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


__all__ = ["MAX_CODE", "MAX_MESSAGE", "MAX_RECEIPT", "Outcome", "OutcomeKind", "bounded",
           "receipt_problem"]
