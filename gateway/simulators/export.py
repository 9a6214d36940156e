"""The national simulator's bulk status export: pages of status records behind an opaque cursor,
from the cases it holds or from a generated population of any size, with faults on order.

A generated export of N records stores nothing: record ``i`` is a pure function of ``(i, seed)``
(:func:`generated_record`), so a reconcile benchmark can build the gateway's side of a
1,000,000-case comparison from the same function and page through the simulator with flat
memory on both sides. Records are in a stable order (by index, which is also receipt order) and
the cursor is the offset of the next record, so a walk sees every record exactly once — unless
a fault says otherwise.

Faults (``POST /__sim/export``), each on the listed page numbers (1 = the first page, counted as
``offset // limit + 1``) and for ``fault_times`` requests of that page (default 1, so a reader
that retries gets through):

* ``slow_pages``     the answer comes ``slow_delay`` seconds late
* ``http500_pages``  HTTP 500 instead of the page
* ``repeat_pages``   the page starts with the last ``repeat_count`` records of the page before
  (a source whose cursor slipped): records the reader has seen already, in a page whose
  ``nextCursor`` is still right
* ``bad_signature_pages``  a signed page's ``signData`` altered (a simulator with keys only)
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.simulators.statuses import CST

#: the generated population's spread of statuses, per mille (cumulative bounds): mostly finished
_SPREAD = ((100, "RECEIVED"), (250, "ACCEPTED"), (450, "IN_REVIEW"), (520, "SUPPLEMENT_REQUIRED"),
           (900, "FINISHED"), (940, "NOT_ACCEPTED"), (980, "WITHDRAWN"), (1000, "VOIDED"))
_TASKS = (("11310115MB2C12345X000134023000001", "310115000000"),
          ("11330106MB3F45678A000123007000001", "330106000000"),
          ("11120116MB1A23456Y000134023000001", "120116000000"),
          ("11130100MB1C34567T000131004000001", "130100000000"))
_EPOCH = datetime(2026, 1, 5, 9, 0, 0, tzinfo=CST)
MAX_LIMIT = 10_000


#: bucket (0…999) → status, so a record costs one table look-up
_BY_BUCKET = tuple(next(status for bound, status in _SPREAD if b < bound) for b in range(1000))


def generated_status(i: int, seed: int = 0) -> str:
    """The status of generated record ``i`` (a cheap multiplicative hash picks the bucket)."""
    return _BY_BUCKET[((i + 1) * 2654435761 + seed * 40503) % 1000]


@functools.lru_cache(maxsize=4096)
def _day(n: int) -> str:
    return (_EPOCH.replace(hour=0, minute=0) + timedelta(days=n)).strftime("%Y-%m-%d")


def _time(i: int) -> str:
    """``_EPOCH`` + ``i`` minutes as ``yyyy-MM-dd HH:mm:ss`` (integer arithmetic; the date
    string is cached per day: strftime per record would cost more than the rest of it)."""
    minutes = _EPOCH.hour * 60 + _EPOCH.minute + i
    day, rest = divmod(minutes, 1440)
    return f"{_day(day)} {rest // 60:02d}:{rest % 60:02d}:00"


def generated_record(i: int, seed: int = 0) -> dict[str, Any]:
    """Record ``i`` of a generated export (status-record.schema.json). Every value follows from
    ``(i, seed)``: ``receiptNo`` QGG…, ``idempotencyKey`` G<seed>-<i>, ``localProjectNo``
    BJG…, ``projectNo`` 11BJG…, one of four items, a status from a fixed spread (FINISHED
    records carry ``resultCode``, one in seven denied), ``statusTime`` minutes apart."""
    task, area = _TASKS[i % len(_TASKS)]
    status = generated_status(i, seed)
    rec: dict[str, Any] = {
        "receiptNo": f"QGG{seed:02d}{i:010d}",
        "idempotencyKey": f"G{seed:02d}-{i:010d}",
        "projectNo": f"11BJG{seed:02d}{i:010d}",
        "localProjectNo": f"BJG{seed:02d}{i:010d}",
        "taskCode": task,
        "areaCode": area,
        "proStatus": status,
        "statusTime": _time(i),
    }
    if status == "FINISHED":
        rec["resultCode"] = "2" if i % 7 == 0 else "1"
    return rec


@dataclass
class ExportConfig:
    generated: int | None = None        # serve N generated records instead of the held cases
    seed: int = 0
    slow_pages: list[int] = field(default_factory=list)
    slow_delay: float = 0.5
    http500_pages: list[int] = field(default_factory=list)
    repeat_pages: list[int] = field(default_factory=list)
    repeat_count: int = 5
    bad_signature_pages: list[int] = field(default_factory=list)
    fault_times: int = 1


@dataclass
class ExportStats:
    pages: int = 0
    records: int = 0
    faults: list[dict[str, Any]] = field(default_factory=list)


class Export:
    """The export's configuration, its fault bookkeeping and its counters."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.config = ExportConfig()
        self.stats = ExportStats()
        self._fired: dict[tuple[str, int], int] = {}

    def configure(self, doc: dict[str, Any]) -> None:
        """Replace the configuration (unknown keys and bad values raise ``ValueError``)."""
        unknown = set(doc) - set(asdict(ExportConfig()))
        if unknown:
            raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
        cfg = ExportConfig(**doc)
        if cfg.generated is not None and cfg.generated < 0:
            raise ValueError("generated is a number of records ≥ 0")
        for name in ("slow_pages", "http500_pages", "repeat_pages", "bad_signature_pages"):
            if not all(isinstance(n, int) and n >= 1 for n in getattr(cfg, name)):
                raise ValueError(f"{name} lists page numbers from 1")
        self.config = cfg
        self.stats = ExportStats()
        self._fired = {}

    def fault(self, kind: str, page: int) -> bool:
        """Does fault ``kind`` hit this request of ``page`` (and count it if so)?"""
        if page not in getattr(self.config, f"{kind}_pages"):
            return False
        n = self._fired.get((kind, page), 0)
        if n >= self.config.fault_times:
            return False
        self._fired[(kind, page)] = n + 1
        self.stats.faults.append({"kind": kind, "page": page})
        return True

    def generated_page(self, offset: int, limit: int, start: int) -> tuple[str, int, int | None]:
        """Records ``start`` (≤ ``offset``, earlier for a repeat) to ``offset + limit`` of the
        generated population as a JSON array text, their number, and the next offset (None at
        the end). Text, not objects: the values need no escaping, and writing the JSON directly
        is several times cheaper than building dicts and serialising them, which is what lets
        one core serve a million records in seconds."""
        total = self.config.generated or 0
        end = min(total, offset + limit)
        seed = self.config.seed
        text = "[" + ",".join(generated_json(i, seed) for i in range(start, end)) + "]"
        return text, max(0, end - start), (end if end < total else None)


