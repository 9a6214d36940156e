"""What the worker renders for a delivery (issue 12 follow-up): the delivery's own document
whenever it carries one, whatever its kind, else the case as the delivery sees it.

The worker chose by a list of kinds (status_push, backflow, inbound_case, inbound_status): a kind
added later with a payload (here ``reconcile_notice``) was rendered from the anchor case's body
instead of its own document. Real records and a real case body; no mocks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.delivery.worker import delivery_view, message_source
from gateway.store import Claim, DeliveryRecord, DeliveryState


def _claim(case_body: dict[str, Any], *, kind: str, payload: dict[str, Any] | None) -> Claim:
    now = datetime.now(UTC)
    d = DeliveryRecord(
        id="d-1", case_id="c-1", partner="city", item_nos=["1"], region="110000000000",
        route_rule="r", mapping="m", mapping_version="1", idempotency_key="k-1",
        state=DeliveryState.IN_FLIGHT, attempts=0, next_attempt_at=now, first_attempt_at=None,
        receipt_no=None, partner_status=None, last_outcome=None, last_code=None,
        last_message=None, created_at=now, updated_at=now, delivered_at=None, kind=kind,
        payload=payload)
    return Claim(d, "token", case_body, "corr-1")


@pytest.mark.parametrize("kind", ["status_push", "backflow", "inbound_case", "inbound_status",
                                  "reconcile_notice", "case"])
def test_a_delivery_with_a_payload_renders_its_payload_whatever_its_kind(
        kind: str, samples: dict[str, Any]) -> None:
    own = {"event": {"status": "ACCEPTED"}, "kind": kind}
    claim = _claim(samples["01-person-shanghai-social-security"], kind=kind, payload=own)
    assert message_source(claim) is own


def test_a_delivery_without_a_payload_renders_the_case_as_it_sees_it(
        samples: dict[str, Any]) -> None:
    case = samples["01-person-shanghai-social-security"]
    item = case["items"][0]["itemNo"]
    claim = _claim(case, kind="case", payload=None)
    claim.delivery.item_nos[:] = [item]
    assert message_source(claim) == delivery_view(case, [item], "110000000000")
    assert message_source(claim)["applicationNo"] == case["applicationNo"]
