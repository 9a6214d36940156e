"""Cases: the search page and one case's timeline, identity numbers masked everywhere.

The timeline is the case view the API gives (:func:`gateway.views.case_doc`, masked as for a
caller configured ``identity: masked``): intake, each delivery's routing (the rule that won is
stored with the delivery), each attempt (outcome, code, HTTP status and the partner's message),
status events and pushes, and the derived bundle status. Request and reply bytes are not stored
(the audit log keeps their SHA-256 and size, never a body), so the page shows what the
delivery's mapping renders from the stored case now, masked, and says so.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from gateway.api import params
from gateway.api.keys import CONTRACTS, SETTINGS, STORE
from gateway.console.playground import render_delivery
from gateway.console.web import FormError, choice, fields, page, pattern, render, scrub
from gateway.domain.deadlines import deadlines_for
from gateway.errors import ConfigError
from gateway.security.masking import mask_case, mask_values, sensitive_values
from gateway.status import CaseStatus, child_of, derive_bundle
from gateway.store.console_queries import CaseFilter, search_cases
from gateway.store.overdue import OverdueItems
from gateway.store.states import DeliveryState
from gateway.store.timeline import read_timeline
from gateway.views import BEIJING, beijing_iso, case_doc

PAGE_SIZE = 50
STATUSES = frozenset({s.value for s in DeliveryState} | {s.value for s in CaseStatus})
_DATE = pattern(r"\d{4}-\d{2}-\d{2}", "a date (YYYY-MM-DD)")
SEARCH = {
    "applicationNo": params.text(40), "applicant": params.text(64),
    "partner": params.text(64), "status": choice(STATUSES),
    "item": pattern(r"[A-Za-z0-9._-]{1,64}", "an item number"),
    "from": _DATE, "to": _DATE, "overdue": choice({"1", "on"}),
    "page": params.bounded_int(0, 1000),
}


def _day(value: str | None, name: str, plus: int = 0) -> datetime | None:
    if value is None:
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError as e:
        raise FormError(name, f"{value} is not a calendar date") from e
    return datetime.combine(d + timedelta(days=plus), time(), BEIJING)


def _applicant(body: dict[str, Any]) -> str:
    who = body.get("applicant")
    if not isinstance(who, dict):
        return ""
    name = who.get("name") if isinstance(who.get("name"), str) else ""
    masked = mask_case({"certNo": who.get("certNo")}, body)["certNo"]
    return f"{name} {masked}" if isinstance(masked, str) else str(name)


@page("viewer")
async def search(request: web.Request, session: Any) -> web.Response:
    # the form posts (an applicant's name or ID number never lands in a URL, hence in access
    # logs or the browser's history); plain links (no applicant) may use the query
    data = await request.post() if request.method == "POST" else request.query
    q = fields(data, SEARCH, frozenset({"lang", "csrf"}))
    start, end = _day(q.get("from"), "from"), _day(q.get("to"), "to", plus=1)
    overdue_ids: frozenset[str] | None = None
    settings = request.app[SETTINGS]
    if q.get("overdue"):
        try:
            table = deadlines_for(request.app[CONTRACTS].current.mappings.mappings_dir)
        except ConfigError as e:
            raise FormError("overdue", f"no deadlines to judge by: {e}") from e
        found = await OverdueItems(request.app[STORE], table).find(partner=q.get("partner"))
        overdue_ids = frozenset(o.case_id for o in found)
    f = CaseFilter(application_no=q.get("applicationNo"), applicant=q.get("applicant"),
                   partner=q.get("partner"), status=q.get("status"), item=q.get("item"),
                   received_from=start, received_to=end, case_ids=overdue_ids)
    pg = int(q.get("page", "0"))
    result = await search_cases(request.app[STORE], f, page=pg, page_size=PAGE_SIZE)
    rows = []
    for r in result.rows:
        bundle = derive_bundle([child_of(d) for d in r.deliveries], r.home_items)
        rows.append({"id": r.id, "applicationNo": r.application_no,
                     "received": beijing_iso(r.received_at)[:19].replace("T", " "),
                     "applicant": _applicant(r.body), "status": bundle.status.value,
                     "attention": bundle.needs_attention,
                     "partners": sorted({d.partner for d in r.deliveries})})
    base = {k: v for k, v in q.items() if k != "page"}
    return render(request, "cases.html", {
        "q": q, "rows": rows, "more": result.more, "capped": result.scan_capped,
        "page": pg, "base": base, "statuses": sorted(STATUSES),
        "partners": sorted(settings.partners)}, session=session)


@page("viewer")
async def timeline(request: web.Request, session: Any) -> web.Response:
    case_id = params.case_id(request.match_info["case_id"])
    store = request.app[STORE]
    c = await store.get_case(case_id, with_history=True)
    if c is None:
        raise web.HTTPNotFound(text=f"no case with id {case_id}")
    mappings = request.app[CONTRACTS].current.mappings
    doc = case_doc(c, mappings, timeline=await read_timeline(store, c.id), identity="masked")
    secrets = sensitive_values(c.body)
    requests = {}
    for d in c.deliveries:
        rendered = render_delivery(mappings, c.body, d)
        requests[d.id] = scrub(mask_values(rendered, secrets))
    for entry in doc["timeline"]:
        for h in next((d.get("history", []) for d in doc["deliveries"]
                       if d["id"] == entry.get("deliveryId")), []):
            if entry["kind"] == "attempt" and h.get("attempt_no") == entry.get("attempt"):
                entry["message"] = scrub(h.get("message"))
    return render(request, "timeline.html", {"c": doc, "requests": requests},
                  session=session)


__all__ = ["search", "timeline"]
