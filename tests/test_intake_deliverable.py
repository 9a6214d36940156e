"""Issue 10 §3 and §8: accept only what can be delivered, and name the field when it cannot.

At intake every planned delivery is rendered and validated as the worker will do it; a value a
partner's contract refuses is a 422 naming the field of the case (JSON pointer into the submitted
case, not into the per-delivery view) and the partner rule (partner, mapping, the constraint in
words). Person names with a look-alike of the middle dot are stored with U+00B7 and the answer
says so under ``warnings``; a name of only spaces is refused.

The unit half runs :meth:`Intake.prepare` against the shipped configuration; the HTTP half a real
gateway (worker off) on SQLite and PostgreSQL, checking that nothing is stored on a refusal.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

import gateway.intake.accept
from gateway.api.keys import STORE
from gateway.config import load_settings
from gateway.contracts import ContractsHolder, load_contracts
from gateway.intake.accept import Intake, Undeliverable, deliverability_problems
from gateway.store.models import cases
from gateway.intake.validation import CaseValidator
from tests.conftest import ROOT, create_pg_database, drop_pg_database
from tests.harness import Gateway, settings_for
from tests.rawhttp import assert_problem
from tests.rawhttp import post_case as post

SAMPLES = ROOT / "samples" / "cases"
CONTRACTS = ContractsHolder(load_contracts(load_settings(ROOT / "config" / "gateway.yaml")))
_NO_STORE: Any = None  # prepare() never touches the store
INTAKE = Intake(_NO_STORE, CaseValidator(ROOT / "schemas" / "beijing" / "case.schema.json"),
                CONTRACTS)
REGEX_BITS = re.compile(r"\[[^\]]*-[^\]]*\]|\{\d+,?\d*\}|\\[dws.-]|\^|\$'")


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def refusal(case: dict[str, Any]) -> Undeliverable:
    prepared = INTAKE.prepare(json.dumps(case, ensure_ascii=False).encode())
    assert isinstance(prepared.refusal, Undeliverable), prepared.refusal
    assert prepared.refusal.status == 422
    return prepared.refusal


def errors(case: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in refusal(case).problems:
        out.setdefault(p.path, []).append(p.message)
    return out


# -- unit: Intake.prepare against the shipped contracts -----------------------------------------

def test_every_sample_is_deliverable_as_it_is() -> None:
    for path in sorted(SAMPLES.glob("*.json")):
        prepared = INTAKE.prepare(path.read_bytes())
        assert prepared.refusal is None, (path.name, prepared.refusal)
        assert prepared.plan is not None and prepared.warnings == ()


def test_a_code_outside_tianjins_token_pattern_names_the_field_and_the_rule() -> None:
    case = sample("10-person-tianjin-social-security")
    case["items"][0]["basicCode"] = "基本/编码"
    found = errors(case)
    assert list(found) == ["/items/0/basicCode"]
    [msg] = found["/items/0/basicCode"]
    assert msg == ("tianjin (mapping tianjin/case-submit v1) cannot take this value "
                   "(/PACKAGE/DATA/RECORD/SXJBBM): must be 1 to 64 characters from A–Z, a–z, "
                   "0–9, '.', '_', '-'; got '基本/编码'")
    assert not REGEX_BITS.search(msg), msg


def test_hebei_refusal_names_the_case_index_not_the_delivery_view_index() -> None:
    """In the ten-item bundle, Hebei's delivery carries items 5 and 10 (case indices 4 and 9):
    the view numbers them 0 and 1, the answer must not."""
    case = sample("20-bundle-ten-items-jingjinji")
    assert [it["itemNo"] for it in case["items"]][4] == "5"
    case["items"][4]["implementationCode"] = "SS 130100-001"        # a space: not a Hebei token
    found = errors(case)
    assert list(found) == ["/items/4/implementationCode"]
    [msg] = found["/items/4/implementationCode"]
    assert msg.startswith("hebei (mapping hebei/case-submit v1) cannot take this value "
                          "(/SubmitCaseRequest/case/items/item[1]/implementationCode): must be "
                          "1 to 64 characters from A–Z")
    assert "got 'SS 130100-001'" in msg


def test_a_shared_material_is_named_once_per_partner_that_refuses_it() -> None:
    case = sample("20-bundle-ten-items-jingjinji")
    shared = next(i for i, m in enumerate(case["materials"]) if not m.get("itemNos"))
    case["materials"][shared]["materialCode"] = "营业执照"
    found = errors(case)
    assert list(found) == [f"/materials/{shared}/materialCode"]
    partners = sorted(m.split(" ", 1)[0] for m in found[f"/materials/{shared}/materialCode"])
    assert partners == ["hebei", "tianjin"]       # the national contract allows any text


def test_a_joint_items_code_is_refused_by_each_region_at_one_pointer() -> None:
    """A 多地联办 item travels to Tianjin and to Hebei; both refuse a bad code, both name the
    item where the case holds it."""
    case = sample("20-bundle-ten-items-jingjinji")
    joint = next(i for i, it in enumerate(case["items"]) if it.get("jointRegions"))
    case["items"][joint]["basicCode"] = "联办 编码"
    found = errors(case)
    assert list(found) == [f"/items/{joint}/basicCode"]
    assert sorted(m.split(" ", 1)[0] for m in found[f"/items/{joint}/basicCode"]) == [
        "hebei", "tianjin"]


def test_a_delivery_views_regions_point_back_to_the_cases_spelling() -> None:
    """Joint regions are rebuilt per delivery (12 digits, lead first, the recipient's own region
    as handlingRegion): a pointer into the view names where the case wrote the same region."""
    from gateway.routing.view import delivery_view
    case = sample("20-bundle-ten-items-jingjinji")
    joint = next(i for i, it in enumerate(case["items"]) if it.get("jointRegions"))
    item = case["items"][joint]
    assert item["handlingRegion"] == "120116" and item["jointRegions"] == ["130100", "131000"]
    view = delivery_view(case, ["5", item["itemNo"]], "130000000000")
    k = [it["itemNo"] for it in view["items"]].index(item["itemNo"])
    assert view["items"][k]["handlingRegion"] == "130100000000"
    assert view.case_pointer(f"/items/{k}/handlingRegion") == f"/items/{joint}/jointRegions/0"
    assert view.case_pointer(f"/items/{k}/jointRegions/0") == f"/items/{joint}/handlingRegion"
    assert view.case_pointer(f"/items/{k}/jointRegions/2") == f"/items/{joint}/jointRegions/1"
    assert view.case_pointer(f"/items/{k}/itemName") == f"/items/{joint}/itemName"
    assert view.case_pointer("/applicant/name") == "/applicant/name"


def test_a_long_form_value_is_named_by_its_key() -> None:
    case = sample("10-person-tianjin-social-security")
    case["formData"] = {"remarks": "短", "details": "长" * 2001}
    found = errors(case)
    assert list(found) == ["/formData/details"], found
    assert "at most 2000 are allowed" in found["/formData/details"][0]


def test_the_refusal_detail_names_partners_and_fields() -> None:
    case = sample("13-bundle-tianjin-hebei-enterprise")
    for item in case["items"]:
        item["basicCode"] = "编码"
    r = refusal(case)
    assert r.detail.startswith("the case cannot be delivered to hebei, tianjin as it is: /items/0/")
    assert {p.path for p in r.problems} == {f"/items/{i}/basicCode"
                                             for i in range(len(case["items"]))}


def test_refusals_come_from_the_same_render_the_worker_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The check renders with the planned mapping version and validates with the view as
    source: a mapping that fails at render fails the intake too, naming its source field."""
    case = sample("10-person-tianjin-social-security")
    case["applicant"]["certType"] = "114"
    table = CONTRACTS.current.mappings.tables["cert-type-local-1-10"]
    monkeypatch.delitem(table.forward, "114")   # as if Tianjin had no agreed code for it
    found = errors(case)
    assert list(found) == ["/applicant/certType"]
    assert "SQRZJLX" in found["/applicant/certType"][0]
    assert "code '114' is not in table cert-type-local-1-10" in found["/applicant/certType"][0]


