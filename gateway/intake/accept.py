"""Intake: validate a case, plan its deliveries, check each can be delivered, commit the case
and its deliveries in one transaction, answer.

Intake never calls a partner. Once :meth:`Intake.submit` returns, the case and every planned
delivery are committed, so a crash after the 202 loses nothing.

Accept only what can be delivered: every planned delivery is rendered with its mapping and
validated against the partner's schema exactly as the worker will do it (same delivery view,
same mapping version, a context whose ids are placeholders of the real form), so a value a
partner's contract refuses (a code outside Tianjin's token pattern, a name too long for Hebei, a
certificate type with no agreed partner code) is a 422 naming the field of the case and the
partner rule, not a 202 followed by a dead letter. It costs tens of microseconds per delivery
(``bench/README.md``, "intake render and validate").

Person names are stored with the ID-card middle dot (U+00B7) in place of its look-alikes; the
answer lists each change under ``warnings`` (:mod:`gateway.domain.names`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from gateway import jsoncodec
from gateway.observability.case_log import CaseEvent, case_event
from gateway.domain.names import describe_fix, normalise_middle_dots
from gateway.domain.regions import normalise as normalise_region
from gateway.errors import ConflictError, FieldProblem, InputError, NoRouteError, ValidationFailed
from gateway.mapping import MappingError
from gateway.mapping.context import delivery_context
from gateway.routing.view import delivery_view
from gateway.security.callers import Caller
from gateway.store import CaseRecord, Claim, Lease, NewCase, NewDelivery, Store, SubmitResult
from gateway.store.nonces import PendingNonce
from gateway.intake.jsoninput import parse_json_text
from gateway.intake.validation import CaseValidator, diff_paths

if TYPE_CHECKING:
    from gateway.contracts import Contracts, ContractsHolder
    from gateway.routing.plan import RoutingPlan as Plan

BEIJING = timezone(timedelta(hours=8))
OFFLOAD_BYTES = 64 * 1024
# ids of the intake check's render: the worker's are UUIDs, so these have the same form
PLACEHOLDER_CASE_ID = "00000000-0000-4000-8000-000000000000"
PLACEHOLDER_DELIVERY_ID = "00000000-0000-4000-8000-000000000001"


def person_names(case: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(pointer, holder) of every person's name: a natural-person applicant, the legal
    representative, the agent (an organisation's own name is not an ID-card name)."""
    out = []
    if case["applicant"].get("type") == "NATURAL_PERSON":
        out.append(("/applicant/name", case["applicant"]))
    if isinstance(rep := case["applicant"].get("legalRepresentative"), dict):
        out.append(("/applicant/legalRepresentative/name", rep))
    if isinstance(agent := case.get("agent"), dict):
        out.append(("/agent/name", agent))
    return out


def normalise_with_warnings(case: dict[str, Any]) -> tuple[dict[str, Any], list[FieldProblem]]:
    """The stored form (12-digit regions, submit time in Beijing time (+08:00), person names
    with the ID-card middle dot) and a warning per name that was changed."""
    out = jsoncodec.copy(case)
    out["receivingRegion"] = normalise_region(out["receivingRegion"])
    for item in out["items"]:
        item["handlingRegion"] = normalise_region(item["handlingRegion"])
        if "jointRegions" in item:
            item["jointRegions"] = [normalise_region(r) for r in item["jointRegions"]]
    ts = datetime.fromisoformat(out["submitTime"].replace("Z", "+00:00"))
    out["submitTime"] = ts.astimezone(BEIJING).isoformat()
    warnings = []
    for pointer, holder in person_names(out):
        fixed, replaced = normalise_middle_dots(holder["name"])
        if replaced:
            holder["name"] = fixed
            warnings.append(FieldProblem(pointer, describe_fix(replaced)))
    return out, warnings


def normalise(case: dict[str, Any]) -> dict[str, Any]:
    """The stored form (see :func:`normalise_with_warnings`)."""
    return normalise_with_warnings(case)[0]


class Undeliverable(ValidationFailed):
    """A planned delivery's partner cannot take the case as it is (its mapping or schema refuses
    a value): one entry per source field, naming the partner and its rule."""

    title = "Not deliverable"
    type_ = "urn:gateway:problem:undeliverable"


