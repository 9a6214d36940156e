"""A partner's paged bulk status export, read page by page with flat memory.

``POST {cursor?, limit}`` in the partner's envelope → ``{code, msg, data: {records,
nextCursor}}`` (``schemas/national/status-export.schema.json``). Every page is read through
:func:`gateway.protocols.transport.post`, so the partner's rules hold here too: no redirect is
followed, the reply is read to its end up to a byte limit, the whole exchange has a timeout.

A page that fails (a transport error, HTTP 5xx, a business code that is not success, a reply
that is not the export's shape) is asked for again *with the same cursor*, waits growing from
``retry_wait`` with full jitter, up to ``retries`` times; then :class:`ExportUnavailable` names
the cursor the walk stopped at (so a caller can resume from it). A redirect or a 4xx is not
retried (asking again will not help). While the caller works on one page the next one is
already being fetched: at most two pages are ever held.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp
import orjson

from gateway.errors import GatewayError
from gateway.outcome import Outcome
from gateway.protocols import transport
from gateway.config import PartnerSettings
from gateway.protocols.envelopes import Envelope, EnvelopeError, partner_envelope
from gateway.security.tls import ClientTls, partner_tls


class ReconcileError(GatewayError):
    """The reconciler could not do its work (the message says why, never a case's data)."""


class ExportUnavailable(ReconcileError):
    """A page of the export could not be read after its retries; ``cursor`` is where to resume."""

    def __init__(self, message: str, cursor: str | None) -> None:
        super().__init__(message)
        self.cursor = cursor


@dataclass(frozen=True)
class ExportPage:
    number: int                    # 1 = the first page of this walk
    cursor: str | None             # the cursor this page was asked for with
    records: list[dict[str, Any]]
    next_cursor: str | None
    attempts: int                  # 1 unless a failure was retried


class _PageFailed(Exception):
    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class ExportEndpoint:
    """Where and how one partner's export is asked: URL, envelope and credentials, the business
    codes that mean success, page size and the limits of one exchange."""

    url: str
    envelope: Envelope
    credentials: dict[str, str]
    success_codes: Sequence[str] = ("0",)
    page_size: int = 5000
    timeout: float = 60.0
    max_bytes: int = 32 * 1024 * 1024
    tls: ClientTls | None = None  # the partner's (partners.<name>.tls)

    @classmethod
    def of_partner(cls, name: str, partner: PartnerSettings, path: str, *, page_size: int,
                   timeout: float, max_bytes: int = 32 * 1024 * 1024) -> ExportEndpoint:
        """``partner``'s export at ``path`` (relative to its URL) as the partner is configured:
        its envelope with its keys bound (a signed export is verified page by page), its
        credentials and success codes, its TLS. ``ConfigError`` names a bad envelope or key."""
        success = tuple(str(c) for c in partner.options.get("success_codes", ("0",)))
        return cls(url=urljoin(partner.url, path),
                   envelope=partner_envelope(name, partner.options, partner.credentials),
                   credentials=dict(partner.credentials), success_codes=success,
                   page_size=page_size, timeout=timeout, max_bytes=max_bytes,
                   tls=partner_tls(name, partner))


class ExportReader:
    """Pages of one export, from ``cursor`` (None: the beginning) to the end."""

    def __init__(self, http: aiohttp.ClientSession, endpoint: ExportEndpoint, *,
                 retries: int = 5, retry_wait: float = 1.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.http = http
        self.endpoint = endpoint
        self.retries = retries
        self.retry_wait = retry_wait
        self.sleep = sleep
        self.retried = 0     # failed page requests that were asked again

    async def pages(self, cursor: str | None = None) -> AsyncIterator[ExportPage]:
        """Every page in order; the next page is fetched while the caller handles this one."""
        number = 1
        pending: asyncio.Task[ExportPage] | None = asyncio.create_task(self.page(cursor, number))
        try:
            while pending is not None:
                page = await pending
                pending = None
                if page.next_cursor is not None:
                    pending = asyncio.create_task(self.page(page.next_cursor, page.number + 1))
                yield page
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    async def page(self, cursor: str | None, number: int) -> ExportPage:
        """One page, retried from the same cursor (module docstring)."""
        wait = self.retry_wait
        for attempt in range(1, self.retries + 2):
            try:
                records, nxt = await self._ask(cursor)
                return ExportPage(number, cursor, records, nxt, attempt)
            except _PageFailed as e:
                if not e.retry or attempt > self.retries:
                    raise ExportUnavailable(
                        f"export page {number} (cursor {cursor!r}) failed after {attempt} "
                        f"attempt(s): {e}", cursor) from None
                self.retried += 1
                await self.sleep(random.uniform(0, wait))  # noqa: S311 - jitter, not a secret
                wait = min(wait * 2, 60.0)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _ask(self, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        ep = self.endpoint
        data: dict[str, Any] = {"limit": ep.page_size}
        if cursor is not None:
            data["cursor"] = cursor
        sealed = ep.envelope(data, ep.credentials)
        body = orjson.dumps(sealed)
        reply = await transport.post(self.http, ep.url, body,
                                     headers={"Content-Type": "application/json; charset=utf-8"},
                                     timeout=ep.timeout, max_bytes=ep.max_bytes, tls=ep.tls)
        if isinstance(reply, Outcome):
            raise _PageFailed(reply.message, retry=reply.kind == "retryable")
        if reply.status != 200:
            raise _PageFailed(f"HTTP {reply.status}", retry=reply.status >= 500
                              or reply.status in (408, 429))
        try:
            doc = await transport.off_loop(len(reply.body), lambda: orjson.loads(reply.body))
        except orjson.JSONDecodeError as e:
            raise _PageFailed(f"reply is not JSON ({e.msg})", retry=True) from None
        try:  # a signed envelope's page is checked (signData, encData) before a record is read
            doc = await transport.off_loop(len(reply.body), lambda: ep.envelope.open(
                doc, answers=sealed.get("nonce")))
        except EnvelopeError as e:
            raise _PageFailed(f"page not trusted: {e}", retry=True) from None
        return _page_of(doc, ep.success_codes)


def _page_of(doc: Any, success: Sequence[str]) -> tuple[list[dict[str, Any]], str | None]:
    """The records and next cursor of an answer, or :class:`_PageFailed` saying what is wrong."""
    if not isinstance(doc, dict):
        raise _PageFailed("reply is not a JSON object", retry=True)
    code = doc.get("code")
    if str(code) not in success:
        raise _PageFailed(f"business code {str(code)[:20]!r}: {str(doc.get('msg'))[:100]}",
                          retry=True)
    data = doc.get("data")
    records = data.get("records") if isinstance(data, dict) else None
    nxt = data.get("nextCursor") if isinstance(data, dict) else None
    if not isinstance(records, list) or not (nxt is None or isinstance(nxt, str)):
        raise _PageFailed("reply has no data.records list and nextCursor", retry=True)
    if not all(isinstance(r, dict) for r in records):
        raise _PageFailed("a record is not a JSON object", retry=True)
    return records, nxt
