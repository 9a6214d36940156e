"""Issue 9, "Intake never answers 5xx": every hostile request the probe sent, as its own
regression test, against a real gateway on SQLite and on PostgreSQL.

Each must be a 4xx RFC 9457 problem document naming the JSON pointer, header or path part, with
nothing stored. One gateway per engine serves the whole module (the worker is off: intake alone
is under test), and "nothing stored" is the row count of ``cases`` before and after.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

import gateway.api.cases
from gateway.api.keys import STORE
from gateway.store.models import cases
from tests.conftest import ROOT, create_pg_database, drop_pg_database
from tests.harness import Gateway, settings_for
from tests.rawhttp import assert_problem, raw_request
from tests.rawhttp import post_case as post

pytestmark = pytest.mark.asyncio(loop_scope="module")

SAMPLE = json.loads((ROOT / "samples" / "cases" / "01-person-shanghai-social-security.json")
                    .read_text(encoding="utf-8"))
_numbers = itertools.count(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def gw(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    url = (f"sqlite+aiosqlite:///{tmp / 'g.db'}" if request.param == "sqlite"
           else await create_pg_database())
    try:
        settings = settings_for(tmp, url, {"national": "http://127.0.0.1:9/unused"},
                                enabled=False)
        async with Gateway(settings) as g:
            yield g
    finally:
        if request.param == "postgres":
            await drop_pg_database(url)


def fresh_case(**changes: Any) -> dict[str, Any]:
    """The national sample with an application number of its own."""
    case = copy.deepcopy(SAMPLE)
    case["applicationNo"] = f"HOSTILE{next(_numbers):010d}"
    case.update(changes)
    return case


def body(case: dict[str, Any]) -> bytes:
    return json.dumps(case, ensure_ascii=False).encode("utf-8")


async def stored(g: Gateway) -> int:
    async with g.app[STORE].engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(cases))).scalar_one())


async def refused(g: Gateway, payload: bytes, status: int, **kw: Any) -> dict[str, Any]:
    before = await stored(g)
    doc = assert_problem(await post(g, payload), status, **kw)
    assert await stored(g) == before, "a refused request stored something"
    return doc


# -- the body -----------------------------------------------------------------------------------

async def test_100k_deep_json_body(gw: Gateway) -> None:
    await refused(gw, b"[" * 100_000 + b"]" * 100_000, 400, pointer="", words="deeper than")


async def test_5000_digit_integer(gw: Gateway) -> None:
    raw = body(fresh_case(formData={"n": 0})).replace(b'"n": 0', b'"n": ' + b"7" * 5000)
    await refused(gw, raw, 400, pointer="/formData/n", words="integer")


async def test_lone_surrogate_in_a_name(gw: Gateway) -> None:
    case = fresh_case()
    raw = body(case).replace(json.dumps(case["applicant"]["name"], ensure_ascii=False).encode(),
                             b'"\\ud800"')
    await refused(gw, raw, 400, pointer="/applicant/name", words="surrogate")


@pytest.mark.parametrize("value", [
    pytest.param("2026-13-01T09:15:00+08:00", id="month-13"),
    pytest.param("2026-11-30T09:15:00+99:99", id="offset-99"),
    pytest.param("２０２６-11-30T09:15:00+08:00", id="full-width-digits"),
    pytest.param("٢٠٢٦-١١-٣٠T09:15:00+08:00", id="arabic-indic-digits"),
    pytest.param("2026-11-30T09:15:00+08:00\n", id="trailing-newline"),
    pytest.param("2026-02-30T09:15:00+08:00", id="impossible-date"),
])
async def test_submit_time_that_is_no_time(gw: Gateway, value: str) -> None:
    await refused(gw, body(fresh_case(submitTime=value)), 422, pointer="/submitTime")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_in_form_data(gw: Gateway, token: str) -> None:
    raw = body(fresh_case(formData={"x": 0})).replace(b'"x": 0', b'"x": ' + token.encode())
    await refused(gw, raw, 400, pointer="/formData/x")


async def test_duplicate_json_keys(gw: Gateway) -> None:
    raw = body(fresh_case())[:-1] + b', "channel": "APP"}'
    await refused(gw, raw, 400, pointer="/channel", words="more than once")


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t", "\x00"])
async def test_application_number_with_trailing_whitespace_is_not_a_second_application(
        gw: Gateway, suffix: str) -> None:
    case = fresh_case()
    status, _, first = await post(gw, body(case))
    assert status == 202, first
    case["applicationNo"] += suffix
    await refused(gw, body(case), 422, pointer="/applicationNo")
    case["applicationNo"] = case["applicationNo"].removesuffix(suffix)
    status, _, again = await post(gw, body(case))
    assert status == 200 and again["id"] == first["id"]


@pytest.mark.parametrize("pointer, char", [
    ("/applicant/name", "\x00"), ("/items/0/itemName", "\x1f"), ("/applicant/name", "\x7f"),
    ("/items/0/department", "\x85"), ("/applicant/name", "\n"), ("/formData/remark", "\x00"),
])
async def test_nul_and_control_characters_are_refused_at_intake(gw: Gateway, pointer: str,
                                                               char: str) -> None:
    case = fresh_case(formData={"remark": "ok"})
    *parents, last = pointer.strip("/").split("/")
    target: Any = case
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    target[last] = f"前{char}后"
    await refused(gw, body(case), 422, pointer=pointer, words=f"U+{ord(char):04X}")


async def test_line_breaks_stay_allowed_in_free_text(gw: Gateway) -> None:
    case = fresh_case(formData={"remark": "第一行\n第二行\t完"})
    case["applicant"]["address"] = "北京市朝阳区\n示例路1号"
    status, _, doc = await post(gw, body(case))
    assert status == 202, doc
    status, kept = await gw.get(f"/api/v1/cases/{doc['id']}")
    assert kept["case"]["formData"]["remark"] == "第一行\n第二行\t完"
    assert kept["case"]["applicant"]["address"] == "北京市朝阳区\n示例路1号"


# -- headers and path -----------------------------------------------------------------------------

async def test_correlation_id_with_a_non_ascii_byte(gw: Gateway) -> None:
    before = await stored(gw)
    answer = await raw_request(gw, b"POST /api/v1/cases HTTP/1.1\r\nContent-Type: "
                               b"application/json\r\nX-Correlation-Id: corr-\xff\xfe\r\n",
                               body(fresh_case()))
    assert_problem(answer, 400, header="X-Correlation-Id", words="visible ASCII")
    assert await stored(gw) == before


async def test_correlation_id_of_1000_characters(gw: Gateway) -> None:
    before = await stored(gw)
    answer = await post(gw, body(fresh_case()), **{"X-Correlation-Id": "c" * 1000})
    assert_problem(answer, 400, header="X-Correlation-Id", words="1000 characters")
    assert await stored(gw) == before


async def test_correlation_id_is_kept_when_well_formed_and_generated_when_absent(
        gw: Gateway) -> None:
    given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01:x" + "y" * 7
    assert len(given) == 64
    status, _, doc = await post(gw, body(fresh_case()), **{"X-Correlation-Id": given})
    assert status == 202 and doc["correlationId"] == given
    status, _, doc = await post(gw, body(fresh_case()))
    assert status == 202 and len(doc["correlationId"]) == 32


@pytest.mark.parametrize("path", ["/api/v1/cases/%00", "/api/v1/cases/not-a-case",
                                  "/api/v1/cases/%ED%A0%80", "/api/v1/cases/" + "a" * 1000])
async def test_a_case_id_that_is_no_id_is_404_without_asking_the_database(
        gw: Gateway, path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_query(*a: Any, **kw: Any) -> None:
        raise AssertionError("the database was asked for a malformed case id")
    monkeypatch.setattr(gw.app[STORE], "get_case", no_query)
    answer = await raw_request(gw, f"GET {path} HTTP/1.1\r\n".encode())
    assert_problem(answer, 404, words="case ids are UUIDs")


async def test_an_unknown_well_formed_id_is_404(gw: Gateway) -> None:
    answer = await raw_request(gw, b"GET /api/v1/cases/3F2C1D9E-8B7A-4C6D-9E0F-1A2B3C4D5E6F "
                                   b"HTTP/1.1\r\n")
    assert_problem(answer, 404, words="no case with id 3f2c1d9e-8b7a-4c6d-9e0f-1a2b3c4d5e6f")


# -- the catch-all --------------------------------------------------------------------------------

async def test_an_internal_error_after_the_commit_does_not_claim_nothing_was_stored(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: Any) -> Any:
        raise RuntimeError("answer could not be built")
    case = fresh_case()
    before = await stored(gw)
    with monkeypatch.context() as m:
        m.setattr(gateway.api.cases, "case_doc", broken)
        doc = assert_problem(await post(gw, body(case)), 500,
                             words="may or may not have been stored")
    assert "nothing was stored" not in doc["detail"]
    assert await stored(gw) == before + 1  # it was stored: the old wording was false
    status, _, again = await post(gw, body(case))
    assert status == 200 and again["applicationNo"] == case["applicationNo"]