def deliverability_problems(case: dict[str, Any], plan: Plan, contracts: Contracts,
                            application_no: str) -> list[FieldProblem]:
    """Render and validate every planned delivery as the worker will; one problem per source
    field a partner's contract refuses (JSON pointer into the case), in words."""
    now = datetime.now(BEIJING)
    found: list[FieldProblem] = []
    for d in plan.deliveries:
        mapping = contracts.mappings.get(d.mapping, d.mapping_version)
        context = delivery_context(case_id=PLACEHOLDER_CASE_ID,
                                   delivery_id=PLACEHOLDER_DELIVERY_ID,
                                   idempotency_key=idempotency_key(application_no, d.key),
                                   partner=d.partner, region=d.region, now=now)
        view = delivery_view(case, d.item_nos, d.region)
        try:
            mapping.validate_output(mapping.render(view, context), view)
        except MappingError as e:
            rule = f"{d.partner} (mapping {mapping.name} v{mapping.version})"
            for sp in e.located or ():
                text = f"{rule} cannot take this value ({sp.where or sp.target}): {sp.message}"
                for path in sp.sources or ("",):
                    prob = FieldProblem(path, text if sp.sources else
                                        f"{text} (no field of the case feeds it)")
                    if prob not in found:
                        found.append(prob)
            if not e.located:
                found.append(FieldProblem("", f"{rule}: {e}"))
    return sorted(found, key=lambda p: p.path)


def body_hash(case: dict[str, Any]) -> str:
    return hashlib.sha256(jsoncodec.canonical(case)).hexdigest()


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
    #: what was changed in storing the case (a look-alike middle dot in a name), per field
    warnings: tuple[FieldProblem, ...] = ()

    @property
    def status(self) -> int:
        return 202 if self.result.created else 200


@dataclass(frozen=True)
class Prepared:
    """A checked case ready to store, or the refusal that awaits a look for an earlier copy."""

    case: dict[str, Any]
    warnings: tuple[FieldProblem, ...]
    plan: Plan | None
    refusal: InputError | None


class Handoff(Protocol):
    """This instance's delivery worker as intake sees it (gateway.delivery.worker.Worker): it may
    take a new case's deliveries straight from intake, committed already leased to it."""

    @property
    def worker_id(self) -> str: ...
    @property
    def lease_seconds(self) -> float: ...

    async def reserve(self, partners: Sequence[str]) -> list[bool]: ...
    def take(self, claims: Sequence[Claim]) -> None: ...
    def cancel(self, partners: Sequence[str]) -> None: ...


