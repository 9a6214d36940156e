"""One classification of partner behaviour, shared by every protocol style.

Foreign signals (HTTP statuses and ``Retry-After``, aiohttp/asyncio/ssl exceptions, SOAP fault
codes, business codes) are translated here into :class:`~gateway.outcome.OutcomeKind` /
:class:`~gateway.outcome.Outcome`, always keeping the partner's own code and message, so the retry
policy and the breaker (:mod:`gateway.retry`) never see a foreign type. The rule of thumb:
*retryable* when the same bytes may succeed later (the partner or the network is unwell, or the
reply was lost or garbled — safe because every delivery carries an idempotency key); *permanent*
when they cannot (we are refused, misconfigured, or have a bug).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp
from lxml import etree

from gateway.errors import DeliveryError, PermanentError
from gateway.outcome import Outcome, OutcomeKind, receipt_problem

#: Statuses that say "not now": request timeout, too early, too many requests.
RETRYABLE_4XX = frozenset({408, 425, 429})
#: 5xx statuses that will not change by trying again (the server cannot do what we ask).
PERMANENT_5XX = frozenset({501, 505})
#: Statuses that may carry a ``Retry-After`` meaning "temporary" (RFC 9110 §10.2.3, §15.5.14).
_RETRY_AFTER_TEMPORARY = frozenset({413, 503})


def classify_http(status: int, headers: Mapping[str, str] | None = None) -> OutcomeKind | None:
    """Classify an HTTP status; ``None`` for 2xx, where the body (business code) decides.

    408/425/429 and 5xx (except 501, 505) are retryable; a 413 with ``Retry-After`` is a temporary
    condition and retryable too. Every other status (other 4xx, an unfollowed 3xx, a 1xx) is
    permanent: the same request will be refused again until someone changes something.
    """
    if 200 <= status < 300:
        return None
    if status in RETRYABLE_4XX:
        return OutcomeKind.RETRYABLE
    if 500 <= status < 600:
        return OutcomeKind.PERMANENT if status in PERMANENT_5XX else OutcomeKind.RETRYABLE
    if status in _RETRY_AFTER_TEMPORARY and headers is not None and _header(headers, "Retry-After"):
        return OutcomeKind.RETRYABLE
    return OutcomeKind.PERMANENT


def outcome_from_http(status: int, headers: Mapping[str, str] | None, *, now: datetime,
                      message: str = "", partner_code: str | None = None) -> Outcome | None:
    """An :class:`Outcome` for a non-2xx reply (``Retry-After`` parsed), or ``None`` for 2xx."""
    kind = classify_http(status, headers)
    if kind is None:
        return None
    text = message or f"HTTP {status}"
    if kind is OutcomeKind.RETRYABLE:
        return Outcome.retryable(text, partner_code=partner_code, http_status=status,
                                 retry_after=retry_after(headers, now))
    return Outcome.permanent(text, partner_code=partner_code, http_status=status)


def retry_after(headers: Mapping[str, str] | None, now: datetime) -> float | None:
    """A reply's ``Retry-After`` as seconds (:func:`parse_retry_after`), ``None`` when absent."""
    return parse_retry_after(_header(headers, "Retry-After") if headers else None, now)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP-date), else ``None``.

    A date in the past gives ``0.0``; garbage and negative numbers give ``None`` (ignored rather
    than trusted). A naive ``now`` is taken as UTC, since HTTP-dates are always GMT.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit() or _is_decimal(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None for garbage
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ref = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return max((when - ref).total_seconds(), 0.0)


def _is_decimal(text: str) -> bool:
    head, dot, tail = text.partition(".")
    return bool(dot) and head.isdigit() and tail.isdigit()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for plain dicts as well as multidicts."""
    v = headers.get(name)
    if v is not None:
        return v
    lower = name.lower()
    return next((val for key, val in headers.items() if key.lower() == lower), None)


@dataclass(frozen=True)
class BusinessCodes:
    """A partner's business result codes (``options.success_codes`` / ``retryable_codes``).

    Anything not listed is permanent: an unknown code is a rejection we have not been told is
    temporary, and parking it for an operator is safer than hammering the partner. Throttling codes
    (``retry.throttle_codes``) are retryable too, so they reach the policy's throttling rule.
    There are no default codes: each partner's contract names its own.
    """

    success: frozenset[str]
    retryable: frozenset[str] = frozenset()
    throttle: frozenset[str] = frozenset()

    @classmethod
    def of(cls, success: Iterable[str | int], retryable: Iterable[str | int] = (),
           throttle: Iterable[str | int] = ()) -> BusinessCodes:
        """Codes as configured (numbers and surrounding blanks normalised to the text compared)."""
        def norm(codes: Iterable[str | int]) -> frozenset[str]:
            return frozenset(str(c).strip() for c in codes)
        return cls(norm(success), norm(retryable), norm(throttle))

    def classify(self, code: str | int | None) -> OutcomeKind:
        """``DELIVERED`` for success codes, ``RETRYABLE`` for retryable/throttle, else permanent."""
        key = "" if code is None else str(code).strip()
        if key in self.success:
            return OutcomeKind.DELIVERED
        if key in self.retryable or key in self.throttle:
            return OutcomeKind.RETRYABLE
        return OutcomeKind.PERMANENT

    def outcome(self, code: str | int | None, message: str = "", *, receipt_no: str | None = None,
                receipt_field: str = "receipt number", receipt_required: bool = True,
                http_status: int | None = None, retry_after: float | None = None) -> Outcome:
        """The :class:`Outcome` of a business reply, keeping the partner's code and message.

        A success code without a usable receipt (``receipt_field`` names where it was looked
        for) is a malformed reply, retryable: the partner may hold the case, it dedupes a
        resend, and operators see why. A partner that issues no receipt at all
        (``receipt_required=False``) delivers on its success code alone; a receipt it does send
        must still be usable.
        """
        kind = self.classify(code)
        pcode = None if code is None else str(code).strip()
        if kind is OutcomeKind.DELIVERED:
            if not receipt_no and not receipt_required:
                return Outcome(kind, message or "ok", None, pcode, http_status)
            if not receipt_no:
                return Outcome.retryable(f"malformed reply: success without {receipt_field}",
                                         partner_code=pcode, http_status=http_status)
            problem = receipt_problem(receipt_no)
            if problem is not None:
                return Outcome.retryable(f"malformed reply: {problem}", partner_code=pcode,
                                         http_status=http_status)
            return Outcome(kind, message or "ok", receipt_no, pcode, http_status)
        if kind is OutcomeKind.RETRYABLE:
            return Outcome.retryable(message, partner_code=pcode, http_status=http_status,
                                     retry_after=retry_after)
        return Outcome.permanent(message, partner_code=pcode, http_status=http_status)


_SOAP_RETRYABLE = frozenset({"server", "receiver"})
_SOAP_PERMANENT = frozenset({"client", "sender", "versionmismatch", "mustunderstand",
                             "dataencodingunknown"})


def classify_soap_fault(code: str | None) -> OutcomeKind:
    """SOAP 1.1 ``Server`` / 1.2 ``Receiver`` are retryable; ``Client`` / ``Sender`` and the rest
    are permanent. Accepts ``soap:Server``, ``{ns}Receiver``, ``Server.Busy`` and the like."""
    if not code:
        return OutcomeKind.PERMANENT
    local = code.rsplit("}", 1)[-1].rsplit(":", 1)[-1].split(".", 1)[0].strip().lower()
    return OutcomeKind.RETRYABLE if local in _SOAP_RETRYABLE else OutcomeKind.PERMANENT


def classify_exception(exc: Exception, *, now: datetime | None = None) -> Outcome:
    """Translate an exception raised while sending into an :class:`Outcome`.

    Retryable: timeouts, refused/reset/dropped connections, DNS failures, truncated bodies,
    replies we could not read (the partner dedupes on the idempotency key, so resending is safe),
    and retryable HTTP statuses raised by ``raise_for_status``. Permanent: invalid or non-HTTP
    URLs, certificate and TLS configuration errors, redirect loops, refusing HTTP statuses, and
    anything unexpected (most likely our own bug: park it for an operator, do not hammer).
    ``asyncio.CancelledError`` is not an ``Exception`` and must never be classified.
    """
    name = type(exc).__name__
    text = str(exc) or name
    if isinstance(exc, DeliveryError):
        kind = OutcomeKind.PERMANENT if isinstance(exc, PermanentError) else OutcomeKind.RETRYABLE
        if kind is OutcomeKind.PERMANENT:
            return Outcome.permanent(exc.message, partner_code=exc.partner_code,
                                     http_status=exc.http_status)
        return Outcome.retryable(exc.message, partner_code=exc.partner_code,
                                 http_status=exc.http_status, retry_after=exc.retry_after)
    if isinstance(exc, aiohttp.ContentTypeError):
        return Outcome.retryable(f"unreadable reply: {exc.message}", http_status=exc.status or None)
    if isinstance(exc, aiohttp.TooManyRedirects):
        return Outcome.permanent(f"too many redirects: {exc.message}",
                                 http_status=exc.status or None)
    if isinstance(exc, aiohttp.ClientResponseError):
        headers = exc.headers if exc.headers is not None else {}
        out = outcome_from_http(exc.status, headers,
                                now=now or datetime.now(UTC),
                                message=exc.message or f"HTTP {exc.status}")
        return out if out is not None else Outcome.retryable(f"unexpected reply: {text}",
                                                             http_status=exc.status)
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError,
                        aiohttp.RedirectClientError)):
        return Outcome.permanent(f"invalid URL: {text}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Outcome.permanent(f"TLS certificate rejected: {text}")
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return Outcome.retryable(f"TLS connection closed: {text}")
    if isinstance(exc, aiohttp.ClientSSLError) and isinstance(
            getattr(exc, "os_error", None), (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return Outcome.retryable(f"TLS connection closed: {text}")
    if isinstance(exc, (ssl.SSLError, aiohttp.ClientSSLError)):
        return Outcome.permanent(f"TLS error: {text}")
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Outcome.retryable(f"timeout: {text}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Outcome.retryable(f"DNS lookup failed: {text}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return Outcome.retryable(f"server disconnected: {text}")
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
                        ConnectionError, OSError, EOFError)):
        return Outcome.retryable(f"connection failed ({name}): {text}")
    if _is_malformed_reply(exc):
        return Outcome.retryable(f"malformed reply ({name}): {text}")
    return Outcome.permanent(f"unexpected {name}: {text}")


def _is_malformed_reply(exc: Exception) -> bool:
    """A reply we could not parse (JSON, XML, text encoding) is garbled, not a refusal."""
    return isinstance(exc, (json.JSONDecodeError, etree.XMLSyntaxError, UnicodeDecodeError))
