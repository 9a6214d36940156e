"""多地联办: one joint item is one application, handled by several regions.

What goes on the wire (mappings/README.md, "Joint items"): every recipient gets the item ONCE
(two districts of one province in one message), with its own handling region and the list of
every region handling the item, its own marked; the department only when it leads. These tests
hold the rule from the delivery view, through every shipped contract, to the three simulators.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.intake.accept import normalise
from gateway.mapping import MappingRegistry
from gateway.routing import RouteTable, delivery_view
from gateway.routing.view import item_regions, within
from tests.harness import Gateway, Simulator, default_partner_path, settings_for

ROOT = Path(__file__).resolve().parent.parent
PARTNERS = ("national", "tianjin", "hebei")
APP_NO = "BJ2026120100000777"


def joint_case() -> dict[str, Any]:
    """Four items: a 京津冀 item led by Binhai with Shijiazhuang, Langfang and Chaoyang; a Tianjin
    item of two Tianjin districts; a Shanghai item of two Shanghai districts and Hangzhou; a plain
    Hebei item that shares Hebei's message."""
    def item(no: str, code: str, name: str, region: str, dept: str,
             joint: list[str] | None = None) -> dict[str, Any]:
        it = {"itemNo": no, "basicCode": code, "itemName": name, "handlingRegion": region,
              "implementationCode": f"11{region}MB1A23456X{code}00{no}", "department": dept}
        if joint is not None:
            it["jointRegions"] = joint
        return it
    return {
        "applicationNo": APP_NO, "channel": "WEB", "submitTime": "2026-12-01T09:30:00+08:00",
        "receivingRegion": "110105", "crossRegionMode": "JOINT",
        "bundle": {"scenarioCode": "YJS-JJJ-LHSP-001", "scenarioName": "京津冀联合审批一件事",
                   "themeCode": "JJJ"},
        "applicant": {"type": "LEGAL_PERSON", "name": "北京示例科技有限公司", "certType": "001",
                      "certNo": "91110105MA01AB125M", "phone": "01060000001",
                      "legalRepresentative": {"name": "测试乙", "certType": "111",
                                              "certNo": "120116198506112342"}},
        "agent": {"name": "测试丙", "certType": "111", "certNo": "130102199202153450"},
        "items": [
            item("1", "000140001000", "京津冀环评联合审批", "120116", "天津市滨海新区行政审批局",
                 ["130100", "131000", "110105"]),
            item("2", "000140002000", "跨区排污许可", "120101", "天津市和平区生态环境局",
                 ["120116"]),
            item("3", "000134023000", "养老保险关系转移接续", "310115", "上海市浦东新区社保中心",
                 ["310104", "330106"]),
            item("4", "000105004000", "分支机构设立登记", "130102", "石家庄市长安区行政审批局"),
        ],
        "materials": [{"materialCode": "M1", "name": "环境影响报告表", "itemNos": ["1"],
                       "fileRef": "oss://gateway-demo/M1.pdf", "pages": 40}],
        "formData": {"remarks": "联办请各地协同", "investment": 5000000},
    }


# -- the delivery view ---------------------------------------------------------------------------

def test_item_regions_are_the_normalised_union_lead_first() -> None:
    it = {"handlingRegion": "120116", "jointRegions": ["130100000000", "120116", "130100"]}
    assert item_regions(it) == ["120116000000", "130100000000"]
    assert item_regions({"handlingRegion": "110105"}) == ["110105000000"]


@pytest.mark.parametrize(("code", "area", "inside"), [
    ("130100000000", "130000000000", True), ("131000", "130000", True),
    ("120116", "130000000000", False), ("130100", "130100000000", True),
    ("130102", "130100", True), ("130200", "130100", False), (None, "130000", False),
    ("130100", None, False), ("bogus", "130000", False)])
def test_within(code: Any, area: Any, inside: bool) -> None:
    assert within(code, area) is inside


def test_view_gives_a_joint_item_the_recipients_own_region_and_every_region() -> None:
    c = normalise(joint_case())
    hebei = delivery_view(c, ["1", "4"], "130000000000")
    one, four = hebei["items"]
    assert one["handlingRegion"] == "130100000000"      # Hebei's own, not Binhai's
    assert one["jointRegions"] == ["120116000000", "130100000000", "131000000000",
                                   "110105000000"]      # every region, the lead first
    assert four["handlingRegion"] == "130102000000" and "jointRegions" not in four
    assert [m["materialCode"] for m in hebei["materials"]] == ["M1"]
    tianjin = delivery_view(c, ["1"], "120116000000")
    assert tianjin["items"][0]["handlingRegion"] == "120116000000"
    assert delivery_view(c, ["4"], "130102000000")["materials"] == []
    # the stored case is not changed by a view
    assert c["items"][0]["handlingRegion"] == "120116000000"
    # a list naming only the item's own region is not a joint item
    single = dict(c, items=[dict(c["items"][3], jointRegions=["130102"])])
    assert "jointRegions" not in delivery_view(single, ["4"], "130102000000")["items"][0]


