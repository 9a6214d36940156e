"""gateway/store/console_queries.py on both engines: every search filter, paging, the bounded
applicant scan, LIKE wildcards taken literally, and the partner figures (latency, error rate,
last failures)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.store import DeliveryState, Store
from gateway.store.console_queries import CaseFilter, partner_figures, search_cases
from gateway.store.repository import NewCase, NewDelivery
from gateway.store.types import utcnow

S = DeliveryState


def _case(no: str, name: str, cert: str, partner: str, items: tuple[str, ...],
          home: tuple[str, ...] = ()) -> NewCase:
    body = {"applicationNo": no, "applicant": {"name": name, "certType": "111", "certNo": cert}}
    return NewCase(application_no=no, body=body, body_hash=f"h-{no}", correlation_id=f"c-{no}",
                   home_items=home, deliveries=(NewDelivery(
                       partner=partner, item_nos=items, region="310115000000", route_rule="r",
                       mapping="national/case-submit", mapping_version=None,
                       idempotency_key=f"k-{no}"),))


async def _numbers(store: Store, f: CaseFilter, **kw: int) -> list[str]:
    return [r.application_no for r in (await search_cases(store, f, **kw)).rows]


async def test_every_filter_and_paging(store: Store) -> None:
    await store.submit_case(_case("Q0000001", "王小明", "110105199003071239", "national", ("1",)))
    await store.submit_case(_case("Q0000002", "李四", "120116199001012342", "tianjin", ("12",),
                                  home=("7",)))
    await store.submit_case(_case("X_000003", "王大明", "130102199001013450", "hebei", ("3",)))
    # newest first
    assert await _numbers(store, CaseFilter()) == ["X_000003", "Q0000002", "Q0000001"]
    assert await _numbers(store, CaseFilter(application_no="Q")) == ["Q0000002", "Q0000001"]
    # LIKE's wildcards are taken literally: "_" matches only an underscore
    assert await _numbers(store, CaseFilter(application_no="X_")) == ["X_000003"]
    assert await _numbers(store, CaseFilter(application_no="Q_")) == []
    assert await _numbers(store, CaseFilter(application_no="%")) == []
    assert await _numbers(store, CaseFilter(partner="tianjin")) == ["Q0000002"]
    assert await _numbers(store, CaseFilter(applicant="明")) == ["X_000003", "Q0000001"]
    assert await _numbers(store, CaseFilter(applicant="120116199001012342")) == ["Q0000002"]
    assert await _numbers(store, CaseFilter(applicant="12011619900101")) == []  # whole numbers
    # an item: "1" is not "12"; a home item counts when no partner or status is asked for
    assert await _numbers(store, CaseFilter(item="1")) == ["Q0000001"]
    assert await _numbers(store, CaseFilter(item="12")) == ["Q0000002"]
    assert await _numbers(store, CaseFilter(item="7")) == ["Q0000002"]
    assert await _numbers(store, CaseFilter(item="7", partner="tianjin")) == []
    assert await _numbers(store, CaseFilter(status="pending")) == [
        "X_000003", "Q0000002", "Q0000001"]
    assert await _numbers(store, CaseFilter(status="dead")) == []
    now = utcnow()
    assert await _numbers(store, CaseFilter(received_from=now + timedelta(hours=1))) == []
    assert len(await _numbers(store, CaseFilter(received_to=now + timedelta(hours=1)))) == 3
    assert await _numbers(store, CaseFilter(case_ids=frozenset())) == []
    # paging: two pages of two, "more" only on the first
    first = await search_cases(store, CaseFilter(), page=0, page_size=2)
    second = await search_cases(store, CaseFilter(), page=1, page_size=2)
    assert [len(first.rows), first.more, len(second.rows), second.more] == [2, True, 1, False]
    assert first.rows[0].deliveries[0].partner == "hebei"
    # the applicant filter pages too
    page = await search_cases(store, CaseFilter(applicant="明"), page=0, page_size=1)
    assert [r.application_no for r in page.rows] == ["X_000003"] and page.more
    assert not page.scan_capped


async def test_partner_figures_latency_error_rate_and_last_failures(store: Store) -> None:
    for i in range(4):
        await store.submit_case(_case(f"F000000{i}", "n", "110105199003071239", "national",
                                      ("1",)))
    claims = await store.claim_due("w", limit=10, lease_seconds=30)
    assert len(claims) == 4
    start = datetime.now(UTC)
    for i, c in enumerate(claims):
        failed = i < 1
        assert await store.finish_attempt(
            c, worker="w", started_at=start - timedelta(seconds=i + 1),
            outcome="permanent" if failed else "delivered",
            state=S.DEAD if failed else S.DELIVERED, next_attempt_at=None,
            partner_code="40003" if failed else "0", message="rejected" if failed else "ok",
            mapping_version="1")
    figures = await partner_figures(store, start - timedelta(hours=1))
    fig = figures["national"]
    assert fig.sends == 4 and fig.failed == 1 and fig.error_rate == 0.25
    assert fig.p50 is not None and fig.p95 is not None and 0 < fig.p50 <= fig.p95 <= 5
    assert [(f.outcome, f.code, f.message) for f in fig.failures] == [
        ("permanent", "40003", "rejected")]
    assert await partner_figures(store, start + timedelta(hours=1)) == {
        "national": type(fig)("national", failures=fig.failures)}
