"""Test harness: real simulators and real gateways on loopback sockets.

In-process gateways run through aiohttp's ``TestServer``; restart and crash tests run the
``gateway serve`` command as a child process and kill it for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.config import Settings, load_settings
from gateway.protocols.tif import TifSigner
from gateway.simulators import simulator_factory
from gateway.simulators.base import SIM_STATE, SimulatorState

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "gateway.yaml"
NATIONAL_PATH = "/api/v1/cross-province/cases"

#: The caller every test config has (:func:`write_config`) and every harness client signs as
#: (x-tif, issue 14): all permissions, any item and region, identities in full. Synthetic.
TEST_CALLER = "test"
TEST_PAASID = "TEST-CALLER"
TEST_TOKEN = "test-caller-token-not-a-secret"
ALL_PERMISSIONS = ["submit", "read", "read_any", "dead_letters.list", "dead_letters.replay",
                   "dead_letters.discard", "breakers.read", "contracts.reload"]
TEST_SIGNER = TifSigner(TEST_PAASID, TEST_TOKEN)

#: The secrets config/gateway.yaml reads from the environment (issue 14), as the simulators
#: expect them by default (their built-in demo values; the demo itself makes up random ones).
#: tests/conftest.py puts them in this process's environment, which gateway processes inherit.
TEST_SECRETS = {
    "GATEWAY_CITY_CALLER_TOKEN": "city-caller-token-for-tests",
    "GATEWAY_CITY_TIF_TOKEN": "city-demo-tif-token",
    "GATEWAY_TIANJIN_AUTH_CODE": "TJ-DEMO-AUTHCODE-0001",
    "GATEWAY_TIANJIN_INBOUND_AUTH_CODE": "TJ-NOTIFY-AUTHCODE-0001",
    "GATEWAY_HEBEI_PASSWORD": "hebei-demo-secret",
    "GATEWAY_HEBEI_INBOUND_PASSWORD": "hebei-notify-secret",
    # signs the web console's session cookies (tests/test_console*.py configure accounts)
    "GATEWAY_CONSOLE_SECRET": "console-cookie-secret-for-tests-only-0001",
}


def caller_entry(**overrides: Any) -> dict[str, Any]:
    """The test caller's ``callers:`` entry (``overrides`` replace its keys)."""
    return {"paasid": TEST_PAASID, "token": TEST_TOKEN, "permissions": list(ALL_PERMISSIONS),
            "items": ["*"], "regions": ["*"], "identity": "full", **overrides}


def tif_signing(signer: TifSigner = TEST_SIGNER) -> Any:
    """An aiohttp client middleware putting fresh ``x-tif-*`` headers on every request."""
    async def sign(request: aiohttp.ClientRequest, handler: Any) -> aiohttp.ClientResponse:
        request.headers.update(signer.headers())
        response: aiohttp.ClientResponse = await handler(request)
        return response
    return sign


def signed_session(base_url: str | None = None, *, signer: TifSigner = TEST_SIGNER,
                   **kw: Any) -> aiohttp.ClientSession:
    """An aiohttp session whose every request is signed as ``signer`` (the test caller)."""
    return aiohttp.ClientSession(base_url, middlewares=(tif_signing(signer),), **kw)


def signed_headers(signer: TifSigner = TEST_SIGNER) -> dict[str, str]:
    """Fresh ``x-tif-*`` headers of the test caller for one request."""
    return signer.headers()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.lru_cache(maxsize=1)
def _shipped_config_text() -> str:
    return DEFAULT_CONFIG.read_text(encoding="utf-8")


