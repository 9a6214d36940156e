"""The context a mapping renders with, declared once.

Besides the source document, a mapping may read these values as ``$name``; the compiler refuses
any other name at load time (unless a mapping declares it), and the worker, the intake's
deliverability check and the developer tools all build the context with
:func:`delivery_context`, so what a mapping sees at intake is what it sees when sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

BEIJING = timezone(timedelta(hours=8))

CONTEXT_KEYS = ("caseId", "deliveryId", "idempotencyKey", "partner", "now", "deliveryRegion")
"""``caseId``/``deliveryId``: the gateway's ids; ``idempotencyKey``: what the partner dedupes
on; ``partner``: the configured partner name; ``now``: ISO 8601 in +08:00; ``deliveryRegion``:
the 12-digit region this delivery serves (a joint item's own part)."""


def delivery_context(*, case_id: str, delivery_id: str, idempotency_key: str, partner: str,
                     region: str | None, now: datetime | None = None) -> dict[str, Any]:
    """The context of one delivery, keyed by :data:`CONTEXT_KEYS`."""
    return {"caseId": case_id, "deliveryId": delivery_id, "idempotencyKey": idempotency_key,
            "partner": partner, "now": (now or datetime.now(BEIJING)).isoformat(),
            "deliveryRegion": region}


__all__ = ["CONTEXT_KEYS", "delivery_context"]
