"""Admin API: token guard, dead letters over HTTP, breakers, reload that never half-applies."""

from __future__ import annotations

import copy
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
import yaml

from gateway.config import load_settings
from tests.harness import ROOT, TEST_CALLER, Gateway, Simulator, edit_config, write_config
from tests.rawhttp import assert_problem, call, raw_request

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Operator": "ops-anna"}


def _config(tmp_path: Path, sim: Simulator, token: str | None = TOKEN) -> Path:
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    cfg = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'g.db'}",
                       {"national": sim.url()})
    raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    raw["mappings_dir"] = str(mappings)
    if token:
        raw["server"]["admin_token"] = token
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return cfg


async def _call(gw: Gateway, method: str, path: str, headers: dict[str, str] | None = None,
                json_body: Any = None) -> tuple[int, Any]:
    assert gw.http is not None
    async with gw.http.request(method, path, json=json_body, headers=headers or {}) as r:
        return r.status, await r.json(content_type=None)


async def test_admin_api_is_off_without_a_token_and_checks_it(tmp_path: Path) -> None:
    """With ``server.auth: off`` (loopback only) the admin API keeps its bearer token; with
    x-tif the caller's permissions guard it (tests/test_acl.py) and an unsigned call is a 401."""
    def auth_off(cfg: Path) -> Path:
        return edit_config(cfg, lambda raw: raw["server"].update(auth="off"))
    async with Simulator("national") as sim:
        async with Gateway(load_settings(_config(tmp_path / "x", sim)), signer=None) as gw:
            assert (await _call(gw, "GET", "/api/v1/admin/breakers", AUTH))[0] == 401
        async with Gateway(load_settings(auth_off(_config(tmp_path, sim, token=None))),
                           signer=None) as gw:
            status, doc = await _call(gw, "GET", "/api/v1/admin/dead-letters", AUTH)
            assert status == 403 and "admin_token" in doc["detail"]
        async with Gateway(load_settings(auth_off(_config(tmp_path / "b", sim))),
                           signer=None) as gw:
            status, _ = await _call(gw, "GET", "/api/v1/admin/dead-letters",
                                    {"Authorization": "Bearer wrong"})
            assert status == 401
            assert (await _call(gw, "GET", "/api/v1/admin/breakers", AUTH))[0] == 200


async def test_dead_letter_replayed_over_http_is_delivered_once(
        tmp_path: Path, samples: dict[str, Any]) -> None:
    case = samples["01-person-shanghai-social-security"]
    async with Simulator("national") as sim:
        async with Gateway(load_settings(_config(tmp_path, sim))) as gw:
            sim.misbehave("business_error", code="40003")
            _, doc = await gw.post_case(case)
            final = await gw.wait_final(doc["id"])
            assert final["deliveries"][0]["state"] == "dead"
            assert final["bundle"]["needsAttention"]
            status, dead = await _call(gw, "GET", "/api/v1/admin/dead-letters?partner=national",
                                       AUTH)
            assert status == 200 and [d["lastCode"] for d in dead] == ["40003"]
            status, doc2 = await _call(gw, "POST", "/api/v1/admin/dead-letters/replay", AUTH,
                                       {"ids": [dead[0]["id"]]})
            assert status == 400 and doc2["errors"][0]["path"] == "/reason"
            status, res = await _call(gw, "POST", "/api/v1/admin/dead-letters/replay", AUTH,
                                      {"ids": [dead[0]["id"]], "reason": "partner fixed the code",
                                       "currentMapping": True})
            assert status == 200 and res == {"replayed": [dead[0]["id"]]}
            again = await gw.wait_final(doc["id"])
    [d] = again["deliveries"]
    assert d["state"] == "delivered" and d["attempts"] == 2
    assert sim.state.summary(False)["unique"] == 1


async def test_reload_applies_new_routes_and_refuses_a_broken_set(
        tmp_path: Path, samples: dict[str, Any]) -> None:
    cfg = None
    async with Simulator("national") as sim:
        cfg = _config(tmp_path, sim)
        async with Gateway(load_settings(cfg)) as gw:
            # 1. a broken mapping file: refused, the old set stays live
            broken = tmp_path / "mappings" / "national" / "case-submit.yaml"
            good = broken.read_text(encoding="utf-8")
            broken.write_text(good.replace("fields:", "fields:\n  bogus: {pipe: [no_such]}", 1),
                              encoding="utf-8")
            status, doc = await _call(gw, "POST", "/api/v1/admin/reload", AUTH)
            assert status == 422 and doc["generation"] == 1
            line = good.splitlines().index("fields:") + 2  # the inserted line, named by number
            assert f"case-submit.yaml:{line}: bogus" in doc["detail"]
            broken.write_text(good, encoding="utf-8")
            # 2. a changed partner: refused as a whole (partners change at restart)
            raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
            changed = copy.deepcopy(raw)
            changed["partners"]["national"]["timeout"] = 3
            cfg.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
            status, doc = await _call(gw, "POST", "/api/v1/admin/reload", AUTH)
            assert status == 422 and "partners changed (national)" in doc["detail"]
            # 3. a new route: Guangdong stays home from now on
            raw["routes"].insert(0, {"name": "guangdong-home-pilot", "target": "home",
                                     "match": {"handling_region": "44"}})
            cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
            status, doc = await _call(gw, "POST", "/api/v1/admin/reload", AUTH)
            assert status == 200 and doc["generation"] == 2
            status, case = await gw.post_case(samples["02-company-bundle-beijing-guangdong"])
            assert status == 202 and case["homeItems"] == ["1", "2"] and case["deliveries"] == []
            # 4. without the catch-all, Shanghai has no route: a new case is refused naming the
            #    item, but a case accepted before the change is still answered as itself
            first = samples["01-person-shanghai-social-security"]
            assert (await gw.post_case(first))[0] == 202
            raw["routes"] = [r for r in raw["routes"] if r["match"]]
            cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
            assert (await _call(gw, "POST", "/api/v1/admin/reload", AUTH))[0] == 200
            assert (await gw.post_case(first))[0] == 200
            other = copy.deepcopy(first)
            other["applicationNo"] = "BJ2026113000000099"
            status, doc = await gw.post_case(other)
            assert status == 422 and doc["errors"][0]["path"] == "/items/0"