# -- every shipped contract, rendered from the real route table ----------------------------------

@pytest.fixture(scope="module")
def registry() -> MappingRegistry:
    return MappingRegistry.load(ROOT / "mappings", ROOT / "schemas")


@pytest.fixture(scope="module")
def routes() -> RouteTable:
    s = load_settings(ROOT / "config" / "gateway.yaml")
    return RouteTable.build(s.routes, s.partners, s.home_region)


def parts(partner: str, payload: Any) -> list[dict[str, Any]]:
    """(application, item code, handling region, joint regions {region: local}, department) per
    item of one partner message, read back from what the partner stores."""
    if partner == "national":
        j = payload.get("jointHandling")
        return [{"app": payload["localProjectNo"], "code": payload["taskCode"],
                 "region": payload["areaCode"], "dept": payload.get("deptName"),
                 "lead": j and j["leadAreaCode"], "leadDept": j and j.get("leadDeptName"),
                 "joint": j and {a["areaCode"]: a["local"] for a in j["areas"]}}]
    if partner == "tianjin":
        out = []
        for r in payload["records"]:
            j = r.get("LBXX")
            out.append({"app": r["SBLSH"], "code": r["SXBM"], "region": r["XZQHDM"],
                        "dept": r.get("BLBM"), "lead": j and j["QTDQ"],
                        "leadDept": j and j.get("QTBM"),
                        "joint": j and {x["DQDM"]: x["SFBD"] == "1" for x in j["LBDQ"]}})
        return out
    out = []
    for it in payload["itemDetails"]:
        j = it.get("jointHandling")
        out.append({"app": payload["caseNo"], "code": it["implementationCode"],
                    "region": it["handlingRegion"], "dept": it["department"],
                    "lead": j and j["leadRegion"], "leadDept": j and j["leadDepartment"],
                    "joint": j and {x["region"]: x["local"] for x in j["regions"]}})
    return out


def tianjin_payload(out: Any) -> dict[str, Any]:
    from lxml import etree

    from gateway.simulators.tianjin import records
    return {"records": records(etree.fromstring(etree.tostring(out)))}


def hebei_payload(out: Any) -> dict[str, Any]:
    from gateway.simulators.hebei import summary
    return summary(out)


def rendered_parts(case: dict[str, Any], registry: MappingRegistry,
                   routes: RouteTable) -> dict[str, list[dict[str, Any]]]:
    """What each partner would receive for ``case``: render + validate every planned delivery
    exactly as the worker does (view of item_nos and region, deliveryRegion in the context)."""
    stored = normalise(case)
    got: dict[str, list[dict[str, Any]]] = {p: [] for p in PARTNERS}
    for d in routes.plan(stored).deliveries:
        m = registry.get(d.mapping, d.mapping_version)
        ctx = {"caseId": "C", "deliveryId": "D", "idempotencyKey": "K", "partner": d.partner,
               "now": "2026-12-01T10:00:00+08:00", "deliveryRegion": d.region}
        out = m.render(delivery_view(stored, d.item_nos, d.region), ctx)
        m.validate_output(out)
        payload = {"tianjin": tianjin_payload, "hebei": hebei_payload}.get(
            d.partner, lambda x: x)(out)
        got[d.partner] += parts(d.partner, payload)
    return got


def assert_one_application_per_region(got: dict[str, list[dict[str, Any]]],
                                      case: dict[str, Any]) -> None:
    stored = normalise(case)
    for partner, ps in got.items():
        triples = [(p["app"], p["code"], p["region"]) for p in ps]
        assert len(triples) == len(set(triples)), f"{partner} got one application twice: {triples}"
    for it in stored["items"]:
        regions = item_regions(it)
        if len(regions) < 2:
            continue
        seen = [(partner, p) for partner, ps in got.items() for p in ps
                if p["code"] == it["implementationCode"]]
        assert seen, it["itemNo"]
        locals_: list[str] = []
        for partner, p in seen:
            # its own handling region, and every region of the item with its own ones marked
            assert p["joint"] is not None and list(p["joint"]) == regions, (partner, p)
            own = [r for r, local in p["joint"].items() if local]
            assert p["region"] == own[0], (partner, p)
            assert p["lead"] == regions[0] and p["leadDept"] == it["department"]
            assert p["dept"] == (it["department"] if regions[0] in own else None), (partner, p)
            locals_ += own
        # each region handled by exactly one recipient, except Beijing's own (handled at home)
        away = [r for r in regions if not r.startswith("11")]
        assert sorted(locals_) == sorted(away), (it["itemNo"], locals_)


