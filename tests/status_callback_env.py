"""A gateway on a real socket with one delivered case per partner (national, Tianjin, Hebei), for
the tests of the status callback endpoints; helpers that build each partner's callback by hand
(plain lxml and json, not the simulators' code)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree

from gateway.api.keys import STORE
from gateway.store.statuses import StatusEventRecord, StatusEvents
from tests.harness import Gateway, Simulator, db_rows, default_partner_path, settings_for

ROOT = Path(__file__).resolve().parent.parent
TJ = "http://exchange.zwfw.tj.example/"
HB = "http://zwfw.hebei.example/exchange/v1"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
          "#PasswordDigest")
PATHS = {"national": "/api/v1/partners/national/status", "tianjin": "/soap/tianjin/status",
         "hebei": "/soap/hebei/status"}
SAMPLES = {"national": "01-person-shanghai-social-security",
           "tianjin": "10-person-tianjin-social-security",
           "hebei": "11-company-hebei-branch-filing"}


@dataclass
class Part:
    """One delivered case part: what a partner would name it by."""

    case_id: str
    application_no: str
    receipt: str
    key: str
    item: str


@dataclass
class Env:
    gw: Gateway
    http: aiohttp.ClientSession
    db_url: str
    parts: dict[str, Part]
    max_body: int

    def url(self, partner: str, query: str = "") -> str:
        return str(self.gw.server.make_url(PATHS[partner])) + query

    async def post(self, partner: str, body: bytes, **headers: str) -> tuple[int, bytes]:
        ctype = {"national": "application/json; charset=utf-8",
                 "tianjin": "text/xml; charset=utf-8",
                 "hebei": "application/soap+xml; charset=utf-8"}[partner]
        async with self.http.post(self.url(partner), data=body,
                                  headers={"Content-Type": ctype, **headers}) as r:
            return r.status, await r.read()

    async def events(self, partner: str | None = None) -> int:
        sql = "SELECT count(*) FROM status_events" + (" WHERE partner = :p" if partner else "")
        return int((await db_rows(self.db_url, sql, p=partner))[0][0])

    async def history(self, partner: str) -> list[StatusEventRecord]:
        return [e for e in await StatusEvents(self.gw.app[STORE]).history(
            self.parts[partner].case_id) if e.partner == partner]


@asynccontextmanager
async def callback_env(tmp_path: Path, db_url: str, *, city: bool = False,
                       max_body: int = 64 * 1024) -> AsyncIterator[Env]:
    partners = ["national", "tianjin", "hebei"] + (["city"] if city else [])
    sims = {p: Simulator(p) for p in partners}
    for s in sims.values():
        await s.__aenter__()
    try:
        settings = settings_for(tmp_path, db_url,
                                {p: s.url(default_partner_path(p)) for p, s in sims.items()})
        settings = settings.model_copy(update={"server": settings.server.model_copy(
            update={"max_body_bytes": max_body})})
        async with Gateway(settings) as gw, aiohttp.ClientSession() as http:
            parts = {}
            for partner, name in SAMPLES.items():
                case = json.loads((ROOT / "samples" / "cases" / f"{name}.json")
                                  .read_text(encoding="utf-8"))
                status, accepted = await gw.post_case(case)
                assert status == 202, accepted
                doc = await gw.wait_final(accepted["id"])
                [d] = doc["deliveries"]
                assert (d["partner"], d["state"]) == (partner, "delivered"), d
                parts[partner] = Part(doc["id"], doc["applicationNo"], d["receiptNo"],
                                      d["idempotencyKey"], d["items"][0])
            yield Env(gw, http, db_url, parts, max_body)
    finally:
        for s in sims.values():
            await s.__aexit__(None, None, None)


# -- national ------------------------------------------------------------------------------------

def national_body(part: Part, pro_status: str = "ACCEPTED", *, app_id: str = "NATIONAL-PLATFORM",
                  at: str = "2026-12-01 09:00:00", **data: Any) -> bytes:
    d = {"projectNo": "11BJ" + part.application_no[-12:], "localProjectNo": part.application_no,
         "taskCode": "11100000000000000X4442117003000", "proStatus": pro_status,
         "statusTime": at, **data}
    env = {"appId": app_id, "version": "1.0", "timestamp": int(time.time() * 1000),
           "nonce": os.urandom(8).hex(), "encType": "NONE", "signType": "NONE", "data": d}
    return json.dumps(env, ensure_ascii=False).encode("utf-8")


# -- Tianjin -------------------------------------------------------------------------------------

def tianjin_package(part: Part, blzt: str = "30", *, tzbh: str = "TJ-EV-00000001",
                    at: str = "2026-12-01 09:00:00", encoding: str = "GBK",
                    **extra: str) -> str:
    """A notifyStatus PACKAGE as Tianjin writes it: serialised in ``encoding`` and declared so,
    then carried as text (what xmlData holds)."""
    pkg = etree.Element("PACKAGE")
    head = etree.SubElement(pkg, "PACKAGEHEAD")
    for tag, value in (("TZBH", tzbh), ("XZBH", "BJTJ-XZ-2024-001"), ("FSFBM", "120000000000"),
                       ("JSFBM", "110000000000"), ("FSSJ", "20261201090000"), ("JLS", "1")):
        etree.SubElement(head, tag).text = value
    rec = etree.SubElement(etree.SubElement(pkg, "DATA"), "RECORD")
    for tag, value in (("SLBH", part.receipt), ("SJBBH", part.key),
                       ("SBLSH", part.application_no), ("BLZT", blzt), ("BLSJ", at),
                       *extra.items()):
        etree.SubElement(rec, tag).text = value
    data = etree.tostring(pkg, encoding=encoding, xml_declaration=True)
    return data.decode("gb18030" if encoding.upper() == "GBK" else encoding)


def tianjin_envelope(xml_data: str, auth_code: str = "TJ-NOTIFY-AUTHCODE-0001") -> bytes:
    env = etree.Element(etree.QName(SOAP11, "Envelope"), nsmap={"soap": SOAP11})
    call = etree.SubElement(etree.SubElement(env, etree.QName(SOAP11, "Body")),
                            etree.QName(TJ, "notifyStatus"), nsmap={"tns": TJ})
    etree.SubElement(call, "authCode").text = auth_code
    etree.SubElement(call, "xmlData").text = xml_data
    return etree.tostring(env, encoding="utf-8", xml_declaration=True)


def tianjin_result(body: bytes) -> etree._Element:
    """RESULT from a notifyStatusResponse (plain lxml)."""
    env = etree.fromstring(body)
    ret = env.find(f"{{{SOAP11}}}Body/{{{TJ}}}notifyStatusResponse/return")
    assert ret is not None, body
    text = ret.text or ""
    return etree.fromstring(text.encode("gb18030"),
                            etree.XMLParser(encoding="gb18030", resolve_entities=False))


# -- Hebei ---------------------------------------------------------------------------------------

def wsse_header(username: str = "HEBEI-EXCHANGE", password: str = "hebei-notify-secret", *,
                created: float | None = None, nonce: bytes | None = None) -> etree._Element:
    """A UsernameToken digest written from the OASIS profile (not the gateway's wsse module)."""
    nonce = nonce or os.urandom(16)
    t = time.gmtime(time.time() if created is None else created)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", t)
    digest = base64.b64encode(hashlib.sha1(nonce + stamp.encode() + password.encode())
                              .digest()).decode()
    sec = etree.Element(etree.QName(WSSE, "Security"), nsmap={"wsse": WSSE, "wsu": WSU})
    tok = etree.SubElement(sec, etree.QName(WSSE, "UsernameToken"))
    etree.SubElement(tok, etree.QName(WSSE, "Username")).text = username
    etree.SubElement(tok, etree.QName(WSSE, "Password"), Type=DIGEST).text = digest
    etree.SubElement(tok, etree.QName(WSSE, "Nonce")).text = base64.b64encode(nonce).decode()
    etree.SubElement(tok, etree.QName(WSU, "Created")).text = stamp
    return sec


def hebei_envelope(part: Part, status: str = "ACCEPTED", *, message_id: str = "HB-EV-00000001",
                   at: str = "2026-12-01T09:00:00+08:00", security: etree._Element | None = None,
                   version: str = SOAP12, **extra: str) -> bytes:
    env = etree.Element(etree.QName(version, "Envelope"), nsmap={"env": version})
    header = etree.SubElement(env, etree.QName(version, "Header"))
    header.append(security if security is not None else wsse_header())
    mh = etree.SubElement(header, etree.QName(HB, "MessageHeader"), nsmap={"hb": HB})
    for name, value in (("messageId", message_id), ("senderCode", "HEBEI-EXCHANGE"),
                        ("sentAt", at)):
        etree.SubElement(mh, etree.QName(HB, name)).text = value
    req = etree.SubElement(etree.SubElement(env, etree.QName(version, "Body")),
                           etree.QName(HB, "NotifyStatusRequest"), nsmap={"hb": HB})
    cs = etree.SubElement(req, etree.QName(HB, "caseStatus"))
    for name, value in (("receiptNo", part.receipt), ("messageId", part.key),
                        ("caseNo", part.application_no), ("status", status),
                        ("statusTime", at), *extra.items()):
        etree.SubElement(cs, etree.QName(HB, name)).text = value
    return etree.tostring(env, encoding="utf-8", xml_declaration=True)


def soap12_fault(body: bytes) -> tuple[str, str, str]:
    """(code, innermost subcode, reason) of a SOAP 1.2 fault."""
    ns = {"e": SOAP12}
    f = etree.fromstring(body).find("e:Body/e:Fault", ns)
    assert f is not None, body
    subs = f.findall(".//e:Subcode/e:Value", ns)
    return ((f.findtext("e:Code/e:Value", namespaces=ns) or "").split(":")[-1],
            (subs[-1].text or "").split(":")[-1] if subs else "",
            f.findtext("e:Reason/e:Text", namespaces=ns) or "")