def shipped_config() -> dict[str, Any]:
    """A fresh copy of the shipped config/gateway.yaml, parsed (libyaml: tests parse it often)."""
    loaded: dict[str, Any] = yaml.load(_shipped_config_text(),  # noqa: S506 - a SafeLoader
                                       Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return loaded


def write_config(tmp_path: Path, db_url: str, partner_urls: dict[str, str],
                partner_timeout: float | None = None, **worker: Any) -> Path:
    """A config file like the shipped one, pointed at the given database and simulators, with
    short waits so retries happen within a test."""
    raw = shipped_config()
    raw["database"]["url"] = db_url
    raw["mappings_dir"] = str(ROOT / "mappings")
    raw["schemas_dir"] = str(ROOT / "schemas")
    raw["worker"].update({"poll_interval": 0.05, "lease_seconds": 5, **worker})
    raw["callers"] = {**(raw.get("callers") or {}), TEST_CALLER: caller_entry()}
    if partner_timeout is None:  # a send must end before its lease does (config rule)
        partner_timeout = min(4.0, raw["worker"]["lease_seconds"] * 0.75)
    for name in list(raw["partners"]):
        if name not in partner_urls:
            del raw["partners"][name]
            raw["routes"] = [r for r in raw["routes"] if r.get("target") != name]
            continue
        p = raw["partners"][name]
        p["url"] = partner_urls[name]
        p["timeout"] = partner_timeout
        p.setdefault("retry", {}).update({"initial_wait": 0.05, "max_wait": 0.2, "jitter": "none",
                                         "throttle_wait": 0.1, "retry_after_cap": 0.5})
    path = tmp_path / "gateway-test.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


class Simulator:
    """One partner simulator on a real socket, with its in-memory state at hand."""

    def __init__(self, partner: str, **options: Any) -> None:
        self.partner = partner
        self.app = simulator_factory(partner)(**options)  # e.g. national security=…
        self.state: SimulatorState = self.app[SIM_STATE]
        self.server = TestServer(self.app, host="127.0.0.1")

    async def __aenter__(self) -> Simulator:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.server.close()

    def url(self, path: str = NATIONAL_PATH) -> str:
        return str(self.server.make_url(path))

    def misbehave(self, mode: str, count: int = 1, **kw: Any) -> None:
        from gateway.simulators.base import Behaviour
        self.state.push(Behaviour(mode=mode, count=count, **kw))


class Gateway:
    """A gateway app in this process, on a real socket."""

    def __init__(self, settings: Settings, signer: TifSigner | None = TEST_SIGNER) -> None:
        self.settings = settings
        self.signer = signer  # None: requests go unsigned
        self.app = create_app(settings, shutdown_grace=2.0)
        self.server = TestServer(self.app, host="127.0.0.1")
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Gateway:
        await self.server.start_server()
        middlewares = (tif_signing(self.signer),) if self.signer is not None else ()
        self.http = aiohttp.ClientSession(str(self.server.make_url("")), middlewares=middlewares)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.http is not None
        await self.http.close()
        await self.server.close()

    async def post_case(self, case: dict[str, Any] | bytes, **headers: str) -> tuple[int, Any]:
        assert self.http is not None
        data = case if isinstance(case, bytes) else json.dumps(case, ensure_ascii=False).encode()
        async with self.http.post("/api/v1/cases", data=data,
                                  headers={"Content-Type": "application/json", **headers}) as r:
            return r.status, await r.json(content_type=None)

    async def get(self, path: str) -> tuple[int, Any]:
        assert self.http is not None
        async with self.http.get(path) as r:
            ctype = r.content_type
            return r.status, (await r.json() if "json" in ctype else await r.text())

    async def wait_final(self, case_id: str, timeout: float = 15.0) -> dict[str, Any]:
        return await wait_final(self.get, case_id, timeout)


async def wait_final(get: Any, case_id: str, timeout: float = 15.0) -> dict[str, Any]:
    """Poll a case until every delivery is delivered or dead."""
    deadline = time.monotonic() + timeout
    while True:
        status, doc = await get(f"/api/v1/cases/{case_id}")
        assert status == 200, doc
        if all(d["state"] in ("delivered", "dead") for d in doc["deliveries"]):
            return doc
        if time.monotonic() > deadline:
            raise AssertionError(f"case {case_id} not final after {timeout}s: {doc['deliveries']}")
        await asyncio.sleep(0.05)


class GatewayProcess:
    """``gateway serve`` as a child process, to be stopped or killed for real."""

    def __init__(self, config: Path, port: int, log: Path, worker_id: str = "proc") -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{port}"

    async def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(self.config),
             "--port", str(self.port)], stdout=out, stderr=out, env=env, cwd=ROOT)
        await wait_ready(self, timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def settings_for(tmp_path: Path, db_url: str, partner_urls: dict[str, str], **worker: Any) -> Settings:
    return load_settings(write_config(tmp_path, db_url, partner_urls, **worker))


__all__ = ["TEST_CALLER", "TEST_PAASID", "TEST_SECRETS", "TEST_SIGNER", "TEST_TOKEN", "Gateway",
           "GatewayProcess", "Simulator", "free_port", "settings_for", "signed_headers", "signed_session",
           "caller_entry", "tif_signing", "write_config", "wait_final", "web"]


# -- crash, multi-instance, fault and breaker helpers (issue 6) ---------------------------------

def numbered_case(template: dict[str, Any], n: int, *, prefix: str = "CR",
                  handling_region: str | None = None) -> dict[str, Any]:
    """A copy of a sample case with its own application number (and optionally region)."""
    import copy
    case = copy.deepcopy(template)
    case["applicationNo"] = f"{prefix}{n:012d}"
    if handling_region is not None:
        for item in case["items"]:
            item["handlingRegion"] = handling_region
    return case


def edit_config(path: Path, edit: Any) -> Path:
    """Apply ``edit(raw_dict)`` to a config file written by :func:`write_config`."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


class SendLog:
    """A simulator middleware recording every partner request: idempotency key, the ``via``
    query tag of the sending instance, and when it started and ended (monotonic seconds).

    Install before the simulator starts: ``SendLog().install(sim)``.
    """

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def install(self, sim: Simulator) -> SendLog:
        entries = self.entries

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            key = request.headers.get("X-Idempotency-Key")
            if key is None or request.path.startswith("/__sim"):
                return await handler(request)
            entry: dict[str, Any] = {"key": key, "via": request.query.get("via"),
                                     "start": time.monotonic(), "end": None, "status": None}
            entries.append(entry)
            try:
                response = await handler(request)
                entry["status"] = response.status
                return response
            finally:
                entry["end"] = time.monotonic()

        sim.app.middlewares.append(record)
        return self

    def concurrent(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Pairs of requests with the same key whose handling overlapped in time."""
        by_key: dict[str, list[dict[str, Any]]] = {}
        for e in self.entries:
            by_key.setdefault(e["key"], []).append(e)
        out = []
        for reqs in by_key.values():
            reqs = sorted(reqs, key=lambda e: e["start"])
            for a, b in zip(reqs, reqs[1:], strict=False):
                if b["start"] < (a["end"] if a["end"] is not None else float("inf")):
                    out.append((a, b))
        return out


_LAUNCH_WITH_WORKER_ID = """
import sys
from aiohttp import web
from gateway.app import create_app
from gateway.config import load_settings
from gateway.observability.logs import configure
configure("INFO")
settings = load_settings(sys.argv[1])
web.run_app(create_app(settings, worker_id=sys.argv[2], reload_on_sighup=True),
            host="127.0.0.1", port=int(sys.argv[3]))
"""


class GatewayInstance(GatewayProcess):
    """One of several gateway processes on one database: ``gateway serve`` as the CLI runs it,
    but with a fixed worker id (so attempt histories name it) and extra environment (e.g.
    ``GATEWAY_PARTNER_NATIONAL_URL`` with a ``?via=`` tag that a :class:`SendLog` records)."""

    def __init__(self, config: Path, port: int, log: Path, worker_id: str,
                 env: dict[str, str] | None = None) -> None:
        super().__init__(config, port, log, worker_id)
        self.worker_id = worker_id
        self.env = env or {}

    async def start(self, timeout: float = 40.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH_WITH_WORKER_ID, str(self.config), self.worker_id,
             str(self.port)], stdout=out, stderr=out, env=env, cwd=ROOT)
        await wait_ready(self, timeout)


