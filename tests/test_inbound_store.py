"""Inbound cases in the store (issue 15): one row per partner case number, a resend answers the
first receipt (also when two arrive at once), the push to the city platform and the audit record
in the same transaction. Both engines (``store`` fixture)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from gateway.store import Store
from gateway.store.inbound import KIND_INBOUND, InboundCase, InboundCases
from gateway.store.models import audit_log, deliveries


def _case(no: str = "TJ-0001") -> InboundCase:
    doc: dict[str, Any] = {"applicationNo": no, "channel": "WEB"}
    return InboundCase(partner="tianjin", partner_case_no=no, document=doc,
                       submitted_by="partner:tianjin")


async def _count(store: Store, stmt: Any) -> int:
    async with store.db.read("count") as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def test_a_case_is_stored_once_with_its_push_and_audit_record(store: Store) -> None:
    inbound = InboundCases(store, push_to="city-inbound")
    first = await inbound.submit(_case())
    again = await inbound.submit(_case())
    assert first.receipt_no.startswith("BJSL") and len(first.receipt_no) == 32
    assert not first.duplicate and again.duplicate and again.receipt_no == first.receipt_no
    d = deliveries.c
    assert await _count(store, select(func.count()).where(d.kind == KIND_INBOUND)) == 1
    async with store.db.read("read") as conn:
        row = (await conn.execute(select(deliveries).where(d.kind == KIND_INBOUND))).one()
    assert row.partner == "city-inbound" and row.payload == {"applicationNo": "TJ-0001",
                                                            "channel": "WEB"}
    assert row.idempotency_key == first.receipt_no
    assert await _count(store, select(func.count()).where(audit_log.c.kind == "inbound")) == 1
    stored = await inbound.get("tianjin", "TJ-0001")
    assert stored is not None and stored["body"]["channel"] == "WEB"


async def test_concurrent_resends_get_one_receipt(store: Store) -> None:
    inbound = InboundCases(store, push_to="city-inbound")
    got = await asyncio.gather(*(inbound.submit(_case("TJ-0002")) for _ in range(5)))
    assert len({r.receipt_no for r in got}) == 1
    assert sum(not r.duplicate for r in got) == 1


async def test_the_same_number_from_another_partner_is_another_case(store: Store) -> None:
    inbound = InboundCases(store, push_to=None)
    a = await inbound.submit(_case("X-1"))
    b = await inbound.submit(InboundCase("national", "X-1", {"applicationNo": "X-1"}, "n"))
    assert a.receipt_no != b.receipt_no and a.delivery_id is None


async def test_inbound_bodies_are_sealed_and_resealed_on_rotation(db_url: str) -> None:
    """The unified document is sealed at rest (its outbox payload too), and ``gateway seal
    reseal`` moves it to the newest key, so retiring the old key loses no inbound case."""
    import base64

    from sqlalchemy import JSON, type_coerce

    from gateway.store import create_engine, sealing
    from gateway.store.migrate import upgrade
    from gateway.store.models import inbound_cases
    from gateway.store.reseal import check_keys, reseal

    k1 = ("k1", base64.b64encode(b"1" * 32).decode())
    k2 = ("k2", base64.b64encode(b"2" * 32).decode())
    engine = create_engine(db_url)
    await upgrade(engine)
    try:
        old = Store(engine, seal_keys=sealing.Keyring.parse([k1], "test"))
        await check_keys(old)
        await InboundCases(old, push_to="city-inbound").submit(_case("TJ-SEAL-1"))
        await old.close()
        store = Store(create_engine(db_url), seal_keys=sealing.Keyring.parse([k2, k1], "test"))
        try:
            await check_keys(store)
            await reseal(store)
            async with store.db.read("raw") as conn:
                raw = (await conn.execute(select(type_coerce(inbound_cases.c.body, JSON)))).one()[0]
            assert sealing.is_sealed(raw) and raw["kid"] == "k2"
            got = await InboundCases(store, push_to=None).get("tianjin", "TJ-SEAL-1")
            assert got is not None and got["body"]["applicationNo"] == "TJ-SEAL-1"
        finally:
            await store.close()
    finally:
        sealing.activate(None)   # the keyring is process-wide: leave none behind
