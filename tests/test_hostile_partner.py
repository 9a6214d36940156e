"""A malicious partner cannot steer the gateway (issue 9), end to end on both engines.

Each test orders a hostile answer from a real simulator (``gateway.simulators.base``: redirect,
split, oversized, deep, raw) and follows the case through the real worker and store: what is
recorded, whether anything left for another host, and that the case is delivered once the
partner behaves again.
"""

from __future__ import annotations

import base64
import json
import resource
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.protocols import soap
from tests.harness import Gateway, Simulator, default_partner_path, settings_for

CASES = {"national": "01-person-shanghai-social-security",
         "tianjin": "10-person-tianjin-social-security",
         "hebei": "11-company-hebei-branch-filing"}
HB = "http://zwfw.hebei.example/exchange/v1"


class Elsewhere:
    """The host a redirect points at: records anything that reaches it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self.server = TestServer(app, host="127.0.0.1")

    async def _any(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, await request.read(), dict(request.headers)))
        return web.json_response({"code": "0", "msg": "ok", "data": {"receiptNo": "EVIL0001"}})

    async def __aenter__(self) -> Elsewhere:
        await self.server.start_server()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.server.close()

    def url(self) -> str:
        return str(self.server.make_url("/steal"))


async def run_case(db_url: str, tmp_path: Path, samples: dict[str, Any], partner: str,
                   *misbehaviour: dict[str, Any], **retry: Any) -> tuple[dict[str, Any], Simulator]:
    """Post the partner's sample case with ``misbehaviour`` queued; return the final delivery."""
    async with Simulator(partner) as sim:
        for b in misbehaviour:
            sim.misbehave(**b)
        settings = settings_for(tmp_path, db_url, {partner: sim.url(default_partner_path(partner))})
        if retry:
            p = settings.partners[partner]
            p = p.model_copy(update={"retry": p.retry.model_copy(update=retry)})
            settings = settings.model_copy(update={"partners": {partner: p}})
        async with Gateway(settings) as gw:
            status, doc = await gw.post_case(samples[CASES[partner]])
            assert status == 202, doc
            final = await gw.wait_final(doc["id"], timeout=30)
    [d] = [d for d in final["deliveries"] if d["partner"] == partner]
    return d, sim


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("partner", ["national", "tianjin", "hebei"])
async def test_a_redirect_is_never_followed(tmp_path: Path, samples: dict[str, Any],
                                            partner: str, status: int) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Elsewhere() as evil:
        d, sim = await run_case(db_url, tmp_path, samples, partner,
                                dict(mode="redirect", status=status, location=evil.url(),
                                     count=-1))
    assert evil.requests == [], "the case (or a GET for it) reached the redirect's target"
    assert d["state"] == "dead" and d["receiptNo"] is None
    assert f"HTTP {status} redirect" in d["lastMessage"] and "127.0.0.1" in d["lastMessage"]
    assert d["attempts"] == 1  # permanent: a configuration error, not worth retrying


async def test_redirect_on_both_engines(db_url: str, tmp_path: Path,
                                        samples: dict[str, Any]) -> None:
    async with Elsewhere() as evil:
        d, _ = await run_case(db_url, tmp_path, samples, "hebei",
                              dict(mode="redirect", status=307, location=evil.url(), count=-1))
    assert evil.requests == []
    assert d["state"] == "dead" and "redirects are never followed" in d["lastMessage"]


@pytest.mark.parametrize("partner", ["national", "tianjin", "hebei"])
async def test_a_reply_in_two_pieces_is_read_whole(db_url: str, tmp_path: Path,
                                                   samples: dict[str, Any], partner: str) -> None:
    d, sim = await run_case(db_url, tmp_path, samples, partner,
                            dict(mode="split", delay=0.3))
    assert d["state"] == "delivered" and d["attempts"] == 1, d
    assert d["receiptNo"] == sim.state.messages[0].receipt_no


