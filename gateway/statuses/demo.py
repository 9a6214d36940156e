"""The demo's second half: statuses come back (``gateway demo``, ``./run.sh``).

Each partner simulator is told where the gateway's callback endpoint for it is, and with which
credentials (the gateway's ``partners.<name>.inbound``); each case part it received is walked
through a realistic path on the simulator (``/__sim/walk``: ``approved``, the last one
``denied``), so the simulator calls the gateway back in its own contract, step by step. The
demo then waits until the city-platform simulator holds every final status (without a city
platform configured: until the gateway's case view shows them) and prints per case and partner
the final status, the result and what the city platform received.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from rich.console import Console
from rich.table import Table

from gateway.config import InboundSettings, Settings
from gateway.status import TERMINAL
from gateway.statuses import hebei, national, tianjin
from gateway.statuses.receive import PUSH_PARTNER

PUSH_RECEIVER = PUSH_PARTNER
CALLBACK_PATHS = {national.PARTNER: national.PATH, tianjin.PARTNER: tianjin.PATH,
                  hebei.PARTNER: hebei.PATH}
_TERMINAL = {str(s) for s in TERMINAL}


def callback_auth(partner: str, inbound: InboundSettings) -> dict[str, Any]:
    """The simulator's ``callback_auth`` for the credentials the gateway expects."""
    if partner == national.PARTNER:
        return {"app_id": inbound.app_id}
    if partner == tianjin.PARTNER:
        return {"auth_code": inbound.auth_code}
    return {"username": inbound.username, "password": inbound.password}


def _root(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


async def _json(http: aiohttp.ClientSession, method: str, url: str,
                doc: dict[str, Any] | None = None) -> Any:
    async with http.request(method, url, json=doc) as r:
        return await r.json(content_type=None)


async def walk_statuses(settings: Settings, base: str, finals: dict[str, dict[str, Any]],
                        partners: list[str], receiver: str | None, timeout: float,
                        console: Console, *, middlewares: tuple[Any, ...] = ()) -> bool:
    """Walk every delivered case part on its simulator and follow the statuses home; True when
    every final status arrived (at the city platform when one is configured)."""
    targets = [(sample, case, d) for sample, case in finals.items() for d in case["deliveries"]
               if d["state"] == "delivered" and d["partner"] in partners
               and d["partner"] in CALLBACK_PATHS and d["receiptNo"]
               and settings.partners[d["partner"]].inbound is not None]
    if not targets:
        return True
    # ``middlewares`` sign the gateway's case reads as the demo's caller (gateway/demo.py)
    async with aiohttp.ClientSession(middlewares=middlewares) as http:
        # a part delivered by an earlier run (./data keeps the database; the simulators keep
        # nothing) is not known to this run's simulator: nothing can walk it, so it is left out
        held: set[str] = set()
        for p in {d["partner"] for _, _, d in targets}:
            doc = await _json(http, "GET", _root(settings.partners[p].url) + "/__sim/cases")
            held |= {str(c.get("receipt")) for c in doc.get("cases", [])}
        earlier = len(targets)
        targets = [t for t in targets if t[2]["receiptNo"] in held]
        earlier -= len(targets)
        if earlier:
            console.print(f"{earlier} case part(s) were delivered by an earlier run (the "
                          "database in the data folder keeps them; this run's simulators do not "
                          "know them): not walked again")
        if not targets:
            return True
        for p in {d["partner"] for _, _, d in targets}:
            inbound = settings.partners[p].inbound
            assert inbound is not None
            await _json(http, "POST", _root(settings.partners[p].url) + "/__sim/config",
                        {"callback_url": base + CALLBACK_PATHS[p],
                         "callback_auth": callback_auth(p, inbound)})
        walked: dict[str, tuple[str, str, bool]] = {}
        # one clock for every walk: each part's steps happen after the previous part's (the
        # partners' times order the city platform's view of a bundle)
        start = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0)
        for n, (_, _, d) in enumerate(targets):
            path = "denied" if n == len(targets) - 1 else "approved"
            doc = await _json(http, "POST", _root(settings.partners[d["partner"]].url)
                              + "/__sim/walk", {"receipt": d["receiptNo"], "path": path,
                                                "start": (start + timedelta(seconds=5 * n + 1))
                                                .isoformat(), "step_seconds": 1})
            sent = doc.get("callbacks") or []
            walked[d["id"]] = (path, str((doc.get("case") or {}).get("status", "?")),
                               bool(sent) and all(c.get("ok") for c in sent))
        city_url = _root(settings.partners[receiver].url) + "/__sim/state" if receiver else None
        deadline = time.monotonic() + timeout
        with console.status("statuses coming back: partners → gateway → city platform"):
            while True:
                views = {case["id"]: await _json(http, "GET", f"{base}/api/v1/cases/{case['id']}")
                         for _, case, _ in targets}
                city = (await _json(http, "GET", city_url))["cases"] if city_url else {}
                rows, done = _rows(targets, views, city, walked, receiver is not None)
                if done or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
    _print(rows, receiver, console)
    return done