class Intake:
    def __init__(self, store: Store, validator: CaseValidator, contracts: ContractsHolder,
                 handoff: Handoff | None = None) -> None:
        self.store = store
        self.validator = validator
        self.contracts = contracts
        #: set once the worker runs (gateway.app); None: every delivery is committed pending
        self.handoff = handoff

    def check(self, raw: bytes) -> dict[str, Any]:
        """Parse, validate and normalise a body: the stored form, or an InputError naming why."""
        doc, plain = parse_json_text(raw)
        return normalise(self.validator.validate(doc, plain_text=plain))

    def prepare(self, raw: bytes) -> Prepared:
        """Everything before the database: parse, validate, normalise, route, and render and
        validate each planned delivery. A route or deliverability refusal is returned, not
        raised, because a resubmission of a case accepted earlier (under other routes or
        mappings) is answered as that case."""
        doc, plain = parse_json_text(raw)
        case, warnings = normalise_with_warnings(self.validator.validate(doc, plain_text=plain))
        contracts = self.contracts.current
        try:
            plan = contracts.routes.plan(case)
        except NoRouteError as e:
            return Prepared(case, tuple(warnings), None, e)
        problems = deliverability_problems(case, plan, contracts, case["applicationNo"])
        if problems:
            partners = sorted({p.message.split(" ", 1)[0] for p in problems})
            return Prepared(case, tuple(warnings), plan, Undeliverable(
                f"the case cannot be delivered to {', '.join(partners)} as it is: "
                + "; ".join(f"{p.path or '(case)'}: {p.message}" for p in problems[:3])
                + (f"; and {len(problems) - 3} more" if len(problems) > 3 else ""), problems))
        return Prepared(case, tuple(warnings), plan, None)

    async def submit(self, raw: bytes, *, correlation_id: str, caller: Caller | None = None,
                     nonce: PendingNonce | None = None) -> Accepted:
        """Store a case for ``caller`` (None: no caller, e.g. a command): refused with a 403
        naming the field when it holds an item or region the caller may not submit, and with
        a 409 when its application number is another caller's case.

        ``nonce`` (the request's, not yet remembered) is written in the case's own transaction
        and marked spent once handed to it; a replay raises
        :class:`~gateway.store.nonces.ReplayedNonce` and stores nothing. A submission answered
        without that transaction (refused, or an earlier case) leaves it unspent for the caller
        to spend (gateway/api/auth.py)."""
        # a large body takes a few hundred ms of parsing and checking: off the event loop, so
        # health checks and other requests keep being answered meanwhile
        prepared = (await asyncio.to_thread(self.prepare, raw) if len(raw) > OFFLOAD_BYTES
                    else self.prepare(raw))
        case, warnings, plan = prepared.case, prepared.warnings, prepared.plan
        if caller is not None:
            caller.check_case(case)  # deny by default: before anything is stored or looked up
        digest = body_hash(case)
        if prepared.refusal is not None or plan is None:
            # a resubmission of a case accepted under an earlier route table or mapping is still
            # the same case: answer it instead of refusing it
            existing = await self.store.find_case_by_application_no(case["applicationNo"])
            if existing is None:
                assert prepared.refusal is not None
                raise prepared.refusal
            _owned(existing, caller)
            return Accepted(self._same_or_conflict(existing.body, existing.body_hash, case,
                                                   digest, SubmitResult(existing, created=False)),
                            warnings)
        handoff = self.handoff
        partners = [d.partner for d in plan.deliveries]
        taken = (await handoff.reserve(partners) if handoff is not None
                 else [False] * len(partners))
        lease = (Lease(handoff.worker_id, str(uuid.uuid4()), handoff.lease_seconds)
                 if handoff is not None and any(taken) else None)
        new = NewCase(
            application_no=case["applicationNo"], body=case, body_hash=digest,
            correlation_id=correlation_id, home_items=tuple(plan.home_items),
            submitted_by=caller.name if caller is not None else None, nonce=nonce,
            deliveries=tuple(NewDelivery(
                partner=d.partner, item_nos=tuple(d.item_nos), region=d.region,
                route_rule=d.rule, mapping=d.mapping, mapping_version=d.mapping_version,
                idempotency_key=idempotency_key(case["applicationNo"], d.key),
                lease=lease if t else None)
                for d, t in zip(plan.deliveries, taken, strict=True)))
        reserved = [p for p, t in zip(partners, taken, strict=True) if t]
        if nonce is not None:
            nonce.spent = True
        try:
            result = await self.store.submit_case(new)
        except BaseException:
            # not stored (or not known to be: a leased delivery that was committed after all
            # is claimed again once its lease expires)
            if handoff is not None and reserved:
                handoff.cancel(reserved)
            raise
        if handoff is not None and reserved:
            if result.created and lease is not None:  # committed: the worker sends it now
                handoff.take([Claim(d, lease.token, case, correlation_id)
                              for d in result.case.deliveries if d.lease_owner == lease.owner])
            else:
                handoff.cancel(reserved)
        if not result.created:  # submitted before (or concurrently): same body, or a conflict
            _owned(result.case, caller)
            self._same_or_conflict(result.case.body, result.case.body_hash, case, digest, result)
        else:  # committed: the case's first two steps in the log (gateway.observability.case_log)
            case_event(CaseEvent.ACCEPTED, correlation_id=correlation_id, case_id=result.case.id)
            case_event(CaseEvent.ROUTED, correlation_id=correlation_id, case_id=result.case.id,
                       partners=[d.partner for d in new.deliveries])
        return Accepted(result, warnings)

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


def _owned(existing: CaseRecord, caller: Caller | None) -> None:
    """A resubmission is answered as the stored case only to the caller that submitted it (or
    one that may read any case): anyone else learns neither its id nor its deliveries."""
    if caller is not None and caller.name != existing.submitted_by and not caller.may("read_any"):
        raise ConflictError(
            f"application {existing.application_no} was already submitted by another caller",
            [FieldProblem("/applicationNo", "already submitted by another caller")])
