"""What the README promises and no other test held it to (issue 11, "Tests").

* ``gateway serve`` reloads its routes on SIGHUP, and a broken file leaves the old set live;
* ``/readyz`` answers 503 while the database cannot be reached or the worker is not running,
  and 200 again once it can;
* ``gateway demo --exit-after`` exits 1 when a sample fails (0 when all are delivered);
* ``gateway db upgrade`` creates the schema on an empty database, and a second run changes
  nothing;
* ``gateway case show`` finds a case by its id and by its application number;
* an open breaker spends no attempts: the partner's deliveries wait without trying, and are
  delivered once it is back.

Every wait is on a condition (a log line, a breaker row, a delivery state), never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import signal
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner, Result

from gateway.api.keys import WORKER
from gateway.cli import main
from gateway.config import load_settings
from gateway.store import Store, create_engine
from gateway.store.migrate import head_revision
from gateway.store.models import metadata
from tests.conftest import _pg_admin, create_pg_database, drop_pg_database
from tests.harness import (signed_session,
    ROOT,
    Gateway,
    GatewayProcess,
    LiveSimulator,
    SendLog,
    Simulator,
    db_rows,
    edit_config,
    free_port,
    numbered_case,
    wait_until,
    write_config,
)
from tests.test_store import new_case

SHANGHAI = "01-person-shanghai-social-security"
ZHEJIANG = "03-person-zhejiang-household"


def _second_national(raw: dict[str, Any], name: str, url: str) -> dict[str, Any]:
    """Add partner ``name``: the national contract (rest-json, same mapping) at ``url``."""
    p = copy.deepcopy(raw["partners"]["national"])
    p["url"] = url
    raw["partners"][name] = p
    return p


async def _cli(*args: str) -> Result:
    """``gateway …`` through click's runner, off the event loop (the commands run their own)."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


# -- SIGHUP ---------------------------------------------------------------------------------------

async def test_sighup_reloads_routes_and_a_broken_file_leaves_the_old_set_live(
        tmp_path: Path, samples: dict[str, Any]) -> None:
    template = samples[SHANGHAI]
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Simulator("national") as sim_a, Simulator("national") as sim_b:
        cfg = write_config(tmp_path, db_url, {"national": sim_a.url()})
        edit_config(cfg, lambda raw: _second_national(raw, "national-b", sim_b.url()))
        log = tmp_path / "gateway.log"
        proc = GatewayProcess(cfg, free_port(), log)
        await proc.start()
        try:
            async with signed_session(proc.base) as http:
                async def post(n: int) -> dict[str, Any]:
                    body = json.dumps(numbered_case(template, n, prefix="HUP"))
                    async with http.post("/api/v1/cases", data=body,
                                         headers={"Content-Type": "application/json"}) as r:
                        assert r.status == 202, await r.text()
                        return dict(await r.json())

                async def generation() -> str:
                    async with http.get("/readyz") as r:
                        return str((await r.json())["checks"]["contracts"])

                def refusals() -> int:
                    return log.read_text(errors="replace").count("reload refused")

                async def reload_and_wait(what: str, *, refused: bool) -> None:
                    before_gen, before_refusals = await generation(), refusals()
                    assert proc.proc is not None
                    proc.proc.send_signal(signal.SIGHUP)

                    async def done() -> bool:
                        if refused:
                            return refusals() > before_refusals
                        return await generation() != before_gen
                    await wait_until(done, timeout=20, what=what, interval=0.05)

                first = await post(1)
                assert [d["partner"] for d in first["deliveries"]] == ["national"]
                assert await generation() == "generation 1"

                # the routes change: Shanghai now goes through national-b
                def shanghai_via_b(raw: dict[str, Any]) -> None:
                    raw["routes"].insert(0, {"name": "shanghai-via-b",
                                             "match": {"handling_region": "31"},
                                             "target": "national-b"})
                edit_config(cfg, shanghai_via_b)
                await reload_and_wait("the reload on SIGHUP", refused=False)
                assert await generation() == "generation 2"
                second = await post(2)
                assert [d["partner"] for d in second["deliveries"]] == ["national-b"]

                # a file that would change the routes but names a mapping that does not exist:
                # checked completely before the swap, so none of it is applied
                def broken(raw: dict[str, Any]) -> None:
                    raw["routes"] = [r for r in raw["routes"] if r["name"] != "shanghai-via-b"]
                    raw["routes"].insert(0, {"name": "zhejiang-new", "target": "national",
                                             "match": {"handling_region": "33"},
                                             "mapping": "national/no-such-mapping"})
                edit_config(cfg, broken)
                await reload_and_wait("the broken reload to be refused", refused=True)
                assert "national/no-such-mapping" in log.read_text(errors="replace")
                assert await generation() == "generation 2"
                third = await post(3)
                assert [d["partner"] for d in third["deliveries"]] == ["national-b"]

                # nor does a file that is not YAML at all
                cfg.write_text("routes: [\n", encoding="utf-8")
                await reload_and_wait("the unreadable file to be refused", refused=True)
                assert await generation() == "generation 2"
                fourth = await post(4)
                assert [d["partner"] for d in fourth["deliveries"]] == ["national-b"]

                async def all_delivered() -> bool:
                    states = await db_rows(db_url, "SELECT state FROM deliveries")
                    return len(states) == 4 and {s.state for s in states} == {"delivered"}
                await wait_until(all_delivered, timeout=30, what="the four deliveries")
        finally:
            assert proc.stop() == 0
    numbers = {n: f"HUP{n:012d}" for n in range(1, 5)}
    assert [m.payload["localProjectNo"] for m in sim_a.state.messages] == [numbers[1]]
    assert sorted(m.payload["localProjectNo"] for m in sim_b.state.messages) == [
        numbers[2], numbers[3], numbers[4]]


