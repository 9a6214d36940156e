"""How cost grows with a case (issue 12): time and memory per case for bundles of 1, 10 and 50
items and for cases with 0, 20 and 200 materials, with the slope of each.

Every case is built from ``samples/cases/20-bundle-ten-items-jingjinji.json`` (its applicant,
agent and check digits unchanged, so every case is valid and every item routed by
``config/gateway.yaml``):

* **items** axis: the bundle's ten items repeated in a fixed order (a Tianjin item first, so the
  one-item case has a delivery; Beijing items stay home, Tianjin items are one message each,
  Hebei and the national channel one per area), numbered 1…N, with the bundle's two materials
  that serve every item;
* **materials** axis: the ten-item bundle with N materials, each serving every item (as the
  sample's 营业执照 does), so each one is in every delivery's message: the worst case.

Per case, in this process, best of ``--repeat`` batches of ``--runs`` calls:

``baseline``  ``json.loads`` + ``json.dumps`` of the body (what any echo that reads JSON pays);
``prepare``   intake before the database (:meth:`Intake.prepare`: parse, JSON Schema and domain
              checks, normalise, route, render and validate every planned delivery);
``submit``    all of intake (:meth:`Intake.submit`: ``prepare`` + the commit of the case and its
              deliveries on a fresh database, one case at a time, unique application numbers);
``render``    the worker's part per case: for every delivery, the delivery view, the mapping's
              render and the partner-schema validation (:meth:`Worker._attempt` before the send).

Memory: ``tracemalloc`` peak during one ``submit`` and during one ``render`` of the case (apart
from the timings, which tracemalloc would slow). The slope is the least-squares line through the
three points of each axis (µs per item, µs per material; KiB likewise).

    .venv/bin/python bench/bench_cost.py                   # SQLite, ~1 minute
    .venv/bin/python bench/bench_cost.py --engine postgres
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from benchenv import use_bench_secrets  # noqa: E402

use_bench_secrets()  # the shipped config reads its partners' secrets from the environment

from gateway.config import load_settings  # noqa: E402
from gateway.contracts import ContractsHolder, load_contracts  # noqa: E402
from gateway.intake.accept import Intake, normalise  # noqa: E402
from gateway.intake.validation import CaseValidator  # noqa: E402
from gateway.mapping.context import delivery_context  # noqa: E402
from gateway.observability.logs import configure as configure_logs  # noqa: E402
from gateway.routing.view import delivery_view  # noqa: E402
from gateway.store import Store, create_engine  # noqa: E402
from gateway.store.migrate import upgrade  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from runinfo import code_version  # noqa: E402

BUNDLE = ROOT / "samples" / "cases" / "20-bundle-ten-items-jingjinji.json"
#: the bundle's items in the order they are repeated (sample item numbers): a Tianjin item
#: first, then Hebei, national (Shanghai, Guangdong, Zhejiang), the joint item, Beijing
ITEM_ORDER = ["3", "5", "7", "8", "9", "6", "10", "4", "1", "2"]
MATERIAL_NAMES = ["营业执照", "法定代表人身份证明", "章程", "租赁合同", "股东会决议",
                  "环境影响报告表", "授权委托书", "场地使用证明"]
ITEMS_AXIS = (1, 10, 50)
MATERIALS_AXIS = (0, 20, 200)


# -- the cases ------------------------------------------------------------------------------------

def bundle_case(items: int) -> dict[str, Any]:
    """The ten-item bundle's items repeated to ``items`` items (renumbered 1…N), with the
    bundle's two materials that serve every item."""
    base = json.loads(BUNDLE.read_text(encoding="utf-8"))
    by_no = {it["itemNo"]: it for it in base["items"]}
    case = copy.deepcopy(base)
    case["items"] = []
    for i in range(items):
        it = copy.deepcopy(by_no[ITEM_ORDER[i % len(ITEM_ORDER)]])
        it["itemNo"] = str(i + 1)
        case["items"].append(it)
    case["materials"] = [m for m in base["materials"] if "itemNos" not in m]
    return case


def materials_case(materials: int) -> dict[str, Any]:
    """The ten-item bundle with ``materials`` materials, each serving every item."""
    case = bundle_case(10)
    case["materials"] = [{
        "materialCode": f"M{i + 1:04d}", "name": MATERIAL_NAMES[i % len(MATERIAL_NAMES)],
        "fileRef": f"oss://gateway-demo/{case['applicationNo']}/M{i + 1:04d}.pdf",
        "pages": 1 + i % 7} for i in range(materials)]
    return case


