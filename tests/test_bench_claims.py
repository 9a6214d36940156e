"""The short version of bench/bench_claims.py: the script runs and reports each history size (a
benchmark nobody can rerun is no figure; bench_cost.py once stopped starting unnoticed). Its
time bound only catches a gross regression: tests/test_due_queries.py counts SQLite's
instructions exactly (the long run and its figures: bench/README.md, "Issue 12, fourth pass")."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_bench_claims_runs_and_a_round_does_not_grow_with_history() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_claims.py"), "--history", "0", "3000",
         "--rounds", "40", "--backlog", "500"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
    rounds = [float(m) for m in re.findall(r"round p50 +([\d.]+) ms", out)]
    assert len(rounds) == 2, out
    # wall-clock medians on a shared machine: a loose bound (the old claim was 1.3× at 3,000
    # rows and grew linearly; tests/test_due_queries.py counts SQLite's instructions exactly)
    assert rounds[1] < rounds[0] * 3, out