# -- /readyz --------------------------------------------------------------------------------------

async def _ready(gw: Gateway) -> tuple[int, dict[str, Any]]:
    status, doc = await gw.get("/readyz")
    return status, doc


async def test_readyz_is_503_while_postgresql_refuses_connections_and_200_again_after(
        tmp_path: Path, samples: dict[str, Any]) -> None:
    """The gateway's database closed under it (connections forced closed, new ones refused):
    not ready, though alive; the worker survives the outage and delivers once it is over."""
    db_url = await create_pg_database()
    name = db_url.rsplit("/", 1)[-1]
    admin = await _pg_admin()
    try:
        async with Simulator("national") as sim:
            settings = load_settings(write_config(tmp_path, db_url, {"national": sim.url()}))
            async with Gateway(settings) as gw:
                status, doc = await _ready(gw)
                assert (status, doc["checks"]["database"], doc["checks"]["worker"]) == (
                    200, "ok", "ok")

                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = $1", name)

                async def not_ready() -> tuple[int, dict[str, Any]] | None:
                    answer = await _ready(gw)
                    return answer if answer[0] == 503 else None
                status, doc = await wait_until(not_ready, timeout=20,
                                               what="/readyz to answer 503")
                assert doc["status"] == "unavailable"
                assert doc["checks"]["database"].startswith("unreachable: "), doc
                assert doc["checks"]["worker"] == "ok", doc  # it keeps trying, it is alive
                assert await gw.get("/healthz") == (200, {"status": "ok"})  # alive, not ready

                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

                async def ready() -> bool:
                    return (await _ready(gw))[0] == 200
                await wait_until(ready, timeout=20, what="/readyz to answer 200 again")
                status, accepted = await gw.post_case(samples[SHANGHAI])
                assert status == 202, accepted
                final = await gw.wait_final(accepted["id"], timeout=30)
        assert final["deliveries"][0]["state"] == "delivered"
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
        await drop_pg_database(db_url)