def _rows(targets: list[tuple[str, dict[str, Any], dict[str, Any]]],
          views: dict[str, Any], city: dict[str, Any], walked: dict[str, tuple[str, str, bool]],
          with_city: bool) -> tuple[list[dict[str, str]], bool]:
    rows, done = [], True
    for sample, case, d in targets:
        view: dict[str, Any] = next((x for x in views[case["id"]].get("deliveries", [])
                                     if x["id"] == d["id"]),
                    {})
        status = view.get("partnerStatus") or "-"
        path, code, ok = walked[d["id"]]
        got = city.get(case["applicationNo"]) or {}
        items = [got.get("items", {}).get(i) for i in d["items"]]
        arrived = all(i is not None and i.get("status") == status for i in items)
        done &= ok and status in _TERMINAL and (arrived or not with_city)
        first = items[0] if items and items[0] else {}
        bundle = got.get("bundle") or {}
        if not with_city:
            item_seen, bundle_seen, events = "no city platform configured", "", ""
        elif not got:
            item_seen, bundle_seen, events = "nothing yet", "", ""
        else:
            item_seen = f"{first.get('status', '-')} {first.get('result') or ''}".rstrip()
            bundle_seen = f"{bundle.get('status', '-')} {bundle.get('result') or ''}".rstrip()
            events = str(got.get("events", 0))
        rows.append({"sample": sample, "target": f"{d['partner']} (item {','.join(d['items'])})",
                     "walk": f"{path} → {code}" + ("" if ok else " (callback refused)"),
                     "status": status, "result": str(first.get("result") or "-"),
                     "city_item": item_seen, "city_bundle": bundle_seen, "city_events": events,
                     "ok": "yes" if status in _TERMINAL and (arrived or not with_city) else ""})
    return rows, done


def _print(rows: list[dict[str, str]], receiver: str | None, console: Console) -> None:
    """One line per case part, narrow enough for a terminal of 120 columns: the walk at the
    partner (path → the partner's final code), the gateway's final status and result, whether
    the city platform holds the same for the item (``same``, else what it holds), the case's
    bundle status there, and the number of status events it received for the case."""
    table = Table(title="Statuses back from the partners"
                  + (" and at the city platform" if receiver else ""))
    table.add_column("sample", no_wrap=True, max_width=20, overflow="ellipsis")
    for name in ("partner", "walked", "gateway", "city: item", "city: bundle", "events"):
        table.add_column(name, justify="right" if name == "events" else "left")
    for r in rows:
        style = "green" if r["ok"] else "red"
        final = f"{r['status']} {r['result'] if r['result'] != '-' else ''}".rstrip()
        item = "same" if r["city_item"] == final else r["city_item"]
        table.add_row(r["sample"], r["target"], r["walk"], f"[{style}]{final}[/]", item,
                      r["city_bundle"], r["city_events"])
    console.print(table)
