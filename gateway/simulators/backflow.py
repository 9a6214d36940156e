"""The national platform's data back-flow export (数据回流): pages of records the national
departments return to Beijing, behind an opaque cursor, mounted on the national simulator.

``POST /api/v1/data/backflow/export``: the national envelope, ``data`` ``{cursor?, limit, kind?}``
(``schemas/national/backflow-export.schema.json``) → ``data`` ``{records, nextCursor}``. Three
record kinds, each with a natural key and an integer ``version``:

* ``CASE_RESULT``  the result of a cross-province case (``projectNo`` / ``localProjectNo`` /
  ``receiptNo``, ``taskCode``, ``resultCode`` 1 准予 / 2 不予, ``finishTime``); key ``projectNo``
* ``LICENCE``      an e-licence record (GB/T 36901: ``licenceId`` ``1.2.156.3005.2.…``,
  ``licenceTypeCode`` = the defining body's USCC + 3 digits, holder type ``111``, synthetic
  holder, ``issueDate``); key ``licenceId``
* ``DATASET``      a row of a shared dataset (``datasetCode``, ``rowKey``, ``fields``); key
  ``datasetCode:rowKey``

A generated export of N records stores nothing: record ``i`` is a pure function of ``(i, seed)``
(:func:`generated_json`), so a 1,000,000-record walk costs the simulator no memory. Record ``i``
is about key ``i % keys`` (default ``keys`` = N: every key once) in round ``i // keys``; each
round carries a higher version, except for the keys ``k % backwards_every == 0`` (when set),
whose later rounds carry a *lower* version than the round before (a source that republished old
data). Held ``records`` (``POST /__sim/backflow {"records": [...]}``) are served instead when
given: a test's own records, in order.

Faults (same meaning and bookkeeping as :mod:`gateway.simulators.export`): ``slow_pages``,
``http500_pages``, ``repeat_pages`` (the page starts with the last ``repeat_count`` records of
the page before), each ``fault_times`` times per page number.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from gateway.simulators.export import (Export, ExportStats, _time, control_route,
                                       page_answer, parse_cursor)

EXPORT_PATH = "/api/v1/data/backflow/export"
CONTROL_PATH = "/__sim/backflow"
KINDS = ("CASE_RESULT", "LICENCE", "DATASET")
SCHEMA = (Path(__file__).resolve().parent.parent.parent / "schemas" / "national"
          / "backflow-export.schema.json")

#: licensing bodies (synthetic USCCs with valid GB 32100 check characters) and their licences
_ISSUERS = (("11110000000012343B", "001", "食品经营许可证"),
            ("11110105000012343Q", "003", "准予行政许可决定书"),
            ("91110105MA01AB125M", "017", "道路运输经营许可证"))
#: synthetic holders only (DESIGN.md §4): never a real person
_HOLDERS = (("张三", "110105199003071239"), ("李四", "120116198506112342"),
            ("王五", "130102199202153450"))
_TASKS = ("11310115MB2C12345X000134023000001", "11120116MB1A23456Y000134023000001",
          "11130100MB1C34567T000131004000001")
_DATASETS = ("DS-HOUSEHOLD-REG", "DS-SOCIAL-INSURANCE", "DS-ENTERPRISE-BASIC")

Opener = Callable[[web.Request, Draft202012Validator], Awaitable[dict[str, Any] | web.Response]]
#: answers a page's ``data`` as the simulator answers everything when it holds keys (sealed)
Sealer = Callable[[dict[str, Any]], web.Response]


def kind_of(key: int) -> str:
    """The record kind of generated key ``key``: 2 in 10 case results, 3 licences, 5 rows."""
    b = key % 10
    return "CASE_RESULT" if b < 2 else "LICENCE" if b < 5 else "DATASET"


def version_of(i: int, keys: int, backwards_every: int = 0) -> int:
    """The version record ``i`` carries: ``2 + 2 × round``, except 1 in the later rounds of the
    keys that go backwards (below the 2 their first round stored)."""
    k, rnd = i % keys, i // keys
    if rnd and backwards_every and k % backwards_every == 0:
        return 1
    return 2 * rnd + 2


def generated_json(i: int, seed: int = 0, keys: int = 0, backwards_every: int = 0) -> str:
    """Record ``i`` as compact JSON text, written directly (no dict, no serialiser: cheap)."""
    keys = keys or (i + 1)
    k = i % keys
    v = version_of(i, keys, backwards_every)
    n = f"{seed:02d}{k:010d}"
    kind = kind_of(k)
    if kind == "CASE_RESULT":
        return (f'{{"kind":"CASE_RESULT","version":{v},"projectNo":"11BJG{n}",'
                f'"localProjectNo":"BJG{n}","receiptNo":"QGG{n}","taskCode":"{_TASKS[k % 3]}",'
                f'"resultCode":"{"2" if k % 7 == 0 else "1"}","finishTime":"{_time(i)}"}}')
    if kind == "LICENCE":
        uscc, no, name = _ISSUERS[k % 3]
        holder, cert = _HOLDERS[k % 3]
        return (f'{{"kind":"LICENCE","version":{v},"licenceId":"1.2.156.3005.2.{uscc}.{no}.'
                f'{n}","licenceTypeCode":"{uscc}{no}","licenceName":"{name}",'
                f'"holderName":"{holder}","holderType":"111","holderCertNo":"{cert}",'
                f'"issueDate":"{_time(i)[:10]}"}}')
    return (f'{{"kind":"DATASET","version":{v},"datasetCode":"{_DATASETS[k % 3]}",'
            f'"rowKey":"R{n}","fields":{{"region":"110105000000","count":{k % 997},'
            f'"updated":"{_time(i)}"}}}}')


def generated_record(i: int, seed: int = 0, keys: int = 0,
                     backwards_every: int = 0) -> dict[str, Any]:
    """Record ``i`` as a dict (tests, expectations)."""
    doc: dict[str, Any] = json.loads(generated_json(i, seed, keys, backwards_every))
    return doc


@dataclass
class BackflowConfig:
    generated: int | None = None     # serve N generated records …
    records: list[dict[str, Any]] | None = None  # … or these, in order
    seed: int = 0
    keys: int | None = None          # distinct keys of the generated records (default N)
    backwards_every: int = 0         # keys k % n == 0 go backwards in later rounds (0: none)
    slow_pages: list[int] = field(default_factory=list)
    slow_delay: float = 0.5
    http500_pages: list[int] = field(default_factory=list)
    repeat_pages: list[int] = field(default_factory=list)
    repeat_count: int = 5
    fault_times: int = 1


class BackflowExport(Export):
    """The export's configuration, fault bookkeeping (:meth:`Export.fault`) and counters."""

    def reset(self) -> None:
        super().reset()
        self.config = BackflowConfig()  # type: ignore[assignment]

    def configure(self, doc: dict[str, Any]) -> None:
        unknown = set(doc) - set(asdict(BackflowConfig()))
        if unknown:
            raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
        cfg = BackflowConfig(**doc)
        if cfg.generated is not None and cfg.generated < 0:
            raise ValueError("generated is a number of records ≥ 0")
        if cfg.keys is not None and cfg.keys < 1:
            raise ValueError("keys is a number ≥ 1")
        if cfg.records is not None and not all(isinstance(r, dict) for r in cfg.records):
            raise ValueError("records is a list of objects")
        for name in ("slow_pages", "http500_pages", "repeat_pages"):
            if not all(isinstance(n, int) and n >= 1 for n in getattr(cfg, name)):
                raise ValueError(f"{name} lists page numbers from 1")
        self.config = cfg  # type: ignore[assignment]
        self.stats = ExportStats()
        self._fired = {}

    @property
    def cfg(self) -> BackflowConfig:
        assert isinstance(self.config, BackflowConfig)
        return self.config

    def total(self) -> int:
        c = self.cfg
        return len(c.records) if c.records is not None else c.generated or 0

    def page_text(self, start: int, end: int, kind: str | None) -> tuple[str, int]:
        """Records ``start`` to ``end`` as a JSON array text (only ``kind`` if given)."""
        c = self.cfg
        if c.records is not None:
            chosen = [r for r in c.records[start:end] if kind is None or r.get("kind") == kind]
            return json.dumps(chosen, ensure_ascii=False, separators=(",", ":")), len(chosen)
        keys = c.keys or c.generated or 1
        texts = [generated_json(i, c.seed, keys, c.backwards_every) for i in range(start, end)
                 if kind is None or kind_of(i % keys) == kind]
        return "[" + ",".join(texts) + "]", len(texts)