async def test_readyz_is_503_when_the_delivery_worker_is_not_running(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Simulator("national") as sim:
        async with Gateway(load_settings(write_config(tmp_path, db_url,
                                                      {"national": sim.url()}))) as gw:
            status, doc = await _ready(gw)
            assert (status, doc["checks"]["worker"]) == (200, "ok")
            await gw.app[WORKER].stop(grace=0)  # what shutdown does first: stop taking work
            status, doc = await _ready(gw)
            assert (status, doc["status"]) == (503, "unavailable")
            assert doc["checks"] == {"database": "ok", "worker": "not running",
                                     "contracts": "generation 1"}
            assert (await gw.get("/healthz"))[0] == 200


# -- gateway demo --exit-after ---------------------------------------------------------------------

def _demo(tmp_path: Path, cfg: Path, samples: Path) -> Result:
    return CliRunner().invoke(main, [
        "demo", "--exit-after", "--config", str(cfg), "--samples", str(samples),
        "--data", str(tmp_path / "data"), "--timeout", "60",
        "--port", str(free_port()), "--sim-base-port", str(free_port())],
        # wide enough for the table not to cut case numbers (rich reads COLUMNS)
        env={"GATEWAY_DATABASE_URL": None, "GATEWAY_PORT": None, "GATEWAY_SIM_BASE_PORT": None,
             "COLUMNS": "300"})


def _sample_set(folder: Path, *names: str) -> Path:
    """A samples folder holding copies of some shipped samples (the shipped set is untouched)."""
    folder.mkdir()
    for n in names:
        shutil.copyfile(ROOT / "samples" / "cases" / f"{n}.json", folder / f"{n}.json")
    return folder


def test_demo_exit_after_exits_1_when_a_sample_is_dead_lettered_and_0_when_all_arrive(
        tmp_path: Path) -> None:
    """Zhejiang goes to a partner nobody answers for, allowed a single attempt: that sample is
    dead-lettered and the demo says so and exits 1. The same samples with every route to the
    simulated national platform exit 0."""
    cfg = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
                       {"national": "http://127.0.0.1:8701/api/v1/cross-province/cases"})
    good = cfg.with_name("good.yaml")
    shutil.copyfile(cfg, good)

    def zhejiang_to_nobody(raw: dict[str, Any]) -> None:
        p = _second_national(raw, "nobody", f"http://127.0.0.1:{free_port()}/cases")
        p["retry"]["max_attempts"] = 1
        raw["routes"].insert(0, {"name": "zhejiang-to-nobody", "target": "nobody",
                                 "match": {"handling_region": "33"}})
    edit_config(cfg, zhejiang_to_nobody)
    samples = _sample_set(tmp_path / "samples", SHANGHAI, ZHEJIANG)

    failed = _demo(tmp_path / "bad", cfg, samples)
    assert failed.exit_code == 1, failed.output
    rows = [ln for ln in failed.output.splitlines() if "BJ2026" in ln]
    shanghai = json.loads((samples / f"{SHANGHAI}.json").read_text(encoding="utf-8"))
    zhejiang = json.loads((samples / f"{ZHEJIANG}.json").read_text(encoding="utf-8"))
    [dead] = [ln for ln in rows if zhejiang["applicationNo"] in ln]
    assert "nobody (item 1)" in dead and "dead: max attempts 1 reached" in dead, failed.output
    [ok] = [ln for ln in rows if shanghai["applicationNo"] in ln]
    assert "national (item 1)" in ok and "delivered" in ok and "dead" not in ok, failed.output

    passed = _demo(tmp_path / "good", good, samples)
    assert passed.exit_code == 0, passed.output
    rows = [ln for ln in passed.output.splitlines() if "BJ2026" in ln]
    assert len(rows) == 2 and all("national (item 1)" in ln and "delivered" in ln for ln in rows)
    # ./run.sh twice: the data folder keeps the cases, the new simulators do not know them;
    # the second run shows them delivered, does not walk them again, and still exits 0
    again = _demo(tmp_path / "good", good, samples)
    assert again.exit_code == 0, again.output
    assert "2 case part(s) were delivered by an earlier run" in again.output


# -- gateway db upgrade ----------------------------------------------------------------------------

async def test_db_upgrade_creates_the_schema_and_a_second_run_changes_nothing(
        db_url: str) -> None:
    """On an empty SQLite file (not there yet) and on a fresh PostgreSQL database."""
    head = head_revision()
    first = await _cli("db", "upgrade", "--database-url", db_url)
    assert first.exit_code == 0, first.output
    assert first.output.strip() == f"database at revision {head}"

    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), metadata))
        assert diff == []  # every table and column the code declares
        await Store(engine).submit_case(new_case("UPG1"))
    finally:
        await engine.dispose()

    second = await _cli("db", "upgrade", "--database-url", db_url)
    assert second.exit_code == 0, second.output
    assert second.output.strip() == f"database at revision {head}"
    assert [tuple(r) for r in await db_rows(db_url, "SELECT version_num FROM alembic_version")] \
        == [(head,)]
    assert [tuple(r) for r in await db_rows(db_url, "SELECT application_no FROM cases")] == [
        ("UPG1",)]  # nothing dropped or recreated
    assert len(await db_rows(db_url, "SELECT id FROM deliveries")) == 1


# -- gateway case show ------------------------------------------------------------------------------

