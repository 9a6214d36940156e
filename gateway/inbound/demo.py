"""The demo's inbound part: Tianjin submits a case to Beijing (``gateway demo``, ``./run.sh``).

A SOAP 1.1 ``submitCase`` is written as Tianjin's system would (InboundService.wsdl, the inner
PACKAGE declared GBK, the authCode the gateway issued Tianjin) and posted to the gateway's
``/soap/tianjin/cases`` twice: the first gets a receipt (SLBH), the resend the same one. The
demo then waits until the city-platform simulator has received the case (through the outbox,
x-tif signed) and prints both sides. Each run submits a new application number, so a second
run on the same data folder shows the whole path again.

Then, as the city platform (a configured caller with ``inbound.status``), it reports ACCEPTED
and FINISHED/APPROVED for that case (``POST /api/v1/inbound-cases/{receiptNo}/status``) and
waits until Tianjin's simulator has received both as ``notifyStatus`` (partner
``tianjin-status``, through the outbox), printing what arrived.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from lxml import etree
from rich.console import Console
from rich.table import Table

from gateway.config import Settings
from gateway.inbound.service import PUSH_PARTNER
from gateway.inbound.tianjin import PATH, TNS
from gateway.protocols import soap
from gateway.protocols import xml as safexml
from gateway.protocols.tif import TifSigner
from gateway.store.inbound_status import notify_partner

PARTNER = "tianjin"
BEIJING = timezone(timedelta(hours=8))


def runnable(settings: Settings) -> bool:
    """Shown when Tianjin may call (its authCode and submit list) and the city platform's
    inbound intake is simulated on this machine."""
    tj, city = settings.partners.get(PARTNER), settings.partners.get(PUSH_PARTNER)
    return (tj is not None and tj.inbound is not None and tj.inbound.auth_code is not None
            and tj.inbound.submit is not None and city is not None
            and urlsplit(city.url).hostname in ("127.0.0.1", "localhost"))


def demo_package(sblsh: str, now: datetime) -> str:
    """A synthetic Tianjin PACKAGE (package.xsd): one item handled in Beijing's Chaoyang."""
    pkg = etree.Element("PACKAGE")
    head = etree.SubElement(pkg, "PACKAGEHEAD")
    for tag, value in (("SJBBH", f"TJ-SJ-{sblsh[-10:]}"), ("XZBH", "BJTJ-XZ-2024-001"),
                       ("FSFBM", "120000000000"), ("JSFBM", "110000000000"),
                       ("FSSJ", now.strftime("%Y%m%d%H%M%S")), ("JLS", "1")):
        etree.SubElement(head, tag).text = value
    rec = etree.SubElement(etree.SubElement(pkg, "DATA"), "RECORD")
    for tag, value in (("SBLSH", sblsh), ("SXXH", "1"),
                       ("SXBM", "11120116MB1A23456X000134023000001"), ("SXJBBM", "000134023000"),
                       ("SXMC", "养老保险关系转移接续申请"), ("SQRLX", "1"), ("SQRMC", "测试甲"),
                       ("SQRZJLX", "10"), ("SQRZJHM", "120116198506112342"),
                       ("LXDH", "13800000001"), ("SBSJ", now.strftime("%Y-%m-%d %H:%M:%S")),
                       ("SBQD", "WEB"), ("SLDQDM", "120116000000"), ("KYMS", "1"),
                       ("XZQHDM", "110105000000"), ("BLBM", "北京市朝阳区社会保险事业管理中心")):
        etree.SubElement(rec, tag).text = value
    return etree.tostring(pkg, encoding="GBK", xml_declaration=True).decode("gb18030")


def _envelope(auth_code: str, xml_data: str) -> bytes:
    call = etree.Element(etree.QName(TNS, "submitCase"), nsmap={"tns": TNS})
    etree.SubElement(call, "authCode").text = auth_code
    etree.SubElement(call, "xmlData").text = xml_data
    return soap.build_envelope(soap.SOAP11, call)


async def _submit(http: aiohttp.ClientSession, url: str, body: bytes) -> dict[str, str]:
    async with http.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"}) as r:
        env = soap.parse_envelope(await r.read())
    ret = env.body[0].findtext("return") if env.body else None
    result = safexml.parse_text(ret or "<RESULT/>")
    return {k: result.findtext(k) or "" for k in ("CODE", "MSG", "SLBH")}


