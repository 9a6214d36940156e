"""The web console over real HTTP (aiohttp's client against a gateway on a socket): sign-in,
roles, CSRF, case search and masking, dead-letter replay audited with the operator's name, the
playground, SSO from a trusted proxy only, and no 5xx for hostile input."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from gateway.config import load_settings
from gateway.console import auth
from tests.console_env import browser_session, console_config, sign_in
from tests.harness import Gateway, Simulator, db_rows

CERT = "110105199003071239"   # the applicant of sample 01: must never show in full
MASKED = "110105********1239"


async def _cases(gw: Gateway, samples: dict[str, Any], n: int = 3) -> list[dict[str, Any]]:
    out = []
    base = samples["01-person-shanghai-social-security"]
    for i in range(n):
        case = copy.deepcopy(base)
        case["applicationNo"] = f"BJ20261130000009{i:02d}"
        if i == 1:
            case["applicant"]["name"] = "王小明"
        status, doc = await gw.post_case(case)
        assert status == 202, doc
        out.append(doc)
    return out


async def test_sign_in_roles_csrf_search_masking_and_audited_replay(
        db_url: str, tmp_path: Path, samples: dict[str, Any]) -> None:
    async with Simulator("national") as sim:
        cfg = console_config(tmp_path, db_url, {"national": sim.url()})
        async with Gateway(load_settings(cfg)) as gw:
            sim.misbehave("business_error", count=1, code="40003")
            docs = await _cases(gw, samples)
            for d in docs:
                await gw.wait_final(d["id"])
            base = str(gw.server.make_url(""))
            async with browser_session(base) as http:
                # not signed in: sent to the sign-in page; a wrong password is refused
                async with http.get("/console/cases", allow_redirects=False) as r:
                    assert r.status == 303 and r.headers["Location"] == "/console/login"
                async with http.post("/console/login", allow_redirects=False,
                                     data={"user": "otto", "password": "wrong"}) as r:
                    assert r.status == 401 and "gw_console" not in r.cookies
                async with http.post("/console/login", allow_redirects=False,
                                     data={"user": "nobody", "password": "x" * 10}) as r:
                    assert r.status == 401
                csrf = await sign_in(http, "otto")
                # search: by application number prefix, partner, applicant name and ID number
                async with http.get("/console/cases",
                                    params={"applicationNo": "BJ2026113000000901"}) as r:  # a link
                    page = await r.text()
                assert r.status == 200 and "BJ2026113000000901" in page
                assert "BJ2026113000000900" not in page
                async with http.post("/console/cases", data={"applicant": "王小明",
                                                             "csrf": csrf}) as r:
                    page = await r.text()
                assert "BJ2026113000000901" in page and "BJ2026113000000902" not in page
                async with http.post("/console/cases", data={"applicant": CERT, "csrf": csrf,
                                                             "partner": "national"}) as r:
                    page = await r.text()
                assert page.count('class="case-link"') == 3
                results = page[page.index('id="case-rows"'):page.index("</table>")]
                assert CERT not in results and MASKED in results  # masked, never in full
                async with http.post("/console/cases", data={"applicant": CERT}) as r:
                    assert r.status == 403  # a search by POST carries the CSRF token
                async with http.get("/console/cases", params={"status": "dead"}) as r:
                    page = await r.text()
                assert page.count('class="case-link"') == 1
                async with http.get("/console/cases", params={"from": "2000-01-01",
                                                              "to": "2000-01-02"}) as r:
                    assert 'class="case-link"' not in await r.text()
                async with http.get("/console/cases", params={"overdue": "1"}) as r:
                    assert r.status == 200  # just submitted: none is past its deadline
                    assert 'class="case-link"' not in await r.text()
                # the timeline: masked, with the route rule and attempts
                async with http.get(f"/console/cases/{docs[0]['id']}") as r:
                    page = await r.text()
                assert r.status == 200 and CERT not in page and MASKED in page
                assert 'class="route"' in page and "k-attempt" in page
                # the dead letter: CSRF required, then replayed in the operator's name
                [(dead_id,)] = await db_rows(db_url, "SELECT id FROM deliveries "
                                             "WHERE state = 'dead'")
                form = {"ids": dead_id, "reason": "partner fixed", "action": "replay",
                        "currentMapping": "1"}
                async with http.post("/console/dead-letters/act", data=form) as r:
                    assert r.status == 403 and "CSRF" in await r.text()
                async with http.post("/console/dead-letters/act",
                                     data={**form, "csrf": "forged"}) as r:
                    assert r.status == 403
                async with http.post("/console/dead-letters/act", allow_redirects=False,
                                     data={**form, "csrf": csrf, "reason": ""}) as r:
                    assert r.status == 400 and "reason" in await r.text()
                async with http.post("/console/dead-letters/act", allow_redirects=False,
                                     data={**form, "csrf": csrf}) as r:
                    assert r.status == 303 and "done=1" in r.headers["Location"]
            await gw.wait_final(docs[[d["id"] for d in docs].index(
                (await db_rows(db_url, "SELECT case_id FROM deliveries WHERE id = :i",
                               i=dead_id))[0][0])]["id"])
    actions = await db_rows(db_url, "SELECT actor, action, target FROM operator_actions "
                            "ORDER BY id")
    assert ("console:otto", "replay", dead_id) in [tuple(a) for a in actions]
    assert ("console:otto", "console_login", None) in [tuple(a) for a in actions]
    [(detail,)] = await db_rows(db_url, "SELECT detail FROM operator_actions WHERE action = "
                                "'replay'")
    detail = detail if isinstance(detail, dict) else __import__("json").loads(detail)
    assert detail == {"reason": "partner fixed", "currentMapping": True}
    audit = await db_rows(db_url, "SELECT actor FROM audit_log WHERE kind = "
                          "'dead_letter_replay'")
    assert [a[0] for a in audit] == ["console:otto"]
    [(state,)] = await db_rows(db_url, "SELECT state FROM deliveries WHERE id = :i", i=dead_id)
    assert state == "delivered"


async def test_roles_viewer_reads_operator_acts_engineer_renders(
        tmp_path: Path, samples: dict[str, Any]) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Simulator("national") as sim:
        cfg = console_config(tmp_path, db, {"national": sim.url()})
        async with Gateway(load_settings(cfg)) as gw:
            [doc] = await _cases(gw, samples, 1)
            await gw.wait_final(doc["id"])
            base = str(gw.server.make_url(""))
            for user, acts, plays in (("vera", False, False), ("otto", True, False),
                                      ("emma", True, True)):
                async with browser_session(base) as http:
                    csrf = await sign_in(http, user)
                    for path in ("/console/cases", "/console/dead-letters",
                                 "/console/partners", f"/console/cases/{doc['id']}"):
                        async with http.get(path) as r:
                            assert r.status == 200, (user, path)
                    async with http.post("/console/dead-letters/act", allow_redirects=False,
                                         data={"csrf": csrf, "scope": "all", "reason": "x",
                                               "action": "discard", "partner": "nobody"}) as r:
                        assert (r.status == 303) is acts, (user, r.status)
                    async with http.get("/console/playground") as r:
                        assert (r.status == 200) is plays, (user, r.status)
                    async with http.post("/console/playground", data={
                            "csrf": csrf, "mapping": "national/case-submit",
                            "applicationNo": "BJ2026113000000900"}) as r:
                        page = await r.text()
                        assert (r.status == 200) is plays, (user, r.status)
                    if plays:
                        assert 'id="pg-output"' in page and CERT not in page
                        assert 'id="pg-valid"' in page or 'id="pg-problems"' in page
                        assert 'id="pg-uncarried"' in page
                    async with http.get("/console/partners") as r:
                        assert 'id="p-national"' in await r.text()


async def test_playground_lists_schema_errors_and_highlights_the_line(tmp_path: Path,
                                                                      samples: dict[str, Any]
                                                                      ) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Simulator("national") as sim:
        async with Gateway(load_settings(console_config(tmp_path, db,
                                                        {"national": sim.url()}))) as gw:
            async with browser_session(str(gw.server.make_url(""))) as http:
                csrf = await sign_in(http, "emma")
                case = copy.deepcopy(samples["01-person-shanghai-social-security"])
                import json
                good = json.dumps(case, ensure_ascii=False)
                async with http.post("/console/playground", headers={"HX-Request": "true"},
                                     data={"csrf": csrf, "mapping": "national/case-submit",
                                           "paste": good}) as r:
                    page = await r.text()
                assert r.status == 200 and "<html" not in page  # the htmx fragment only
                assert 'id="pg-valid"' in page and CERT not in page
                case["applicant"]["name"] = "x" * 300   # longer than the partner allows
                async with http.post("/console/playground", data={
                        "csrf": csrf, "mapping": "national/case-submit",
                        "paste": json.dumps(case, ensure_ascii=False)}) as r:
                    page = await r.text()
                assert 'id="pg-problems"' in page and "/userName" in page
                [bad] = page.split('class="line bad"')[1:]
                assert "&#34;userName&#34;" in bad.split("</span>")[0]  # the failing line marked
                async with http.post("/console/playground", data={
                        "csrf": csrf, "mapping": "national/case-submit",
                        "paste": "{not json"}) as r:
                    assert r.status == 400 and "paste" in await r.text()
                async with http.post("/console/playground", headers={"HX-Request": "true"},
                                     data={"csrf": csrf, "mapping": "national/case-submit",
                                           "paste": "{not json"}) as r:
                    page = await r.text()
                assert r.status == 400 and "paste" in page and "<html" not in page


def test_highlight_marks_xml_elements_and_json_keys_named_by_a_problem() -> None:
    from gateway.console.playground import highlight
    xml = "<PACKAGE>\n  <ns:SXBM>1</ns:SXBM>\n  <SXBMX>2</SXBMX>\n  <B attr='SXBM'/>\n</PACKAGE>"
    assert [x["no"] for x in highlight(xml, [{"path": "/PACKAGE/DATA/RECORD[2]/SXBM"}])
            if x["bad"]] == [2]
    assert [x["no"] for x in highlight(xml, [{"path": "/PACKAGE/B/@attr"}]) if x["bad"]] == [4]
    doc = '{\n  "a": 1,\n  "userName": "x",\n  "b": "userName"\n}'
    assert [x["no"] for x in highlight(doc, [{"path": "/userName"}]) if x["bad"]] == [3]


async def test_sso_header_only_from_the_trusted_proxy_and_for_listed_users(
        tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    for trusted, expect in ((["127.0.0.1/32"], True), (["10.9.9.9"], False)):
        sso = {"header": "X-City-User", "trusted": trusted, "users": {"li.lei": "viewer"}}
        cfg = console_config(tmp_path / str(expect), db, {}, sso=sso)
        async with Gateway(load_settings(cfg)) as gw:
            async with browser_session(str(gw.server.make_url(""))) as http:
                async with http.get("/console/cases", allow_redirects=False,
                                    headers={"X-City-User": "li.lei"}) as r:
                    assert (r.status == 200) is expect, r.status
                async with http.get("/console/partners", allow_redirects=False) as r:
                    assert (r.status == 200) is expect  # the cookie set on the SSO visit
            async with browser_session(str(gw.server.make_url(""))) as http:
                async with http.get("/console/cases", allow_redirects=False,
                                    headers={"X-City-User": "someone.else"}) as r:
                    assert r.status == 303


async def test_hostile_input_is_never_a_5xx_and_cookies_cannot_be_forged(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Gateway(load_settings(console_config(tmp_path, db, {}))) as gw:
        async with browser_session(str(gw.server.make_url(""))) as http:
            csrf = await sign_in(http, "emma")
            hostile = ["applicationNo=%27%20OR%201%3D1--", "applicationNo=%25", "item=%22%25",
                       "from=2026-13-45", "to=notadate", "status=DROP", "page=-1",
                       "page=99999999999", "partner=" + "x" * 500, "applicant=%00",
                       "applicant=%ED%A0%80", "bogus=1", "partner=a&partner=b",
                       "overdue=maybe", "lang=xx", "applicationNo=" + "9" * 5000]
            for q in hostile:
                async with http.get(f"/console/cases?{q}") as r:
                    assert r.status < 500, q
                    if q.startswith("bogus"):
                        assert r.status == 400 and "bogus" in await r.text()
            for path in ("/console/cases/not-a-uuid", "/console/dead-letters/..%2f..",
                         "/console/cases/00000000-0000-0000-0000-000000000000",
                         "/console/dead-letters?code=%00", "/console/static/../../etc/passwd"):
                async with http.get(path) as r:
                    assert r.status < 500 and r.status != 200, path
            for data in ({"csrf": csrf, "ids": "not-uuid", "reason": "r", "action": "replay"},
                         {"csrf": csrf, "ids": ["00000000-0000-0000-0000-000000000001"] * 2,
                          "reason": "r", "action": "nuke"},
                         {"csrf": csrf, "scope": "all", "reason": "r", "action": "replay",
                          "applicationNo": "<script>"}):
                async with http.post("/console/dead-letters/act", data=data) as r:
                    assert r.status == 400, (data, r.status)
                    assert "<script>" not in await r.text()
            async with http.post("/console/playground", data={
                    "csrf": csrf, "mapping": "no/such", "paste": "{}"}) as r:
                assert r.status == 400
        async with browser_session(str(gw.server.make_url(""))) as http:
            settings = load_settings(gw.settings.source_file).console
            forged = auth.Session("emma", "engineer", "password", "c", time.time() + 60)
            http.cookie_jar.update_cookies({"gw_console": auth.encode(forged, "wrong" * 8)})
            async with http.get("/console/cases", allow_redirects=False) as r:
                assert r.status == 303
            expired = auth.Session("emma", "engineer", "password", "c", time.time() - 1)
            assert settings.secret is not None
            http.cookie_jar.update_cookies({"gw_console": auth.encode(expired, settings.secret)})
            async with http.get("/console/cases", allow_redirects=False) as r:
                assert r.status == 303
            good = auth.Session("emma", "engineer", "password", "c", time.time() + 60)
            http.cookie_jar.update_cookies({"gw_console": auth.encode(good, settings.secret)})
            async with http.get("/console/cases", allow_redirects=False) as r:
                assert r.status == 200


async def test_labels_follow_lang_and_accept_language(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    async with Gateway(load_settings(console_config(tmp_path, db, {}))) as gw:
        async with browser_session(str(gw.server.make_url(""))) as http:
            async with http.get("/console/login", headers={"Accept-Language": "en-US,en"}) as r:
                assert ">Sign in<" in await r.text()
            async with http.get("/console/login",
                                headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}) as r:
                assert ">登录<" in await r.text()
            async with http.get("/console/login?lang=en",
                                headers={"Accept-Language": "zh-CN"}) as r:
                page = await r.text()
                assert ">Sign in<" in page
                assert "default-src 'self'" in r.headers["Content-Security-Policy"]
            async with http.get("/console/login", headers={"Accept-Language": "zh-CN"}) as r:
                assert ">Sign in<" in await r.text()  # the choice is remembered
