"""Wire classification shared by every protocol style (gateway.protocols.classify)."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from lxml import etree
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway.errors import DeliveryError, PermanentError
from gateway.outcome import OutcomeKind
from gateway.protocols.classify import (
    BusinessCodes,
    classify_exception,
    classify_http,
    classify_soap_fault,
    outcome_from_http,
    parse_retry_after,
    retry_after,
)

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
R, P, D = OutcomeKind.RETRYABLE, OutcomeKind.PERMANENT, OutcomeKind.DELIVERED


@pytest.mark.parametrize(("status", "headers", "kind"), [
    (200, {}, None), (201, {}, None), (202, {}, None), (204, {}, None),
    (408, {}, R), (425, {}, R), (429, {}, R),
    (500, {}, R), (502, {}, R), (503, {}, R), (504, {}, R), (507, {}, R), (599, {}, R),
    (501, {}, P), (505, {}, P),
    (400, {}, P), (401, {}, P), (403, {}, P), (404, {}, P), (409, {}, P), (422, {}, P),
    (413, {}, P), (413, {"Retry-After": "30"}, R), (413, {"retry-after": "30"}, R),
    (403, {"Retry-After": "30"}, P),
    (301, {}, P), (302, {}, P), (100, {}, P),
])
def test_classify_http(status: int, headers: dict[str, str], kind: OutcomeKind | None) -> None:
    assert classify_http(status, headers) is kind


def test_classify_http_accepts_multidict_headers() -> None:
    h = CIMultiDictProxy(CIMultiDict({"RETRY-AFTER": "5"}))
    assert classify_http(413, h) is R


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), (" 0 ", 0.0), ("1.5", 1.5),
    ("Mon, 30 Nov 2026 12:01:00 GMT", 60.0),          # IMF-fixdate
    ("Mon, 30 Nov 2026 11:00:00 GMT", 0.0),           # in the past: now
    ("Monday, 30-Nov-26 12:00:30 GMT", 30.0),         # obsolete RFC 850 form
    ("Mon Nov 30 12:00:10 2026", 10.0),               # asctime form
    (None, None), ("", None), ("soon", None), ("-5", None), ("1e3", None), ("12abc", None),
])
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    got = parse_retry_after(value, NOW)
    assert got == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_retry_after_with_beijing_or_naive_now() -> None:
    beijing = NOW.astimezone(timezone(timedelta(hours=8)))
    assert parse_retry_after("Mon, 30 Nov 2026 12:01:00 GMT", beijing) == pytest.approx(60)
    assert parse_retry_after("Mon, 30 Nov 2026 12:01:00 GMT", NOW.replace(tzinfo=None)) == \
        pytest.approx(60)


def test_retry_after_header_found_in_any_case() -> None:
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, NOW) == 0.0
    assert retry_after(CIMultiDictProxy(CIMultiDict({"RETRY-AFTER": "5"})), NOW) == 5.0
    assert retry_after({"Retry-After": "soon"}, NOW) is None
    assert retry_after({}, NOW) is None and retry_after(None, NOW) is None


def test_outcome_from_http_keeps_status_and_parses_retry_after() -> None:
    o = outcome_from_http(503, {"Retry-After": "Mon, 30 Nov 2026 12:02:00 GMT"}, now=NOW,
                          message="maintenance")
    assert o is not None and o.kind is R
    assert (o.http_status, o.retry_after, o.message) == (503, pytest.approx(120), "maintenance")
    o = outcome_from_http(404, {}, now=NOW)
    assert o is not None and o.kind is P and o.message == "HTTP 404" and o.retry_after is None
    assert outcome_from_http(200, {}, now=NOW) is None


# --- business codes -------------------------------------------------------------------------------

CODES = BusinessCodes.of(["0"], ["50001", 42900], throttle=["42901"])


@pytest.mark.parametrize(("code", "kind"), [
    ("0", D), (0, D), (" 0 ", D), ("50001", R), (42900, R), ("42901", R),
    ("-1", P), ("40012", P), ("", P), (None, P), ("00", P),
])
def test_business_codes(code: str | int | None, kind: OutcomeKind) -> None:
    assert CODES.classify(code) is kind


def test_business_outcome_keeps_partner_code_and_message() -> None:
    o = CODES.outcome("40012", "申请人证件号码无效", http_status=200)
    assert (o.kind, o.partner_code, o.message, o.http_status) == (P, "40012", "申请人证件号码无效", 200)
    o = CODES.outcome(0, "", receipt_no="R-9")
    assert (o.kind, o.partner_code, o.receipt_no, o.message) == (D, "0", "R-9", "ok")
    o = CODES.outcome("42901", "too fast", retry_after=30)
    assert (o.kind, o.retry_after) == (R, 30)


def test_negative_codes_are_permanent_unless_listed() -> None:
    assert BusinessCodes.of(["0"]).classify("-3") is P
    assert BusinessCodes.of(["0"], ["-3"]).classify("-3") is R
    assert BusinessCodes.of(["0"]).classify("0") is D


@pytest.mark.parametrize("receipt,fragment", [
    (None, "success without data.receiptNo"), ("", "success without data.receiptNo"),
    ("R 1", "spaces or control characters"), ("R" * 129, "129 characters"),
])
def test_success_without_a_usable_receipt_is_a_malformed_reply(receipt: str | None,
                                                               fragment: str) -> None:
    o = CODES.outcome("0", "ok", receipt_no=receipt, receipt_field="data.receiptNo",
                      http_status=200)
    assert (o.kind, o.partner_code, o.http_status) == (R, "0", 200)
    assert o.message.startswith("malformed reply: ") and fragment in o.message


# --- SOAP faults ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "kind"), [
    ("soap:Server", R), ("Server", R), ("Server.Busy", R), ("env:Receiver", R),
    ("{http://www.w3.org/2003/05/soap-envelope}Receiver", R),
    ("soap:Client", P), ("env:Sender", P), ("VersionMismatch", P), ("soap:MustUnderstand", P),
    ("", P), (None, P), ("weird", P),
])
def test_classify_soap_fault(code: str | None, kind: OutcomeKind) -> None:
    assert classify_soap_fault(code) is kind


# --- exceptions -----------------------------------------------------------------------------------

KEY = ConnectionKey("partner.example", 443, True, True, None, None, None)
REQ = RequestInfo(URL("https://partner.example/api"), "POST",
                  CIMultiDictProxy(CIMultiDict()), URL("https://partner.example/api"))


def response_error(cls: type[aiohttp.ClientResponseError], status: int,
                   headers: dict[str, str] | None = None,
                   message: str = "") -> aiohttp.ClientResponseError:
    h = CIMultiDictProxy(CIMultiDict(headers or {}))
    return cls(REQ, (), status=status, message=message, headers=h)


EXCEPTIONS: list[tuple[str, Exception, OutcomeKind, str]] = [
    ("asyncio timeout", TimeoutError(), R, "timeout"),
    ("builtin timeout", TimeoutError("read"), R, "timeout"),
    ("aiohttp server timeout", aiohttp.ServerTimeoutError("Timeout on reading data"), R, "timeout"),
    ("aiohttp connection timeout", aiohttp.ConnectionTimeoutError("connect"), R, "timeout"),
    ("server disconnected", aiohttp.ServerDisconnectedError(), R, "server disconnected"),
    ("connection refused",
     aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")), R,
     "connection failed"),
    ("dns", aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")), R,
     "DNS lookup failed"),
    ("reset (aiohttp)", aiohttp.ClientConnectionResetError("Cannot write to closing transport"),
     R, "connection failed"),
    ("reset (os)", ConnectionResetError(104, "Connection reset by peer"), R, "connection failed"),
    ("broken pipe", BrokenPipeError(32, "Broken pipe"), R, "connection failed"),
    ("client os error", aiohttp.ClientOSError(113, "No route to host"), R, "connection failed"),
    ("payload truncated", aiohttp.ClientPayloadError("Response payload is not completed"), R,
     "connection failed"),
    ("unexpected EOF", EOFError(), R, "connection failed"),
    ("malformed JSON", json.JSONDecodeError("Expecting value", "<html>", 0), R, "malformed reply"),
    ("malformed XML", etree.XMLSyntaxError("boom", 1, 1, 1), R, "malformed reply"),
    ("undecodable", UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), R,
     "malformed reply"),
    ("wrong content type", response_error(aiohttp.ContentTypeError, 200, message="text/html"), R,
     "unreadable reply"),
    ("raise_for_status 503", response_error(aiohttp.ClientResponseError, 503,
                                            {"Retry-After": "7"}, "Service Unavailable"),
     R, "Service Unavailable"),
    ("raise_for_status 404", response_error(aiohttp.ClientResponseError, 404, message="Not Found"),
     P, "Not Found"),
    ("too many redirects", response_error(aiohttp.TooManyRedirects, 302), P, "too many redirects"),
    ("invalid URL", aiohttp.InvalidURL("htp:/nowhere"), P, "invalid URL"),
    ("invalid URL client error", aiohttp.InvalidUrlClientError("::"), P, "invalid URL"),
    ("non-HTTP URL", aiohttp.NonHttpUrlClientError("ftp://x"), P, "invalid URL"),
    ("certificate", aiohttp.ClientConnectorCertificateError(
        KEY, ssl.SSLCertVerificationError(1, "certificate verify failed")), P, "certificate"),
    ("raw certificate", ssl.SSLCertVerificationError(1, "self-signed"), P, "certificate"),
    ("TLS config", aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError(1, "wrong version number")),
     P, "TLS error"),
    ("TLS EOF during handshake", aiohttp.ClientConnectorSSLError(KEY, ssl.SSLEOFError(8, "EOF")),
     R, "TLS connection closed"),
    ("raw TLS EOF", ssl.SSLEOFError(8, "EOF occurred"), R, "TLS connection closed"),
    ("our retryable error", DeliveryError("busy", partner_code="50001", retry_after=9), R, "busy"),
    ("our permanent error", PermanentError("bad id", partner_code="40012"), P, "bad id"),
    ("a bug", KeyError("applicant"), P, "unexpected KeyError"),
    ("another bug", ZeroDivisionError("division by zero"), P, "unexpected ZeroDivisionError"),
]


@pytest.mark.parametrize(("name", "exc", "kind", "fragment"), EXCEPTIONS,
                         ids=[e[0] for e in EXCEPTIONS])
def test_classify_exception(name: str, exc: Exception, kind: OutcomeKind, fragment: str) -> None:
    o = classify_exception(exc, now=NOW)
    assert o.kind is kind, o
    assert fragment in o.message


def test_exception_keeps_status_retry_after_and_partner_code() -> None:
    o = classify_exception(response_error(aiohttp.ClientResponseError, 429, {"Retry-After": "7"}),
                           now=NOW)
    assert (o.kind, o.http_status, o.retry_after) == (R, 429, 7.0)
    o = classify_exception(DeliveryError("busy", partner_code="50001", http_status=200,
                                          retry_after=9))
    assert (o.partner_code, o.http_status, o.retry_after) == ("50001", 200, 9)
    o = classify_exception(PermanentError("bad", partner_code="40012", http_status=200))
    assert (o.partner_code, o.http_status) == ("40012", 200)
