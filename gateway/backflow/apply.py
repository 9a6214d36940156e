"""A case result moves its case: each CASE_RESULT record whose case the gateway holds is applied
through the one status state machine (:class:`gateway.store.statuses.StatusEvents`), as a
national status event would be (``FINISHED`` with its result, never regressing a case).

Its event id is ``backflow:<key>:v<version>``: applied before the page that carries it commits,
so a crash in between applies it again on the resumed walk — as a duplicate, which changes
nothing. Results about cases the gateway never held (most of a national export) are not stored
as status events: the back-flow record itself keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import String, bindparam, select
from sqlalchemy import any_ as sa_any
from sqlalchemy.dialects.postgresql import ARRAY

from gateway.observability.metrics import Metrics
from gateway.store import Store
from gateway.store.backflow import Mapped
from gateway.store.models import cases
from gateway.store.statuses import Source, StatusEvent, StatusEvents

PARTNER = "national"


async def apply_results(store: Store, records: Sequence[Mapped], *,
                        push_to: str | None = None, metrics: Metrics | None = None) -> int:
    """Apply the case results among ``records`` whose case is held; how many moved a case
    (each counted in ``metrics`` as a status change from the export)."""
    results = [m for m in records if m.kind == "caseResult"
               and m.body.get("data", {}).get("applicationNo")]
    if not results:
        return 0
    numbers = list({m.body["data"]["applicationNo"] for m in results})
    held: set[str] = set()
    number = cases.c.application_no
    async with store.db.read("find back-flow cases") as conn:
        if conn.dialect.name == "postgresql":  # one array parameter (gateway.store.backflow)
            held.update((await conn.execute(select(number).where(number == sa_any(
                bindparam("numbers", type_=ARRAY(String())))), {"numbers": numbers})).scalars())
        else:  # one JSON array parameter (json_each): one statement, nothing expanded
            held.update((await conn.exec_driver_sql(
                "SELECT application_no FROM cases WHERE application_no IN "
                "(SELECT value FROM json_each(?))", (orjson.dumps(numbers).decode(),))).scalars())
    moved = 0
    events = StatusEvents(store)
    for m in results:
        data = m.body["data"]
        if data["applicationNo"] not in held:
            continue
        event = StatusEvent.from_document(
            PARTNER, Source.EXPORT,
            {**data, "occurredAt": data.get("finishedAt")},
            receipt_no=data.get("receiptNo"), event_id=f"backflow:{m.key}:v{m.version}"[:128])
        applied = await events.apply(event, push_to=push_to)
        moved += applied.applied
        if applied.applied and metrics is not None:
            metrics.status_changed(PARTNER, applied.status, "export")
    return moved


__all__ = ["apply_results"]
