"""The inbound case endpoints: one :func:`add_routes` registers them, each in its partner's
contract (module of the same name), all feeding one :class:`InboundService`.

=====================================  ==========================================================
``POST /api/v1/partners/national/cases``  national envelope → ``{code, msg, data: {receiptNo}}``
``GET|POST /soap/tianjin/cases``           ``?wsdl``; SOAP 1.1 ``submitCase`` → RESULT with SLBH
``GET|POST /soap/hebei/cases``             ``?wsdl``, ``?xsd=case.xsd``; SOAP 1.2 ``SubmitCase``
=====================================  ==========================================================

Callers authenticate as they do for their status callbacks (``partners.<name>.inbound``) and
may submit only what ``partners.<name>.inbound.submit`` lists. Cases are pushed to the city
platform when a partner named ``city-inbound`` is configured.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.keys import CONTRACTS, METRICS, SETTINGS, STORE
from gateway.inbound import hebei, national, tianjin
from gateway.inbound import status as inbound_status
from gateway.inbound.access import Access
from gateway.store.inbound_status import notify_partner
from gateway.inbound.service import INBOUND, PUSH_PARTNER, InboundService
from gateway.intake.validation import CaseValidator
from gateway.protocols import xml as safexml
from gateway.statuses import national as national_status
from gateway.statuses.documents import ServedWsdl


def add_routes(app: web.Application) -> None:
    """Register the endpoints; WSDLs, schemas and access lists are read now (a missing file or
    a wrong region fails start-up), the service is built once the store is open."""
    settings = app[SETTINGS]
    schemas = settings.path(settings.schemas_dir)
    limit = settings.server.max_body_bytes
    inbound = {name: p.inbound for name, p in settings.partners.items()}
    access = {name: Access.of(name, i.submit if i is not None else None)
              for name, i in inbound.items()}
    validator = CaseValidator(schemas / "beijing" / "case.schema.json")

    async def service(app: web.Application) -> None:
        push_to = PUSH_PARTNER if PUSH_PARTNER in settings.partners else None
        app[INBOUND] = InboundService(app[STORE], app[CONTRACTS], validator, access,
                                      push_to=push_to, metrics=app[METRICS])

    app.on_startup.append(service)
    base = national_status.NationalEndpoint(inbound.get("national"), schemas, limit,
                                            national_status.push_security(settings))
    nat = national.NationalCasesEndpoint(base, schemas)
    tj = tianjin.TianjinCasesEndpoint(inbound.get("tianjin"),
                                      ServedWsdl(schemas / "tianjin" / "InboundService.wsdl"),
                                      safexml.load_schema(schemas / "tianjin" / "package.xsd"),
                                      limit)
    hb = hebei.HebeiCasesEndpoint(inbound.get("hebei"),
                                  ServedWsdl(schemas / "hebei" / "InboundService.wsdl"),
                                  safexml.load_schema(schemas / "hebei" / "case.xsd"), limit)
    app.router.add_post(national.PATH, nat.handle)
    app.router.add_get(tianjin.PATH, tj.documents)
    app.router.add_post(tianjin.PATH, tj.handle)
    app.router.add_get(hebei.PATH, hb.documents)
    app.router.add_post(hebei.PATH, hb.handle)
    # the city platform reports an inbound case's status; it goes back to the submitting
    # partner when ``<partner>-status`` is configured (gateway/store/inbound_status.py)
    inbound_status.add_routes(app, lambda partner: notify_partner(partner) in settings.partners)
