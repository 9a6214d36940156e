"""Commands that read the database never create one, and a database that cannot be used is one
line naming it (file, or host:port) with what to do, a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from gateway.cli import main
from gateway.store import Store, create_engine
from gateway.store.engine import DatabaseMissing, create_readonly_engine
from gateway.store.migrate import upgrade
from tests.conftest import ROOT, create_pg_database, drop_pg_database
from tests.harness import free_port

READERS = [["case", "show", "BJ2026113000000001"], ["dlq", "list"], ["dlq", "show", "--all"]]
WRITERS = [["dlq", "replay", "--all", "--reason", "r"], ["dlq", "discard", "--all", "--reason", "r"]]


def _one_line_error(res: Result) -> str:
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    out = res.output.strip()
    assert "Traceback" not in out and "sqlalche.me" not in out, out
    assert len(out.splitlines()) == 1, out
    assert out.startswith("Error: "), out
    return out


@pytest.mark.parametrize("args", READERS + WRITERS, ids=lambda a: " ".join(a[:2]))
def test_no_database_is_one_line_and_nothing_is_created(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    """The shipped config names sqlite:///data/gateway.db: run where there is none."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    line = _one_line_error(CliRunner().invoke(main, args))
    assert f"no database at {tmp_path / 'data' / 'gateway.db'}" in line
    assert "gateway db upgrade" in line
    assert list(tmp_path.iterdir()) == []  # no data/ folder, no empty gateway.db


def test_an_empty_file_is_named_as_not_migrated_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    url = f"sqlite+aiosqlite:///{db}"
    for args in READERS:
        line = _one_line_error(CliRunner().invoke(main, [*args, "--database-url", url]))
        assert f"the database at {db} has no gateway tables yet" in line
        assert "gateway db upgrade" in line
    assert db.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


def test_postgresql_unreachable_is_one_line_naming_host_and_port() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://gw@127.0.0.1:{port}/gateway"
    for args in [*READERS, WRITERS[0], ["db", "upgrade"]]:
        line = _one_line_error(CliRunner().invoke(main, [*args, "--database-url", url]))
        assert f"cannot reach the database at 127.0.0.1:{port}/gateway" in line, line


def test_postgresql_not_migrated_is_named() -> None:
    async def make() -> str:
        return await create_pg_database()
    url = asyncio.run(make())
    try:
        line = _one_line_error(CliRunner().invoke(main, ["case", "show", "X", "--database-url",
                                                         url]))
        assert "has no gateway tables yet" in line and "gateway db upgrade" in line
    finally:
        asyncio.run(drop_pg_database(url))


def test_db_upgrade_creates_then_readers_work(tmp_path: Path) -> None:
    db = tmp_path / "new" / "g.db"
    url = f"sqlite+aiosqlite:///{db}"
    res = CliRunner().invoke(main, ["db", "upgrade", "--database-url", url])
    assert res.exit_code == 0 and db.is_file(), res.output
    res = CliRunner().invoke(main, ["dlq", "list", "--database-url", url, "--json"])
    assert res.exit_code == 0 and res.output.strip() == "[]", res.output
    res = CliRunner().invoke(main, ["case", "show", "NOPE", "--database-url", url])
    assert res.exit_code == 1 and "no case with id or application number NOPE" in res.output


async def test_readonly_engine_reads_but_cannot_write_and_never_creates(tmp_path: Path) -> None:
    missing = tmp_path / "sub" / "none.db"
    with pytest.raises(DatabaseMissing) as e:
        create_readonly_engine(f"sqlite+aiosqlite:///{missing}")
    assert e.value.path == missing and not missing.parent.exists()
    # a path that needs quoting in a URI still opens
    db = tmp_path / "with space#and%.db"
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    await engine.dispose()
    ro = create_readonly_engine(f"sqlite+aiosqlite:///{db}")
    try:
        assert await Store(ro).get_case("x") is None
        async with ro.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM cases"))).scalar() == 0
        with pytest.raises(sa_exc.OperationalError, match="readonly"):
            async with ro.begin() as conn:
                await conn.execute(text("DELETE FROM cases"))
    finally:
        await ro.dispose()


def test_shipped_config_copy_reads_the_database_its_url_names(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """database.url is a URL: a relative SQLite path is relative to the working directory."""
    copy = tmp_path / "conf" / "gateway.yaml"
    copy.parent.mkdir()
    shutil.copyfile(ROOT / "config" / "gateway.yaml", copy)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    assert CliRunner().invoke(main, ["db", "upgrade", "--config", str(copy)]).exit_code == 0
    assert (tmp_path / "data" / "gateway.db").is_file()
    res = CliRunner().invoke(main, ["dlq", "list", "--config", str(copy), "--json"])
    assert res.exit_code == 0 and res.output.strip() == "[]", res.output