async def _city_cases(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    u = urlsplit(url)
    async with http.get(f"{u.scheme}://{u.netloc}/__sim/state") as r:
        got: dict[str, Any] = (await r.json()).get("inboundCases", {})
        return got


async def show_inbound(settings: Settings, base: str, timeout: float, console: Console) -> bool:
    """Submit one Tianjin case (and its resend) and follow it to the city platform; True when it
    arrived (or nothing was to be shown)."""
    if not runnable(settings):
        return True
    inbound = settings.partners[PARTNER].inbound
    assert inbound is not None and inbound.auth_code is not None
    city_url = settings.partners[PUSH_PARTNER].url
    now = datetime.now(BEIJING)
    sblsh = f"TJ{now.strftime('%Y%m%d%H%M%S')}{secrets.randbelow(10_000):04d}"
    body = _envelope(inbound.auth_code, demo_package(sblsh, now))
    console.rule("[bold]Tianjin submits a case to Beijing (inbound)")
    async with aiohttp.ClientSession() as http:
        before = (await _city_cases(http, city_url)).get("unique", 0)
        first = await _submit(http, base + PATH, body)
        again = await _submit(http, base + PATH, body)
        deadline = time.monotonic() + timeout
        city = await _city_cases(http, city_url)
        while city.get("unique", 0) <= before and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            city = await _city_cases(http, city_url)
    arrived = city.get("unique", 0) - before
    table = Table(title=f"Inbound: Tianjin submitCase at {PATH} → city-platform simulator")
    for col in ("call", "CODE", "SLBH (Beijing's receipt)", "MSG"):
        table.add_column(col, no_wrap=col != "MSG")
    table.add_row(f"submitCase SBLSH {sblsh}", first["CODE"], first["SLBH"], first["MSG"])
    table.add_row("the same case again (resend)", again["CODE"], again["SLBH"], again["MSG"])
    table.add_row("city platform: inbound cases received", str(arrived), "", "")
    console.print(table)
    ok = first["CODE"] == "0" and again["SLBH"] == first["SLBH"] and arrived == 1
    if not ok:
        console.print("  [red]the inbound case did not reach the city platform exactly once")
        return False
    return await show_statuses(settings, base, first["SLBH"], timeout, console)


def status_reporter(settings: Settings) -> TifSigner | None:
    """The city platform's signer for status reports: a configured caller with
    ``inbound.status`` (None: none is configured)."""
    for c in settings.callers.values():
        if "inbound.status" in c.permissions:
            return TifSigner(c.paasid, c.token)
    return None


async def _notifications(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    u = urlsplit(url)
    async with http.get(f"{u.scheme}://{u.netloc}/__sim/state") as r:
        got: dict[str, Any] = (await r.json()).get("notifications", {})
        return got


async def show_statuses(settings: Settings, base: str, receipt: str, timeout: float,
                        console: Console) -> bool:
    """Report ACCEPTED and FINISHED for the inbound case as the city platform and follow both
    to Tianjin's simulator; True when each arrived once (or nothing was to be shown)."""
    notify = settings.partners.get(notify_partner(PARTNER))
    signer = status_reporter(settings)
    if notify is None or signer is None or urlsplit(notify.url).hostname not in ("127.0.0.1",
                                                                                 "localhost"):
        return True
    now = datetime.now(BEIJING).replace(microsecond=0)
    events = [{"eventId": f"DEMO-{receipt[-12:]}-1", "status": "ACCEPTED",
               "occurredAt": now.isoformat(), "message": "材料齐全，予以受理"},
              {"eventId": f"DEMO-{receipt[-12:]}-2", "status": "FINISHED", "result": "APPROVED",
               "occurredAt": (now + timedelta(seconds=1)).isoformat(), "message": "准予许可"}]
    url = f"{base}/api/v1/inbound-cases/{receipt}/status"
    answers = []
    async with aiohttp.ClientSession() as http:
        before = (await _notifications(http, notify.url)).get("unique", 0)
        for e in events:
            async with http.post(url, json=e, headers=signer.headers()) as r:
                answers.append((r.status, await r.json(content_type=None)))
        deadline = time.monotonic() + timeout
        got = await _notifications(http, notify.url)
        while got.get("unique", 0) < before + len(events) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            got = await _notifications(http, notify.url)
    table = Table(title="Inbound statuses: city platform → gateway → Tianjin notifyStatus")
    for col in ("city platform reports", "gateway", "Tianjin receives (BLZT BLSJ BJJG)"):
        table.add_column(col)
    fresh = [n for n in got.get("records", []) if n.get("records")
             and n["records"][0].get("SLBH") == receipt]
    # in the order they happened (two deliveries may arrive in either order)
    seen = sorted((" ".join(filter(None, (r.get("BLZT"), r.get("BLSJ"), r.get("BJJG"))))
                   for n in fresh for r in n["records"]), key=lambda t: t.split(" ", 1)[-1])
    for i, (e, (status, doc)) in enumerate(zip(events, answers, strict=True)):
        data = doc.get("data") or {}
        table.add_row(f"{e['status']} {e.get('result') or ''}".strip(),
                      f"HTTP {status}, " + ("applied" if data.get("applied") else
                                             str(data.get("flag") or doc.get("detail"))),
                      seen[i] if i < len(seen) else "-")
    console.print(table)
    ok = all(status == 200 for status, _ in answers) and len(fresh) == len(events)
    if not ok:
        console.print("  [red]Tianjin did not receive each status exactly once")
    return ok


__all__ = ["demo_package", "runnable", "show_inbound", "show_statuses", "status_reporter"]