def generated_json(i: int, seed: int = 0) -> str:
    """:func:`generated_record` as compact JSON text, written directly (same keys, same order)."""
    task, area = _TASKS[i % len(_TASKS)]
    status = _BY_BUCKET[((i + 1) * 2654435761 + seed * 40503) % 1000]
    n = f"{seed:02d}{i:010d}"
    result = (',"resultCode":"2"' if i % 7 == 0 else ',"resultCode":"1"') \
        if status == "FINISHED" else ""
    return (f'{{"receiptNo":"QGG{n}","idempotencyKey":"G{seed:02d}-{i:010d}",'
            f'"projectNo":"11BJG{n}","localProjectNo":"BJG{n}","taskCode":"{task}",'
            f'"areaCode":"{area}","proStatus":"{status}","statusTime":"{_time(i)}"{result}}}')


def parse_cursor(cursor: str | None, kind: str) -> str | int | None:
    """``g:<offset>`` (generated) or ``s:<receipt>`` (held cases, after that receipt);
    ``ValueError`` for one of the other kind or unreadable."""
    if cursor is None:
        return None
    prefix, _, rest = cursor.partition(":")
    if prefix != kind or not rest:
        raise ValueError(f"cursor {cursor[:40]!r} does not belong to this export")
    if kind == "g":
        if not rest.isdigit():
            raise ValueError("unreadable cursor")
        return int(rest)
    return rest


def page_answer(records_json: str, next_cursor: str | None,
                sealed: Callable[[dict[str, Any]], web.Response] | None = None) -> web.Response:
    """One page ``{code: "0", msg, data: {records, nextCursor}}``: written around the records'
    JSON text as it is (a generated page of 10,000 records is never parsed again), or, when the
    simulator holds keys, handed to ``sealed`` as an object to be signed (and encrypted)."""
    if sealed is not None:
        return sealed({"records": json.loads(records_json), "nextCursor": next_cursor})
    body = ('{"code":"0","msg":"成功","data":{"records":' + records_json + ',"nextCursor":'
            + json.dumps(next_cursor) + "}}")
    return web.Response(text=body, content_type="application/json", charset="utf-8")


def control_route(export: Export, what: str, view: Callable[[], dict[str, Any]]
                  ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``/__sim/…`` for an export: POST configures it (400 naming what is wrong), any method
    answers ``{config: view(), stats, maxLimit}``."""
    async def control(request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                doc = await request.json()
                if not isinstance(doc, dict):
                    raise ValueError("a JSON object is required")
                export.configure(doc)
            except (ValueError, TypeError) as e:
                return web.json_response({"error": f"bad {what} config: {e}"}, status=400)
        return web.json_response({"config": view(), "stats": asdict(export.stats),
                                  "maxLimit": MAX_LIMIT})
    return control
