"""Encryption at rest (gateway.store.sealing) on both engines: a sealed case is nowhere in the
database in clear, the API and the worker read it as if it were not sealed; rotation with two
keys and `gateway seal reseal`; a key the database still uses that the keyring lacks is one line
naming it."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import JSON, select, type_coerce

from gateway.cli import main
from gateway.errors import ConfigError
from gateway.status import CaseStatus
from gateway.store import DeliveryState, Store, create_engine, sealing
from gateway.store.migrate import upgrade
from gateway.store.models import cases, deliveries
from gateway.store.reseal import check_keys, reseal
from gateway.store.sealing import Keyring, SealedValueUnreadable
from gateway.store.statuses import Source, StatusEvent, StatusEvents
from gateway.store.types import utcnow
from tests.harness import Gateway, Simulator, settings_for
from tests.test_store import new_case

NAME, ID_NO = "测试甲", "110105199003071239"  # sample 01's applicant (synthetic)
K1 = ("k1", base64.b64encode(b"1" * 32).decode())
K2 = ("k2", base64.b64encode(b"2" * 32).decode())


def ring(*keys: tuple[str, str]) -> Keyring:
    return Keyring.parse(list(keys), "test")


@pytest.fixture(autouse=True)
def _sealing_off_after() -> Any:
    yield
    sealing.activate(None)  # the keyring is process-wide: leave none behind


async def _raw_text(db_url: str, tmp_path: Path) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or PostgreSQL's tables as
    text."""
    if db_url.startswith("sqlite"):
        return b"".join(p.read_bytes() for p in tmp_path.glob("gateway.db*"))
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            out = []
            for table in ("cases", "deliveries", "attempts", "audit_log", "status_events"):
                rows = (await conn.exec_driver_sql(f"SELECT t::text FROM {table} t")).all()
                out += [r[0] for r in rows]
    finally:
        await engine.dispose()
    return "\n".join(out).encode("utf-8")


async def _post_and_show(folder: Path, db_url: str,
                         case: dict[str, Any]) -> tuple[str, dict[str, Any], list[Any]]:
    """Post ``case`` to a gateway (national simulator, worker on), wait until it is delivered
    (the worker opened the body to send it): its id, the API's view, what the partner got."""
    folder.mkdir()
    async with Simulator("national") as nat:
        settings = settings_for(folder, db_url, {"national": nat.url()})
        async with Gateway(settings) as gw:
            status, accepted = await gw.post_case(case)
            assert status == 202, accepted
            final = await gw.wait_final(accepted["id"])
            assert [d["state"] for d in final["deliveries"]] == ["delivered"]
            status, shown = await gw.get(f"/api/v1/cases/{accepted['id']}")
            assert status == 200
    return accepted["id"], shown, list(nat.state.messages)


