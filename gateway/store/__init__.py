"""Persistence behind one interface that works on SQLite (embedded) and PostgreSQL (scale-out).

Only this package writes a delivery's state, and the claim query lives in one place
(:mod:`gateway.store.queries`).
"""

from gateway.store.engine import create_engine, is_sqlite
from gateway.store.repository import (
    CaseRecord,
    Claim,
    DeliveryRecord,
    NewCase,
    NewDelivery,
    Store,
    SubmitResult,
)

__all__ = [
    "CaseRecord", "Claim", "DeliveryRecord", "NewCase", "NewDelivery", "Store", "SubmitResult",
    "create_engine", "is_sqlite",
]
