"""Deadlines (办理时限): the shipped calendar and promised-time table, the counting rule as a
table of dates (year boundaries, Spring Festival and National Day with their 调休 weekends,
after hours, Beijing time), properties over any start date, overdue, and the loader's errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.deadlines import (
    CASE_FIELD,
    Calendar,
    ItemDays,
    days_over,
    due_at,
    is_overdue,
    load_calendar,
    load_calendar_year,
    load_deadlines,
    load_item_days,
    submit_time,
)
from gateway.errors import ConfigError
from gateway.mapping import MappingRegistry
from gateway.status import CaseStatus
from tests.conftest import ROOT

BJ = timezone(timedelta(hours=8))
MAPPINGS = ROOT / "mappings"
DEADLINES = load_deadlines(MAPPINGS)
CAL = DEADLINES.calendar


def bj(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BJ)


# -- the shipped calendar -------------------------------------------------------------------

@pytest.mark.parametrize(("day", "working"), [
    ("2026-01-01", False), ("2026-01-02", False),   # 元旦 (Thu, Fri)
    ("2026-01-04", True),                           # Sunday, 调休上班
    ("2026-02-13", True),                           # Friday before 春节
    ("2026-02-14", True),                           # Saturday, 调休上班
    ("2026-02-16", False), ("2026-02-23", False),   # 春节 (Mon … Mon)
    ("2026-02-24", True),
    ("2026-02-28", True),                           # Saturday, 调休上班
    ("2026-04-06", False),                          # 清明 Monday
    ("2026-05-05", False), ("2026-05-09", True),    # 劳动节, its Saturday
    ("2026-09-20", True),                           # Sunday before 国庆, 调休上班
    ("2026-10-07", False), ("2026-10-08", True), ("2026-10-10", True),
    ("2026-12-05", False), ("2026-12-07", True),    # an ordinary weekend and Monday
    ("2027-02-08", False),                          # provisional 2027: 春节 statutory day
    ("2028-03-06", True), ("2028-03-05", False),    # no file: Monday to Friday
])
def test_working_days(day: str, working: bool) -> None:
    assert CAL.is_working_day(date.fromisoformat(day)) is working


def test_2026_counts_248_working_days_and_is_official() -> None:
    days = [date(2026, 1, 1) + timedelta(n) for n in range(365)]
    assert sum(CAL.is_working_day(d) for d in days) == 248
    y = CAL.years[2026]
    assert y.official and len(y.holidays) == 33 and len(y.workdays) == 6
    assert not CAL.years[2027].official


def test_every_sample_item_has_its_own_promised_time() -> None:
    for path in sorted((ROOT / "samples" / "cases").glob("*.json")):
        for item in json.loads(path.read_text(encoding="utf-8"))["items"]:
            days, source = DEADLINES.items.days_for(item)
            assert source in ("implementationCode", "basicCode"), (path.name, item["itemNo"])


def test_the_data_files_are_not_taken_for_mappings() -> None:
    names = MappingRegistry.load(MAPPINGS, ROOT / "schemas").names()
    assert not [n for n in names if n.startswith(("deadlines", "calendar"))]


# -- the counting rule ----------------------------------------------------------------------

@pytest.mark.parametrize(("submitted", "days", "due", "provisional"), [
    ("2026-11-30T09:15:00", 5, "2026-12-07", False),   # Monday: Tue … next Mon
    ("2026-11-30T08:00:00", 1, "2026-12-01", False),   # the submission day never counts
    ("2026-12-04T18:30:00", 1, "2026-12-07", False),   # Friday after hours → Monday
    ("2026-12-05T10:00:00", 1, "2026-12-07", False),   # Saturday → Monday
    ("2026-12-05T10:00:00", 0, "2026-12-07", False),   # 即办 on a day off: next working day
    ("2026-12-07T10:00:00", 0, "2026-12-07", False),   # 即办 on a working day: that day
    ("2025-12-31T16:00:00", 1, "2026-01-04", False),   # across the year into 元旦 → 调休 Sunday
    ("2025-12-31T16:00:00", 3, "2026-01-06", False),
    ("2026-02-13T10:00:00", 1, "2026-02-14", False),   # Friday → the 调休 Saturday
    ("2026-02-13T10:00:00", 2, "2026-02-24", False),   # … then all of 春节
    ("2026-02-14T10:00:00", 1, "2026-02-24", False),   # submitted on the working Saturday
    ("2026-02-22T10:00:00", 4, "2026-02-27", False),   # submitted during 春节
    ("2026-02-22T10:00:00", 5, "2026-02-28", False),   # … the second 调休 Saturday counts
    ("2026-09-30T10:00:00", 1, "2026-10-08", False),   # National Day
    ("2026-09-30T10:00:00", 3, "2026-10-10", False),   # … its 调休 Saturday
    ("2026-09-30T10:00:00", 4, "2026-10-12", False),
    ("2026-09-19T10:00:00", 1, "2026-09-20", False),   # Saturday → 调休 Sunday
    ("2026-11-30T15:30:00", 30, "2027-01-12", True),   # into 2027: not yet official
    ("2026-12-31T10:00:00", 1, "2027-01-04", True),
    ("2027-12-30T10:00:00", 3, "2028-01-04", True),    # 2028 has no file: weekdays only
    ("2026-12-30T10:00:00", 1, "2026-12-31", False),   # the last day of an official year
])
def test_due(submitted: str, days: int, due: str, provisional: bool) -> None:
    at, prov = due_at(bj(submitted), days, CAL)
    assert at == bj(f"{due}T23:59:59")
    assert at.utcoffset() == timedelta(hours=8)
    assert prov is provisional


def test_the_day_is_the_one_in_beijing() -> None:
    late_utc = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)       # Tue 2026-12-01 00:30 +08:00
    assert due_at(late_utc, 1, CAL)[0] == bj("2026-12-02T23:59:59")
    naive = datetime(2026, 11, 30, 15, 59)                       # naive = UTC: 23:59 Monday
    assert due_at(naive, 1, CAL)[0] == bj("2026-12-01T23:59:59")


@settings(max_examples=300, deadline=None)
@given(start=st.dates(date(2025, 12, 1), date(2027, 12, 31)), days=st.integers(0, 60))
def test_counting_properties(start: date, days: int) -> None:
    """The last day is a working day; exactly ``days`` working days lie after the start up to
    it (0: none before it from the start); one more day of promise ends later."""
    submitted = datetime.combine(start, datetime.min.time(), BJ).replace(hour=10)
    due, _ = due_at(submitted, days, CAL)
    last = due.date()
    assert CAL.is_working_day(last)
    counted = [start + timedelta(n) for n in range(1, (last - start).days + 1)]
    if days == 0:
        assert last >= start
        assert all(not CAL.is_working_day(start + timedelta(n))
                   for n in range((last - start).days))
    else:
        assert sum(CAL.is_working_day(d) for d in counted) == days
    later = due_at(submitted, days + 1, CAL)[0]
    # one more day ends later, except 即办 on a day off, which is the next working day either way
    assert later > due or (days == 0 and not CAL.is_working_day(start) and later == due)


def test_a_negative_promise_is_refused() -> None:
    with pytest.raises(ValueError):
        Calendar().last_day(date(2026, 1, 5), -1)


# -- promised times per item ----------------------------------------------------------------

TABLE = ItemDays(20, {"B1": 10, "IMPL-1": 3})


@pytest.mark.parametrize(("item", "expected"), [
    ({"basicCode": "B1", "implementationCode": "IMPL-1"}, (3, "implementationCode")),
    ({"basicCode": "B1", "implementationCode": "IMPL-2"}, (10, "basicCode")),
    ({"basicCode": "B9", "implementationCode": "IMPL-9"}, (20, "default")),
    ({"basicCode": "B1", "implementationCode": "IMPL-1", CASE_FIELD: 7}, (7, "case")),
    ({"basicCode": "B1", "implementationCode": "IMPL-1", CASE_FIELD: 0}, (0, "case")),
    ({"basicCode": "B1", CASE_FIELD: True}, (10, "basicCode")),     # not a number of days
    ({"basicCode": "B1", CASE_FIELD: -1}, (10, "basicCode")),
    ({"basicCode": "B1", CASE_FIELD: "5"}, (10, "basicCode")),
])
def test_promised_days(item: dict[str, object], expected: tuple[int, str]) -> None:
    assert TABLE.days_for(item) == expected


def test_for_item_uses_the_case_submit_time() -> None:
    case = json.loads((ROOT / "samples" / "cases" / "13-bundle-tianjin-hebei-enterprise.json")
                      .read_text(encoding="utf-8"))
    submitted = submit_time(case, datetime(2030, 1, 1, tzinfo=UTC))
    d = DEADLINES.for_item(case["items"][0], submitted)
    assert (d.days, d.source, d.provisional) == (3, "implementationCode", False)
    assert d.due == bj("2026-12-03T23:59:59")        # Mon 2026-11-30 + 3 working days
    assert submit_time({"submitTime": "yesterday"}, submitted) == submitted


# -- overdue --------------------------------------------------------------------------------

DUE = bj("2026-12-07T23:59:59")


@pytest.mark.parametrize(("status", "now", "overdue"), [
    (None, "2026-12-07T23:59:59", False),            # at the due second: not yet
    (None, "2026-12-08T00:00:00", True),
    (CaseStatus.SUBMITTED, "2026-12-08T00:00:00", True),
    (CaseStatus.IN_REVIEW, "2027-06-01T00:00:00", True),
    (CaseStatus.SUPPLEMENT_REQUIRED, "2026-12-08T00:00:00", True),
    ("ACCEPTED", "2026-12-08T00:00:00", True),
    (CaseStatus.IN_REVIEW, "2026-12-01T00:00:00", False),
    (CaseStatus.FINISHED, "2027-06-01T00:00:00", False),   # a terminal status never is
    (CaseStatus.NOT_ACCEPTED, "2027-06-01T00:00:00", False),
    (CaseStatus.WITHDRAWN, "2027-06-01T00:00:00", False),
    ("VOIDED", "2027-06-01T00:00:00", False),
])
def test_is_overdue(status: CaseStatus | str | None, now: str, overdue: bool) -> None:
    assert is_overdue(DUE, status, bj(now)) is overdue
    assert is_overdue(DUE, status, bj(now).astimezone(UTC)) is overdue   # any zone, one instant


@pytest.mark.parametrize(("now", "days"), [
    ("2026-12-07T12:00:00", 0), ("2026-12-08T00:00:01", 1), ("2026-12-31T23:00:00", 24),
])
def test_days_over(now: str, days: int) -> None:
    assert days_over(DUE, bj(now)) == days


# -- the loader's errors name the file, the line and the key -------------------------------

CAL_OK = """\
year: 2026
official: true
source: test
holidays:
  - {name: A, from: 2026-01-01, to: 2026-01-03}
