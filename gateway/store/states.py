"""A delivery's state: the one vocabulary of the store, the dead-letter queue, the worker and the
API. A ``StrEnum``, so the stored values and the JSON answers are the plain strings they always
were (``"pending"``, ``"in_flight"`` …).

::

    pending ──claim──▶ in_flight ──▶ delivered
       ▲                  │ └──────▶ dead ──discard──▶ discarded
       └─retry / release──┘            │
       └──────────replay───────────────┘

An ``in_flight`` delivery whose lease expired is due again (its worker died) without a write.
"""

from __future__ import annotations

from enum import StrEnum

from gateway.retry.policy import Decision


class DeliveryState(StrEnum):
    PENDING = "pending"        # due at next_attempt_at (never tried, retrying, released, replayed)
    IN_FLIGHT = "in_flight"    # leased to one worker until lease_expires_at
    DELIVERED = "delivered"    # the partner accepted it (receipt): final
    DEAD = "dead"              # parked in the dead-letter queue for an operator
    DISCARDED = "discarded"    # an operator gave it up (kept, never deleted): final

    @classmethod
    def after(cls, decision: Decision) -> DeliveryState:
        """The state an attempt leaves its delivery in, by the retry policy's decision."""
        return _AFTER[decision]


_AFTER = {Decision.DELIVERED: DeliveryState.DELIVERED, Decision.RETRY: DeliveryState.PENDING,
          Decision.DEAD: DeliveryState.DEAD}

#: The states a delivery can still leave: the backlog and the dead letters an operator watches.
#: Delivered and discarded are final, and their rows grow with every case ever sent.
OPEN_STATES = frozenset({DeliveryState.PENDING, DeliveryState.IN_FLIGHT, DeliveryState.DEAD})
