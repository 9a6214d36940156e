"""The web console's reads (gateway/console): case search and partner figures, bounded.

Every query here is a read through the store's one door (``store.db.read``), works alike on
SQLite and PostgreSQL (no engine-specific SQL: a JSON list is matched as its text) and is
bounded: a page is at most :data:`MAX_PAGE` rows, a page number at most :data:`MAX_PAGES`, and
the one filter SQL cannot apply — the applicant, whose name and ID number sit in the case body,
sealed at rest when sealing is on — looks through at most :data:`APPLICANT_SCAN` of the newest
cases that match the other filters (the page says so when it stopped there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, exists, or_, select
from sqlalchemy.sql.elements import ColumnElement

from gateway.store.models import attempts, cases, deliveries
from gateway.store.repository import DELIVERY_COLUMNS, DeliveryRecord, Store, delivery_from_row

MAX_PAGE = 100
MAX_PAGES = 1000
APPLICANT_SCAN = 2000
KIND_CASE = "case"


@dataclass(frozen=True)
class CaseFilter:
    """What the operator searches for; every field optional (None: not filtered)."""

    application_no: str | None = None       # a prefix of the application number
    applicant: str | None = None            # part of the name, or the whole ID number
    partner: str | None = None              # a delivery to this partner
    status: str | None = None               # a delivery in this state or partner status
    item: str | None = None                 # an item number, carried or handled at home
    received_from: datetime | None = None
    received_to: datetime | None = None     # exclusive
    case_ids: frozenset[str] | None = None  # e.g. the overdue cases' ids


@dataclass(frozen=True)
class CaseRow:
    id: str
    application_no: str
    received_at: datetime
    body: dict[str, Any]
    home_items: list[str]
    deliveries: list[DeliveryRecord]


@dataclass(frozen=True)
class CasePage:
    rows: list[CaseRow]
    more: bool                 # a next page exists
    scan_capped: bool = False  # the applicant filter stopped at APPLICANT_SCAN cases


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(f: CaseFilter) -> list[ColumnElement[bool]]:
    cond: list[ColumnElement[bool]] = []
    if f.application_no:
        cond.append(cases.c.application_no.like(_like_escape(f.application_no) + "%",
                                                escape="\\"))
    if f.received_from is not None:
        cond.append(cases.c.received_at >= f.received_from)
    if f.received_to is not None:
        cond.append(cases.c.received_at < f.received_to)
    if f.case_ids is not None:
        cond.append(cases.c.id.in_(sorted(f.case_ids)) if f.case_ids else cases.c.id.is_(None))
    part: list[ColumnElement[bool]] = []
    if f.partner:
        part.append(deliveries.c.partner == f.partner)
    if f.status:
        part.append(or_(deliveries.c.state == f.status, deliveries.c.partner_status == f.status))
    if f.item:
        part.append(cast(deliveries.c.item_nos, Text).like(
            f'%"{_like_escape(f.item)}"%', escape="\\"))
    if part:
        carried: ColumnElement[bool] = exists().where(deliveries.c.case_id == cases.c.id,
                                 deliveries.c.kind == KIND_CASE, *part)
        if f.item and not (f.partner or f.status):  # or an item the home platform handles
            carried = or_(carried, cast(cases.c.home_items, Text).like(
                f'%"{_like_escape(f.item)}"%', escape="\\"))
        cond.append(carried)
    return cond


def applicant_matches(body: dict[str, Any], wanted: str) -> bool:
    """Whether the case's applicant (or agent) has ``wanted`` in the name or as the ID number."""
    w = wanted.casefold()
    for key in ("applicant", "agent"):
        who = body.get(key)
        if not isinstance(who, dict):
            continue
        name, cert = who.get("name"), who.get("certNo")
        if (isinstance(name, str) and w in name.casefold()) or \
                (isinstance(cert, str) and cert.casefold() == w):
            return True
    return False