def with_number(case: dict[str, Any], no: str) -> bytes:
    c = dict(case)
    c["applicationNo"] = no
    return json.dumps(c, ensure_ascii=False).encode("utf-8")


# -- measuring ------------------------------------------------------------------------------------

def best_of(fn: Callable[[], Any], runs: int, repeat: int) -> float:
    """Seconds per call: the best of ``repeat`` batches of ``runs`` calls (the batch least
    disturbed by the other work on a shared machine); the garbage collector off meanwhile, as
    ``timeit`` does."""
    fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            for _ in range(runs):
                fn()
            times.append((time.perf_counter() - t0) / runs)
        finally:
            gc.enable()
    return min(times)


async def best_of_async(make: Callable[[int], Awaitable[Any]], runs: int, repeat: int) -> float:
    """As :func:`best_of` for a coroutine; ``make(i)`` builds call ``i`` (unique inputs)."""
    n = 0
    await make(n)
    times = []
    for _ in range(repeat):
        calls = [make(n + 1 + i) for i in range(runs)]
        n += runs
        gc.collect()
        t0 = time.perf_counter()
        for c in calls:
            await c
        times.append((time.perf_counter() - t0) / runs)
    return min(times)


def peak_kib(fn: Callable[[], Any]) -> float:
    """Peak memory traced while ``fn`` runs, above what was allocated before it (KiB)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 1024


def slope(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line ``y = a + b·x``: (b, a)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
         / sum((x - mx) ** 2 for x in xs))
    return b, my - b * mx


class Bench:
    def __init__(self, db_url: str, runs: int, repeat: int) -> None:
        self.settings = load_settings(ROOT / "config" / "gateway.yaml")
        self.contracts = ContractsHolder(load_contracts(self.settings))
        self.validator = CaseValidator(ROOT / "schemas" / "beijing" / "case.schema.json")
        self.db_url, self.runs, self.repeat = db_url, runs, repeat
        self.serial = 0

    async def open(self) -> None:
        engine = create_engine(self.db_url)
        await upgrade(engine)
        self.store = Store(engine)
        self.intake = Intake(self.store, self.validator, self.contracts)

    def number(self) -> str:
        self.serial += 1
        return f"COST{os.getpid():06d}{self.serial:08d}"

    def render_all(self, case: dict[str, Any]) -> Callable[[], None]:
        """The worker's render of every delivery of ``case`` (ids of the worker's form)."""
        contracts = self.contracts.current
        plan = contracts.routes.plan(case)
        jobs = []
        for i, d in enumerate(plan.deliveries):
            m = contracts.mappings.get(d.mapping, d.mapping_version)
            ctx = delivery_context(case_id="8c0e2c1e-0000-4000-8000-000000000000",
                                   delivery_id=f"8c0e2c1e-0000-4000-8000-{i:012d}",
                                   idempotency_key=f"BJGW-{i:040d}", partner=d.partner,
                                   region=d.region)
            jobs.append((m, list(d.item_nos), d.region, ctx))

        def run() -> None:
            for m, item_nos, region, ctx in jobs:
                view = delivery_view(case, item_nos, region)
                m.validate_output(m.render(view, ctx), view)
        return run

    async def measure(self, case: dict[str, Any]) -> dict[str, float]:
        raw = with_number(case, self.number())
        stored = normalise(self.validator.validate(json.loads(raw)))
        plan = self.contracts.current.routes.plan(stored)
        prepared = self.intake.prepare(raw)
        assert prepared.refusal is None, prepared.refusal
        r, k = self.runs, self.repeat
        out: dict[str, float] = {"deliveries": len(plan.deliveries), "bytes": len(raw)}
        out["baseline"] = best_of(lambda: json.dumps(json.loads(raw), ensure_ascii=False), r, k)
        out["prepare"] = best_of(lambda: self.intake.prepare(raw), r, k)

        async def submit(_: int) -> None:
            res = await self.intake.submit(with_number(case, self.number()),
                                           correlation_id="bench-cost")
            assert res.result.created
        out["submit"] = await best_of_async(submit, max(5, r // 2), k)
        out["commit"] = max(0.0, out["submit"] - out["prepare"])
        render = self.render_all(stored)
        out["render"] = best_of(render, r, k)
        # memory, apart from the timings
        out["base_kib"] = peak_kib(lambda: json.dumps(json.loads(raw), ensure_ascii=False))
        out["submit_kib"] = await peak_kib_async(lambda: self.intake.submit(
            with_number(case, self.number()), correlation_id="bench-cost"))
        out["render_kib"] = peak_kib(render)
        return out


async def peak_kib_async(make: Callable[[], Awaitable[Any]]) -> float:
    """:func:`peak_kib` for one awaited call (the event loop runs nothing else meanwhile)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    await make()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 1024


