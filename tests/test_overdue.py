"""Overdue items on both engines: the store's read-only query (gateway.store.overdue), the case
view's ``deadline``/``overdue`` per item, ``gateway overdue`` and the ``gateway_overdue_items``
gauge, with cases submitted far in the past next to fresh ones."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import update

from gateway.cli import main
from gateway.domain.deadlines import load_deadlines
from gateway.store import NewCase, NewDelivery, Store
from gateway.store.models import deliveries
from gateway.store.overdue import OverdueItems
from gateway.views import case_doc
from tests.harness import ROOT, Gateway, Simulator, settings_for

BJ = timezone(timedelta(hours=8))
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=BJ)
LONG_AGO = "2026-01-05T10:00:00+08:00"          # a Monday
DEADLINES = load_deadlines(ROOT / "mappings")


def _case(samples: dict[str, Any], no: str, submitted: str,
          parts: dict[str, tuple[str, ...]], home: tuple[str, ...] = ()) -> NewCase:
    """The ten-item 京津冀 bundle under application number ``no``, submitted at ``submitted``,
    with one delivery per partner carrying the given items."""
    body = copy.deepcopy(samples["20-bundle-ten-items-jingjinji"])
    body["applicationNo"], body["submitTime"] = no, submitted
    return NewCase(
        application_no=no, body=body, body_hash=f"h-{no}", correlation_id=f"c-{no}",
        home_items=home,
        deliveries=tuple(NewDelivery(partner=p, item_nos=items, region="120000000000",
                                     route_rule="r", mapping=f"{p}/case-submit",
                                     mapping_version=None, idempotency_key=f"k-{no}-{p}")
                         for p, items in parts.items()))


async def _set(store: Store, case_id: str, partner: str, **values: Any) -> None:
    """What the partner (or an operator) made of a delivery, written as the store would."""
    async with store.db.write("test: set delivery") as conn:
        await conn.execute(update(deliveries).where(deliveries.c.case_id == case_id,
                                                    deliveries.c.partner == partner)
                           .values(**values))


def _bj(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T23:59:59+08:00")


async def test_overdue_parts_on_both_engines(store: Store, samples: dict[str, Any]) -> None:
    old = await store.submit_case(_case(samples, "OD-OLD", LONG_AGO, {
        "tianjin": ("3", "4", "10"), "hebei": ("5", "6", "10"), "national": ("7", "8", "9")},
        home=("1", "2")))
    fresh = await store.submit_case(_case(samples, "OD-NEW", "2026-11-30T15:30:00+08:00", {
        "national": ("7", "8", "9")}))
    dead = await store.submit_case(_case(samples, "OD-DEAD", LONG_AGO, {"national": ("9",)}))
    gone = await store.submit_case(_case(samples, "OD-GONE", LONG_AGO, {"national": ("9",)}))
    await _set(store, old.case.id, "tianjin", state="delivered", partner_status="FINISHED")
    await _set(store, old.case.id, "hebei", state="delivered", partner_status="IN_REVIEW")
    # national never received OD-OLD's part (pending, no status: SUBMITTED for the applicant)
    await _set(store, dead.case.id, "national", state="dead")
    await _set(store, gone.case.id, "national", state="discarded", partner_status="VOIDED")

    found = await OverdueItems(store, DEADLINES).find(now=NOW)
    rows = [(o.application_no, o.item_no, o.partner, o.status.value, o.deadline, o.days_over)
            for o in found]
    # 2026-01-05 + 3 working days = Thu 01-08; + 5 = Mon 01-12; + 15 = Mon 01-26;
    # + 30 = Sat 02-14, the 调休 working day before 春节
    assert rows == [
        ("OD-DEAD", "9", "national", "SUBMITTED", _bj("2026-01-08"), 327),
        ("OD-OLD", "5", "hebei", "IN_REVIEW", _bj("2026-01-08"), 327),
        ("OD-OLD", "9", "national", "SUBMITTED", _bj("2026-01-08"), 327),
        ("OD-OLD", "6", "hebei", "IN_REVIEW", _bj("2026-01-12"), 323),
        ("OD-OLD", "8", "national", "SUBMITTED", _bj("2026-01-12"), 323),
        ("OD-OLD", "7", "national", "SUBMITTED", _bj("2026-01-26"), 309),
        ("OD-OLD", "10", "hebei", "IN_REVIEW", _bj("2026-02-14"), 290),
    ]
    assert (date(2026, 12, 1) - date(2026, 1, 8)).days == 327
    assert found[1].as_dict() == {
        "applicationNo": "OD-OLD", "caseId": old.case.id, "itemNo": "5",
        "itemCode": "11130100MB4G56789B000105004000001", "partner": "hebei",
        "deliveryId": found[1].delivery_id, "status": "IN_REVIEW",
        "deadline": "2026-01-08T23:59:59+08:00", "daysOver": 327}
    assert fresh.case.id not in {o.case_id for o in found}     # fresh: due from 12-02 on
    assert await OverdueItems(store, DEADLINES).counts(now=NOW) == {"hebei": 3, "national": 4}
    hebei = await OverdueItems(store, DEADLINES).find(partner="hebei", now=NOW, limit=2)
    assert [o.item_no for o in hebei] == ["5", "6"]
    # the fresh case's 3-day item (Mon 15:30 → Thu 12-03, 24:00) is late the second after
    later = await OverdueItems(store, DEADLINES).find(now=datetime(2026, 12, 4, 0, 0, 0, 1, BJ))
    assert [o.item_no for o in later if o.application_no == "OD-NEW"] == ["9"]
    assert not [o for o in await OverdueItems(store, DEADLINES).find(
        now=datetime(2026, 12, 3, 23, 59, 59, tzinfo=BJ)) if o.application_no == "OD-NEW"]

    # the case view says the same per item
    case = await store.get_case(old.case.id)
    assert case is not None
    items = case_doc(case, deadlines=DEADLINES, now=NOW)["items"]
    assert items["10"]["deadline"] == "2026-02-14T23:59:59+08:00"
    assert items["10"]["overdue"] is True          # Tianjin finished, Hebei still reviews
    assert items["3"]["overdue"] is False          # Tianjin's part is FINISHED: never overdue
    assert items["7"]["overdue"] is True and items["7"]["promisedDays"] == 15
    assert items["7"]["promisedDaysFrom"] == "basicCode"
    assert items["1"]["overdue"] is None           # handled in Beijing: not the gateway's to say
    assert items["1"]["deadline"] == "2026-01-12T23:59:59+08:00"
    assert not any(i["deadlineProvisional"] for i in items.values())


async def test_the_gateway_shows_counts_and_lists_them(tmp_path: Path, db_url: str,
                                                       samples: dict[str, Any]) -> None:
    """Through the API, /metrics and ``gateway overdue``: a case submitted in January is late at
    the national platform (which holds it as SUBMITTED); the same case submitted now is not."""
    old = copy.deepcopy(samples["01-person-shanghai-social-security"])
    old["applicationNo"], old["submitTime"] = "BJ-OD-0001", LONG_AGO
    new = copy.deepcopy(samples["01-person-shanghai-social-security"])
    new["applicationNo"] = "BJ-OD-0002"
    new["submitTime"] = datetime.now(BJ).replace(microsecond=0).isoformat()
    async with Simulator("national") as nat:
        settings = settings_for(tmp_path, db_url, {"national": nat.url()})
        async with Gateway(settings) as gw:
            ids = []
            for case in (old, new):
                status, accepted = await gw.post_case(case)
                assert status == 202, accepted
                ids.append(accepted["id"])
            late, fresh = [await gw.wait_final(i) for i in ids]
            status, metrics = await gw.get("/metrics")
    assert late["deliveries"][0]["partnerStatus"] == "SUBMITTED"
    assert late["items"]["1"]["deadline"] == "2026-01-26T23:59:59+08:00"
    assert late["items"]["1"]["overdue"] is True
    assert fresh["items"]["1"]["overdue"] is False
    assert re.search(r'^gateway_overdue_items\{partner="national"\} 1\.0$', metrics, re.M)
    assert "BJ-OD" not in metrics                 # no case numbers in labels

    config = Path(str(settings.source_file))
    res = await asyncio.to_thread(CliRunner().invoke, main, [
        "overdue", "--json", "--config", str(config), "--database-url", db_url])
    assert res.exit_code == 0, res.output
    [row] = json.loads(res.output)
    assert (row["applicationNo"], row["itemNo"], row["partner"], row["status"],
            row["deadline"]) == ("BJ-OD-0001", "1", "national", "SUBMITTED",
                                 "2026-01-26T23:59:59+08:00")
    today = datetime.now(UTC).astimezone(BJ).date()
    assert row["daysOver"] == (today - date(2026, 1, 26)).days
    res = await asyncio.to_thread(CliRunner().invoke, main, [
        "overdue", "--partner", "hebei", "--config", str(config), "--database-url", db_url])
    assert res.exit_code == 0 and "0 overdue item part(s)" in res.output, res.output
    res = await asyncio.to_thread(CliRunner().invoke, main, [
        "overdue", "--config", str(config), "--database-url", db_url])
    assert res.exit_code == 0 and "BJ-OD-0001" in res.output and "SUBMITTED" in res.output


def test_a_broken_deadline_file_is_one_line(tmp_path: Path) -> None:
    """``gateway overdue`` with a promised-time table it cannot use: the file, line and key in
    one line, exit status 1, before any database is opened."""
    mappings = tmp_path / "mappings"
    (mappings / "deadlines").mkdir(parents=True)
    (mappings / "deadlines" / "items.yml").write_text(
        'default: 20\nitems:\n  "000134023000": soon\n', encoding="utf-8")
    config = tmp_path / "c.yaml"
    config.write_text((ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8")
                      .replace("mappings_dir: mappings", f"mappings_dir: {mappings}"),
                      encoding="utf-8")
    assert f"mappings_dir: {mappings}" in config.read_text(encoding="utf-8")
    res = CliRunner().invoke(main, ["overdue", "--config", str(config), "--database-url",
                                    f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"Error: configuration error: {mappings / 'deadlines' / 'items.yml'}:3: "
        "items.000134023000: must be a whole number of working days, 0 to 999 (got 'soon')"]
    assert not (tmp_path / "none.db").exists()
