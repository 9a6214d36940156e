"""The one HTTP exchange with a partner, shared by every protocol style.

A partner's server is not trusted (it may be compromised, misconfigured, or answered by whoever
sits on the path), so this is where the gateway refuses to be steered by it:

* **no redirect is ever followed.** A 3xx would re-post the whole case (names, ID numbers) and
  the partner's credentials to a host nobody configured, or turn the POST into a body-less GET
  whose answer looks like a receipt. A 3xx is a permanent failure naming the status and the
  host it pointed at: the partner URL in the configuration is wrong, an operator must look.
* **the whole reply is read, up to a limit.** A reply arrives in as many TCP pieces as the
  network likes; it is read to its end (or refused as soon as it passes ``max_bytes``, before
  it is all in memory: a ``Content-Length`` over the limit is refused before reading at all).
* **big documents are parsed off the event loop** (:func:`off_loop`), so a slow or huge reply
  delays only its own delivery, never ``/healthz`` or the other deliveries.

Everything aiohttp, asyncio or the OS raises for a broken exchange becomes an
:class:`~gateway.outcome.Outcome` here (:mod:`gateway.protocols.classify`); nothing escapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp

from gateway.outcome import Outcome
from gateway.protocols.classify import classify_exception
from gateway.security.tls import ClientTls

OFF_LOOP_BYTES = 64 * 1024
"""Documents above this size are parsed in a worker thread (a 64 KB JSON parse is ~0.5 ms)."""

T = TypeVar("T")


@dataclass(frozen=True)
class HttpReply:
    """A complete HTTP reply: the status, its headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float


@dataclass(frozen=True)
class Exchange:
    """SHA-256 and size of the exact bytes of one POST and its reply (None: no complete reply),
    for the audit log: never the bytes themselves."""

    request_sha256: str
    request_bytes: int
    reply_sha256: str | None
    reply_bytes: int | None

    @classmethod
    def of(cls, request: bytes, reply: bytes | None) -> Exchange:
        return cls(hashlib.sha256(request).hexdigest(), len(request),
                   None if reply is None else hashlib.sha256(reply).hexdigest(),
                   None if reply is None else len(reply))


#: Where :func:`post` notes each exchange, when a caller set a list here (the worker does, per
#: attempt: each attempt runs in its own task, so its list is its own).
exchanges: ContextVar[list[Exchange] | None] = ContextVar("gateway_exchanges", default=None)


def _redirect(status: int, headers: Mapping[str, str]) -> Outcome:
    location = headers.get("Location", "")
    host = urlsplit(location).netloc[:100] if location else ""
    where = f" to {host!r}" if host else (" (relative location)" if location else "")
    return Outcome.permanent(
        f"partner answered HTTP {status} redirect{where}; redirects are never followed "
        f"(the case is not re-posted elsewhere): check the partner's configured URL",
        http_status=status)


async def _read_body(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it exceeds ``max_bytes``."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def post(http: aiohttp.ClientSession, url: str, body: bytes, *,
               headers: Mapping[str, str], timeout: float,
               max_bytes: int, tls: ClientTls | None = None) -> HttpReply | Outcome:
    """POST ``body`` and return the complete reply, or the :class:`Outcome` of a failed exchange.

    ``timeout`` bounds the whole exchange, reading the body included, so a partner that trickles
    its reply byte by byte is cut off like one that never answers. ``tls`` is the partner's
    (:func:`gateway.security.tls.client_tls`); ``None``: aiohttp's default verification.
    """
    start = time.perf_counter()
    data: bytes | None = None
    try:
        async with http.post(url, data=body, headers=dict(headers), allow_redirects=False,
                             timeout=aiohttp.ClientTimeout(total=timeout),
                             ssl=True if tls is None else tls.context,
                             server_hostname=None if tls is None else tls.server_name) as resp:
            if 300 <= resp.status < 400:
                return _redirect(resp.status, resp.headers)
            data = await _read_body(resp, max_bytes)
            if data is None:
                # retryable: the partner may have taken the case, and it dedupes a resend
                return Outcome.retryable(f"reply larger than the {max_bytes}-byte limit "
                                         f"(partners.*.max_reply_bytes)", http_status=resp.status)
            return HttpReply(resp.status, resp.headers, data, time.perf_counter() - start)
    except TimeoutError:  # asyncio.TimeoutError is TimeoutError since 3.11
        return Outcome.retryable(f"timed out after {timeout:g}s")
    except Exception as e:  # noqa: BLE001 - translated at the boundary, never escapes
        failed = classify_exception(e)
        return failed if tls is None else tls.explain(failed)
    finally:
        if (seen := exchanges.get()) is not None:
            seen.append(Exchange.of(body, data))


async def off_loop(size: int, fn: Callable[[], T], *, threshold: int = OFF_LOOP_BYTES) -> T:
    """``fn()``, in a worker thread when the ``size`` bytes it parses could stall the event loop."""
    if size <= threshold:
        return fn()
    return await asyncio.to_thread(fn)


__all__ = ["OFF_LOOP_BYTES", "Exchange", "HttpReply", "exchanges", "off_loop", "post"]