def test_the_ten_item_bundle_renders_and_validates_for_every_planned_delivery() -> None:
    """The check renders all seven partner deliveries of the ten-item bundle, repeatedly, with
    no problem and no state carried between runs. Its cost (tens of µs per delivery) is
    measured in bench/, not asserted here: a timed assertion fails on a busy machine."""
    case = gateway.intake.accept.normalise(sample("20-bundle-ten-items-jingjinji"))
    plan = CONTRACTS.current.routes.plan(case)
    assert len(plan.deliveries) == 7
    for _ in range(3):
        assert deliverability_problems(case, plan, CONTRACTS.current, case["applicationNo"]) == []


# -- names (§8) ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dot", ["\u30fb", "\u2022", "\uff65", "\u2027", "\u22c5"])
def test_look_alike_middle_dots_become_the_id_card_dot_with_a_warning(dot: str) -> None:
    case = sample("10-person-tianjin-social-security")
    case["applicant"]["name"] = f"阿依古丽{dot}买买提"
    case["agent"] = {"name": f"约翰{dot}史密斯", "certType": "414", "certNo": "E12345678"}
    prepared = INTAKE.prepare(json.dumps(case, ensure_ascii=False).encode())
    assert prepared.refusal is None
    assert prepared.case["applicant"]["name"] == "阿依古丽·买买提"
    assert prepared.case["agent"]["name"] == "约翰·史密斯"
    assert [w.path for w in prepared.warnings] == ["/applicant/name", "/agent/name"]
    assert f"U+{ord(dot):04X}" in prepared.warnings[0].message
    assert "replaced by U+00B7 MIDDLE DOT" in prepared.warnings[0].message