workdays:
  - {date: 2026-01-04, for: A}
"""


@pytest.mark.parametrize(("text", "line", "words"), [
    (CAL_OK.replace("year: 2026", "year: 2025"), 1, "year: must be the year of the file name"),
    (CAL_OK.replace("official: true", "official: yes"), 2, "official: must be true or false"),
    (CAL_OK.replace("to: 2026-01-03", "to: 2026-13-03"), 5, "holidays[0].to: must be a date"),
    (CAL_OK.replace("to: 2026-01-03", "to: 2025-12-30"), 5, "is not in 2026"),
    (CAL_OK.replace("from: 2026-01-01", "from: 2026-01-05"), 5, "ends (2026-01-03) before"),
    (CAL_OK.replace("2026-01-04, for", "2026-01-05, for"), 7,
     "workdays[0].date: 2026-01-05 is a Monday"),
    (CAL_OK.replace("2026-01-04, for", "2026-01-03, for"), 7, "listed twice"),
    (CAL_OK + "  - {date: 2026-01-04, for: A}\n", 8, "listed twice"),
    (CAL_OK.replace("holidays:\n", "holidays:\n  - {name: B, from: 2026-01-02, to: 2026-01-02}\n"),
     6, "2026-01-02 is already a holiday (B)"),
    (CAL_OK + "extra: 1\n", 8, "extra: unknown key"),
    (CAL_OK + "year: 2026\n", 8, "year: duplicate key (first on line 1)"),
    (CAL_OK.replace("source: test\n", ""), 1, "'source' is missing"),
    (CAL_OK.replace("for: A}", "for: A"), 8, "not valid YAML"),  # found at the end
])
def test_calendar_errors(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "cn-2026.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_calendar_year(path)
    assert str(e.value).startswith(f"{path}:{line}: "), str(e.value)
    assert words in str(e.value)


def test_two_files_for_one_year(tmp_path: Path) -> None:
    (tmp_path / "cn-2026.yml").write_text(CAL_OK, encoding="utf-8")
    (tmp_path / "cn-2026.yaml").write_text(CAL_OK, encoding="utf-8")
    with pytest.raises(ConfigError, match="2026 is also in"):
        load_calendar(tmp_path)


ITEMS_OK = 'default: 20\nitems:\n  "000134023000": 15\n  "X-1": 0\n'


@pytest.mark.parametrize(("text", "line", "words"), [
    (ITEMS_OK + '  "000134023000": 3\n', 5, "items.000134023000: duplicate key (first on line 3)"),
    (ITEMS_OK.replace(": 15", ": -1"), 3, "items.000134023000: must be a whole number"),
    (ITEMS_OK.replace(": 15", ": 1.5"), 3, "must be a whole number"),
    (ITEMS_OK.replace(": 15", ": 1000"), 3, "0 to 999"),
    (ITEMS_OK.replace(": 15", ":"), 3, "items.000134023000: must be a value"),
    (ITEMS_OK.replace("default: 20", "default: twenty"), 1, "default: must be a whole number"),
    (ITEMS_OK.replace("default: 20\n", ""), 1, "'default' is missing"),
    ("default: 20\nitems: [1]\n", 2, "items: must be a mapping"),
    (ITEMS_OK + "holidays: []\n", 5, "holidays: unknown key"),
])
def test_item_table_errors(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = tmp_path / "items.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_item_days(path)
    assert str(e.value).startswith(f"{path}:{line}: "), str(e.value)
    assert words in str(e.value)


def test_codes_are_read_as_written(tmp_path: Path) -> None:
    """An unquoted code keeps its leading zeros (YAML would read 000134023000 as a number)."""
    path = tmp_path / "items.yml"
    path.write_text("default: 20\nitems:\n  000134023000: 15\n", encoding="utf-8")
    assert dict(load_item_days(path).by_code) == {"000134023000": 15}


def test_a_mappings_folder_without_deadlines_uses_the_shipped_ones(tmp_path: Path) -> None:
    assert load_deadlines(tmp_path).items.by_code == DEADLINES.items.by_code
    own = tmp_path / "deadlines"
    own.mkdir()
    (own / "items.yml").write_text("default: 5\nitems: {}\n", encoding="utf-8")
    mine = load_deadlines(tmp_path)
    assert mine.items.default == 5 and not mine.calendar.years   # no calendar: weekdays only
