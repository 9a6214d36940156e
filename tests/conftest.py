"""Shared fixtures: a fresh database on each engine, settings pointing at local simulators.

PostgreSQL tests use a new database per test on the server named by
``GATEWAY_TEST_POSTGRES_URL`` (default: 127.0.0.1:5432, database ``test`` for admin). When
``GATEWAY_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), an unreachable server fails the run
instead of skipping those tests.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("GATEWAY_TEST_POSTGRES_URL",
                              "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("GATEWAY_REQUIRE_POSTGRES") == "1"

# config/gateway.yaml holds no secrets (issue 14): the tests' values, before any config is read
from tests.harness import TEST_SECRETS  # noqa: E402

for _name, _value in TEST_SECRETS.items():
    os.environ.setdefault(_name, _value)


async def _pg_admin() -> Any:
    import asyncpg
    u = make_url(PG_ADMIN_URL)
    return await asyncpg.connect(host=u.host, port=u.port or 5432, user=u.username,
                                 password=u.password, database=u.database, timeout=5)


async def create_pg_database() -> str:
    """A new empty database; returns its SQLAlchemy URL."""
    try:
        conn = await _pg_admin()
    except (OSError, Exception) as e:  # asyncpg raises several unrelated types when down
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL required but unreachable at {PG_ADMIN_URL}: {e}")
        pytest.skip(f"PostgreSQL unreachable: {e}")
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    conn = await _pg_admin()
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database, once per engine."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
        return
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
def samples() -> dict[str, dict[str, Any]]:
    import json
    return {p.stem: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((ROOT / "samples" / "cases").glob("*.json"))}


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Any]:
    """A migrated, empty store on each engine."""
    from gateway.store import Store, create_engine
    from gateway.store.migrate import upgrade
    engine = create_engine(db_url)
    await upgrade(engine)
    s = Store(engine)
    yield s
    await s.close()


def _tree_digest(path: Path) -> str:
    """The content of every file under ``path`` (or of the file itself), hashed."""
    h = hashlib.sha1()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(autouse=True, scope="session")
def _compiled_mappings_shared() -> Any:
    """Compile identical mapping and schema folders once per test process.

    Every app a test starts compiles all shipped mappings and loads their XSDs with xmlschema
    (seconds per app), the same work each time. The key is the folders' content (and the
    engineer's schema catalogs in force), so a test that edits a mapping or a schema, or adds
    a catalog, gets a fresh compile; failures are never cached.
    """
    from gateway import catalog
    from gateway.mapping.registry import MappingRegistry

    original = MappingRegistry.__dict__["load"]
    cache: dict[tuple[str, ...], Any] = {}

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in sorted(kwargs.items())]
        for value in (*args, *kwargs.values(), *catalog.catalog_folders()):
            if isinstance(value, (str, Path)) and Path(value).exists():
                parts.append(_tree_digest(Path(value)))
        return tuple(parts)

    def load(cls: type, *args: Any, **kwargs: Any) -> Any:
        key = key_of(args, kwargs)
        if key in cache:
            cache[key] = cache.pop(key)  # most recently used last
        else:
            cache[key] = original.__func__(cls, *args, **kwargs)
            while len(cache) > 4:  # tests that copy the folders would otherwise pile up
                del cache[next(iter(cache))]
        return cache[key]

    MappingRegistry.load = classmethod(load)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        MappingRegistry.load = original  # type: ignore[method-assign]
