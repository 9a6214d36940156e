"""The life of a case in the log: one structured event per step, tied together by the case's
correlation id, and nothing of the case itself::

    case.accepted, case.routed                    intake, once the case is committed
    delivery.delivered                            the worker, once the attempt is recorded
    delivery.retry_scheduled                      (every attempt ends in one of these three;
    delivery.dead_lettered                        a result that could not be recorded, none)
    delivery.replayed, delivery.discarded         the dead-letter queue, once committed

A delivery's event names the delivery, its partner, the attempt (the delivery's own attempt
number, as in its history) and the outcome kind; a retry also when it is due, a failure the
partner's code and HTTP status. Those are the only fields :func:`case_event` takes: ids, names,
numbers and codes, so no case body, name or identity number has a way in (and the log's
redaction still runs last on every line).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog

from gateway.retry.policy import Decision

_log = structlog.get_logger("gateway.case")
#: the standard library's logger under it: its level decides (structlog's ``filter_by_level``)
_level = logging.getLogger("gateway.case")


class CaseEvent(StrEnum):
    ACCEPTED = "case.accepted"
    ROUTED = "case.routed"
    DELIVERED = "delivery.delivered"
    RETRY_SCHEDULED = "delivery.retry_scheduled"
    DEAD_LETTERED = "delivery.dead_lettered"
    REPLAYED = "delivery.replayed"
    DISCARDED = "delivery.discarded"

    @classmethod
    def after(cls, decision: Decision) -> CaseEvent:
        """The event of an attempt recorded with the retry policy's ``decision``."""
        return _AFTER[decision]


_AFTER = {Decision.DELIVERED: CaseEvent.DELIVERED, Decision.RETRY: CaseEvent.RETRY_SCHEDULED,
          Decision.DEAD: CaseEvent.DEAD_LETTERED}


def case_event(event: CaseEvent, *, correlation_id: str, case_id: str | None = None,
               delivery_id: str | None = None, partner: str | None = None,
               partners: Sequence[str] | None = None, attempt: int | None = None,
               outcome: str | None = None, code: str | None = None,
               http_status: int | None = None, next_attempt_at: datetime | None = None) -> None:
    """Log ``event`` with the fields given (None: left out). A dead letter is a warning: an
    operator has to act; every other step is info."""
    if event is not CaseEvent.DEAD_LETTERED and not _level.isEnabledFor(logging.INFO):
        return  # dropped by the level anyway: not built (two events per accepted case)
    fields: dict[str, Any] = {
        "correlation_id": correlation_id, "case_id": case_id, "delivery_id": delivery_id,
        "partner": partner, "partners": list(partners) if partners is not None else None,
        "attempt": attempt, "outcome": outcome, "code": code, "http_status": http_status,
        "next_attempt_at": next_attempt_at.isoformat() if next_attempt_at else None}
    fields = {k: v for k, v in fields.items() if v is not None}
    if event is CaseEvent.DEAD_LETTERED:
        _log.warning(event.value, **fields)
    else:
        _log.info(event.value, **fields)
