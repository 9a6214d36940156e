"""The secrets ``config/gateway.yaml`` reads from the environment (issue 14), for benchmarks.

Every benchmark that loads the shipped configuration, or starts a gateway or a simulator with
it, calls :func:`use_bench_secrets` first: the simulators' built-in demo values (the tests' own,
``tests/harness.py``), unless the environment already sets them. Synthetic values, no secret."""

from __future__ import annotations

import os

BENCH_SECRETS = {
    "GATEWAY_CITY_CALLER_TOKEN": "city-caller-token-for-bench",
    "GATEWAY_CITY_TIF_TOKEN": "city-demo-tif-token",
    "GATEWAY_TIANJIN_AUTH_CODE": "TJ-DEMO-AUTHCODE-0001",
    "GATEWAY_TIANJIN_INBOUND_AUTH_CODE": "TJ-NOTIFY-AUTHCODE-0001",
    "GATEWAY_HEBEI_PASSWORD": "hebei-demo-secret",
    "GATEWAY_HEBEI_INBOUND_PASSWORD": "hebei-notify-secret",
}


def use_bench_secrets() -> None:
    """Set each of :data:`BENCH_SECRETS` in this process's environment (children inherit it)
    where it is not set yet."""
    for name, value in BENCH_SECRETS.items():
        os.environ.setdefault(name, value)