def test_an_organisations_name_is_not_touched() -> None:
    case = sample("11-company-hebei-branch-filing")
    case["applicant"]["name"] += "•分公司"
    prepared = INTAKE.prepare(json.dumps(case, ensure_ascii=False).encode())
    assert prepared.refusal is None and prepared.warnings == ()
    assert prepared.case["applicant"]["name"].endswith("•分公司")


# -- HTTP: a real gateway, worker off, on both engines -------------------------------------------

_numbers = itertools.count(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgres"])
async def gw(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    tmp = tmp_path_factory.mktemp(f"deliverable-{request.param}")
    url = (f"sqlite+aiosqlite:///{tmp / 'g.db'}" if request.param == "sqlite"
           else await create_pg_database())
    unused = "http://127.0.0.1:9/unused"
    try:
        settings = settings_for(tmp, url, {"national": unused, "tianjin": unused,
                                           "hebei": unused}, enabled=False)
        async with Gateway(settings) as g:
            yield g
    finally:
        if request.param == "postgres":
            await drop_pg_database(url)


def fresh(name: str) -> dict[str, Any]:
    case = sample(name)
    case["applicationNo"] = f"DELIV{next(_numbers):010d}"
    return case


def body(case: dict[str, Any]) -> bytes:
    return json.dumps(case, ensure_ascii=False).encode("utf-8")


async def stored(g: Gateway) -> int:
    async with g.app[STORE].engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(cases))).scalar_one())


@pytest.mark.asyncio(loop_scope="module")
async def test_an_undeliverable_case_is_422_and_nothing_is_stored(gw: Gateway) -> None:
    case = fresh("13-bundle-tianjin-hebei-enterprise")
    case["items"][0]["basicCode"] = "基本 编码"
    before = await stored(gw)
    doc = assert_problem(await post(gw, body(case)), 422, pointer="/items/0/basicCode",
                         words="cannot be delivered to")
    assert doc["type"] == "urn:gateway:problem:undeliverable"
    assert doc["title"] == "Not deliverable"
    assert all(e["path"] == "/items/0/basicCode" for e in doc["errors"])
    assert await stored(gw) == before


@pytest.mark.asyncio(loop_scope="module")
async def test_a_control_character_in_a_name_is_refused_before_any_partner(gw: Gateway) -> None:
    case = fresh("12-person-tianjin-rare-character-name")
    case["applicant"]["name"] = "测试\x01甲"
    assert_problem(await post(gw, body(case)), 422, pointer="/applicant/name", words="U+0001")


@pytest.mark.asyncio(loop_scope="module")
async def test_a_name_of_only_spaces_is_refused(gw: Gateway) -> None:
    for blank in ("   ", "\u3000\u3000", " \u200b "):
        case = fresh("01-person-shanghai-social-security")
        case["applicant"]["name"] = blank
        doc = assert_problem(await post(gw, body(case)), 422, pointer="/applicant/name")
        assert doc["errors"] == [{"path": "/applicant/name",
                                  "message": "is blank: it holds only spaces"}]


@pytest.mark.asyncio(loop_scope="module")
async def test_the_202_lists_the_middle_dot_it_changed_and_a_resubmission_is_the_same_case(
        gw: Gateway) -> None:
    case = fresh("10-person-tianjin-social-security")
    case["applicant"]["name"] = "阿依古丽・买买提"
    status, _, doc = await post(gw, body(case))
    assert status == 202, doc
    [warning] = doc["warnings"]
    assert warning["path"] == "/applicant/name" and "U+30FB" in warning["message"]
    status, kept = await gw.get(f"/api/v1/cases/{doc['id']}")
    assert kept["case"]["applicant"]["name"] == "阿依古丽·买买提"
    case["applicant"]["name"] = "阿依古丽·买买提"   # what was stored: the same application
    status, _, again = await post(gw, body(case))
    assert status == 200 and again["id"] == doc["id"] and "warnings" not in again


@pytest.mark.asyncio(loop_scope="module")
async def test_a_case_accepted_before_a_contract_changed_is_still_answered_as_itself(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    case = fresh("10-person-tianjin-social-security")
    status, _, first = await post(gw, body(case))
    assert status == 202
    from gateway.errors import FieldProblem
    monkeypatch.setattr(gateway.intake.accept, "deliverability_problems",
                        lambda *a: [FieldProblem("/items/0/basicCode", "tianjin now refuses it")])
    status, _, again = await post(gw, body(case))
    assert status == 200 and again["id"] == first["id"]
    other = fresh("10-person-tianjin-social-security")
    assert_problem(await post(gw, body(other)), 422, pointer="/items/0/basicCode")