# -- report ---------------------------------------------------------------------------------------

def axis_report(name: str, unit: str, xs: tuple[int, ...], rows: list[dict[str, float]]) -> None:
    print(f"\n-- {name} " + "-" * 86)
    print(f"{unit:>9} {'deliv.':>6} {'body':>8} {'baseline':>9} {'prepare':>9} {'submit':>9} "
          f"{'render':>9} {'submit/base':>11} {'submit KiB':>10} {'render KiB':>10} "
          f"{'base KiB':>8}")
    for x, r in zip(xs, rows, strict=True):
        print(f"{x:>9} {r['deliveries']:>6.0f} {r['bytes'] / 1024:>6.1f}KB "
              f"{r['baseline'] * 1e6:>7.0f}µs {r['prepare'] * 1e6:>7.0f}µs "
              f"{r['submit'] * 1e6:>7.0f}µs {r['render'] * 1e6:>7.0f}µs "
              f"{r['submit'] / r['baseline']:>10.0f}× {r['submit_kib']:>10.0f} "
              f"{r['render_kib']:>10.0f} {r['base_kib']:>8.0f}")
    fx = [float(x) for x in xs]
    print(f"slope per {unit.rstrip('s')} (least squares over {', '.join(map(str, xs))}):")
    for key, label, scale, u in (("baseline", "baseline (json.loads+dumps)", 1e6, "µs"),
                                 ("prepare", "intake before the database", 1e6, "µs"),
                                 ("submit", "intake incl. commit", 1e6, "µs"),
                                 ("commit", "  of which the commit (submit − prepare)", 1e6,
                                  "µs"),
                                 ("render", "worker render+validate, all deliveries", 1e6, "µs"),
                                 ("submit_kib", "peak memory, intake", 1, "KiB"),
                                 ("render_kib", "peak memory, worker render", 1, "KiB"),
                                 ("base_kib", "peak memory, baseline", 1, "KiB")):
        b, a = slope(fx, [r[key] * scale for r in rows])
        print(f"  {label:40} {b:>9.1f} {u} per {unit.rstrip('s')} (intercept {a:,.0f} {u})")
    bb, _ = slope(fx, [r["baseline"] for r in rows])
    bs, _ = slope(fx, [r["submit"] for r in rows])
    br, _ = slope(fx, [r["render"] for r in rows])
    if bb > 0:
        print(f"  slope ratio to the baseline: intake {bs / bb:.0f}×, worker render {br / bb:.0f}×")


async def main(args: argparse.Namespace) -> None:
    configure_logs("WARNING")  # a case.accepted line per submit would be most of the output
    with tempfile.TemporaryDirectory(prefix="gw-cost-") as tmp:
        pg_url = None
        if args.engine == "postgres":
            from tests.conftest import create_pg_database
            pg_url = db_url = await create_pg_database()
        else:
            db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'cost.db'}"
        bench = Bench(db_url, args.runs, args.repeat)
        await bench.open()
        try:
            print(f"engine={args.engine} runs={args.runs} repeat={args.repeat} "
                  f"code: {code_version()}; load average {os.getloadavg()[0]:.2f}")
            items = [await bench.measure(bundle_case(n)) for n in ITEMS_AXIS]
            mats = [await bench.measure(materials_case(n)) for n in MATERIALS_AXIS]
        finally:
            await bench.store.close()
            if pg_url is not None:
                from tests.conftest import drop_pg_database
                await drop_pg_database(pg_url)
    axis_report("bundle size (items; 2 shared materials)", "items", ITEMS_AXIS, items)
    axis_report("materials (ten-item bundle; each material serves every item)", "materials",
                MATERIALS_AXIS, mats)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--runs", type=int, default=40, help="calls per timed batch")
    ap.add_argument("--repeat", type=int, default=5, help="batches; the best one counts")
    asyncio.run(main(ap.parse_args()))
