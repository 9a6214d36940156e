"""Admin API: token guard, dead letters over HTTP, breakers, reload that never half-applies."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import yaml

from gateway.config import load_settings
from tests.harness import ROOT, Gateway, Simulator, write_config

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
    async with Simulator("national") as sim:
        async with Gateway(load_settings(_config(tmp_path, sim, token=None))) as gw:
            status, doc = await _call(gw, "GET", "/api/v1/admin/dead-letters", AUTH)
            assert status == 403 and "admin_token" in doc["detail"]
        async with Gateway(load_settings(_config(tmp_path / "b", sim))) as gw:
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
            assert "case-submit.yaml:12: bogus" in doc["detail"]
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