async def test_an_instance_without_a_worker_shows_the_breaker_another_instance_opened(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    """The breaker is shared through the database, so the admin API and the case view of an
    instance whose worker is disabled read it there, not from a worker of their own."""
    from datetime import UTC, datetime

    from gateway.api.keys import WORKER
    from gateway.observability.metrics import Metrics
    from gateway.outcome import OutcomeKind
    from gateway.delivery.gates import PartnerGates
    from gateway.store import Store, create_engine
    from gateway.store.breakers import BreakerRows
    settings = _hostile_settings(tmp_path, db_url)
    assert not settings.worker.enabled
    async with Gateway(settings) as gw:
        assert WORKER not in gw.app
        status, case = await gw.post_case(samples["01-person-shanghai-social-security"])
        assert status == 202
        _, _, shown = await call(gw, "GET", "/api/v1/admin/breakers", AUTH)
        assert shown["national"]["state"] == "closed" and shown["national"]["trips"] == 0
        _, _, view = await call(gw, "GET", f"/api/v1/cases/{case['id']}")
        assert view["deliveries"][0]["partnerBreaker"] == "closed"
        # another instance (its own engine, store and breaker gates) sees national fail
        other = Store(create_engine(db_url))
        try:
            gates = PartnerGates(settings, BreakerRows(other), Metrics())
            now = datetime.now(UTC)
            for _ in range(settings.partners["national"].breaker.failure_threshold):
                await gates.record("national", OutcomeKind.RETRYABLE, now, "connection refused")
        finally:
            await other.close()
        status, _, shown = await call(gw, "GET", "/api/v1/admin/breakers", AUTH)
        assert status == 200 and list(shown) == ["national"]
        national = shown["national"]
        assert (national["state"], national["trips"]) == ("open", 1)
        assert national["last_failure"] == "connection refused" and "buckets" not in national
        assert national["opened_at"].endswith("+08:00")  # like every other time we answer
        _, _, view = await call(gw, "GET", f"/api/v1/cases/{case['id']}")
        assert view["deliveries"][0]["partnerBreaker"] == "open"


# -- robustness (issue 9): every parameter, header and body field bounded, 400 naming it ----------

def _hostile_settings(tmp_path: Path, db_url: str) -> Any:
    """Admin API on; worker off (dead letters are made by hand, nothing is sent)."""
    cfg = write_config(tmp_path, db_url, {"national": "http://127.0.0.1:9/unused"}, enabled=False)
    raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    raw["server"]["admin_token"] = TOKEN
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_settings(cfg)


async def _dead_letters(gw: Gateway, case: dict[str, Any], n: int) -> list[str]:
    """n cases whose delivery is parked dead, straight in the store."""
    from sqlalchemy import update

    from gateway.api.keys import STORE
    from gateway.store.models import deliveries
    for i in range(n):
        status, _ = await gw.post_case({**case, "applicationNo": f"ADMINDEAD{i:06d}"})
        assert status == 202
    async with gw.app[STORE].engine.begin() as conn:
        await conn.execute(update(deliveries).values(state="dead", last_code="E1"))
    _, _, dead = await call(gw, "GET", "/api/v1/admin/dead-letters", AUTH)
    return [d["id"] for d in dead]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sqlite_gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    """One gateway for the checks that store nothing (starting one per case costs seconds)."""
    tmp = tmp_path_factory.mktemp("admin-params")
    async with Gateway(_hostile_settings(tmp, f"sqlite+aiosqlite:///{tmp / 'g.db'}")) as gw:
        yield gw


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("value", ["abc", "9" * 20, "-1", "0", "1001", "1.5", "١", " 5", ""])
async def test_limit_must_be_a_whole_number_from_1_to_1000(sqlite_gw: Gateway, value: str) -> None:
    answer = await call(sqlite_gw, "GET", f"/api/v1/admin/dead-letters?limit={quote(value)}", AUTH)
    assert_problem(answer, 400, query="limit", words="from 1 to 1000")


async def test_admin_parameters_and_headers_on_both_engines(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    async with Gateway(_hostile_settings(tmp_path, db_url)) as gw:
        ids = await _dead_letters(gw, samples["01-person-shanghai-social-security"], 3)
        assert len(ids) == 3
        # limit bounds the list; -1 and a 20-digit limit are refused instead of listing everything
        _, _, one = await call(gw, "GET", "/api/v1/admin/dead-letters?limit=1", AUTH)
        assert len(one) == 1
        for bad in ("-1", "9" * 20, "abc"):
            assert_problem(await call(gw, "GET", f"/api/v1/admin/dead-letters?limit={bad}", AUTH),
                           400, query="limit")
        # NUL (PostgreSQL refuses it in text), over-long names, unknown and repeated parameters
        assert_problem(await call(gw, "GET", "/api/v1/admin/dead-letters?partner=%00", AUTH),
                       400, query="partner", words="U+0000")
        assert_problem(await call(gw, "GET", f"/api/v1/admin/dead-letters?code={'c' * 65}",
                                  AUTH), 400, query="code", words="at most 64")
        assert_problem(await call(gw, "GET", "/api/v1/admin/dead-letters?applicationNo=%0A",
                                  AUTH), 400, query="applicationNo")
        assert_problem(await call(gw, "GET", "/api/v1/admin/dead-letters?limt=5", AUTH),
                       400, words="unknown parameter")
        assert_problem(await call(gw, "GET", "/api/v1/admin/dead-letters?limit=1&limit=2", AUTH),
                       400, query="limit", words="more than once")
        assert_problem(await call(gw, "GET", "/api/v1/admin/breakers?x=1", AUTH), 400,
                       words="unknown parameter")
        assert_problem(await call(gw, "POST", "/api/v1/admin/reload?x=1", AUTH), 400,
                       words="unknown parameter")
        # X-Operator: 200 characters answered 500 on PostgreSQL (String(128)); refused now, and
        # nothing was replayed
        long_op = {**AUTH, "X-Operator": "o" * 200}
        assert_problem(await call(gw, "POST", "/api/v1/admin/dead-letters/replay", long_op,
                                  {"ids": ids[:1], "reason": "r"}),
                       400, header="X-Operator", words="at most 128")
        _, _, still = await call(gw, "GET", "/api/v1/admin/dead-letters", AUTH)
        assert len(still) == 3
        # 128 characters of any script fit the column and are audited as given
        chinese = {**AUTH, "X-Operator": "运维" * 64}
        status, _, res = await call(gw, "POST", "/api/v1/admin/dead-letters/discard", chinese,
                                    {"ids": ids[:1], "reason": "第一行\n第二行"})
        assert status == 200 and res == {"discarded": ids[:1]}
        from gateway.api.keys import STORE
        from gateway.store.dlq import DeadLetters
        [action] = await DeadLetters(gw.app[STORE]).actions(ids[0])
        # a signed caller is audited by its name, then the person X-Operator names (cut to 128)
        assert action["actor"] == f"{TEST_CALLER}/{'运维' * 64}"[:128]
        # an undecodable byte in a signature header is simply not a signature
        answer = await raw_request(gw, b"GET /api/v1/admin/dead-letters HTTP/1.1\r\n"
                                       b"x-tif-paasid: \xff\r\nx-tif-timestamp: 1\r\n"
                                       b"x-tif-nonce: 12345678\r\nx-tif-signature: "
                                       + b"0" * 64 + b"\r\n", sign=False)
        assert_problem(answer, 401, header="x-tif-paasid")
        answer = await raw_request(gw, b"GET /api/v1/admin/dead-letters HTTP/1.1\r\n"
                                       b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                                       b"X-Operator: ops-\xff\r\n")
        assert_problem(answer, 400, header="X-Operator", words="U+DCFF")


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("body, pointer", [
    ({"ids": ["not-a-uuid"], "reason": "r"}, "/ids/0"),
    ({"ids": "all", "reason": "r"}, "/ids"),
    ({"ids": ["3f2c1d9e-8b7a-4c6d-9e0f-1a2b3c4d5e6f"] * 1001, "reason": "r"}, "/ids"),
    ({"partner": 5, "reason": "r"}, "/partner"),
    ({"partner": "p" * 65, "reason": "r"}, "/partner"),
    ({"code": "\x00", "reason": "r"}, "/code"),
    ({"applicationNo": "BJ2026113000000001\n", "reason": "r"}, "/applicationNo"),
    ({"all": "yes", "reason": "r"}, "/all"),
    ({"all": True, "reason": "\x00"}, "/reason"),
    ({"all": True, "reason": "r" * 1001}, "/reason"),
    ({"all": True, "reason": "r", "currentMapping": "yes"}, "/currentMapping"),
    ({"all": True, "reason": "r", "everything": True}, "/everything"),
])
async def test_replay_body_fields_are_checked(sqlite_gw: Gateway, body: dict[str, Any],
                                              pointer: str) -> None:
    answer = await call(sqlite_gw, "POST", "/api/v1/admin/dead-letters/replay", AUTH, body)
    assert_problem(answer, 400, pointer=pointer)
