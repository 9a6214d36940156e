"""The store's boundary: database errors come out as StoreError naming no value, and every write
(cases, dead letters, breaker rows) goes through the one door, which takes turns on SQLite.

Also the exception tree drawn in ``gateway/errors.py``'s docstring, checked against the classes.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

import gateway.errors
from gateway.errors import GatewayError, StoreError
from gateway.store import NewCase, NewDelivery, Store, create_engine
from gateway.store.breakers import BreakerRows
from gateway.store.dlq import DeadLetters
from gateway.store.migrate import upgrade
from tests.harness import free_port

ID_NO = "110105199003071239"  # synthetic; stands for any value a driver may quote


def _case(no: str, key: str) -> NewCase:
    return NewCase(application_no=no, body={"applicant": {"certNo": ID_NO}}, body_hash="h",
                   correlation_id=f"c-{no}", home_items=(),
                   deliveries=(NewDelivery("national", ("1",), "310115000000", "r",
                                           "national/case-submit", None, key),))


async def test_a_refused_write_is_a_store_error_that_quotes_no_value(store: Store) -> None:
    await store.submit_case(_case("E1", f"key-{ID_NO}"))
    with pytest.raises(StoreError) as caught:  # another case, the same idempotency key
        await store.submit_case(_case("E2", f"key-{ID_NO}"))
    e = caught.value
    assert isinstance(e, GatewayError) and isinstance(e.__cause__, IntegrityError)
    assert e.operation == "store case" and str(e).startswith("store case: database error "
                                                             "IntegrityError")
    assert ID_NO not in str(e) and "certNo" not in str(e)
    if store.engine.dialect.name == "postgresql":  # the driver's own text does quote the value
        assert ID_NO in str(e.__cause__)
    # the same application number again is not an error: it answers the stored case
    again = await store.submit_case(_case("E1", f"key-{ID_NO}"))
    assert not again.created


async def test_an_unreachable_or_unmigrated_database_is_a_store_error(tmp_path: Any) -> None:
    down = Store(create_engine(f"postgresql+asyncpg://gw@127.0.0.1:{free_port()}/gw"))
    try:
        with pytest.raises(StoreError, match="^get case: database error") as caught:
            await down.get_case("x")
        assert isinstance(caught.value.__cause__, OSError)
        with pytest.raises(StoreError, match="^ping: "):
            await down.ping()
    finally:
        await down.close()
    empty = Store(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"))
    try:
        for call in (empty.due_partners(), DeadLetters(empty).find(),
                     BreakerRows(empty).load(),
                     DeadLetters(empty).record(actor="o", action="note", target=None, detail={})):
            with pytest.raises(StoreError, match="OperationalError"):
                await call
    finally:
        await empty.close()
    unreachable = create_engine(f"postgresql+asyncpg://gw@127.0.0.1:{free_port()}/gw")
    try:
        with pytest.raises(StoreError, match="^migrate: database error"):
            await upgrade(unreachable)
    finally:
        await unreachable.dispose()


async def test_every_write_takes_the_one_sqlite_turn(tmp_path: Any) -> None:
    """While one write holds the turn, a dead-letter or breaker write waits for it in asyncio,
    without beginning a transaction of its own (before, both bypassed the turn and waited in
    SQLite's busy handler, which sleeps in steps of up to 100 ms)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    await upgrade(engine)
    store = Store(engine)
    begun: list[str] = []  # first in line: before the pragmas and BEGIN IMMEDIATE, which wait
    event.listen(engine.sync_engine, "connect", lambda *_: begun.append("connect"), insert=True)
    event.listen(engine.sync_engine, "begin", lambda conn: begun.append("begin"), insert=True)
    try:
        writes = {
            "dead letters": lambda: DeadLetters(store).record(actor="o", action="note",
                                                              target=None, detail={}),
            "breaker row": lambda: BreakerRows(store).compare_and_set(
                "national", None, {"state": "closed"}, 1),
            "case": lambda: store.submit_case(_case("T1", "k-t1")),
        }
        for what, write in writes.items():
            begun.clear()
            async with store.db.write("hold the turn") as conn:
                await conn.execute(text("SELECT 1"))
                waiting = asyncio.create_task(write())
                await asyncio.sleep(0.3)
                assert not waiting.done() and begun == ["begin"], what
            await waiting
            assert begun[-1] == "begin", what
    finally:
        await store.close()


async def test_postgresql_writes_take_no_turn(db_url: str) -> None:
    """Unchanged semantics on PostgreSQL: row locks, not a process-wide turn."""
    if db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only")
    engine = create_engine(db_url)
    await upgrade(engine)
    store = Store(engine)
    try:
        async with store.db.write("hold a transaction") as conn:
            await conn.execute(text("SELECT 1"))
            await asyncio.wait_for(DeadLetters(store).record(actor="o", action="note",
                                                             target=None, detail={}), 10)
        assert len(await DeadLetters(store).actions()) == 1
    finally:
        await store.close()


def test_the_exception_tree_in_the_docstring_is_the_class_tree() -> None:
    doc = inspect.getdoc(gateway.errors) or ""
    drawn: dict[str, str] = {}  # class → parent, from the drawing
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        m = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Z]\w+)(?:\s|$)", line)
        if not m or not line.startswith("    "):
            continue
        depth = (len(line) - len(line.lstrip(" │├└─"))) // 4
        name = m.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            drawn[name] = stack[-1][1]
        stack.append((depth, name))
    real = {name: cls.__mro__[1].__name__ for name, cls in vars(gateway.errors).items()
            if isinstance(cls, type) and issubclass(cls, GatewayError) and cls is not GatewayError}
    assert drawn == real
