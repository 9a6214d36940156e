"""gateway/store/upsert.py: ON CONFLICT statements compiled once, with the SQL and values of
statements compiled afresh.

A wrong cache key is worse than none: two statements sharing a key share one compiled SQL, so a
conflict target or a WHERE left out of the key would run one statement's SQL for the other, and
a bound value left out would be frozen at its first execution (a nonce's "expired by now" judged
against the first request's time forever)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine.default import CACHE_HIT

from gateway.store.models import cases, nonces
from gateway.store.nonces import claim_nonces
from gateway.store.upsert import insert_for

DIALECTS = [(insert_for("sqlite"), sqlite.dialect()), (insert_for("postgresql"), postgresql.dialect())]
PLAIN = {"sqlite": sqlite_insert, "postgresql": pg_insert}
T1 = datetime(2026, 1, 1, tzinfo=UTC)


def _claim(insert: Any, now: datetime, *, target: Any = None, where: bool = True) -> Any:
    ins = insert(nonces)
    return (ins.on_conflict_do_update(
        index_elements=target or [nonces.c.scope, nonces.c.nonce],
        set_={"expires_at": ins.excluded.expires_at},
        where=(nonces.c.expires_at < now) if where else None)
        .returning(nonces.c.scope, nonces.c.nonce))


@pytest.mark.parametrize(("insert", "dialect"), DIALECTS, ids=["sqlite", "postgresql"])
def test_the_cached_statement_compiles_to_the_plain_statements_sql(insert: Any,
                                                                   dialect: Any) -> None:
    plain = (PLAIN[dialect.name](cases)
             .on_conflict_do_nothing(index_elements=[cases.c.application_no])
             .returning(cases.c.id))
    cached = (insert(cases).on_conflict_do_nothing(index_elements=[cases.c.application_no])
              .returning(cases.c.id))
    assert plain._generate_cache_key() is None  # what this module exists for (SQLAlchemy 2.0)
    assert cached._generate_cache_key() is not None
    assert str(cached.compile(dialect=dialect)) == str(plain.compile(dialect=dialect))
    assert "ON CONFLICT (application_no) DO NOTHING" in str(cached.compile(dialect=dialect))


@pytest.mark.parametrize(("insert", "dialect"), DIALECTS, ids=["sqlite", "postgresql"])
def test_what_shapes_the_sql_is_in_the_key_and_bound_values_are_not(insert: Any,
                                                                    dialect: Any) -> None:
    a, b = _claim(insert, T1), _claim(insert, T1 + timedelta(days=1))
    ka, kb = a._generate_cache_key(), b._generate_cache_key()
    assert ka == kb  # one compiled statement for every moment …
    assert [p.value for p in kb.bindparams] == [T1 + timedelta(days=1)]  # … each its own value
    assert b.compile(dialect=dialect).params["expires_at_1"] == T1 + timedelta(days=1)
    keys = {s._generate_cache_key().key for s in (
        _claim(insert, T1),
        _claim(insert, T1, target=[nonces.c.nonce, nonces.c.scope]),
        _claim(insert, T1, where=False),
        insert(nonces).on_conflict_do_nothing(index_elements=[nonces.c.scope, nonces.c.nonce]),
        insert(nonces).on_conflict_do_nothing(index_elements=[nonces.c.scope]))}
    assert len(keys) == 5


@pytest.mark.parametrize(("insert", "dialect"), DIALECTS, ids=["sqlite", "postgresql"])
def test_a_statement_the_key_would_not_cover_stays_the_dialects_own(insert: Any,
                                                                    dialect: Any) -> None:
    """A literal SET value (the sealing keys' ``retired_at: None``) is no SQL expression: the
    statement is the dialect's uncached insert, and compiles to the same SQL."""
    literal = insert(nonces).on_conflict_do_update(
        index_elements=[nonces.c.scope, nonces.c.nonce], set_={"expires_at": None})
    plain = PLAIN[dialect.name](nonces).on_conflict_do_update(
        index_elements=[nonces.c.scope, nonces.c.nonce], set_={"expires_at": None})
    assert type(literal) is PLAIN[dialect.name](nonces).__class__
    assert literal._generate_cache_key() is None
    assert str(literal.compile(dialect=dialect)) == str(plain.compile(dialect=dialect))


async def test_nonce_claims_compile_once_and_judge_expiry_at_each_claims_moment(store: Any) -> None:
    """On each engine: repeated claims reuse one compiled statement, and each is judged at its
    own moment (a replay within the window refused, the same nonce after expiry taken again)."""
    caching: list[Any] = []  # per claim: how SQLAlchemy found its compiled form

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        if "INSERT INTO nonces" in statement:
            caching.append(context.cache_hit)

    insert = store._insert  # noqa: SLF001 - the dialect's INSERT … ON CONFLICT
    sync_engine = store.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", count)
    try:
        row = {"scope": "city", "nonce": "n-1", "expires_at": T1 + timedelta(minutes=5)}

        def claim(now: datetime, expires: datetime) -> set[tuple[str, str]]:
            async def go() -> set[tuple[str, str]]:
                async with store.db.write("claim") as conn:
                    return await conn.run_sync(
                        lambda c: claim_nonces(c, insert, [{**row, "expires_at": expires}], now))
            return go()  # type: ignore[return-value]

        assert await claim(T1, T1 + timedelta(minutes=5)) == {("city", "n-1")}
        assert await claim(T1 + timedelta(minutes=1), T1 + timedelta(minutes=6)) == set()
        assert await claim(T1 + timedelta(minutes=10),
                           T1 + timedelta(minutes=15)) == {("city", "n-1")}
        assert await claim(T1 + timedelta(minutes=11), T1 + timedelta(minutes=16)) == set()
    finally:
        event.remove(sync_engine, "before_cursor_execute", count)
    assert len(caching) == 4
    assert caching[1:] == [CACHE_HIT] * 3  # compiled once (the first claim), then reused
