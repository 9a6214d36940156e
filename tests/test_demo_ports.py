"""A port the demo needs is taken: one line naming the port and how to choose another, exit 1,
no traceback, nothing left listening and no database created."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main
from gateway.config import load_settings
from gateway.demo import move_simulators, simulated_partners
from tests.harness import DEFAULT_CONFIG, ROOT, TEST_SECRETS, free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["demo", "--exit-after", "--timeout", "5",
                                     "--data", str(tmp_path / "data"),
                                     "--samples", str(ROOT / "samples" / "cases"), *args],
                              env={"GATEWAY_DATABASE_URL": None, **(env or {})})


def _error_line(res: Result) -> str:
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output and "OSError" not in res.output, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1, res.output
    return errors[0]


def _can_bind(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_gateway_port_taken(tmp_path: Path, busy_port: int) -> None:
    sim_base = free_port()
    line = _error_line(_demo(tmp_path, "--port", str(busy_port),
                             "--sim-base-port", str(sim_base)))
    assert f"port {busy_port} (gateway API) is already in use" in line
    assert "--port N" in line and "GATEWAY_PORT" in line
    assert not (tmp_path / "data").exists()  # failed before any database was opened
    assert _can_bind(sim_base)  # no simulator left listening


def test_gateway_port_taken_through_the_environment(tmp_path: Path, busy_port: int) -> None:
    line = _error_line(_demo(tmp_path, "--sim-base-port", str(free_port()),
                             env={"GATEWAY_PORT": str(busy_port)}))
    assert f"port {busy_port} (gateway API)" in line


def test_simulator_port_taken(tmp_path: Path, busy_port: int) -> None:
    gw_port = free_port()
    line = _error_line(_demo(tmp_path, "--port", str(gw_port),
                             env={"GATEWAY_SIM_BASE_PORT": str(busy_port)}))
    assert f"port {busy_port} (national simulator) is already in use" in line
    assert "--sim-base-port N" in line
    assert not (tmp_path / "data").exists()
    assert _can_bind(gw_port)  # the gateway's socket was closed again


def test_sim_base_port_moves_simulators_and_partner_urls() -> None:
    s = load_settings(DEFAULT_CONFIG, env=TEST_SECRETS)
    moved = move_simulators(s, 19700)
    assert simulated_partners(s) == ["national", "tianjin", "hebei"]
    assert [moved.partners[n].url for n in simulated_partners(s)] == [
        "http://127.0.0.1:19700/api/v1/cross-province/cases",
        "http://127.0.0.1:19701/tianjin/ExchangeService",
        "http://127.0.0.1:19702/hebei/CaseExchange"]


def test_real_process_prints_one_line_without_traceback(tmp_path: Path, busy_port: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--exit-after", "--port", str(busy_port),
         "--sim-base-port", str(free_port()), "--data", str(tmp_path / "data"),
         "--samples", str(ROOT / "samples" / "cases")],
        check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().splitlines() == [(
        f"Error: port {busy_port} (gateway API) is already in use on 127.0.0.1: stop what holds "
        f"it, or choose another with --port N (./run.sh --port N, or GATEWAY_PORT=N)")]