async def wait_ready(p: GatewayProcess, timeout: float = 40.0) -> None:
    """Wait until a started gateway process answers ``/readyz`` with 200."""
    assert p.proc is not None
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if p.proc.poll() is not None:
                raise AssertionError(f"gateway exited: {p.log.read_text()[-3000:]}")
            try:
                async with http.get(f"{p.base}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"gateway not ready: {p.log.read_text()[-3000:]}")


async def db_rows(db_url: str, sql: str, **params: Any) -> list[Any]:
    """Run one read query against the gateway's database from the test process."""
    from sqlalchemy import text

    from gateway.store import create_engine
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await engine.dispose()


async def wait_until(check: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``await check()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


class LiveSimulator(Simulator):
    """A simulator served the way ``gateway simulate`` serves it: a request whose client went
    away is still handled to the end (aiohttp's TestServer would cancel it), like a real partner
    that commits an application although the gateway that sent it died meanwhile."""

    def __init__(self, partner: str) -> None:
        super().__init__(partner)
        self.port = free_port()
        self.runner = web.AppRunner(self.app, handler_cancellation=False)

    async def __aenter__(self) -> LiveSimulator:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.runner.cleanup()

    def url(self, path: str = NATIONAL_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


# -- the kill -9 harness (tests/test_crash.py, bench/crash_soak.py) ------------------------------

from dataclasses import asdict, dataclass, field  # noqa: E402

@dataclass
class CrashReport:
    """What a kill -9 run proved and counted."""

    engine: str
    seed: int
    cycles: int = 0                  # SIGKILL + restart cycles
    kills_with_send_in_flight: int = 0
    kills_with_post_in_flight: int = 0  # kills while a client POST was unanswered
    cases: int = 0                   # distinct cases the client submitted
    accepted: int = 0                # cases that got a 202 or 200
    answers_lost: int = 0            # committed, but the client saw the crash and retried (→ 200)
    client_retries: int = 0          # client POSTs that failed on a connection error
    stored: int = 0                  # case rows in the database
    stored_twice: int = 0            # application numbers stored more than once (must be 0)
    deliveries: int = 0              # planned deliveries in the database
    delivered: int = 0               # deliveries in state delivered with the partner's receipt
    lost: int = 0                    # accepted cases not delivered to the partner (must be 0)
    partner_requests: int = 0        # submissions that reached the partner
    partner_unique: int = 0          # distinct idempotency keys the partner holds
    partner_duplicates: int = 0      # submissions the partner recognised and deduped
    partner_overlaps: int = 0        # same key handled concurrently (a dead worker's send still
                                     # running when the lease expired and another resent it)
    wall_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        skip = {"problems"}
        lines = [f"{k:26} {v}" for k, v in asdict(self).items() if k not in skip]
        lines += [f"problem: {p}" for p in self.problems[:20]]
        return "\n".join(lines)


async def run_crash_load(tmp_path: Path, db_url: str, template: dict[str, Any], *,
                         cases: int, cycles: int, seed: int, lease_seconds: float = 2.0,
                         slow_ratio: float = 0.5, clients: int = 8,
                         progress: Any = None) -> CrashReport:
    """Post ``cases`` unique cases over HTTP to a ``gateway serve`` child process while killing
    it with SIGKILL ``cycles`` times at moments drawn from ``random.Random(seed)`` (about half
    of them while the partner is slow, so sends are in flight), restarting it each time; then
    let the last instance finish and check the database and the partner against each other."""
    import random
    rng = random.Random(seed)
    engine = "sqlite" if db_url.startswith("sqlite") else "postgres"
    report = CrashReport(engine=engine, seed=seed)
    t0 = time.monotonic()
    sim = LiveSimulator("national")  # entered by hand: the SendLog must be in place before start
    sends = SendLog().install(sim)
    await sim.__aenter__()
    try:
        cfg = write_config(tmp_path, db_url, {"national": sim.url()},
                           lease_seconds=lease_seconds, poll_interval=0.05)

        def tune(raw: dict[str, Any]) -> None:
            p = raw["partners"]["national"]
            p["timeout"] = round(lease_seconds * 0.9, 2)  # must stay under the lease
            p["retry"].update({"max_attempts": 1000, "max_age": "1d"})
            p["breaker"] = {**p.get("breaker", {}), "failure_threshold": 1000,
                            "min_calls": 1000}
        edit_config(cfg, tune)
        port = free_port()
        log = tmp_path / "gateway-crash.log"
        proc = GatewayProcess(cfg, port, log)
        await proc.start(timeout=60)
        base = proc.base
        numbers = list(range(1, cases + 1))
        batches = [numbers[i::cycles] for i in range(cycles)] if cycles else [numbers]
        accepted: dict[str, str] = {}
        first_status: dict[str, int] = {}
        unexpected: list[str] = []
        limit = asyncio.Semaphore(clients)
        http = signed_session(connector=aiohttp.TCPConnector(force_close=True),
                              timeout=aiohttp.ClientTimeout(total=15))

        async def post(n: int, after: float) -> None:
            case = numbered_case(template, n, prefix=f"CR{seed % 100:02d}")
            body = json.dumps(case, ensure_ascii=False).encode()
            await asyncio.sleep(after)
            async with limit:
                while True:
                    posting[0] += 1
                    try:
                        async with http.post(f"{base}/api/v1/cases", data=body,
                                             headers={"Content-Type": "application/json"}) as r:
                            status = r.status
                            doc = await r.json(content_type=None)
                    except (TimeoutError, aiohttp.ClientError):
                        report.client_retries += 1
                        await asyncio.sleep(0.1)
                        continue
                    finally:
                        posting[0] -= 1
                    if status in (200, 202):
                        accepted[case["applicationNo"]] = doc["id"]
                        first_status[case["applicationNo"]] = status
                        return
                    unexpected.append(f"{case['applicationNo']}: HTTP {status} {doc}")
                    return

        posting = [0]  # client POSTs on the wire now
        tasks: list[asyncio.Task[None]] = []
        try:
            for cycle in range(cycles):
                kill_at = rng.uniform(0.05, 0.9)  # the moment of the kill
                # this cycle's cases arrive spread over the time before and just after the kill
                tasks += [asyncio.create_task(post(n, rng.uniform(0, kill_at + 0.2)))
                          for n in batches[cycle]]
                slow = rng.random() < slow_ratio
                if slow:
                    sim.misbehave(rng.choice(["delay", "slow_accept"]), count=rng.randint(1, 4),
                                  delay=round(rng.uniform(0.3, 1.5), 2))
                await asyncio.sleep(kill_at)
                if slow:  # give a send the chance to be on the wire when the kill comes
                    for _ in range(20):
                        if any(e["end"] is None for e in sends.entries):
                            break
                        await asyncio.sleep(0.05)
                else:  # or a case on its way in: committed or not, never half of it
                    for _ in range(200):
                        if posting[0]:
                            break
                        await asyncio.sleep(0.005)
                if posting[0]:
                    report.kills_with_post_in_flight += 1
                if any(e["end"] is None for e in sends.entries):
                    report.kills_with_send_in_flight += 1
                proc.kill()
                report.cycles += 1
                if progress is not None:
                    progress(report.cycles, len(accepted))
                proc = GatewayProcess(cfg, port, log)
                await proc.start(timeout=60)
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
            report.cases = cases
            report.accepted = len(accepted)
            report.answers_lost = sum(1 for s in first_status.values() if s == 200)
            report.problems += unexpected

            async def all_final() -> bool:
                rows = await db_rows(db_url, "SELECT count(*) FROM deliveries "
                                             "WHERE state NOT IN ('delivered', 'dead')")
                return rows[0][0] == 0
            try:
                await wait_until(all_final, timeout=60 + cases * 0.2, what="every delivery final")
            except AssertionError as e:
                report.problems.append(str(e))
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http.close()
            code = proc.stop()
            if code != 0:
                report.problems.append(f"last gateway exited with {code}")

        case_rows = await db_rows(db_url, "SELECT id, application_no FROM cases")
        del_rows = await db_rows(db_url, "SELECT case_id, idempotency_key, state, receipt_no "
                                         "FROM deliveries")
        report.stored = len(case_rows)
        per_no: dict[str, int] = {}
        for _, no in case_rows:
            per_no[no] = per_no.get(no, 0) + 1
        report.stored_twice = sum(1 for n in per_no.values() if n > 1)
        ids = {cid for cid, _ in case_rows}
        dels: dict[str, list[Any]] = {}
        for r in del_rows:
            dels.setdefault(r.case_id, []).append(r)
        report.deliveries = len(del_rows)
        receipts = dict(sim.state.receipts)
        for no, cid in accepted.items():
            if cid not in ids:
                report.problems.append(f"{no}: accepted as {cid} but not stored")
                report.lost += 1
                continue
            mine = dels.get(cid, [])
            if len(mine) != 1:
                report.problems.append(f"{no}: {len(mine)} deliveries planned, expected 1")
            ok = [d for d in mine if d.state == "delivered"
                  and receipts.get(d.idempotency_key) == d.receipt_no]
            if len(ok) == len(mine) == 1:
                report.delivered += 1
            else:
                report.lost += 1
                report.problems.append(f"{no}: not delivered: {[tuple(d) for d in mine]}")
        summary = sim.state.summary(False)
        report.partner_requests = summary["received"]
        report.partner_unique = summary["unique"]
        report.partner_duplicates = summary["duplicates"]
        report.partner_overlaps = len(sends.concurrent())
        planned_keys = {r.idempotency_key for r in del_rows}
        if set(receipts) != planned_keys:
            report.problems.append(
                f"partner keys != planned keys: {len(set(receipts) - planned_keys)} unknown, "
                f"{len(planned_keys - set(receipts))} missing")
    finally:
        await sim.__aexit__(None, None, None)
    report.wall_seconds = round(time.monotonic() - t0, 1)
    return report


def default_partner_path(partner: str) -> str:
    """The URL path a partner has in the shipped configuration (its simulator serves it)."""
    from urllib.parse import urlsplit
    raw = shipped_config()
    return urlsplit(raw["partners"][partner]["url"]).path


# -- replies held until the test lets them go (issue 11: conditions, not fixed sleeps) -----------

class HoldReplies:
    """A simulator middleware: the partner handles each submission at once (it commits the
    application, as ``slow_accept`` does) but its reply is held until the test releases it, so a
    send stays in flight exactly as long as the test needs instead of a guessed number of seconds.

    Install after a :class:`SendLog` (whose entries then end when the reply is let go) and
    before the simulator starts: ``HoldReplies().install(sim)``. Only partner submissions (with
    an ``X-Idempotency-Key``) are held; ``/__sim`` control requests pass.
    """

    def __init__(self, only: Any = None) -> None:
        self.open = False
        self.only = only  # a predicate on the request: hold only those (default: all)
        self.held: list[tuple[str, asyncio.Event]] = []  # (idempotency key, its release)

    def install(self, sim: Simulator) -> HoldReplies:
        @web.middleware
        async def hold(request: web.Request, handler: Any) -> web.StreamResponse:
            key = request.headers.get("X-Idempotency-Key")
            if key is None or request.path.startswith("/__sim") or self.open or (
                    self.only is not None and not self.only(request)):
                return await handler(request)
            response = await handler(request)
            if self.open:  # released meanwhile, while the partner was still handling it
                return response
            released = asyncio.Event()
            self.held.append((key, released))
            await released.wait()
            return response

        sim.app.middlewares.append(hold)
        return self

    def waiting(self) -> list[str]:
        """Keys whose reply is held now."""
        return [k for k, ev in self.held if not ev.is_set()]

    def release(self, keys: set[str] | None = None) -> None:
        """Let the held replies go (those of ``keys`` only, if given); later ones are held too."""
        for k, ev in self.held:
            if keys is None or k in keys:
                ev.set()

    def release_all(self) -> None:
        """Let every held reply go and hold nothing from now on."""
        self.open = True
        self.release()


async def port_closed(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing accepts connections on ``host:port`` (a stopping server closed it)."""
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return True
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return False
