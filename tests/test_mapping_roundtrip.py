"""Property: a Beijing case → national push → Beijing case keeps every field both formats carry,
and both directions always produce schema-valid documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mapping import MappingRegistry

ROOT = Path(__file__).resolve().parent.parent
REG = MappingRegistry.load(ROOT / "mappings", ROOT / "schemas")
OUT, BACK = REG.get("national/case-submit"), REG.get("national/case-inbound")
BEIJING = json.loads((ROOT / "schemas/beijing/case.schema.json").read_text(encoding="utf-8"))
CTX = {"caseId": "C", "deliveryId": "D", "idempotencyKey": "K", "partner": "national",
       "now": "2026-11-30T10:00:00+08:00"}

# names and codes hold more than spaces (x-notBlank in the case schema)
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    lambda s: s.strip().strip("\u200b\u200c\u200d\u2060\ufeff").strip() != "")
region = st.from_regex(r"[1-8][0-9]{5}([0-9]{6})?", fullmatch=True)
code = st.from_regex(r"[A-Za-z0-9]{1,30}", fullmatch=True)
offsets = st.sampled_from([timezone(timedelta(hours=8)), UTC, timezone(timedelta(hours=-5))])


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    when = draw(st.datetimes(datetime(2000, 1, 1), datetime(2090, 1, 1))).replace(microsecond=0)
    case: dict[str, Any] = {
        "applicationNo": draw(st.from_regex(r"[A-Za-z0-9-]{8,40}", fullmatch=True)),
        "channel": draw(st.sampled_from(["WEB", "APP", "WINDOW", "KIOSK"])),
        "submitTime": when.replace(tzinfo=draw(offsets)).isoformat(),
        "receivingRegion": draw(region),
        "applicant": {
            "type": draw(st.sampled_from(["NATURAL_PERSON", "LEGAL_PERSON", "OTHER"])),
            "name": draw(text),
            "certType": draw(st.sampled_from(["111", "114", "335", "414", "511", "516", "001"])),
            "certNo": draw(st.from_regex(r"[0-9A-Z]{5,40}", fullmatch=True)),
        },
        "items": [{
            "itemNo": draw(st.from_regex(r"[A-Za-z0-9_-]{1,16}", fullmatch=True)),
            "basicCode": draw(code), "implementationCode": draw(code), "itemName": draw(text),
            "handlingRegion": draw(region),
        }],
    }
    if draw(st.booleans()):
        case["nationalCaseNo"] = draw(st.from_regex(r"[0-9]{2}[A-Za-z0-9-]{6,38}", fullmatch=True))
    if draw(st.booleans()):
        case["crossRegionMode"] = draw(st.sampled_from(["FULL_ONLINE", "PROXY_RECEIVE", "JOINT"]))
    if draw(st.booleans()):
        case["applicant"]["phone"] = draw(st.from_regex(r"[0-9+-]{5,20}", fullmatch=True))
    mats = []
    for _ in range(draw(st.integers(0, 4))):
        m = {"materialCode": draw(code), "name": draw(text)}
        if draw(st.booleans()):
            m["fileRef"] = "oss://bucket/" + draw(code)
        if draw(st.booleans()):
            m["elicenceId"] = "1.2.156.3005.2." + draw(code)
        mats.append(m)
    if mats or draw(st.booleans()):
        case["materials"] = mats
    lics = []
    for _ in range(draw(st.integers(0, 3))):
        lics.append({
            "licenceId": "1.2.156.3005.2." + draw(st.from_regex(r"[0-9A-Za-z.]{4,20}",
                                                                fullmatch=True)),
            "typeCode": "11110000000012343B" + draw(st.from_regex(r"[0-9]{3}", fullmatch=True)),
            "name": draw(text), "holderType": "111",
            "holderCertNo": draw(st.from_regex(r"[0-9X]{5,18}", fullmatch=True))})
    if lics:
        case["elicences"] = lics
    return case


def _instant(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _derived(application_no: str) -> str | None:
    """The national number the push derives; Beijing keeps it only when it fits its pattern."""
    n = "11" + application_no
    return n if len(n) <= 40 else None


def carried(case: dict[str, Any]) -> dict[str, Any]:
    """The fields both formats carry, normalised (12-digit regions, instants)."""
    r12 = lambda r: r if len(r) == 12 else r + "000000"  # noqa: E731
    a, it = case["applicant"], case["items"][0]
    return {
        "applicationNo": case["applicationNo"],
        "nationalCaseNo": case.get("nationalCaseNo", _derived(case["applicationNo"])),
        "channel": case["channel"], "submitTime": _instant(case["submitTime"]),
        "receivingRegion": r12(case["receivingRegion"]),
        "crossRegionMode": case.get("crossRegionMode"),
        "applicant": {k: a.get(k) for k in ("type", "name", "certType", "certNo", "phone")},
        "item": {"basicCode": it["basicCode"], "implementationCode": it["implementationCode"],
                 "itemName": it["itemName"], "handlingRegion": r12(it["handlingRegion"])},
        "materials": [{k: m.get(k) for k in ("materialCode", "name", "fileRef", "elicenceId")}
                      for m in case.get("materials", [])],
        "elicences": [{k: e.get(k) for k in ("licenceId", "typeCode", "name", "holderCertNo")}
                      for e in case.get("elicences", [])],
    }


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_round_trip_keeps_shared_fields(case: dict[str, Any]) -> None:
    jsonschema.validate(case, BEIJING)                 # the generator makes valid cases
    pushed = OUT.render(case, CTX)
    OUT.validate_output(pushed)
    back = BACK.render(pushed, CTX)
    BACK.validate_output(back)
    assert carried(back) == carried(case)
    assert back["submitTime"].endswith("+08:00")       # stored as Beijing time