async def test_case_show_finds_a_case_by_id_and_by_application_number(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    case = samples[SHANGHAI]
    async with Simulator("national") as sim:
        cfg = write_config(tmp_path, db_url, {"national": sim.url()})
        async with Gateway(load_settings(cfg)) as gw:
            status, accepted = await gw.post_case(case)
            assert status == 202, accepted
            final = await gw.wait_final(accepted["id"])
            # while the gateway serves, as the README shows
            by_id = await _cli("case", "show", accepted["id"], "--config", str(cfg))
            by_no = await _cli("case", "show", case["applicationNo"], "--config", str(cfg))
    assert by_id.exit_code == 0, by_id.output
    assert by_no.exit_code == 0, by_no.output
    shown = json.loads(by_id.output)
    assert json.loads(by_no.output) == shown
    assert (shown["id"], shown["applicationNo"]) == (accepted["id"], case["applicationNo"])
    [d] = shown["deliveries"]
    assert (d["partner"], d["state"], d["attempts"]) == ("national", "delivered", 1)
    assert d["receiptNo"] == final["deliveries"][0]["receiptNo"]
    assert [h["outcome"] for h in d["history"]] == ["delivered"]


# -- an open breaker spends no attempts -------------------------------------------------------------

COOL_DOWN = 1.5
OPENERS, HELD = 2, 3


async def _breaker(db_url: str) -> dict[str, Any]:
    rows = await db_rows(db_url, "SELECT snapshot FROM partner_breakers "
                                 "WHERE partner = 'national'")
    if not rows:
        return {"state": "closed", "trips": 0}
    v = rows[0][0]
    return v if isinstance(v, dict) else json.loads(v)


async def _attempts(db_url: str) -> dict[str, tuple[str, int, str]]:
    """case id → (delivery state, attempts, idempotency key)."""
    rows = await db_rows(db_url, "SELECT case_id, state, attempts, idempotency_key "
                                 "FROM deliveries")
    return {r.case_id: (r.state, r.attempts, r.idempotency_key) for r in rows}


async def test_an_open_breaker_holds_deliveries_without_spending_their_attempts(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    template = samples[SHANGHAI]
    sim = LiveSimulator("national")
    sends = SendLog().install(sim)

    async def settled() -> tuple[dict[str, tuple[str, int, str]], int] | None:
        """(deliveries, sends so far) once no send is on the wire and each one is recorded as
        an attempt (so the counts below are compared at rest, not mid-send)."""
        n = len(sends.entries)
        if any(e["end"] is None for e in sends.entries):
            return None
        deliveries = await _attempts(db_url)
        if sum(a for _, a, _ in deliveries.values()) != n or len(sends.entries) != n:
            return None
        return deliveries, n

    async with sim:
        cfg = write_config(tmp_path, db_url, {"national": sim.url()})

        def quick_breaker(raw: dict[str, Any]) -> None:
            raw["partners"]["national"]["breaker"] = {
                "failure_threshold": OPENERS, "min_calls": 100, "cool_down": COOL_DOWN,
                "cool_down_multiplier": 1, "max_cool_down": COOL_DOWN, "probe_timeout": 30}
        edit_config(cfg, quick_breaker)
        sim.misbehave("http500", count=-1)  # the partner is down
        async with Gateway(load_settings(cfg)) as gw:
            openers = []
            for n in range(OPENERS):
                status, doc = await gw.post_case(numbered_case(template, n, prefix="OPEN"))
                assert status == 202, doc
                openers.append(doc["id"])

            async def opened() -> bool:
                return (await _breaker(db_url))["state"] == "open"
            await wait_until(opened, timeout=20, what="the breaker to open", interval=0.02)
            trips_at_open = (await _breaker(db_url))["trips"]

            held = []
            for n in range(HELD):
                status, doc = await gw.post_case(numbered_case(template, n, prefix="HELD"))
                assert status == 202, doc
                held.append(doc["id"])
            before, sent_before = await wait_until(settled, timeout=20, what="sends at rest",
                                                   interval=0.02)
            assert all(before[i][:2] == ("pending", 0) for i in held), before

            # Held for a whole cool-down (the worker polls every 50 ms meanwhile; without the
            # breaker each delivery would be retried every 50-200 ms): wait until its probe
            # has gone and failed, i.e. the breaker opened again, then count.
            async def probe_failed() -> bool:
                return (await _breaker(db_url))["trips"] > trips_at_open
            await wait_until(probe_failed, timeout=20, what="a probe to fail", interval=0.02)
            during, sent_during = await wait_until(settled, timeout=20, what="sends at rest",
                                                   interval=0.02)
            _, view = await gw.get(f"/api/v1/cases/{held[-1]}")

            sim.state.behaviours.clear()  # the partner is back
            finals = [await gw.wait_final(i, timeout=30) for i in openers + held]
    breaker = await _breaker(db_url)

    # while open: only probes went out, one at a time, each charged to one delivery
    probes = sent_during - sent_before
    assert probes >= 1
    assert sum(during[i][1] - before[i][1] for i in during) == probes, (before, during)
    assert sum(during[i][1] for i in held) <= probes, during  # held: no attempt but a probe
    assert all(during[i][0] == "pending" for i in held), during
    assert view["deliveries"][0]["partnerBreaker"] in ("open", "half_open")
    # every send after the breaker opened was a probe: each failed one opened it again, the
    # last one closed it
    after_open = sends.entries[sent_before:]
    assert [e["status"] for e in after_open if e["status"] != 500][:1] == [200]
    first_ok = next(i for i, e in enumerate(after_open) if e["status"] == 200)
    assert all(e["status"] == 500 for e in after_open[:first_ok])
    assert first_ok == breaker["trips"] - trips_at_open and breaker["state"] == "closed"
    # then every delivery was delivered, each attempt one real send, one application each
    assert all(f["deliveries"][0]["state"] == "delivered" for f in finals)
    after = await _attempts(db_url)
    for state, attempts, key in after.values():
        assert state == "delivered", after
        assert attempts == sum(1 for e in sends.entries if e["key"] == key), after
    assert sim.state.summary(False)["unique"] == OPENERS + HELD
