"""``POST /api/v1/partners/national/backflow``: the national platform pushes back-flow records in
batches, in its envelope (``data`` = ``{batchId, records}``, ``$defs/push`` of
``schemas/national/backflow-export.schema.json``).

The envelope is opened exactly as the status push's (:meth:`gateway.statuses.national.
NationalEndpoint.opened`: ``appId`` = ``partners.national.inbound.app_id``, the partner's
``sign_type``/``enc_type`` with its keys, signed timestamp and nonce checked), so a back-flow
push is as authenticated as a status push. The records then take the pull's path: mapped,
case results applied, deduplicated by version and queued for the city platform in one
transaction (:meth:`gateway.store.backflow.BackflowStore.store_page`, source
``<source>-push``). A resent batch changes nothing: its records are no newer than what is held.

Answers (HTTP 200 always, the contract's business codes): ``0`` with the counts; ``40001`` the
data is invalid (naming the pointers); ``40100`` appId or signature; ``50001`` busy. Registered
only when a back-flow source named ``national`` is configured (its batch size and partners).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from gateway.api.keys import CONTRACTS, METRICS, SETTINGS, STORE
from gateway.backflow.apply import apply_results
from gateway.backflow.mapper import RecordMapper
from gateway.config import BackflowSourceSettings
from gateway.errors import StoreError
from gateway.schemacheck import format_checker, human_validator
from gateway.statuses import national
from gateway.store.backflow import BackflowStore

log = logging.getLogger("gateway.backflow")
PATH = "/api/v1/partners/national/backflow"
SOURCE = "national"


def _push_validator(schemas: Path) -> Any:
    doc = json.loads((schemas / "national" / "backflow-export.schema.json").read_text("utf-8"))
    return human_validator(Draft202012Validator)({**doc["$defs"]["push"], "$defs": doc["$defs"]},
                                                 format_checker=format_checker())


class BackflowPushEndpoint(national.NationalEndpoint):
    def __init__(self, endpoint: national.NationalEndpoint, schemas: Path,
                 src: BackflowSourceSettings) -> None:
        super().__init__(endpoint.inbound, schemas, endpoint.max_body, endpoint.security)
        self.data = _push_validator(schemas)
        self.src = src

    async def handle(self, request: web.Request) -> web.Response:
        data = await self.opened(request)
        if isinstance(data, web.Response):
            return data
        store = request.app[STORE]
        mapped = RecordMapper(request.app[CONTRACTS].current.mappings, SOURCE).map_page(
            data["records"])
        if mapped.invalid:  # valid by the schema, yet not mappable (a code no table knows)
            return national._answer(national.INVALID, "; ".join(
                f"{n} record(s): {why}" for why, n in sorted(mapped.invalid.items())))
        try:
            moved = await apply_results(store, mapped.records, push_to=self.src.status_push_to,
                                        metrics=request.app[METRICS])
            res = await BackflowStore(store, partner=self.src.push_to,
                                      batch_size=self.src.batch_size).store_page(
                f"{SOURCE}-push", None, None, mapped.records)
        except StoreError as e:
            log.error("national back-flow push not stored: %s", e)
            return national._answer(national.BUSY, "系统繁忙, 请稍后重发 (the gateway could not "
                                                   "store the batch)")
        request.app[METRICS].backflow(f"{SOURCE}-push", kept=res.kept, replaced=res.replaced,
                                      ignored=res.ignored)
        return national._answer(national.OK, "成功", {
            "batchId": data["batchId"], "records": res.records, "kept": res.kept,
            "replaced": res.replaced, "ignored": res.ignored, "statuses": moved})


def add_routes(app: web.Application) -> None:
    """Register the endpoint when the ``national`` back-flow source is configured."""
    settings = app[SETTINGS]
    src = settings.backflow.sources.get(SOURCE)
    if src is None:
        return
    schemas = settings.path(settings.schemas_dir)
    partner = settings.partners.get("national")
    base = national.NationalEndpoint(partner.inbound if partner else None, schemas,
                                     settings.server.max_body_bytes,
                                     national.push_security(settings))
    app.router.add_post(PATH, BackflowPushEndpoint(base, schemas, src).handle)


__all__ = ["PATH", "BackflowPushEndpoint", "add_routes"]