async def search_cases(store: Store, f: CaseFilter, *, page: int = 0,
                       page_size: int = 50) -> CasePage:
    """The newest cases first that match ``f``, one page of them, with their case deliveries."""
    page = max(0, min(page, MAX_PAGES))
    page_size = max(1, min(page_size, MAX_PAGE))
    stmt = (select(cases.c.id, cases.c.application_no, cases.c.received_at, cases.c.body,
                   cases.c.home_items)
            .where(*_where(f)).order_by(cases.c.received_at.desc(), cases.c.id))
    capped = False
    async with store.db.read("console: search cases") as conn:
        if f.applicant:
            rows = (await conn.execute(stmt.limit(APPLICANT_SCAN))).all()
            capped = len(rows) == APPLICANT_SCAN
            rows = [r for r in rows if isinstance(r.body, dict)
                    and applicant_matches(r.body, f.applicant)]
            rows = rows[page * page_size: (page + 1) * page_size + 1]
        else:
            rows = list((await conn.execute(
                stmt.offset(page * page_size).limit(page_size + 1))).all())
        more = len(rows) > page_size
        rows = rows[:page_size]
        dels = await _deliveries(conn, [r.id for r in rows])
    return CasePage([CaseRow(r.id, r.application_no, r.received_at,
                             r.body if isinstance(r.body, dict) else {}, list(r.home_items or []),
                             dels.get(r.id, [])) for r in rows], more, capped)


async def _deliveries(conn: Any, case_ids: Sequence[str]) -> dict[str, list[DeliveryRecord]]:
    if not case_ids:
        return {}
    rows = (await conn.execute(
        select(*DELIVERY_COLUMNS).where(deliveries.c.case_id.in_(case_ids),
                                        deliveries.c.kind == KIND_CASE)
        .order_by(deliveries.c.created_at, deliveries.c.id))).all()
    out: dict[str, list[DeliveryRecord]] = {}
    for r in rows:
        out.setdefault(r.case_id, []).append(delivery_from_row(r))
    return out


@dataclass(frozen=True)
class Failure:
    at: datetime
    delivery_id: str
    outcome: str
    http_status: int | None
    code: str | None
    message: str | None


@dataclass
class PartnerFigures:
    """One partner's recent sends: latency percentiles (seconds), error rate, last failures."""

    partner: str
    sends: int = 0
    failed: int = 0
    p50: float | None = None
    p95: float | None = None
    failures: list[Failure] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.sends if self.sends else None


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def partner_figures(store: Store, since: datetime, *, max_attempts: int = 20000,
                          failures_each: int = 5) -> dict[str, PartnerFigures]:
    """Per partner, the attempts started since ``since`` (the newest ``max_attempts`` at most)
    and its last ``failures_each`` failed attempts (any time)."""
    recent = (select(deliveries.c.partner, attempts.c.started_at, attempts.c.finished_at,
                     attempts.c.outcome)
              .join(deliveries, deliveries.c.id == attempts.c.delivery_id)
              .where(attempts.c.started_at >= since)
              .order_by(attempts.c.id.desc()).limit(max_attempts))
    failed = (select(deliveries.c.partner, attempts.c.started_at, attempts.c.delivery_id,
                     attempts.c.outcome, attempts.c.http_status, attempts.c.partner_code,
                     attempts.c.message)
              .join(deliveries, deliveries.c.id == attempts.c.delivery_id)
              .where(attempts.c.outcome != "delivered")
              .order_by(attempts.c.id.desc()).limit(failures_each * 50))
    async with store.db.read("console: partner figures") as conn:
        rows = (await conn.execute(recent)).all()
        fails = (await conn.execute(failed)).all()
    out: dict[str, PartnerFigures] = {}
    took: dict[str, list[float]] = {}
    for r in rows:
        fig = out.setdefault(r.partner, PartnerFigures(r.partner))
        fig.sends += 1
        fig.failed += r.outcome != "delivered"
        took.setdefault(r.partner, []).append((r.finished_at - r.started_at).total_seconds())
    for partner, values in took.items():
        values.sort()
        out[partner].p50, out[partner].p95 = _percentile(values, 0.5), _percentile(values, 0.95)
    for r in fails:
        fig = out.setdefault(r.partner, PartnerFigures(r.partner))
        if len(fig.failures) < failures_each:
            fig.failures.append(Failure(r.started_at, r.delivery_id, r.outcome, r.http_status,
                                        r.partner_code, r.message))
    return out


__all__ = ["APPLICANT_SCAN", "MAX_PAGE", "CaseFilter", "CasePage", "CaseRow", "Failure",
           "PartnerFigures", "applicant_matches", "partner_figures", "search_cases"]