def test_every_contract_carries_each_part_once(registry: MappingRegistry,
                                               routes: RouteTable) -> None:
    case = joint_case()
    got = rendered_parts(case, registry, routes)
    assert_one_application_per_region(got, case)
    # two Hebei districts: ONE Hebei message naming both; Binhai's department is the lead's
    hebei_item1 = [p for p in got["hebei"] if p["code"].endswith("001")]
    assert [(p["region"], p["joint"]) for p in hebei_item1] == [(
        "130100000000", {"120116000000": False, "130100000000": True, "131000000000": True,
                         "110105000000": False})]
    # two Tianjin districts in one RECORD, both Tianjin's
    tj2 = [p for p in got["tianjin"] if p["code"].endswith("002")]
    assert [(p["region"], p["joint"]) for p in tj2] == [
        ("120101000000", {"120101000000": True, "120116000000": True})]
    # national: Pudong + Xuhui in one push, Hangzhou in another
    nat = sorted((p["region"], tuple(r for r, v in p["joint"].items() if v)) for p in got["national"])
    assert nat == [("310115000000", ("310115000000", "310104000000")),
                   ("330106000000", ("330106000000",))]


def test_the_ten_item_sample_tells_hebei_its_own_region(registry: MappingRegistry,
                                                        routes: RouteTable,
                                                        samples: dict[str, Any]) -> None:
    case = samples["20-bundle-ten-items-jingjinji"]
    got = rendered_parts(case, registry, routes)
    assert_one_application_per_region(got, case)
    joint = [p for p in got["hebei"] if p["joint"]]
    assert len(joint) == 1 and joint[0]["region"] == "130100000000"
    assert joint[0]["dept"] is None and joint[0]["leadDept"] == "天津市滨海新区行政审批局"


def test_a_partner_with_one_item_per_message_gets_a_provinces_districts_once(
        registry: MappingRegistry, routes: RouteTable) -> None:
    # Hebei configured to take one item per message: the joint item is still one message
    s = load_settings(ROOT / "config" / "gateway.yaml")
    partners = dict(s.partners)
    partners["hebei"] = partners["hebei"].model_copy(update={"items_per_message": "one"})
    one = RouteTable.build(s.routes, partners, s.home_region)
    case = joint_case()
    plan = one.plan(normalise(case))
    assert [(d.item_nos, d.region) for d in plan.deliveries if d.partner == "hebei"] == [
        (("1",), "130000000000"), (("4",), "130102000000")]
    assert_one_application_per_region(rendered_parts(case, registry, one), case)


# -- end to end: the gateway and all three simulators ---------------------------------------------

async def test_joint_items_reach_every_simulator_once_per_region(db_url: str,
                                                                tmp_path: Path) -> None:
    case = joint_case()
    sims = {p: Simulator(p) for p in PARTNERS}
    for s in sims.values():
        await s.__aenter__()
    try:
        sims["hebei"].misbehave("http500")         # a retry must not become a second application
        urls = {p: s.url(default_partner_path(p)) for p, s in sims.items()}
        async with Gateway(settings_for(tmp_path, db_url, urls)) as gw:
            status, doc = await gw.post_case(case)
            assert status == 202, doc
            final = await gw.wait_final(doc["id"], timeout=30)
            again = copy.deepcopy(case)
            assert (await gw.post_case(again))[0] == 200
    finally:
        for s in sims.values():
            await s.__aexit__()
    assert all(d["state"] == "delivered" for d in final["deliveries"]), final["deliveries"]
    assert final["homeItems"] == ["1"]
    got: dict[str, list[dict[str, Any]]] = {}
    for p, s in sims.items():
        first = [m for m in s.state.messages if not m.duplicate]
        got[p] = [x for m in first for x in parts(p, m.payload)]
    assert sims["hebei"].state.requests >= 2   # the 500 was retried
    assert_one_application_per_region(got, case)
    assert sorted((d["partner"], tuple(d["items"]), d["region"]) for d in final["deliveries"]) == [
        ("hebei", ("1", "4"), "130000000000"),
        ("national", ("3",), "310100000000"), ("national", ("3",), "330106000000"),
        ("tianjin", ("1",), "120116000000"), ("tianjin", ("2",), "120100000000")]
    # form fields reached every partner that has a place for them
    assert sims["hebei"].state.messages[-1].payload["formData"] == {
        "remarks": "联办请各地协同", "investment": "5000000"}
    assert all(m.payload["extInfo"]["remarks"] == "联办请各地协同"
               for m in sims["national"].state.messages)
    assert all({"ZDMC": "remarks", "ZDZ": "联办请各地协同"} in m.payload["records"][0]["BDXX"]
               for m in sims["tianjin"].state.messages)
