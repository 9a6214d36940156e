"""Intake: validate a case, plan its deliveries, commit both in one transaction, answer.

Intake never calls a partner. Once :meth:`Intake.submit` returns, the case and every planned
delivery are committed, so a crash after the 202 loses nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from gateway.domain.regions import normalise as normalise_region
from gateway.errors import ConflictError, FieldProblem, NoRouteError
from gateway.store import NewCase, NewDelivery, Store, SubmitResult
from gateway.validation import CaseValidator, diff_paths, parse_json

if TYPE_CHECKING:
    from gateway.runtime import ContractsHolder

BEIJING = timezone(timedelta(hours=8))
OFFLOAD_BYTES = 64 * 1024


def normalise(case: dict[str, Any]) -> dict[str, Any]:
    """The stored form: 12-digit regions, submit time in Beijing time (+08:00)."""
    out = json.loads(json.dumps(case))
    out["receivingRegion"] = normalise_region(out["receivingRegion"])
    for item in out["items"]:
        item["handlingRegion"] = normalise_region(item["handlingRegion"])
        if "jointRegions" in item:
            item["jointRegions"] = [normalise_region(r) for r in item["jointRegions"]]
    ts = datetime.fromisoformat(out["submitTime"].replace("Z", "+00:00"))
    out["submitTime"] = ts.astimezone(BEIJING).isoformat()
    return out


def body_hash(case: dict[str, Any]) -> str:
    canonical = json.dumps(case, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# What the schema's applicationNo pattern allows: no whitespace, no control character, ASCII.
_APPLICATION_NO = re.compile(r"[A-Za-z0-9-]{1,64}", re.ASCII)


def idempotency_key(application_no: str, plan_key: str) -> str:
    """Stable per case and target, so partners dedupe retries and replays of the same message.

    Built only from an application number that cannot differ by whitespace or invisible
    characters for the same application (``"BJ1"`` and ``"BJ1\\n"`` once made two keys): any
    other value is a bug upstream of here, so it fails loudly instead of minting a second key."""
    if not _APPLICATION_NO.fullmatch(application_no):
        raise ValueError("an idempotency key needs a validated application number")
    digest = hashlib.sha256(f"{application_no}\x1f{plan_key}".encode()).hexdigest()
    return f"BJGW-{digest[:40]}"


@dataclass(frozen=True)
class Accepted:
    result: SubmitResult

    @property
    def status(self) -> int:
        return 202 if self.result.created else 200


class Intake:
    def __init__(self, store: Store, validator: CaseValidator, contracts: ContractsHolder) -> None:
        self.store = store
        self.validator = validator
        self.contracts = contracts

    def check(self, raw: bytes) -> dict[str, Any]:
        """Parse, validate and normalise a body: the stored form, or an InputError naming why."""
        return normalise(self.validator.validate(parse_json(raw)))

    async def submit(self, raw: bytes, *, correlation_id: str) -> Accepted:
        # a large body takes a few hundred ms of parsing and checking: off the event loop, so
        # health checks and other requests keep being answered meanwhile
        case = (await asyncio.to_thread(self.check, raw) if len(raw) > OFFLOAD_BYTES
                else self.check(raw))
        digest = body_hash(case)
        try:
            plan = self.contracts.current.routes.plan(case)
        except NoRouteError:
            # a resubmission of a case accepted under an earlier route table is still the same
            # case: answer it instead of refusing it
            existing = await self.store.find_case_by_application_no(case["applicationNo"])
            if existing is None:
                raise
            return Accepted(self._same_or_conflict(existing.body, existing.body_hash, case,
                                                   digest, SubmitResult(existing, created=False)))
        new = NewCase(
            application_no=case["applicationNo"], body=case, body_hash=digest,
            correlation_id=correlation_id, home_items=tuple(plan.home_items),
            deliveries=tuple(NewDelivery(
                partner=d.partner, item_nos=tuple(d.item_nos), region=d.region,
                route_rule=d.rule, mapping=d.mapping, mapping_version=d.mapping_version,
                idempotency_key=idempotency_key(case["applicationNo"], d.key))
                for d in plan.deliveries))
        result = await self.store.submit_case(new)
        if not result.created:  # submitted before (or concurrently): same body, or a conflict
            self._same_or_conflict(result.case.body, result.case.body_hash, case, digest, result)
        return Accepted(result)

    @staticmethod
    def _same_or_conflict(old: dict[str, Any], old_hash: str, new: dict[str, Any], new_hash: str,
                          result: SubmitResult) -> SubmitResult:
        if old_hash == new_hash:
            return result
        paths = diff_paths(old, new)
        raise ConflictError(
            f"application {new['applicationNo']} was already submitted with a different body; "
            f"differing fields: {', '.join(paths)}",
            [FieldProblem(p, "differs from the case already accepted") for p in paths])
