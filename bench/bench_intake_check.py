"""What intake pays to accept only what can be delivered (issue 10 §3).

For each sample case: the render and validation of every planned delivery exactly as intake does
it (:func:`gateway.intake.accept.deliverability_problems`: delivery view, compiled mapping, partner
schema), per case and per delivery, next to the rest of intake before the database (parse,
schema and domain checks, normalisation, routing). Then per partner: render and validate apart.

    .venv/bin/python bench/bench_intake_check.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchenv import use_bench_secrets
from gateway.config import load_settings
from gateway.contracts import load_contracts
from gateway.intake.accept import (PLACEHOLDER_CASE_ID, PLACEHOLDER_DELIVERY_ID, deliverability_problems,
                            normalise)
from gateway.mapping.context import delivery_context
from gateway.routing.view import delivery_view
from gateway.intake.validation import CaseValidator, parse_json

ROOT = Path(__file__).resolve().parent.parent
use_bench_secrets()  # the shipped config reads its partners' secrets from the environment


def best_of(fn: Callable[[], Any], runs: int, repeat: int = 5) -> float:
    """Seconds per call: the best of ``repeat`` batches of ``runs`` (least disturbed by the
    other work on a shared machine)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(runs):
            fn()
        times.append((time.perf_counter() - t0) / runs)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    contracts = load_contracts(load_settings(ROOT / "config" / "gateway.yaml"))
    validator = CaseValidator(ROOT / "schemas" / "beijing" / "case.schema.json")
    print(f"{'sample':48} {'deliveries':>10} {'check/case':>11} {'per delivery':>13} "
          f"{'rest of intake':>15}")
    per_delivery: list[float] = []
    for path in sorted((ROOT / "samples" / "cases").glob("*.json")):
        raw = path.read_bytes()
        case = normalise(validator.validate(parse_json(raw)))
        plan = contracts.routes.plan(case)
        n = len(plan.deliveries)
        check = best_of(lambda case=case, plan=plan: deliverability_problems(
            case, plan, contracts, case["applicationNo"]), args.runs)
        rest = best_of(lambda raw=raw: contracts.routes.plan(normalise(validator.validate(
            parse_json(raw)))), args.runs)
        if n:
            per_delivery.append(check / n)
        print(f"{path.stem:48} {n:>10} {check * 1e6:>9.0f}µs "
              f"{(check / n * 1e6 if n else 0):>11.0f}µs {rest * 1e6:>13.0f}µs")
    print(f"median per delivery: {statistics.median(per_delivery) * 1e6:.0f} µs")

    print(f"\n{'mapping':24} {'render':>9} {'validate':>9}   (one delivery of sample 13/20)")
    case = normalise(json.loads((ROOT / "samples" / "cases" /
                                 "20-bundle-ten-items-jingjinji.json").read_text("utf-8")))
    plan = contracts.routes.plan(case)
    seen = set()
    for d in plan.deliveries:
        if d.mapping in seen:
            continue
        seen.add(d.mapping)
        m = contracts.mappings.get(d.mapping, d.mapping_version)
        ctx = delivery_context(case_id=PLACEHOLDER_CASE_ID, delivery_id=PLACEHOLDER_DELIVERY_ID,
                               idempotency_key="BJGW-bench", partner=d.partner, region=d.region)
        view = delivery_view(case, d.item_nos, d.region)
        payload = m.render(view, ctx)
        render = best_of(lambda m=m, view=view, ctx=ctx: m.render(view, ctx), args.runs * 5)
        validate = best_of(lambda m=m, p=payload, v=view: m.validate_output(p, v), args.runs * 5)
        print(f"{d.mapping:24} {render * 1e6:>7.1f}µs {validate * 1e6:>7.1f}µs")


if __name__ == "__main__":
    main()
