"""The mapping playground: a case (stored, or pasted), a mapping, and what the partner would get.

It uses the mappings as loaded (the registry the worker sends with, so the playground shows
what a send would carry), renders through the compiled mapping (``render``), validates against
the partner's schema (``validate_output``: every failing field, with the case field it came
from) and lists the case fields this delivery does not carry (``uncarried_fields``). Lines of
the rendered message naming a failing field are highlighted. Nothing is sent or stored.

An outbound mapping renders one delivery's view of the case (:func:`delivery_view`: the item
and region chosen, by default the first item handled outside Beijing, as ``gateway mapping
render`` does); an inbound mapping renders the pasted partner document (JSON or XML) as is.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from gateway.api import params
from gateway.api.keys import CONTRACTS, STORE
from gateway.console.web import FormError, choice, fields, page, pattern, render
from gateway.domain.regions import normalise as normalise_region
from gateway.errors import ConfigError, GatewayError
from gateway.mapping import CompiledMapping, MappingRegistry, OutputInvalid
from gateway.mapping.golden import DEFAULT_CONTEXT
from gateway.routing.view import delivery_view
from gateway.security.masking import mask_values, sensitive_values
from gateway.store.repository import DeliveryRecord

MAX_PASTE = 256 * 1024


def _pick_item(case: dict[str, Any], item_no: str | None, home: str) -> dict[str, Any]:
    items = [i for i in case.get("items") or [] if isinstance(i, dict)]
    if not items:
        raise FormError("item", "the case has no items")
    if item_no is not None:
        chosen = [i for i in items if str(i.get("itemNo")) == item_no]
        if not chosen:
            raise FormError("item", f"no item {item_no!r} in the case")
        return chosen[0]
    away = [i for i in items if not str(i.get("handlingRegion", "")).startswith(home)]
    return (away or items)[0]


def source_for(m: CompiledMapping, case: Any, item_no: str | None, region: str | None,
               home: str = "11") -> tuple[Any, dict[str, Any]]:
    """The document ``m`` renders and its context (the golden tests' context, this partner)."""
    ctx: dict[str, Any] = dict(DEFAULT_CONTEXT, partner=m.name.split("/")[0])
    if m.direction != "outbound" or not isinstance(case, dict):
        return case, ctx
    item = _pick_item(case, item_no, home)
    try:
        ctx["deliveryRegion"] = normalise_region(region or str(item.get("handlingRegion")))
        return delivery_view(case, [str(item.get("itemNo"))], ctx["deliveryRegion"]), ctx
    except (ValueError, KeyError, TypeError) as e:
        raise FormError("region", f"not a region code for this item: {e}") from e


def render_delivery(mappings: MappingRegistry, body: dict[str, Any], d: DeliveryRecord) -> str:
    """What ``d``'s mapping renders from ``body`` now, or why it cannot (for the timeline)."""
    try:
        m = mappings.get(d.mapping, d.mapping_version)
        source = delivery_view(body, d.item_nos, d.region)
        ctx = dict(DEFAULT_CONTEXT, partner=d.partner, caseId=d.case_id, deliveryId=d.id,
                   idempotencyKey=d.idempotency_key, deliveryRegion=d.region)
        return m.pretty(m.render(source, ctx))
    except (ConfigError, GatewayError, KeyError, TypeError, ValueError) as e:
        return f"({type(e).__name__}: {e})"


def _name(path: str) -> str | None:
    """The element or field a problem path ends with (``/a/b[2]/@c`` → ``c``, ``ns:b`` → ``b``)."""
    parts = [p for p in re.split(r"[/#]", path) if p]
    if not parts:
        return None
    name = re.sub(r"\[\d*\]$", "", parts[-1]).lstrip("@").split(":")[-1].split("}")[-1]
    return name if name and name != "(document)" else None


def highlight(text: str, problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rendered text as numbered lines, those naming a failing field marked (an XML start
    tag, an attribute or a JSON key of that name)."""
    names = {n for p in problems if (n := _name(str(p["path"]))) is not None}
    marks = [re.compile(rf'(<(\w+:)?{re.escape(n)}[\s/>])|("{re.escape(n)}"\s*:)|'
                        rf'(\s(\w+:)?{re.escape(n)}=["\'])') for n in names]
    return [{"no": i + 1, "text": line, "bad": any(m.search(line) for m in marks)}
            for i, line in enumerate(text.splitlines())]


FORM = {
    "mapping": pattern(r"[a-z0-9._/-]{1,128}", "a mapping name"),
    "version": pattern(r"[0-9A-Za-z._-]{1,32}", "a mapping version"),
    "applicationNo": params.application_no, "paste": lambda v: (
        f"is {len(v)} characters; at most {MAX_PASTE}" if len(v) > MAX_PASTE else None),
    "item": pattern(r"[A-Za-z0-9._-]{1,64}", "an item number"),
    "region": pattern(r"\d{2,12}", "a region code"),
    "source": choice({"stored", "pasted"}),
}


@page("engineer")
async def playground(request: web.Request, session: Any) -> web.Response:
    mappings = request.app[CONTRACTS].current.mappings
    names = mappings.names()
    context: dict[str, Any] = {"names": names, "f": {}, "result": None}
    if request.method == "POST":
        form = await request.post()
        f = fields(form, FORM, frozenset({"csrf"}))
        context["f"] = f
        context["result"] = await _run(request, mappings, f)
        template = "playground_result.html" if request.headers.get("HX-Request") \
            else "playground.html"
        return render(request, template, context, session=session)
    return render(request, "playground.html", context, session=session)


async def _run(request: web.Request, mappings: MappingRegistry,
               f: dict[str, str]) -> dict[str, Any]:
    if "mapping" not in f:
        raise FormError("mapping", "pick a mapping")
    try:
        m = mappings.get(f["mapping"], f.get("version"))
    except ConfigError as e:
        raise FormError("mapping", str(e)) from e
    secrets: dict[str, str] = {}
    if "applicationNo" in f:
        stored = await request.app[STORE].find_case_by_application_no(f["applicationNo"])
        if stored is None:
            raise FormError("applicationNo", f"no stored case {f['applicationNo']}")
        case: Any = stored.body
    elif "paste" in f:
        text = f["paste"].strip()
        try:
            case = json.loads(text) if text[:1] in "{[" else text
        except ValueError as e:
            raise FormError("paste", f"not JSON: {e}") from e
    else:
        raise FormError("applicationNo", "give an application number or paste a case")
    if isinstance(case, dict):
        secrets = sensitive_values(case)
    source, ctx = source_for(m, case, f.get("item"), f.get("region"))
    out: dict[str, Any] = {"mapping": m.name, "version": m.version, "problems": [],
                           "error": None, "lines": [], "uncarried": []}
    try:
        payload = m.render(source, ctx)
    except (GatewayError, ValueError) as e:
        out["error"] = mask_values(str(e), secrets)
        return out
    text = mask_values(m.pretty(payload), secrets)
    try:
        m.validate_output(payload, source)
    except OutputInvalid as e:
        located = list(e.located)
        out["problems"] = [mask_values({"path": p.where or p.target, "message": p.message,
                                        "sources": list(p.sources)}, secrets) for p in located] \
            or [{"path": p.path, "message": p.message, "sources": []} for p in e.problems]
    out["lines"] = highlight(text, out["problems"])
    out["uncarried"] = list(m.uncarried_fields(source if isinstance(source, dict) else None))
    return out


__all__ = ["highlight", "playground", "render_delivery", "source_for"]