@pytest.mark.parametrize("partner", ["national", "hebei"])
async def test_an_oversized_reply_is_cut_off_while_read(tmp_path: Path, samples: dict[str, Any],
                                                        partner: str) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    d, _ = await run_case(db_url, tmp_path, samples, partner,
                          dict(mode="oversized", size=100 * 1024 * 1024))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert d["state"] == "delivered" and d["attempts"] == 2, d
    first = d["history"][0]
    assert first["outcome"] == "retryable" and "1048576-byte limit" in first["message"]
    assert grown_mb < 50, f"peak memory grew {grown_mb:.0f} MB for a 100 MB reply"


async def test_a_declared_oversized_reply_is_refused_before_reading(
        tmp_path: Path, samples: dict[str, Any]) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    d, _ = await run_case(db_url, tmp_path, samples, "national",
                          dict(mode="oversized", size=5 * 1024 * 1024, status=200))
    assert d["state"] == "delivered" and "byte limit" in d["history"][0]["message"]


@pytest.mark.parametrize("partner", ["national", "hebei"])
async def test_a_deeply_nested_reply_is_malformed_not_a_crash(
        db_url: str, tmp_path: Path, samples: dict[str, Any], partner: str) -> None:
    d, _ = await run_case(db_url, tmp_path, samples, partner, dict(mode="deep", size=100_000))
    assert d["state"] == "delivered" and d["attempts"] == 2, d
    first = d["history"][0]
    assert first["outcome"] == "retryable" and "malformed reply" in first["message"]
    assert "RecursionError" not in first["message"] and "Traceback" not in first["message"]


def hebei_reply(code: str, receipt: str | None) -> str:
    body = (f'<hb:SubmitCaseResponse xmlns:hb="{HB}"><hb:resultCode>{code}</hb:resultCode>'
            f'<hb:resultMessage>x</hb:resultMessage>'
            + (f"<hb:receiptNo>{receipt}</hb:receiptNo>" if receipt else "")
            + "</hb:SubmitCaseResponse>")
    return (f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{soap.SOAP12_NS}">'
            f"<soap:Body>{body}</soap:Body></soap:Envelope>")


def national_reply(code: str, receipt: str | None) -> str:
    return json.dumps({"code": code, "msg": "x", "data": {"receiptNo": receipt}})


REPLY = {"national": (national_reply, "application/json", "0"),   # reply, type, success code
         "hebei": (hebei_reply, "application/soap+xml", "0000")}


@pytest.mark.parametrize("partner", ["national", "hebei"])
async def test_an_overlong_partner_code_is_bounded_and_parked(
        db_url: str, tmp_path: Path, samples: dict[str, Any], partner: str) -> None:
    make, ctype, _ = REPLY[partner]
    d, _ = await run_case(db_url, tmp_path, samples, partner,
                          dict(mode="raw", body=make("E" * 500, None), content_type=ctype))
    # the unknown code is a permanent rejection: parked once, not stuck in flight forever
    assert d["state"] == "dead" and d["attempts"] == 1, d
    assert len(d["lastCode"]) == 64 and d["lastCode"].endswith("…[truncated]")


@pytest.mark.parametrize("partner", ["national", "hebei"])
async def test_an_overlong_receipt_is_a_malformed_reply(
        db_url: str, tmp_path: Path, samples: dict[str, Any], partner: str) -> None:
    make, ctype, success = REPLY[partner]
    d, sim = await run_case(db_url, tmp_path, samples, partner,
                            dict(mode="raw", body=make(success, "R" * 300), content_type=ctype))
    assert d["state"] == "delivered" and d["attempts"] == 2, d
    assert "receipt number of 300 characters" in d["history"][0]["message"]
    assert d["receiptNo"] == sim.state.messages[-1].receipt_no


async def test_a_utf16_reply_with_a_doctype_is_refused(db_url: str, tmp_path: Path,
                                                       samples: dict[str, Any]) -> None:
    doc = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE e SYSTEM "/etc/passwd">'
           + hebei_reply("0000", "HB1")[len('<?xml version="1.0" encoding="utf-8"?>'):])
    body = base64.b64encode(doc.encode("utf-16")).decode()
    d, _ = await run_case(db_url, tmp_path, samples, "hebei",
                          dict(mode="raw", body_b64=body, content_type="application/soap+xml"))
    assert d["state"] == "delivered" and d["attempts"] == 2, d
    assert d["receiptNo"] != "HB1"
    assert "DOCTYPE" in d["history"][0]["message"]
