"""kill -9 under load: nothing accepted is lost, nothing is stored twice, the partner dedupes.

A client posts unique cases concurrently over HTTP to a ``gateway serve`` child process (and
retries on connection errors, as the city platform would: the same application number answers
200 once it was committed). The gateway is killed with SIGKILL at moments drawn from a seeded
RNG — about half of them while the partner is slow, so sends are on the wire — and restarted,
``CRASH_CYCLES`` times per engine (at least 20 in the suite). Then every accepted case must be
stored once and delivered once as far as the partner can tell (one unique idempotency key per
planned delivery, the receipt the partner gave recorded on the delivery); the resends the
partner had to dedupe are counted and printed. The long form is ``bench/crash_soak.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tests.harness import ROOT, run_crash_load

CYCLES = int(os.environ.get("GATEWAY_CRASH_CYCLES", "12"))
CASES = int(os.environ.get("GATEWAY_CRASH_CASES", "48"))
SEED = int(os.environ.get("GATEWAY_CRASH_SEED", "20261130"))
NATIONAL_IN_FLIGHT = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text(
    encoding="utf-8"))["partners"]["national"]["limits"]["max_concurrency"]


async def test_kill_9_under_load_loses_nothing(db_url: str, tmp_path: Path,
                                               samples: dict[str, Any]) -> None:
    report = await run_crash_load(tmp_path, db_url,
                                  samples["01-person-shanghai-social-security"],
                                  cases=CASES, cycles=CYCLES, seed=SEED)
    print(f"\nkill -9 harness ({report.engine}):\n{report.summary()}")
    assert report.problems == []
    assert report.cycles == CYCLES >= 10
    assert report.accepted == report.cases == CASES
    assert report.stored == CASES and report.stored_twice == 0
    assert report.deliveries == CASES
    assert report.lost == 0 and report.delivered == CASES
    assert report.partner_unique == CASES  # one application per case at the partner, no more
    assert report.partner_requests == CASES + report.partner_duplicates
    # a resend happens only for a send a killed worker had not recorded: at most what one
    # instance can have in flight to the partner, per kill
    assert report.partner_duplicates <= report.cycles * NATIONAL_IN_FLIGHT
