"""The soak of ``bench/bench_soak.py`` in short: a ``gateway serve`` child process driven open
loop with the REST+SOAP mix (national REST, Tianjin SOAP 1.1, Hebei SOAP 1.2 + WS-Security) by a
load generator in its own process, its RSS read from ``/proc`` all along.

Asserts what the long soak promises: every case answered 202 is stored and delivered (the
simulators hold each one), no request failed, and the gateway's memory does not run away. Two
bounds on memory, both after a warm-up: RSS growth under 30 % over the run, and a trend under
6 KiB per case sent. The second is the one a leak trips: on this 2-core machine the trend is
1–3 KiB per case (allocator and caches settling), and keeping each request's body and checked
case alive (a deliberate leak put in through ``sitecustomize``) made it 9–10 KiB per case while
the growth stayed under 5 % (bench/README.md, "RSS over a soak").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_soak import run_soak  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


# SQLite only in the suite (~50 s); PostgreSQL's soak is the bench's (``--engine postgres``): the
# suite's ten-minute budget cannot hold both, and the memory measured is the gateway's own
@pytest.mark.parametrize("engine", ["sqlite"])
async def test_short_soak_loses_nothing_and_memory_stays_flat(tmp_path: Path, engine: str) -> None:
    report = await run_soak(tmp_path, engine=engine, minutes=0.5, warmup=10, rate=20, sample=1)
    print(report.summary())
    assert report.sent == 20 * 40
    assert report.failed == 0, report.summary()
    assert report.accepted == report.sent
    # nothing lost: stored once, every delivery delivered, and the partners hold each one
    assert report.stored == report.accepted
    assert report.deliveries == report.delivered == report.accepted  # one delivery per case
    assert report.lost == 0
    assert report.partner_unique == report.delivered
    # memory: sampled every second over the 30 s after the warm-up
    assert len([s for s in report.samples if s[0] >= 10]) >= 20
    assert report.rss_start > 0
    assert report.growth_pct < 30, report.summary()
    assert report.kib_per_case < 6, report.summary()
