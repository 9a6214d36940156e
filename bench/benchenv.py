"""The secrets ``config/gateway.yaml`` reads from the environment (issue 14), for benchmarks.

Every benchmark that loads the shipped configuration, or starts a gateway or a simulator with
it, calls :func:`use_bench_secrets` first: the tests' values (``tests/harness.py``'s
``TEST_SECRETS``, the simulators' built-in demo values), unless the environment already sets
them. Synthetic values, no secret."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def use_bench_secrets() -> None:
    """Set each of ``TEST_SECRETS`` in this process's environment (children inherit it) where
    it is not set yet."""
    sys.path.insert(0, str(ROOT))
    from tests.harness import TEST_SECRETS
    for name, value in TEST_SECRETS.items():
        os.environ.setdefault(name, value)
