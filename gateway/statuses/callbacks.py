"""The partners' status callbacks: one :func:`add_routes` registers every endpoint, each in its
partner's contract (module of the same name), all feeding one :class:`StatusReceiver`.

=====================================  ==========================================================
``POST /api/v1/partners/national/status``  national envelope → ``{code, msg}`` (HTTP 200)
``GET|POST /soap/tianjin/status``           ``?wsdl``; SOAP 1.1 ``notifyStatus`` → RESULT
``GET|POST /soap/hebei/status``             ``?wsdl``, ``?xsd=case.xsd``; SOAP 1.2 ``NotifyStatus``
=====================================  ==========================================================

A partner's credentials for calling are ``partners.<name>.inbound`` (:class:`gateway.config.
InboundSettings`); a partner without them is refused in its protocol. A status change is pushed
to the city platform when a partner named ``city`` is configured.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.keys import CONTRACTS, METRICS, SETTINGS, STORE
from gateway.errors import ConfigError
from gateway.observability.redaction import add_secrets
from gateway.protocols import xml as safexml
from gateway.statuses import hebei, national, tianjin
from gateway.statuses.documents import ServedWsdl
from gateway.statuses.inbound_auth import scheme_of
from gateway.statuses.receive import PUSH_PARTNER, RECEIVER, StatusReceiver


def add_routes(app: web.Application) -> None:
    """Register the callback endpoints; the WSDLs and schemas are read now (a missing file fails
    start-up), the receiver is built once the store is open."""
    settings = app[SETTINGS]
    schemas = settings.path(settings.schemas_dir)
    limit = settings.server.max_body_bytes
    inbound = {name: p.inbound for name, p in settings.partners.items()}
    add_secrets([v for i in inbound.values() if i is not None
                 for v in (i.auth_code, i.password, i.secret)])
    native = ("app-id", "national-sm2")  # tianjin's and hebei's endpoints also hmac-sha256
    if scheme_of("national", inbound.get("national"), native) not in native:
        raise ConfigError(f"national's callback endpoint checks {', '.join(native)} only",
                          key="partners.national.inbound.scheme")

    async def receiver(app: web.Application) -> None:
        push_to = PUSH_PARTNER if PUSH_PARTNER in settings.partners else None
        app[RECEIVER] = StatusReceiver(app[STORE], app[CONTRACTS], push_to=push_to,
                                       metrics=app[METRICS])

    app.on_startup.append(receiver)
    nat = national.NationalEndpoint(inbound.get("national"), schemas, limit,
                                    national.push_security(settings))
    tj = tianjin.TianjinEndpoint(inbound.get("tianjin"),
                                 ServedWsdl(schemas / "tianjin" / "StatusNotify.wsdl"),
                                 safexml.load_schema(schemas / "tianjin" / "status-notify.xsd"),
                                 limit)
    hb = hebei.HebeiEndpoint(inbound.get("hebei"),
                             ServedWsdl(schemas / "hebei" / "StatusNotify.wsdl"),
                             safexml.load_schema(schemas / "hebei" / "case.xsd"), limit)
    app.router.add_post(national.PATH, nat.handle)
    app.router.add_get(tianjin.PATH, tj.documents)
    app.router.add_post(tianjin.PATH, tj.handle)
    app.router.add_get(hebei.PATH, hb.documents)
    app.router.add_post(hebei.PATH, hb.handle)
