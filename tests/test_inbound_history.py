"""An inbound case's status history (issue 15): ``GET /api/v1/inbound-cases/{receiptNo}/statuses``
on both engines, real sockets. Tianjin submits a case (raw SOAP 1.1), the city platform reports
statuses (one moving the case, one finishing it, the same event again, an older one), and the
history shows each stored event once, in order, with what became of it and the state of its
notification to Tianjin. x-tif as the other inbound-case routes: unsigned 401, a caller with
neither ``inbound.status`` nor ``read_any`` 403 naming it, an unknown receipt 404; all problem
documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.protocols.tif import TifSigner
from tests.harness import signed_headers, wait_until
from tests.test_inbound import raw_submit, tianjin_envelope, tianjin_package
from tests.test_inbound_status import CITY_PATH, Env, _all_sent, event, status_env

SUBMITTER = TifSigner("BJ-SUBMIT-ONLY", "submit-only-caller-token-for-tests")


def _submit_only(raw: dict[str, Any]) -> None:
    raw["callers"]["submit-only"] = {"paasid": SUBMITTER.paasid, "token": SUBMITTER.token,
                                     "permissions": ["submit", "read"], "items": ["*"],
                                     "regions": ["*"]}


async def history(env: Env, receipt: str, headers: dict[str, str] | None
                  ) -> tuple[int, str, dict[str, Any]]:
    from tests.test_inbound_status import STATUS_CALLER
    async with env.http.get(env.url(f"{CITY_PATH}/{receipt}/statuses"), headers=(
            STATUS_CALLER.headers() if headers is None else headers)) as r:
        doc: dict[str, Any] = await r.json(content_type=None)
        return r.status, r.content_type, doc


async def test_history_shows_each_event_its_notification_and_refuses(tmp_path: Path,
                                                             db_url: str) -> None:
    async with status_env(tmp_path, db_url, _submit_only) as env:
        _, answer = await raw_submit(env, tianjin_envelope(tianjin_package()))  # type: ignore[arg-type]
        assert answer is not None and answer.findtext("CODE") == "0"
        receipt = answer.findtext("SLBH") or ""

        status, _, doc = await history(env, receipt, None)  # nothing reported yet
        assert status == 200, doc
        assert (doc["data"]["status"], doc["data"]["statuses"]) == (None, [])
        assert doc["data"]["partner"] == "tianjin"
        assert doc["data"]["partnerCaseNo"] == "TJ2026120100000001"

        for ev in (event("EV-1", "ACCEPTED", "2026-12-02T09:00:00+08:00"),
                   event("EV-2", "FINISHED", "2026-12-02T10:30:00+08:00", result="APPROVED",
                         message="准予许可"),
                   event("EV-2", "FINISHED", "2026-12-02T10:30:00+08:00", result="APPROVED"),
                   event("EV-0", "ACCEPTED", "2026-12-02T08:00:00+08:00")):
            assert (await env.report(receipt, ev))[0] == 200
        await wait_until(lambda: _all_sent(env), 10, "the notifications delivered")

        status, ctype, doc = await history(env, receipt, None)
        assert (status, ctype) == (200, "application/json"), doc
        data = doc["data"]
        assert (data["receiptNo"], data["status"], data["result"]) == \
            (receipt, "FINISHED", "APPROVED")
        assert data["statusAt"].startswith("2026-12-02T02:30:00")  # stored in UTC
        got = [(s["eventId"], s["status"], s["result"], s["applied"], s["flag"])
               for s in data["statuses"]]
        assert got == [("EV-1", "ACCEPTED", None, True, None),
                       ("EV-2", "FINISHED", "APPROVED", True, None),
                       ("EV-0", "ACCEPTED", None, False, "regression")]  # the repeat: once
        one, two, old = data["statuses"]
        assert two["message"] == "准予许可" and two["reportedBy"] == "city-status"
        for s in (one, two):
            assert s["notification"]["partner"] == "tianjin-status"
            assert s["notification"]["state"] == "delivered"
        assert old["notification"] is None  # a change that moved nothing is not sent

        # an operator's console (read_any: the harness's caller) reads it too
        status, _, doc = await history(env, receipt, signed_headers())
        assert status == 200 and len(doc["data"]["statuses"]) == 3

        # refusals: problem documents, nothing about the case given away
        status, ctype, doc = await history(env, receipt, {})
        assert (status, ctype) == (401, "application/problem+json"), doc
        status, ctype, doc = await history(env, receipt, SUBMITTER.headers())
        assert (status, ctype) == (403, "application/problem+json"), doc
        assert doc["caller"] == "submit-only" and "inbound.status" in doc["detail"]
        for unknown in ("BJSL" + "0" * 28, "x" * 300, "%E4%B8%AD%20'%22;--", "..%2F..%2Fetc"):
            status, ctype, doc = await history(env, unknown, None)
            assert (status, ctype) == (404, "application/problem+json"), (unknown, doc)
        # the POST route next door still needs inbound.status, and a GET of it is no route
        async with env.http.get(env.url(f"{CITY_PATH}/{receipt}/status"),
                                headers=signed_headers()) as r:
            assert r.status == 405
