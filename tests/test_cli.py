"""The ``gateway`` command's shape: the console entry point names :func:`gateway.cli.main`, and
every command group is reachable through it (each is a module of ``gateway/cli/``)."""

from __future__ import annotations

import tomllib

import pytest
from click.testing import CliRunner

from gateway.cli import main
from tests.harness import ROOT

GROUPS = {"serve": [], "demo": [], "simulate": [], "db": ["upgrade"], "case": ["show"],
          "dlq": ["list", "show", "replay", "discard"], "route": ["explain", "check"],
          "mapping": ["check", "test", "render", "coverage", "scaffold"], "overdue": [],
          "reconcile": [], "backflow": ["status", "run", "replay"],
          "audit": ["verify", "prune"], "seal": ["keygen", "reseal"], "keys": ["generate"],
          "console": ["hash-password"]}


def test_the_console_entry_point_is_main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["gateway"] == "gateway.cli:main"
    assert set(main.commands) == set(GROUPS)


@pytest.mark.parametrize("path", [[g, *([s] if s else [])] for g, subs in GROUPS.items()
                                  for s in (subs or [None])], ids=" ".join)
def test_every_command_answers_help(path: list[str]) -> None:
    res = CliRunner().invoke(main, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Usage: main " + " ".join(path))
