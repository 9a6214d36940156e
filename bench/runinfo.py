"""Which code a benchmark measured: the commit, and whether gateway/ had uncommitted changes
(other work goes on in the same checkout, so a figure is only comparable with its code)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def code_version() -> str:
    """``HEAD`` (short), the last commit that touched ``gateway/``, and a dirty mark."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        gw = git("log", "-1", "--format=%h", "--", "gateway")
        dirty = git("status", "--porcelain", "--untracked-files=all", "--", "gateway")
    except OSError:
        return "unknown"
    return (f"HEAD {head}, gateway/ at {gw}"
            + (" + uncommitted changes in gateway/" if dirty else ""))
