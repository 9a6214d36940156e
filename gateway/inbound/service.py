"""From a partner's checked message to a stored inbound case: the part every inbound endpoint
shares once it has authenticated the caller and validated the message against the partner's
own contract.

1. the partner's inbound mapping (``mappings/<partner>/case-inbound.yaml``) renders Beijing's
   unified format and validates it against ``schemas/beijing/case.schema.json`` (a problem names
   the partner's source field), then the domain checks intake applies (ID numbers, regions);
2. the case is put in its stored form (12-digit regions, Beijing time) as intake does;
3. the partner's access list (:mod:`gateway.inbound.access`) must allow every item;
4. :class:`~gateway.store.inbound.InboundCases` stores it with its push to the city platform.

Each endpoint answers :class:`Invalid`, :class:`Forbidden` and
:class:`~gateway.errors.StoreError` ("busy") in its own protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from gateway.contracts import ContractsHolder
from gateway.errors import FieldProblem
from gateway.inbound.access import Access
from gateway.intake.accept import BEIJING, normalise
from gateway.intake.validation import CaseValidator
from gateway.mapping import MappingError
from gateway.observability.metrics import Metrics
from gateway.store import Store, audit
from gateway.store.inbound import InboundCase, InboundCases, Receipt

log = logging.getLogger("gateway.inbound")
#: the partner that carries inbound cases to the city platform, when it is configured
PUSH_PARTNER = "city-inbound"


class Invalid(Exception):
    """The message cannot become a Beijing case; ``problems`` name the fields."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__(self.text())

    def text(self, prefix: str = "") -> str:
        """The problems in one line; ``prefix`` goes before each source field's pointer (the
        national envelope's ``/data``)."""
        return "; ".join(f"{prefix}{p.path}: {p.message}" if p.path else p.message
                         for p in self.problems[:5])


class Forbidden(Exception):
    """The partner may not submit this item or region."""

    def __init__(self, problem: FieldProblem) -> None:
        self.problem = problem
        super().__init__(f"{problem.path}: {problem.message}")


class InboundService:
    def __init__(self, store: Store, contracts: ContractsHolder, validator: CaseValidator,
                 access: Mapping[str, Access], *, push_to: str | None,
                 metrics: Metrics | None = None) -> None:
        self.cases = InboundCases(store, push_to=push_to)
        self.metrics = metrics
        self.contracts = contracts
        self.validator = validator
        self.access = access

    def unified(self, partner: str, source: Any) -> dict[str, Any]:
        """Beijing's case of ``source`` (stored form), or :class:`Invalid`."""
        mapping = self.contracts.current.mappings.get(f"{partner}/case-inbound")
        try:
            doc: dict[str, Any] = mapping.render(
                source, {"partner": partner, "now": datetime.now(BEIJING).isoformat()})
            mapping.validate_output(doc, source)
        except MappingError as e:
            problems = [FieldProblem(",".join(p.sources), f"{p.where or p.target}: {p.message}")
                        for p in e.located] or [FieldProblem("", e.reason)]
            raise Invalid(problems) from None
        if found := self.validator.problems(doc):
            raise Invalid([FieldProblem("", f"as Beijing's case {p.path}: {p.message}")
                           for p in found])
        return normalise(doc)

    async def submit(self, partner: str, partner_case_no: str, source: Any, *,
                     request: bytes, caller: str) -> Receipt:
        """Map, check and store one case (module docstring); the first receipt for a resend.
        Counted in ``gateway_inbound_cases_total`` by result."""
        try:
            receipt = await self._submit(partner, partner_case_no, source, request=request,
                                         caller=caller)
        except (Invalid, Forbidden) as e:
            if self.metrics is not None:
                self.metrics.inbound(partner, "invalid" if isinstance(e, Invalid) else "forbidden")
            raise
        if self.metrics is not None:
            self.metrics.inbound(partner, "duplicate" if receipt.duplicate else "accepted")
        return receipt

    async def _submit(self, partner: str, partner_case_no: str, source: Any, *,
                      request: bytes, caller: str) -> Receipt:
        doc = self.unified(partner, source)
        access = self.access.get(partner) or Access(partner, (), ())
        if (refused := access.refusal(doc)) is not None:
            raise Forbidden(refused)
        receipt = await self.cases.submit(InboundCase(
            partner=partner, partner_case_no=partner_case_no, document=doc,
            submitted_by=caller, request=audit.Digest.of(request)))
        log.info("inbound case of %s: receipt %s%s", partner, receipt.receipt_no,
                 " (resend)" if receipt.duplicate else "")
        return receipt


#: the app's inbound service, built once its store is open
INBOUND = web.AppKey("inbound_service", InboundService)
