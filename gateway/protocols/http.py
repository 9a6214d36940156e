"""Translate what aiohttp says into outcomes, once, for REST and SOAP alike."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from datetime import UTC, datetime

import aiohttp

from gateway.protocols.base import Outcome

RETRYABLE_STATUSES = {408, 425, 429, 500, 502, 503, 504}


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def outcome_for_exception(exc: BaseException, timeout: float) -> Outcome:
    if isinstance(exc, asyncio.TimeoutError):
        return Outcome.retryable(f"timeout after {timeout:g}s")
    if isinstance(exc, aiohttp.InvalidURL):
        return Outcome.permanent(f"invalid URL: {exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Outcome.retryable("connection closed by partner before a reply")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Outcome.retryable(f"cannot connect: {exc.os_error.strerror or exc}")
    return Outcome.retryable(f"{type(exc).__name__}: {exc}")


def outcome_for_http_status(status: int, headers: Mapping[str, str], body: bytes) -> Outcome | None:
    """None for a 2xx (the caller reads the business answer); an outcome otherwise."""
    if 200 <= status < 300:
        return None
    snippet = body[:200].decode("utf-8", "replace")
    if status in RETRYABLE_STATUSES or status >= 500:
        return Outcome.retryable(f"HTTP {status}: {snippet}", http_status=status,
                                 retry_after=parse_retry_after(headers.get("Retry-After")))
    return Outcome.permanent(f"HTTP {status}: {snippet}", http_status=status)
