"""National data back-flow (issue 15): the paged export walked from a checkpoint, records
deduplicated by version, batches delivered to the city platform through the outbox, case results
moving their case, and a puller killed with SIGKILL that loses nothing and applies nothing twice.

Real sockets (the national and city simulators), real databases (both engines via ``db_url``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.config import Settings, load_settings
from gateway.contracts import load_contracts
from gateway.simulators.backflow import CONTROL_PATH, generated_record
from gateway.store import Store, create_engine
from gateway.store.backflow import BackflowStore
from gateway.store.migrate import upgrade
from tests.harness import (
    ROOT,
    Gateway,
    LiveSimulator,
    Simulator,
    db_rows,
    wait_until,
    write_config,
)

CITY_STATUS = "/api/v1/status-events"
CITY_BACKFLOW = "/api/v1/backflow-records"


def backflow_config(tmp_path: Path, db_url: str, national: Simulator, city: Simulator,
                    **source: Any) -> Path:
    """The shipped configuration pointed at the simulators, with the back-flow partner (the
    city platform's batch endpoint) and the national source."""
    path = write_config(tmp_path, db_url, {"national": national.url(),
                                           "city": city.url(CITY_STATUS)})
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["partners"]["city-backflow"] = {**raw["partners"]["city"], "url": city.url(CITY_BACKFLOW),
                                        "mapping": "backflow/city-batch"}
    raw["backflow"] = {"first_delay": 3600, "sources": {"national": {
        "page_size": 100, "batch_size": 70, "retry_wait": 0.05, "status_push_to": None,
        **source}}}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


async def configure(sim: Simulator, doc: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, \
            http.post(sim.url(CONTROL_PATH), json=doc) as r:
        assert r.status == 200, await r.text()


async def pull(settings: Settings, **kw: Any) -> Any:
    from gateway.backflow.pull import Puller
    engine = create_engine(settings.database.url)
    await upgrade(engine)
    store = Store(engine)
    try:
        async with aiohttp.ClientSession() as http:
            return await Puller(store, settings, load_contracts(settings).mappings, http,
                                "national").run(**kw)
    finally:
        await store.close()


def expected(settings: Settings, n: int, keys: int, backwards_every: int) -> dict[str, int]:
    """rkey → the newest version among generated records 0…n-1 (what must be held)."""
    from gateway.backflow.mapper import RecordMapper
    mapper = RecordMapper(load_contracts(settings).mappings, "national")
    out: dict[str, int] = {}
    for m in mapper.map_page([generated_record(i, 0, keys, backwards_every)
                              for i in range(n)]).records:
        out[m.rkey] = max(out.get(m.rkey, 0), m.version)
    return out


def held(state: Any) -> dict[str, int]:
    return dict(state.backflow.versions)


def rec(kind: str, key: str, version: int) -> dict[str, Any]:
    if kind == "LICENCE":
        return {"kind": "LICENCE", "version": version,
                "licenceId": f"1.2.156.3005.2.11110000000012343B.001.{key}",
                "licenceTypeCode": "11110000000012343B001", "licenceName": "食品经营许可证",
                "holderName": "张三", "holderType": "111", "holderCertNo": "110105199003071239",
                "issueDate": "2026-03-01"}
    return {"kind": "DATASET", "version": version, "datasetCode": "DS-TEST", "rowKey": key,
            "fields": {"v": version}}


async def test_dedupe_by_version(db_url: str, tmp_path: Path) -> None:
    """A newer version replaces, an older or equal one is ignored (also within one page)."""
    async with Simulator("national") as national, Simulator("city") as city:
        settings = load_settings(backflow_config(tmp_path, db_url, national, city, page_size=3))
        await configure(national, {"records": [
            rec("LICENCE", "A", 2), rec("DATASET", "B", 1), rec("LICENCE", "A", 1),
            rec("DATASET", "B", 3), rec("LICENCE", "A", 2), rec("DATASET", "B", 3),
            {**rec("LICENCE", "D", 1), "licenceId": "not-a-gb-t-36901-id"},
            rec("DATASET", "C", 5)]})
        report = await pull(settings)
        assert (report.records, report.kept, report.replaced, report.ignored) == (7, 3, 1, 3)
        assert report.invalid == {"LICENCE invalid at /licenceId": 1}  # skipped, counted
        assert report.done
        rows = await db_rows(db_url, "SELECT rkey, version FROM backflow_records ORDER BY rkey")
        assert [tuple(r) for r in rows] == [
            ("dataset:DS-TEST:B", 3), ("dataset:DS-TEST:C", 5),
            ("licence:1.2.156.3005.2.11110000000012343B.001.A", 2)]
        # each change queued once for the city platform: A v2, B v1, B v3, C v5
        batches = await db_rows(db_url, "SELECT payload FROM deliveries WHERE kind = 'backflow'")
        sent = [(r["key"][-1], r["version"]) for b in batches
                for r in _json(b[0])["records"]]
        assert sorted(sent) == [("A", 2), ("B", 1), ("B", 3), ("C", 5)]
        # every page stored is in the audit chain, in the page's own transaction
        pages = await db_rows(db_url, "SELECT detail FROM audit_log WHERE kind = 'backflow.page'")
        assert len(pages) == report.pages
        assert sum(_json(p[0])["kept"] for p in pages) == report.kept
        # a second walk resumes at the end: the last page again, nothing new
        again = await pull(settings)
        assert (again.kept, again.replaced) == (0, 0)
        # replay: the stored records of one kind queued again in new batches, as stored
        store = Store(create_engine(db_url))
        try:
            assert await BackflowStore(store).replay("national", kind="dataset") == (2, 1)
        finally:
            await store.close()
        batches = await db_rows(db_url, "SELECT payload FROM deliveries WHERE kind = 'backflow' "
                                        "AND idempotency_key LIKE 'national-replay-%'")
        [replayed] = [_json(b[0]) for b in batches]
        assert sorted((r["key"], r["version"], r["data"]["fields"]["v"])
                      for r in replayed["records"]) == [("DS-TEST:B", 3, 3), ("DS-TEST:C", 5, 5)]


def _json(v: Any) -> Any:
    import json
    return json.loads(v) if isinstance(v, str) else v


async def test_faults_and_city_receives_every_record_once(db_url: str, tmp_path: Path) -> None:
    """A page answered 500 is asked again, a page that repeats records stores them once, a slow
    page is waited for; every change reaches the city platform once, in batches."""
    n, keys, back = 1500, 1000, 7
    async with Simulator("national") as national, Simulator("city") as city:
        settings = load_settings(backflow_config(tmp_path, db_url, national, city))
        await configure(national, {"generated": n, "keys": keys, "backwards_every": back,
                                   "http500_pages": [2, 9], "repeat_pages": [3, 12],
                                   "repeat_count": 40, "slow_pages": [5], "slow_delay": 0.3})
        report = await pull(settings)
        want = expected(settings, n, keys, back)
        assert report.done and report.retried == 2
        assert report.records == n + 80              # the two repeats, 40 records each
        assert report.kept == keys
        assert report.replaced == (n - keys) - sum(1 for i in range(keys, n)
                                                   if (i % keys) % back == 0)
        rows = await db_rows(db_url, "SELECT rkey, version FROM backflow_records")
        assert {r[0]: r[1] for r in rows} == want
        async with Gateway(settings):
            async def delivered() -> bool:
                left = await db_rows(db_url, "SELECT count(*) FROM deliveries WHERE kind = "
                                             "'backflow' AND state != 'delivered'")
                return left[0][0] == 0
            await wait_until(delivered, 30, "every back-flow batch delivered")
        summary = city.state.backflow.summary()  # type: ignore[attr-defined]
        assert summary["duplicateBatches"] == 0
        assert summary["records"] == report.kept + report.replaced
        assert summary["stale"] == 0
        assert held(city.state) == want


async def test_case_result_moves_the_case(db_url: str, tmp_path: Path,
                                          samples: dict[str, dict[str, Any]]) -> None:
    """A CASE_RESULT about a case the gateway sent moves it to FINISHED with its result, through
    the status state machine; a result about a case nobody holds only becomes a record."""
    async with Simulator("national") as national, Simulator("city") as city:
        settings = load_settings(backflow_config(tmp_path, db_url, national, city))
        case = samples["01-person-shanghai-social-security"]
        async with Gateway(settings) as gw:
            status, doc = await gw.post_case(case)
            assert status in (200, 201, 202), doc
            final = await gw.wait_final(doc["caseId"] if "caseId" in doc else doc["id"])
        d = next(x for x in final["deliveries"] if x["partner"] == "national")
        await configure(national, {"records": [
            {"kind": "CASE_RESULT", "version": 1, "projectNo": "11NATIONAL0001",
             "localProjectNo": case["applicationNo"], "receiptNo": d["receiptNo"],
             "taskCode": "11310115MB2C12345X000134023000001", "resultCode": "1",
             "finishTime": "2026-03-02 10:00:00"},
            {"kind": "CASE_RESULT", "version": 1, "projectNo": "11NOBODY0001",
             "localProjectNo": "BJNOBODY0001", "taskCode": "T", "resultCode": "2",
             "finishTime": "2026-03-02 10:00:00"}]})
        report = await pull(settings)
        assert report.statuses == 1 and report.kept == 2
        # the same page again (a resumed walk): the event is a duplicate, nothing moves twice
        assert (await pull(settings)).statuses == 0
        rows = await db_rows(db_url, "SELECT partner_status, result FROM deliveries "
                                     "WHERE kind = 'case' AND partner = 'national'")
        assert [tuple(r) for r in rows] == [("FINISHED", "APPROVED")]
        events = await db_rows(db_url, "SELECT count(*) FROM status_events WHERE source = "
                                       "'export'")
        assert events[0][0] == 1


@pytest.mark.timeout(400)
async def test_sigkill_mid_walk_loses_nothing_applies_nothing_twice(db_url: str,
                                                                    tmp_path: Path) -> None:
    """``gateway backflow run`` killed with SIGKILL three times mid-walk (pages are slow, so
    kills land between and inside page transactions), then run to the end: every key held at
    its newest version, and every change queued for the city platform exactly once."""
    n, keys, back = 3000, 2200, 9
    async with LiveSimulator("national") as national, LiveSimulator("city") as city:
        config = backflow_config(tmp_path, db_url, national, city)
        await configure(national, {"generated": n, "keys": keys, "backwards_every": back,
                                   "slow_pages": list(range(1, 31)), "slow_delay": 0.15,
                                   "fault_times": 1000})
        engine = create_engine(db_url)
        await upgrade(engine)
        await engine.dispose()
        cmd = [sys.executable, "-m", "gateway", "backflow", "run", "--quiet", "--config",
               str(config)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = (tmp_path / "backflow.log").open("ab")
        for kill in range(3):
            before = await _pages(db_url)
            proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=ROOT)
            try:
                async def moved(want: int = before + 2 + kill) -> bool:
                    return await _pages(db_url) >= want
                # a loaded machine takes long to start the CLI (imports, contracts)
                await wait_until(moved, 120, f"pages stored before kill {kill + 1}")
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
        assert await _pages(db_url) < 30, "the walk ended before the last kill"
        # not subprocess.run: the simulators answer from this very event loop
        done = await asyncio.create_subprocess_exec(*cmd, stdout=log, stderr=log, env=env,
                                                    cwd=ROOT)
        assert await asyncio.wait_for(done.wait(), 180) == 0, \
            (tmp_path / "backflow.log").read_text()[-2000:]
    want = expected(load_settings(config), n, keys, back)
    rows = await db_rows(db_url, "SELECT rkey, version FROM backflow_records")
    assert {r[0]: r[1] for r in rows} == want
    cp = (await db_rows(db_url, "SELECT kept, replaced, records, done FROM "
                                "backflow_checkpoints"))[0]
    assert cp[0] == keys and cp[1] == (n - keys) - sum(
        1 for i in range(keys, n) if (i % keys) % back == 0)
    assert cp[2] == n and cp[3]
    sent = [r for b in await db_rows(db_url, "SELECT payload FROM deliveries "
                                             "WHERE kind = 'backflow'")
            for r in _json(b[0])["records"]]
    assert len(sent) == cp[0] + cp[1]
    assert len({(r["kind"], r["key"], r["version"]) for r in sent}) == len(sent)


async def _pages(db_url: str) -> int:
    try:
        rows = await db_rows(db_url, "SELECT pages FROM backflow_checkpoints")
    except Exception:  # noqa: BLE001 - not migrated yet
        return 0
    return int(rows[0][0]) if rows else 0


async def test_backflow_store_counts_on_empty(store: Any) -> None:
    bs = BackflowStore(store)
    assert await bs.checkpoints() == []
    assert await bs.counts() == {}


def push_body(records: list[dict[str, Any]], *, batch_id: str = "NB-0001",
              app_id: str = "NATIONAL-PLATFORM") -> bytes:
    import json
    import time
    env = {"appId": app_id, "version": "1.0", "timestamp": int(time.time() * 1000),
           "nonce": os.urandom(8).hex(), "encType": "NONE", "signType": "NONE",
           "data": {"batchId": batch_id, "records": records}}
    return json.dumps(env, ensure_ascii=False).encode("utf-8")


async def test_pushed_batches(db_url: str, tmp_path: Path) -> None:
    """The national platform pushes batches in its envelope: stored and queued like pulled
    records (a resent batch changes nothing); a wrong appId is 40100, an invalid record 40001
    naming its pointer, and neither stores anything."""
    async with Simulator("national") as national, Simulator("city") as city:
        settings = load_settings(backflow_config(tmp_path, db_url, national, city))
        async with Gateway(settings) as gw:
            assert gw.http is not None

            async def post(body: bytes) -> dict[str, Any]:
                assert gw.http is not None
                async with gw.http.post("/api/v1/partners/national/backflow", data=body,
                                        headers={"Content-Type": "application/json"}) as r:
                    assert r.status == 200
                    doc: dict[str, Any] = await r.json()
                    return doc
            records = [rec("LICENCE", "P1", 1), rec("DATASET", "P2", 4)]
            first = await post(push_body(records))
            assert first["code"] == "0", first
            assert (first["data"]["kept"], first["data"]["ignored"]) == (2, 0)
            again = await post(push_body(records))
            assert (again["data"]["kept"], again["data"]["ignored"]) == (0, 2)
            newer = await post(push_body([rec("DATASET", "P2", 5)], batch_id="NB-0002"))
            assert newer["data"]["replaced"] == 1
            bad_app = await post(push_body(records, app_id="SOMEONE-ELSE"))
            assert bad_app["code"] == "40100"
            invalid = await post(push_body([{**rec("LICENCE", "P3", 1), "licenceId": "x"}]))
            assert invalid["code"] == "40001" and "/data/records/0" in invalid["msg"], invalid

            async def delivered() -> bool:
                return city.state.backflow.summary()["records"] == 3  # type: ignore[attr-defined]
            await wait_until(delivered, 20, "the pushed records at the city platform")
    rows = await db_rows(db_url, "SELECT rkey, version FROM backflow_records ORDER BY rkey")
    assert [tuple(r) for r in rows] == [
        ("dataset:DS-TEST:P2", 5), ("licence:1.2.156.3005.2.11110000000012343B.001.P1", 1)]


@pytest.mark.timeout(400)  # three CLI starts: each 30-40 s at load 15 on this machine
async def test_cli_status_run_replay(db_url: str, tmp_path: Path) -> None:
    """``gateway backflow run`` walks to the end and says what it did; ``status --json`` shows
    the checkpoint; ``replay --kind`` queues the stored records of one kind again."""
    import json
    async with LiveSimulator("national") as national, LiveSimulator("city") as city:
        config = backflow_config(tmp_path, db_url, national, city)
        await configure(national, {"generated": 250, "keys": 200})
        engine = create_engine(db_url)
        await upgrade(engine)
        await engine.dispose()

        async def gateway(*args: str) -> str:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "gateway", "backflow", *args, "--config", str(config),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT)
            out, _ = await asyncio.wait_for(proc.communicate(), 120)
            assert proc.returncode == 0, out.decode()
            return out.decode()
        ran = await gateway("run", "--quiet")
        assert "250 record(s)" in ran and "200 new, 50 replaced, 0 ignored" in ran, ran
        status = json.loads((await gateway("status", "--json")).strip().splitlines()[-1])
        [cp] = status["sources"]
        assert (cp["source"], cp["kept"], cp["replaced"], cp["done"]) == ("national", 200, 50,
                                                                          True)
        assert sum(status["records"].values()) == 200
        replayed = await gateway("replay", "--kind", "dataset")
        assert f"queued {status['records']['dataset']} record(s)" in replayed, replayed


async def test_records_sealed_at_rest(db_url: str) -> None:
    """With sealing on, a stored record (a licence holder's name and ID number) is encrypted in
    the table and in the outbox, and reads back whole (replay)."""
    from gateway.backflow.mapper import RecordMapper
    from gateway.mapping import MappingRegistry
    from gateway.store import sealing
    from gateway.store.reseal import reseal
    engine = create_engine(db_url)
    await upgrade(engine)
    k1, k2 = ("k1", os.urandom(32)), ("k2", os.urandom(32))
    store = Store(engine, seal_keys=sealing.Keyring((k1,)))
    try:
        mapper = RecordMapper(MappingRegistry.load(ROOT / "mappings", ROOT / "schemas"),
                              "national")
        page = mapper.map_page([rec("LICENCE", "S1", 1)]).records
        bs = BackflowStore(store)
        assert (await bs.store_page("national", None, "b:1", page)).kept == 1
        assert (await bs.replay("national")) == (1, 1)
        replayed = [r async for r in bs.records("national")]
        assert replayed[0]["data"]["holderCertNo"] == "110105199003071239"
    finally:
        await store.close()
        sealing.activate(None)
    # rotation: reseal walks back-flow records too (keyed by rkey), so k1 can be retired
    rotated = Store(create_engine(db_url), seal_keys=sealing.Keyring((k2, k1)))
    try:
        assert (await reseal(rotated, batch=1)).resealed >= 2  # the record and the batch
    finally:
        await rotated.close()
        sealing.activate(None)
    newest = Store(create_engine(db_url), seal_keys=sealing.Keyring((k2,)))
    try:
        stored = [r async for r in BackflowStore(newest).records("national")]
        assert stored[0]["data"]["holderCertNo"] == "110105199003071239"
    finally:
        await newest.close()
        sealing.activate(None)
    for sql in ("SELECT body FROM backflow_records", "SELECT payload FROM deliveries"):
        for (raw,) in await db_rows(db_url, sql):
            text = raw if isinstance(raw, str) else __import__("json").dumps(raw, ensure_ascii=False)
            assert "110105199003071239" not in text and "张三" not in text and "$sealed" in text


async def test_signed_export_pages_are_verified(db_url: str, tmp_path: Path) -> None:
    """Against a national platform that signs and encrypts, the back-flow pull opens every page
    with the partner's own envelope; pages the gateway cannot verify (the platform's key is not
    the one configured) are never stored."""
    from click.testing import CliRunner

    from gateway.cli import main
    from gateway.simulators.national import platform_security
    from gateway.statuses.export_reader import ExportUnavailable

    keys, stranger = tmp_path / "keys", tmp_path / "stranger"
    for folder in (keys, stranger):
        result = CliRunner().invoke(main, ["keys", "generate", "--out", str(folder)])
        assert result.exit_code == 0, result.output

    def signed(folder: Path, peer: Path) -> Settings:
        path = backflow_config(folder, db_url, national, city, page_retries=1)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["partners"]["national"]["options"].update({"enc_type": "SM4", "sign_type": "SM2"})
        raw["partners"]["national"]["credentials"] = {
            "app_id": "BJ-GATEWAY-DEMO", "sm2_private_key": "${file:keys/gateway.key}",
            "peer_public_key": f"${{file:{peer.name}/national.pub}}",
            "sm4_key": "${file:keys/sm4.key}"}
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        return load_settings(path)

    async with Simulator("national", security=platform_security(keys)) as national, \
            Simulator("city") as city:
        await configure(national, {"generated": 120, "keys": 100})
        report = await pull(signed(tmp_path, keys))
        assert report.done and report.kept == 100
        rows = await db_rows(db_url, "SELECT count(*) FROM backflow_records")
        assert rows[0][0] == 100
    async with Simulator("national", security=platform_security(keys)) as national, \
            Simulator("city") as city:
        await configure(national, {"generated": 50, "keys": 50})
        other = tmp_path / "other"
        other.mkdir()
        (other / "keys").symlink_to(keys)
        (other / "stranger").symlink_to(stranger)
        with pytest.raises(ExportUnavailable, match="page not trusted: signData"):
            await pull(signed(other, stranger))
    rows = await db_rows(db_url, "SELECT count(*) FROM backflow_records")
    assert rows[0][0] == 100  # nothing from the pages that did not verify
