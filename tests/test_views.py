"""gateway.views: the documents the API and the CLI both show, built from records alone (no
database, no request), times in +08:00, Chinese kept readable."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway.store import DeliveryRecord, DeliveryState
from gateway.views import breaker_doc, dead_letter_doc, delivery_doc, dumps

AT = datetime(2026, 11, 30, 16, 30, 0, tzinfo=UTC)  # 00:30 the next day in Beijing


def _delivery(state: DeliveryState = DeliveryState.DEAD) -> DeliveryRecord:
    return DeliveryRecord(
        id="d1", case_id="c1", partner="tianjin", item_nos=["1"], region="120116000000",
        route_rule="tianjin-default", mapping="tianjin/case-submit", mapping_version="1",
        idempotency_key="k1", state=state, attempts=3, next_attempt_at=AT,
        first_attempt_at=AT, receipt_no=None, partner_status=None, last_outcome="permanent",
        last_code="40003", last_message="材料不全", created_at=AT, updated_at=AT,
        delivered_at=None)


def test_a_dead_letter_is_its_delivery_with_the_application_number_first() -> None:
    d = _delivery()
    doc = dead_letter_doc("BJ2026113000000001", d)
    assert list(doc)[0] == "applicationNo"
    assert {k: v for k, v in doc.items() if k != "applicationNo"} == delivery_doc(d)
    assert "operatorActions" not in doc
    assert doc["nextAttemptAt"] is None  # only a pending delivery has a next attempt


def test_operator_actions_are_shown_in_beijing_time() -> None:
    doc = dead_letter_doc("BJ1", _delivery(), [{"at": AT, "actor": "ops", "action": "replay"}])
    assert doc["operatorActions"] == [
        {"at": "2026-12-01T00:30:00+08:00", "actor": "ops", "action": "replay"}]


def test_a_pending_delivery_shows_when_it_is_tried_next() -> None:
    assert delivery_doc(_delivery(DeliveryState.PENDING))["nextAttemptAt"] == \
        "2026-12-01T00:30:00+08:00"


def test_breaker_doc_drops_the_window_and_moves_the_times() -> None:
    doc = breaker_doc({"state": "open", "opened_at": AT.isoformat(), "open_until": None,
                       "probe_started_at": "not a time", "buckets": [[1, 2]]})
    assert doc == {"state": "open", "opened_at": "2026-12-01T00:30:00+08:00",
                   "open_until": None, "probe_started_at": "not a time"}


def test_dumps_keeps_chinese_and_writes_datetimes_in_beijing_time() -> None:
    text = dumps({"message": "材料不全", "at": AT})
    assert "材料不全" in text and "\n" not in text
    assert json.loads(text)["at"] == "2026-12-01T00:30:00+08:00"
    assert dumps({"a": 1}, indent=2) == '{\n  "a": 1\n}'
