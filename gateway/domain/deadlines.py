"""Deadlines (办理时限): when an item is due, counted in working days, and whether it is overdue.

Two files of data, both under the mappings folder, both read as text with every error naming
the file, the line and the key (:class:`~gateway.errors.ConfigError`):

``deadlines/items.yml``
    ``default: N`` and ``items: {code: N}``: the promised time (承诺办结时限) in working days per
    item code. An item's implementation code (实施编码) is looked up first, then its basic code
    (基本编码), then the default. A promised time the case carries for the item itself
    (:data:`CASE_FIELD`) wins over the table.
``calendar/cn-YYYY.yml``
    One file per year: ``holidays`` as inclusive date ranges and ``workdays``, the weekend days
    that are working days (调休上班), with ``official`` saying whether the file is the State
    Council's published arrangement. A day of a year without a file is a working day when it
    is Monday to Friday, and a deadline that counts such a day, or a day of a year whose file
    is not official, is ``provisional``.

The counting rule (Civil Code art. 201 and 203: a period in days starts the day after, and ends
at 24:00 of its last day): the day of submission never counts, whatever the hour, so day 1 is the
first working day after the submission date (Beijing time). A case submitted after hours, at a
weekend or on a holiday therefore starts on the next working day like any other, and one
submitted at 08:00 on a Monday starts on Tuesday: the one rule covers them all, so no office
hours need configuring. The item is due at the end of day N (23:59:59 +08:00). N = 0 (即办)
is due at the end of the submission day, or of the next working day if that was a day off.

The files are ``.yml`` because the mapping registry reads every ``*.yaml`` under the mappings
folder as a mapping; both endings are read here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from gateway.config import PROJECT_ROOT
from gateway.errors import ConfigError
from gateway.status import CaseStatus, is_terminal

BEIJING = timezone(timedelta(hours=8))
#: An item of a case may carry its own promised time (working days) under this key.
CASE_FIELD = "promisedDays"
MAX_DAYS = 999
#: End of the last day of a period (24:00, shown as the last second of the day).
DAY_ENDS = time(23, 59, 59)
ITEMS_FILE = Path("deadlines") / "items"
CALENDAR_DIR = Path("calendar")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAYS = re.compile(r"^\d{1,3}$")
_CALENDAR_NAME = re.compile(r"^cn-(\d{4})\.ya?ml$")


# -- the YAML, read as nodes so every value has its line ------------------------------------

class _Doc:
    """One YAML file as a node tree: scalars stay text (an item code keeps its leading zeros,
    a date is parsed here, not by YAML 1.1), every error names the file and line."""

    def __init__(self, path: Path) -> None:
        self.file = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read: {e}", file=self.file) from e
        try:
            root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise ConfigError(f"not valid YAML: {getattr(e, 'problem', None) or e}",
                              file=self.file, line=mark.line + 1 if mark else None) from e
        if root is None:
            raise ConfigError("the file is empty", file=self.file)
        self.root: yaml.Node = root

    def fail(self, reason: str, node: yaml.Node, key: str | None = None) -> ConfigError:
        return ConfigError(reason, file=self.file, key=key, line=node.start_mark.line + 1)

    def mapping(self, node: yaml.Node, key: str | None, allowed: set[str] | None = None
                ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """key → (key node, value node); duplicates and (with ``allowed``) unknown keys fail."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail("must be a mapping", node, key)
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise self.fail("keys must be plain text", k, key)
            name = str(k.value)
            where = f"{key}.{name}" if key else name
            if name in out:
                raise self.fail(f"duplicate key (first on line {out[name][0].start_mark.line + 1})",
                                k, where)
            if allowed is not None and name not in allowed:
                raise self.fail(f"unknown key (expected one of {', '.join(sorted(allowed))})",
                                k, where)
            out[name] = (k, v)
        return out

    def require(self, m: dict[str, tuple[yaml.Node, yaml.Node]], name: str, node: yaml.Node,
                key: str | None = None) -> yaml.Node:
        if name not in m:
            raise self.fail(f"'{name}' is missing", node, key)
        return m[name][1]

    def sequence(self, node: yaml.Node, key: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail("must be a list", node, key)
        return list(node.value)

    def text(self, node: yaml.Node, key: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.fail("must be a value", node, key)
        return str(node.value)

    def days(self, node: yaml.Node, key: str) -> int:
        v = self.text(node, key)
        if not _DAYS.match(v) or int(v) > MAX_DAYS:
            raise self.fail(f"must be a whole number of working days, 0 to {MAX_DAYS} "
                            f"(got {v!r})", node, key)
        return int(v)

    def date(self, node: yaml.Node, key: str) -> date:
        v = self.text(node, key)
        try:
            if not _DATE.match(v):
                raise ValueError
            return date.fromisoformat(v)
        except ValueError:
            raise self.fail(f"must be a date YYYY-MM-DD (got {v!r})", node, key) from None

    def boolean(self, node: yaml.Node, key: str) -> bool:
        v = self.text(node, key)
        if v not in ("true", "false"):
            raise self.fail(f"must be true or false (got {v!r})", node, key)
        return v == "true"


# -- the calendar ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CalendarYear:
    year: int
    official: bool
    source: str
    file: str
    holidays: frozenset[date]
    workdays: frozenset[date]


def load_calendar_year(path: Path) -> CalendarYear:
    """One ``cn-YYYY.yml``; the year in the file must be the year in its name, every date in
    it, ranges in order and apart, and every 调休 working day a Saturday or Sunday outside the
    holidays."""
    doc = _Doc(path)
    top = doc.mapping(doc.root, None, {"year", "official", "source", "holidays", "workdays"})
    ynode = doc.require(top, "year", doc.root)
    named = _CALENDAR_NAME.match(path.name)
    year_text = doc.text(ynode, "year")
    if not year_text.isdigit() or (named and int(named.group(1)) != int(year_text)):
        raise doc.fail(f"must be the year of the file name ({path.name})", ynode, "year")
    year = int(year_text)
    official = doc.boolean(doc.require(top, "official", doc.root), "official")
    source = doc.text(doc.require(top, "source", doc.root), "source")

    def in_year(node: yaml.Node, key: str) -> date:
        d = doc.date(node, key)
        if d.year != year:
            raise doc.fail(f"{d} is not in {year}", node, key)
        return d

    holidays: dict[date, str] = {}
    for n, entry in enumerate(doc.sequence(doc.require(top, "holidays", doc.root), "holidays")):
        key = f"holidays[{n}]"
        m = doc.mapping(entry, key, {"name", "from", "to"})
        name = doc.text(doc.require(m, "name", entry, key), f"{key}.name")
        first = in_year(doc.require(m, "from", entry, key), f"{key}.from")
        last = in_year(doc.require(m, "to", entry, key), f"{key}.to")
        if last < first:
            raise doc.fail(f"ends ({last}) before it starts ({first})", m["to"][1], f"{key}.to")
        for d in _days(first, last):
            if d in holidays:
                raise doc.fail(f"{d} is already a holiday ({holidays[d]})", entry, key)
            holidays[d] = name
    workdays: set[date] = set()
    for n, entry in enumerate(doc.sequence(top["workdays"][1], "workdays")
                              if "workdays" in top else []):
        key = f"workdays[{n}]"
        m = doc.mapping(entry, key, {"date", "for"})
        dnode = doc.require(m, "date", entry, key)
        d = in_year(dnode, f"{key}.date")
        if d.weekday() < 5:
            raise doc.fail(f"{d} is a {d:%A}: only a Saturday or Sunday can be made a working "
                           f"day", dnode, f"{key}.date")
        if d in holidays or d in workdays:
            raise doc.fail(f"{d} is listed twice", dnode, f"{key}.date")
        workdays.add(d)
    return CalendarYear(year, official, source, doc.file, frozenset(holidays),
                        frozenset(workdays))


def _days(first: date, last: date) -> Iterator[date]:
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


@dataclass(frozen=True)
class Calendar:
    """Working days: Monday to Friday, minus the holidays, plus the 调休 working weekend days
    of each year that has a file."""

    years: Mapping[int, CalendarYear] = field(default_factory=dict)

    def is_working_day(self, d: date) -> bool:
        y = self.years.get(d.year)
        if y is not None and d in y.holidays:
            return False
        if y is not None and d in y.workdays:
            return True
        return d.weekday() < 5

    def is_official(self, d: date) -> bool:
        """Whether ``d``'s year has the State Council's published arrangement."""
        y = self.years.get(d.year)
        return y is not None and y.official

    def last_day(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself never counts); for 0,
        ``start`` if it is a working day, else the next working day."""
        if days < 0:
            raise ValueError("a promised time is 0 or more working days")
        d = start
        if days == 0:
            while not self.is_working_day(d):
                d += timedelta(days=1)
            return d
        while days:
            d += timedelta(days=1)
            if self.is_working_day(d):
                days -= 1
        return d


def load_calendar(folder: Path) -> Calendar:
    """Every ``cn-YYYY.yml`` (or ``.yaml``) in ``folder``; two files for one year fail."""
    years: dict[int, CalendarYear] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not _CALENDAR_NAME.match(path.name):
            continue
        y = load_calendar_year(path)
        if y.year in years:
            raise ConfigError(f"{y.year} is also in {years[y.year].file}", file=y.file,
                              key="year")
        years[y.year] = y
    return Calendar(MappingProxyType(years))


# -- promised times per item ----------------------------------------------------------------

@dataclass(frozen=True)
class ItemDays:
    """The promised time table: working days by item code, and the default."""

    default: int
    by_code: Mapping[str, int]
    file: str = ""

    def days_for(self, item: Mapping[str, Any]) -> tuple[int, str]:
        """(working days, where they come from: ``case``, ``implementationCode``,
        ``basicCode`` or ``default``) for one item of a case."""
        own = item.get(CASE_FIELD)
        if isinstance(own, int) and not isinstance(own, bool) and 0 <= own <= MAX_DAYS:
            return own, "case"
        for key in ("implementationCode", "basicCode"):
            code = item.get(key)
            if isinstance(code, str) and code in self.by_code:
                return self.by_code[code], key
        return self.default, "default"


def load_item_days(path: Path) -> ItemDays:
    doc = _Doc(path)
    top = doc.mapping(doc.root, None, {"default", "items"})
    default = doc.days(doc.require(top, "default", doc.root), "default")
    items = doc.mapping(doc.require(top, "items", doc.root), "items")
    by_code: dict[str, int] = {}
    for code, (knode, vnode) in items.items():
        if not code.strip() or len(code) > 64:
            raise doc.fail("an item code is 1 to 64 characters", knode, f"items.{code}")
        by_code[code] = doc.days(vnode, f"items.{code}")
    return ItemDays(default, MappingProxyType(by_code), doc.file)


# -- deadlines ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Deadline:
    """When one item is due (+08:00), from how many working days and where they came from;
    ``provisional`` when the count crossed a day without an official holiday arrangement."""

    due: datetime
    days: int
    source: str
    provisional: bool


def beijing(t: datetime) -> datetime:
    """``t`` in Beijing time (a naive time is taken as UTC, as the store keeps it)."""
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(BEIJING)


def due_at(submitted: datetime, days: int, calendar: Calendar) -> tuple[datetime, bool]:
    """The end of the last day of ``days`` working days from ``submitted`` (see the module
    docstring), and whether that count is provisional."""
    start = beijing(submitted).date()
    last = calendar.last_day(start, days)
    counted = _days(start if days == 0 else start + timedelta(days=1), last)
    provisional = not all(calendar.is_official(d) for d in counted)
    return datetime.combine(last, DAY_ENDS, BEIJING), provisional


@dataclass(frozen=True)
class Deadlines:
    """The promised times and the calendar, loaded together from one mappings folder."""

    items: ItemDays
    calendar: Calendar
    #: (submission date, days) → due: most cases of a scan share a few dates and item codes
    _memo: dict[tuple[date, int], tuple[datetime, bool]] = field(
        default_factory=dict, compare=False, repr=False)

    def for_item(self, item: Mapping[str, Any], submitted: datetime) -> Deadline:
        days, source = self.items.days_for(item)
        key = (beijing(submitted).date(), days)
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) > 100_000:
                self._memo.clear()
            hit = self._memo[key] = due_at(submitted, days, self.calendar)
        return Deadline(hit[0], days, source, hit[1])


def _items_path(root: Path) -> Path | None:
    for suffix in (".yml", ".yaml"):
        p = root / ITEMS_FILE.with_suffix(suffix)
        if p.is_file():
            return p
    return None


def data_root(mappings_dir: Path) -> Path:
    """The folder whose ``deadlines/`` and ``calendar/`` are read: ``mappings_dir`` when it has
    a promised-time table, else the project's own ``mappings/`` (a configuration with its own
    mappings but no deadlines still gets the shipped ones, like paths in the config file)."""
    if _items_path(Path(mappings_dir)) is not None:
        return Path(mappings_dir)
    return PROJECT_ROOT / "mappings"


def load_deadlines(mappings_dir: Path) -> Deadlines:
    """Load and check both files (see :func:`data_root`); a missing table is a ConfigError."""
    root = data_root(mappings_dir)
    path = _items_path(root)
    if path is None:
        raise ConfigError("no promised-time table (deadlines/items.yml)", file=str(root))
    return Deadlines(load_item_days(path), load_calendar(root / CALENDAR_DIR))


_cache: dict[Path, tuple[tuple[tuple[str, int, int], ...], Deadlines]] = {}


def _stamp(root: Path) -> tuple[tuple[str, int, int], ...]:
    files = [p for p in (_items_path(root),) if p is not None]
    cal = root / CALENDAR_DIR
    files += sorted(p for p in cal.iterdir() if _CALENDAR_NAME.match(p.name)) \
        if cal.is_dir() else []
    out = []
    for p in files:
        st = os.stat(p)
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


def deadlines_for(mappings_dir: Path) -> Deadlines:
    """:func:`load_deadlines`, loaded again only when one of its files changed (the case view
    and the metrics ask on every request)."""
    root = data_root(mappings_dir)
    stamp = _stamp(root)
    hit = _cache.get(root)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    loaded = load_deadlines(root)
    _cache[root] = (stamp, loaded)
    return loaded


# -- overdue --------------------------------------------------------------------------------

def is_overdue(due: datetime, status: CaseStatus | str | None, now: datetime) -> bool:
    """Past ``due`` without a terminal status (no status yet counts as SUBMITTED)."""
    current = CaseStatus(status) if status is not None else CaseStatus.SUBMITTED
    if is_terminal(current):
        return False
    return beijing(now) > beijing(due)


def days_over(due: datetime, now: datetime) -> int:
    """Calendar days from the due date to ``now``'s date, Beijing time (1 the day after)."""
    return max(0, (beijing(now).date() - beijing(due).date()).days)


def submit_time(body: Mapping[str, Any], fallback: datetime) -> datetime:
    """The case's ``submitTime`` (ISO 8601 with offset), or ``fallback`` (when it was
    received) for a body without a readable one."""
    v = body.get("submitTime")
    if isinstance(v, str):
        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            return fallback
        return t if t.tzinfo else t.replace(tzinfo=BEIJING)
    return fallback
