"""Persistence behind one interface that works on SQLite (embedded) and PostgreSQL (scale-out).

Only this package writes a delivery's state (:class:`DeliveryState`), and the claim query lives
in one place (:meth:`Store.claim_due` in :mod:`gateway.store.repository`).
"""

from gateway.store.engine import create_engine, is_sqlite
from gateway.store.repository import (
    CaseRecord,
    Claim,
    DeliveryRecord,
    Lease,
    NewCase,
    NewDelivery,
    Store,
    SubmitResult,
)
from gateway.store.states import DeliveryState
from gateway.store.statuses import Applied, Flag, Source, StatusEvent, StatusEvents

__all__ = [
    "Applied", "CaseRecord", "Claim", "DeliveryRecord", "DeliveryState", "Flag", "Lease", "NewCase",
    "NewDelivery", "Source", "StatusEvent", "StatusEvents", "Store", "SubmitResult",
    "create_engine", "is_sqlite",
]
