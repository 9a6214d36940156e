"""``POST /api/v1/partners/national/cases``: a case another province submits to Beijing through
the national platform, in the platform's envelope (``data`` per
``schemas/national/inbound-case.schema.json``, the camelCase style of case-submit).

The envelope is opened and checked exactly as the status push's
(:meth:`gateway.statuses.national.NationalEndpoint.opened`: appId, signature and freshness when
SM2 is agreed, SM4 ``encData``), then :class:`~gateway.inbound.service.InboundService` maps it
with ``mappings/national/case-inbound.yaml``. ``projectNo`` names the case: a resend answers the
first receipt.

Every answer is HTTP 200 ``{code, msg}``: ``0`` with ``data: {receiptNo, duplicate}``;
``40001`` invalid (naming the field), ``40100`` not authenticated, ``40300`` an item or region
this caller may not submit, ``50001`` busy (send again).
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from gateway.errors import StoreError
from gateway.inbound.service import INBOUND, Forbidden, Invalid
from gateway.statuses import national

log = logging.getLogger("gateway.inbound")
PATH = "/api/v1/partners/national/cases"
PARTNER = "national"
FORBIDDEN = "40300"


class NationalCasesEndpoint(national.NationalEndpoint):
    def __init__(self, endpoint: national.NationalEndpoint, schemas: Path) -> None:
        super().__init__(endpoint.inbound, schemas, endpoint.max_body, endpoint.security)
        self.data = national._load(schemas / "national" / "inbound-case.schema.json")

    async def handle(self, request: web.Request) -> web.Response:
        data = await self.opened(request)
        if isinstance(data, web.Response):
            return data
        try:
            receipt = await request.app[INBOUND].submit(
                PARTNER, data["projectNo"], data, request=await request.read(),
                caller=f"partner:{PARTNER}")
        except Invalid as e:
            return national._answer(national.INVALID, f"数据校验失败: {e.text('/data')}")
        except Forbidden as e:
            return national._answer(FORBIDDEN, f"无权提交 (forbidden): {e}")
        except StoreError as e:
            log.error("national inbound case not stored: %s", e)
            return national._answer(national.BUSY, "系统繁忙, 请稍后重发 (the gateway could not "
                                                   "store the case)")
        return national._answer(national.OK, "成功", {"receiptNo": receipt.receipt_no,
                                                     "duplicate": receipt.duplicate})


__all__ = ["PATH", "NationalCasesEndpoint"]