def mount(app: web.Application, opened: Opener, sealed: Sealer | None = None) -> BackflowExport:
    """Add the export and its control route to the national simulator ``app``; ``opened``
    checks the envelope and returns its ``data`` (or the answer refusing it); ``sealed``, when
    the simulator has keys, answers a page signed (and encrypted) like its other answers."""
    export = BackflowExport()
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    request_v = Draft202012Validator({**schema["$defs"]["request"], "$defs": schema["$defs"]})

    async def page(request: web.Request) -> web.StreamResponse:
        data = await opened(request, request_v)
        if isinstance(data, web.Response):
            return data
        limit = int(data["limit"])
        try:
            offset = int(parse_cursor(data.get("cursor"), "b") or 0)
        except ValueError as e:
            return _answer_error(f"数据校验失败 /data/cursor: {e}")
        number = offset // limit + 1
        if export.fault("http500", number):
            return web.Response(status=500, text="simulated internal error")
        if export.fault("slow", number):
            await asyncio.sleep(export.cfg.slow_delay)
        start = (max(0, offset - export.cfg.repeat_count) if export.fault("repeat", number)
                 else offset)
        end = min(export.total(), offset + limit)
        text, count = export.page_text(start, end, data.get("kind"))
        nxt = f"b:{end}" if end < export.total() else None
        export.stats.pages += 1
        export.stats.records += count
        return page_answer(text, nxt, sealed)

    def view() -> dict[str, Any]:
        cfg = {k: v for k, v in asdict(export.cfg).items() if k != "records"}
        cfg["records"] = None if export.cfg.records is None else len(export.cfg.records)
        return cfg

    control = control_route(export, "back-flow", view)

    app.router.add_post(EXPORT_PATH, page)
    app.router.add_route("*", CONTROL_PATH, control)
    return export


def _answer_error(msg: str) -> web.Response:
    return web.Response(text=json.dumps({"code": "40001", "msg": msg}, ensure_ascii=False),
                        content_type="application/json", charset="utf-8")


__all__ = ["CONTROL_PATH", "EXPORT_PATH", "KINDS", "BackflowConfig", "BackflowExport",
           "generated_json", "generated_record", "kind_of", "mount", "version_of"]
