"""Dead letters and partners: what an operator drains after an outage and watches during one.

Dead letters are read and acted on through the same store functions as the admin API
(:class:`gateway.store.dlq.DeadLetters`): replay (optionally with the current mapping version)
and discard, of the selected letters or of all that match the filter, each recorded in
``operator_actions`` and the audit log with the operator's name (``console:<user>``) and the
reason given. Viewers see the list; operators and engineers act.

Partners: each configured partner's breaker as all instances share it (the database rows),
deliveries in flight and pending and dead, latency percentiles and error rate of the last hour's
attempts and the last failures (the partner's messages scrubbed of ID and phone numbers).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from gateway.api import params
from gateway.api.keys import SETTINGS, STORE, WORKER
from gateway.console.auth import Session
from gateway.console.web import FormError, choice, fields, page, render, scrub
from gateway.delivery.gates import shared_breakers
from gateway.store.breakers import BreakerRows
from gateway.store.console_queries import partner_figures
from gateway.store.dlq import DeadLetterFilter, DeadLetters
from gateway.store.states import OPEN_STATES, DeliveryState
from gateway.views import beijing_iso, breaker_doc, dead_letter_doc

LIST_LIMIT = 200
MAX_REASON = 1000
_NAME = params.text(64)
FILTER = {"partner": _NAME, "code": _NAME, "applicationNo": params.application_no}


def actor(session: Session) -> str:
    """Who acted, as operator_actions and the audit log keep it."""
    return f"console:{session.user}"[:128]


def _filter(q: dict[str, str]) -> DeadLetterFilter:
    return DeadLetterFilter(partner=q.get("partner"), code=q.get("code"),
                            application_no=q.get("applicationNo"), everything=True)


@page("viewer")
async def dead_letters(request: web.Request, session: Session) -> web.Response:
    q = fields(request.query, FILTER, frozenset({"lang", "done"}))
    found = await DeadLetters(request.app[STORE]).find(_filter(q), limit=LIST_LIMIT)
    rows = [{**dead_letter_doc(x.application_no, x.delivery),
             "lastMessage": scrub(x.delivery.last_message),
             "updated": beijing_iso(x.delivery.updated_at)[:19].replace("T", " ")}
            for x in found]
    return render(request, "dead_letters.html", {
        "q": q, "rows": rows, "limit": LIST_LIMIT, "done": request.query.get("done"),
        "partners": sorted(request.app[SETTINGS].partners)}, session=session)


@page("viewer")
async def dead_letter(request: web.Request, session: Session) -> web.Response:
    delivery_id = params.case_id(request.match_info["delivery_id"])  # a UUID, or 404
    store = DeadLetters(request.app[STORE])
    found = await store.find(DeadLetterFilter(ids=(delivery_id,)), limit=1)
    if not found:
        raise web.HTTPNotFound(text=f"no dead letter {delivery_id}")
    x = found[0]
    case = await request.app[STORE].get_case(x.delivery.case_id, with_history=True)
    history = next((d.history for d in case.deliveries if d.id == delivery_id), []) \
        if case is not None else []
    doc = dead_letter_doc(x.application_no, x.delivery, await store.actions(delivery_id))
    doc["lastMessage"] = scrub(doc["lastMessage"])
    return render(request, "dead_letter.html", {
        "d": doc, "caseId": x.delivery.case_id,
        "history": [{**{k: beijing_iso(v) for k, v in h.items()},
                     "message": scrub(h.get("message"))} for h in history]},
        session=session)


ACT = {**FILTER, "action": choice({"replay", "discard"}), "scope": choice({"selected", "all"}),
       "reason": params.text(MAX_REASON), "currentMapping": choice({"1", "on"}),
       "ids": lambda v: None if params.is_case_id(v) else "not a delivery id (a UUID)"}


@page("operator")
async def act(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    ids = [v for v in form.getall("ids", []) if isinstance(v, str)]
    if len(ids) > 1000:
        raise FormError("ids", f"{len(ids)} selected; at most 1000 at once")
    bad = next((i for i in ids if not params.is_case_id(i)), None)
    if bad is not None:
        raise FormError("ids", f"{ascii(bad)[:40]} is not a delivery id (a UUID)")
    rest = {k: v for k, v in form.items() if k != "ids"}
    f = fields(rest, ACT, frozenset({"csrf"}))
    if "reason" not in f or not f["reason"].strip():
        raise FormError("reason", "say why (it is kept in the audit trail)")
    if f.get("scope", "selected") == "selected":
        if not ids:
            raise FormError("ids", "select at least one dead letter (or act on all matching)")
        target = DeadLetterFilter(ids=tuple(ids))
    else:
        target = _filter(f)
    letters = DeadLetters(request.app[STORE])
    if f.get("action") == "discard":
        done = await letters.discard(target, actor=actor(session), reason=f["reason"])
    elif f.get("action") == "replay":
        done = await letters.replay(target, actor=actor(session), reason=f["reason"],
                                    current_mapping=bool(f.get("currentMapping")))
        if done and WORKER in request.app:
            request.app[WORKER].notify()
    else:
        raise FormError("action", "choose replay or discard")
    raise web.HTTPSeeOther(f"/console/dead-letters?done={len(done)}")


def _seconds(v: float | None) -> str:
    return "–" if v is None else f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"


@page("viewer")
async def partners(request: web.Request, session: Session) -> web.Response:
    settings = request.app[SETTINGS]
    store = request.app[STORE]
    breakers = await shared_breakers(BreakerRows(store), settings.partners)
    counts = await store.delivery_counts(OPEN_STATES)  # the backlog: never the whole history
    figures = await partner_figures(store, datetime.now(UTC) - timedelta(hours=1))
    rows: list[dict[str, Any]] = []
    for name in sorted(settings.partners):
        fig = figures.get(name)
        rate = fig.error_rate if fig is not None else None
        rows.append({
            "name": name, "breaker": breaker_doc(breakers[name].to_dict()),
            "inFlight": counts.get((name, DeliveryState.IN_FLIGHT), 0),
            "pending": counts.get((name, DeliveryState.PENDING), 0),
            "dead": counts.get((name, DeliveryState.DEAD), 0),
            "sends": fig.sends if fig else 0,
            "latency": f"{_seconds(fig.p50 if fig else None)} / "
                       f"{_seconds(fig.p95 if fig else None)}",
            "errorRate": "–" if rate is None else f"{rate:.0%}",
            "failures": [{"at": beijing_iso(x.at)[:19].replace("T", " "),
                          "deliveryId": x.delivery_id, "outcome": x.outcome,
                          "http": x.http_status, "code": x.code, "message": scrub(x.message)}
                         for x in (fig.failures if fig else [])]})
    return render(request, "partners.html", {"rows": rows}, session=session)


__all__ = ["act", "actor", "dead_letter", "dead_letters", "partners"]