async def test_a_sealed_case_is_not_in_the_database_and_reads_the_same(
        tmp_path: Path, db_url: str, samples: dict[str, dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    case = samples["01-person-shanghai-social-security"]
    monkeypatch.delenv(sealing.ENV_FILE, raising=False)
    monkeypatch.delenv(sealing.ENV_KEYS, raising=False)
    _, plain, plain_sent = await _post_and_show(
        tmp_path / "plain", f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}", case)
    keys = tmp_path / "seal.keys"
    keys.write_text(f"{K1[0]} {K1[1]}\n", encoding="utf-8")
    monkeypatch.setenv(sealing.ENV_FILE, str(keys))
    case_id, shown, sent = await _post_and_show(tmp_path / "sealed", db_url, case)
    assert shown["case"] == plain["case"] and NAME in str(shown["case"])
    assert [d["partner"] for d in shown["deliveries"]] == ["national"]
    assert len(sent) == len(plain_sent) == 1 and NAME in str(sent)  # sent in clear
    raw = await _raw_text(db_url, tmp_path)
    assert NAME.encode() not in raw and ID_NO.encode() not in raw
    assert b"$sealed" in raw
    # `gateway case show` opens it too (its own keyring, from the environment)
    shown_cli = await asyncio.to_thread(CliRunner().invoke, main, [
        "case", "show", case_id, "--database-url", db_url])
    assert shown_cli.exit_code == 0 and NAME in shown_cli.output, shown_cli.output


async def test_rotation_with_two_keys_and_reseal(db_url: str) -> None:
    engine = create_engine(db_url)
    await upgrade(engine)
    old = Store(engine, seal_keys=ring(K1))
    await check_keys(old)
    await old.submit_case(new_case("ROT-1", 1, body={"applicationNo": "ROT-1", "name": NAME}))
    await old.close()

    store = Store(create_engine(db_url), seal_keys=ring(K2, K1))  # k2 new, k1 still opens
    try:
        await check_keys(store)
        await store.submit_case(new_case("ROT-2", 1, body={"applicationNo": "ROT-2"}))
        # a status push's payload is sealed too, and opened by the worker's claim
        [c1] = [c for c in await store.claim_due("w", limit=5, lease_seconds=30)
                if c.delivery.idempotency_key == "k-ROT-1-0"]
        assert c1.case_body == {"applicationNo": "ROT-1", "name": NAME}
        assert await store.finish_attempt(c1, worker="w", started_at=utcnow(),
                                          outcome="delivered", state=DeliveryState.DELIVERED,
                                          next_attempt_at=None, receipt_no="R-ROT-1")
        applied = await StatusEvents(store).apply(StatusEvent(
            partner="national", source=Source.CALLBACK, status=CaseStatus.ACCEPTED,
            partner_code="2", receipt_no="R-ROT-1"), push_to="city")
        assert await _kids(store) == {"ROT-1": "k1", "ROT-2": "k2", "push": "k2"}
        r = await reseal(store, batch=1)  # batches of one: every boundary crossed
        assert (r.resealed, r.retired) == (1, ["k1"])
        assert await _kids(store) == {"ROT-1": "k2", "ROT-2": "k2", "push": "k2"}
    finally:
        await store.close()

    newest_only = Store(create_engine(db_url), seal_keys=ring(K2))
    try:
        await check_keys(newest_only)  # k1 retired: no longer needed
        found = await newest_only.find_case_by_application_no("ROT-1")
        assert found is not None and found.body["name"] == NAME
        [push] = [c for c in await newest_only.claim_due("w", limit=5, lease_seconds=30)
                  if c.delivery.id == applied.push_id]
        assert push.delivery.payload is not None and push.delivery.payload["status"] == "ACCEPTED"
    finally:
        await newest_only.close()


async def _kids(store: Store) -> dict[str, str]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(cases.c.application_no,
                                          type_coerce(cases.c.body, JSON)))).all()
        pushes = (await conn.execute(select(type_coerce(deliveries.c.payload, JSON)).where(
            deliveries.c.kind == "status_push"))).scalars().all()
    out = {no: body["kid"] for no, body in rows}
    out.update(("push", p["kid"]) for p in pushes)
    return out


async def test_a_missing_key_is_named_at_start_and_at_read(db_url: str) -> None:
    engine = create_engine(db_url)
    await upgrade(engine)
    store = Store(engine, seal_keys=ring(K1))
    await check_keys(store)
    created = await store.submit_case(new_case("MISS-1", 0))
    await store.close()

    store = Store(create_engine(db_url), seal_keys=ring(K2))  # k1 forgotten
    try:
        with pytest.raises(ConfigError, match="sealed with key 'k1', which the keyring does "
                                              "not hold"):
            await check_keys(store)
        with pytest.raises(SealedValueUnreadable, match="key 'k1': not in the keyring"):
            await store.get_case(created.case.id)
    finally:
        await store.close()
    # the command line says it in one line, no traceback
    result = await asyncio.to_thread(CliRunner(env={sealing.ENV_KEYS: f"{K2[0]}:{K2[1]}"}).invoke,
                                     main, ["seal", "reseal", "--database-url", db_url])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == (f"Error: configuration error: {sealing.ENV_FILE}: values in "
                                     "the database are sealed with key 'k1', which the keyring "
                                     "does not hold"), result.output


def test_a_bad_keyring_is_one_line_naming_what(tmp_path: Path) -> None:
    missing = tmp_path / "nope.keys"
    with pytest.raises(ConfigError, match="cannot read the sealing keys file"):
        Keyring.from_env({sealing.ENV_FILE: str(missing)})
    short = tmp_path / "short.keys"
    short.write_text("k1 " + base64.b64encode(b"x" * 16).decode() + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="sealing key 'k1': 16 bytes, AES-256 needs 32"):
        Keyring.from_env({sealing.ENV_FILE: str(short)})
    with pytest.raises(ConfigError, match="line 2"):
        short.write_text(f"k1 {K1[1]}\nk2\n", encoding="utf-8")
        Keyring.from_env({sealing.ENV_FILE: str(short)})
    assert Keyring.from_env({}) is None  # off by default


def test_keygen_puts_a_new_key_first_and_keeps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "seal.keys"
    for kid in ("k1", "k2"):
        r = CliRunner().invoke(main, ["seal", "keygen", "--file", str(path), "--kid", kid])
        assert r.exit_code == 0, r.output
    assert path.stat().st_mode & 0o077 == 0
    keyring = Keyring.from_env({sealing.ENV_FILE: str(path)})
    assert keyring is not None and keyring.ids() == ["k2", "k1"]
    r = CliRunner().invoke(main, ["seal", "keygen", "--file", str(path), "--kid", "k2"])
    assert r.exit_code == 1 and "already holds a key 'k2'" in r.output
