"""Test harness: real simulators and real gateways on loopback sockets.

In-process gateways run through aiohttp's ``TestServer``; restart and crash tests run the
``gateway serve`` command as a child process and kill it for real.
"""

from __future__ import annotations

import asyncio
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
from gateway.simulators import simulator_factory
from gateway.simulators.base import SIM_STATE, SimulatorState

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "gateway.yaml"
NATIONAL_PATH = "/api/v1/cross-province/cases"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, db_url: str, partner_urls: dict[str, str],
                **worker: Any) -> Path:
    """A config file like the shipped one, pointed at the given database and simulators, with
    short waits so retries happen within a test."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["database"]["url"] = db_url
    raw["mappings_dir"] = str(ROOT / "mappings")
    raw["schemas_dir"] = str(ROOT / "schemas")
    raw["worker"].update({"poll_interval": 0.05, "lease_seconds": 5, **worker})
    for name in list(raw["partners"]):
        if name not in partner_urls:
            del raw["partners"][name]
            raw["routes"] = [r for r in raw["routes"] if r.get("target") != name]
            continue
        p = raw["partners"][name]
        p["url"] = partner_urls[name]
        p.setdefault("retry", {}).update({"initial_wait": 0.05, "max_wait": 0.2, "jitter": "none",
                                         "throttle_wait": 0.1, "retry_after_cap": 0.5})
    path = tmp_path / "gateway-test.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


class Simulator:
    """One partner simulator on a real socket, with its in-memory state at hand."""

    def __init__(self, partner: str) -> None:
        self.partner = partner
        self.app = simulator_factory(partner)()
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

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings, shutdown_grace=2.0)
        self.server = TestServer(self.app, host="127.0.0.1")
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Gateway:
        await self.server.start_server()
        self.http = aiohttp.ClientSession(str(self.server.make_url("")))
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
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"gateway exited: {self.log.read_text()[-3000:]}")
                try:
                    async with http.get(f"{self.base}/readyz") as r:
                        if r.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"gateway not ready: {self.log.read_text()[-3000:]}")

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


__all__ = ["Gateway", "GatewayProcess", "Simulator", "free_port", "settings_for", "write_config",
           "wait_final", "web"]
