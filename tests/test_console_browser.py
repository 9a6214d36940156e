"""The console end to end in a real headless browser: Debian's ``chromium`` driven by Selenium
through Debian's ``chromium-driver`` (no browser download: both come from apt, installed by
``scripts/bootstrap.sh test``). Sign in, search, open a timeline, replay a dead letter, run the
playground (an htmx request), each step's screenshot kept in the test's tmp folder
(``screenshots/``), and copied to ``$GATEWAY_TEST_ARTIFACTS`` when that is set (CI keeps them).

SQLite only: the browser exercises the pages, templates, htmx and cookies, which do not depend
on the engine; every store read and write behind them runs on both engines in
tests/test_console.py. One browser session for the whole walk keeps the file well under 60 s.

Selenium is synchronous: it runs in a thread while the event loop of this test serves the
gateway on a real socket.
"""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from tests.console_env import PASSWORDS, console_config
from tests.harness import Gateway, Simulator, db_rows, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CERT = "110105199003071239"

MISSING = "Debian's chromium and chromium-driver are not installed (scripts/bootstrap.sh test " \
          "installs them)"
#: skipped on a developer's machine without the browser; in CI (``CI`` set) a missing browser
#: fails the run instead: the issue wants this walk in every CI run
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not os.environ.get("CI"),
    reason=MISSING)


def _driver(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--lang=zh-CN", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(20)
    return driver


def _gone(element: Any) -> Any:
    """A wait condition: ``element`` has left the document. Selenium's ``staleness_of`` also
    asks the old element, but mid-navigation chromedriver answers that with "Node with given id
    does not belong to the document" (an unknown error, not a stale reference): it means gone
    too (this test's red run in a CI of 2026-12-02)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    def check(_driver: Any) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as e:
            if "does not belong to the document" in str(e):
                return True
            raise
        return False
    return check


def walk(base: str, shots: Path, application_nos: list[str]) -> dict[str, Any]:
    """The operator's walk through the console; what the pages showed, for the asserts."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    seen: dict[str, Any] = {}
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    driver = _driver(profile)
    wait = WebDriverWait(driver, 15)

    def shot(name: str) -> None:
        driver.save_screenshot(str(shots / f"{name}.png"))

    try:
        # 1. sign in (English labels chosen once, remembered by cookie)
        driver.get(f"{base}/console/login?lang=en")
        driver.find_element(By.ID, "user").send_keys("emma")
        driver.find_element(By.ID, "password").send_keys(PASSWORDS["emma"])
        shot("01-login")
        driver.find_element(By.ID, "sign-in").click()
        wait.until(ec.presence_of_element_located((By.ID, "case-rows")))
        seen["who"] = driver.find_element(By.ID, "who").text
        seen["listed"] = len(driver.find_elements(By.CSS_SELECTOR, "a.case-link"))
        shot("02-cases")
        # 2. search by the applicant's name
        driver.find_element(By.ID, "f-applicant").send_keys("王小明")
        before = driver.find_element(By.ID, "case-rows")
        driver.find_element(By.ID, "search").click()
        # the search is a new page with the same table: wait for the old one to go first
        # (its presence alone was true at once, and the links were read mid-navigation)
        wait.until(_gone(before))
        wait.until(ec.presence_of_element_located((By.ID, "case-rows")))
        links = driver.find_elements(By.CSS_SELECTOR, "a.case-link")
        seen["found"] = [a.text for a in links]
        seen["applicant_cells"] = [c.text for c in
                                   driver.find_elements(By.CSS_SELECTOR, "td.applicant")]
        seen["search_url"] = driver.current_url
        shot("03-search")
        # 3. the case's timeline
        links[0].click()
        wait.until(ec.presence_of_element_located((By.ID, "timeline")))
        seen["timeline_kinds"] = [r.get_attribute("class") for r in
                                  driver.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")]
        seen["bundle"] = driver.find_element(By.ID, "bundle-status").text
        seen["timeline_has_cert"] = CERT in driver.page_source
        shot("04-timeline")
        # 4. the dead letter: select, give a reason, replay
        driver.find_element(By.ID, "nav-dead").click()
        wait.until(ec.presence_of_element_located((By.ID, "dead-rows")))
        seen["dead_listed"] = [a.text for a in
                               driver.find_elements(By.CSS_SELECTOR, "a.dead-link")]
        driver.find_element(By.ID, "select-all").click()  # console.js ticks every row
        driver.find_element(By.ID, "reason").send_keys("partner fixed its code table")
        shot("05-dead-letters")
        driver.find_element(By.ID, "replay").click()
        wait.until(ec.presence_of_element_located((By.ID, "done")))
        seen["done"] = driver.find_element(By.ID, "done").text
        shot("06-replayed")
        # 5. partners
        driver.find_element(By.ID, "nav-partners").click()
        wait.until(ec.presence_of_element_located((By.ID, "p-national")))
        seen["partner_row"] = driver.find_element(By.ID, "p-national").text
        shot("07-partners")
        # 6. the playground: an htmx post swapping the result in place
        driver.find_element(By.ID, "nav-playground").click()
        wait.until(ec.presence_of_element_located((By.ID, "playground")))
        Select(driver.find_element(By.ID, "pg-mapping")).select_by_visible_text(
            "national/case-submit")
        driver.find_element(By.ID, "pg-application").send_keys(application_nos[0])
        url_before = driver.current_url
        driver.find_element(By.ID, "pg-render").click()
        wait.until(ec.presence_of_element_located((By.ID, "pg-result")))
        seen["playground_same_page"] = driver.current_url == url_before
        seen["playground_output"] = driver.find_element(By.ID, "pg-output").text
        seen["playground_valid"] = bool(driver.find_elements(By.ID, "pg-valid"))
        seen["playground_uncarried"] = driver.find_element(By.ID, "pg-uncarried").text
        shot("08-playground")
        seen["console_errors"] = [e for e in driver.get_log("browser")
                                  if e.get("level") == "SEVERE"]
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    return seen


async def test_operator_walk_in_a_real_browser(tmp_path: Path, samples: dict[str, Any]) -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(MISSING)
    db = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    shots = tmp_path / "screenshots"
    shots.mkdir()
    async with Simulator("national") as sim:
        cfg = console_config(tmp_path, db, {"national": sim.url()})
        async with Gateway(load_settings(cfg)) as gw:
            sim.misbehave("business_error", count=1, code="40003")
            numbers = []
            for i, name in enumerate(("测试甲", "王小明", "李四")):
                case = copy.deepcopy(samples["01-person-shanghai-social-security"])
                case["applicationNo"] = f"BJ20261130000007{i:02d}"
                case["applicant"]["name"] = name
                status, doc = await gw.post_case(case)
                assert status == 202, doc
                await gw.wait_final(doc["id"])
                numbers.append(case["applicationNo"])
            base = str(gw.server.make_url("")).rstrip("/")
            seen = await asyncio.to_thread(walk, base, shots, numbers)
            await wait_until(lambda: _all_delivered(db), 15, "the replayed letter delivered")
    artifacts = os.environ.get("GATEWAY_TEST_ARTIFACTS")
    if artifacts:
        shutil.copytree(shots, Path(artifacts) / "console-screenshots", dirs_exist_ok=True)
    assert seen["who"] == "emma (engineer)" and seen["listed"] == 3
    assert seen["found"] == ["BJ2026113000000701"]
    assert seen["applicant_cells"] == ["王小明 110105********1239"]  # masked in the page
    assert "王小明" not in seen["search_url"] and CERT not in seen["search_url"]
    assert {"k-intake", "k-routed", "k-attempt"} <= set(seen["timeline_kinds"])
    assert seen["bundle"] and not seen["timeline_has_cert"]
    assert seen["dead_listed"] == ["BJ2026113000000700"] and seen["done"].endswith("1")
    assert "national" in seen["partner_row"] and "closed" in seen["partner_row"]
    assert seen["playground_same_page"] and "BJ2026113000000700" in seen["playground_output"]
    assert CERT not in seen["playground_output"] and seen["playground_valid"]
    assert seen["console_errors"] == []  # no CSP violation, no script error
    assert sorted(p.name for p in shots.iterdir()) == [
        "01-login.png", "02-cases.png", "03-search.png", "04-timeline.png",
        "05-dead-letters.png", "06-replayed.png", "07-partners.png", "08-playground.png"]
    actors = await db_rows(db, "SELECT actor FROM audit_log WHERE kind = 'dead_letter_replay'")
    assert [a[0] for a in actors] == ["console:emma"]


async def _all_delivered(db: str) -> bool:
    rows = await db_rows(db, "SELECT state FROM deliveries")
    return bool(rows) and all(r[0] == "delivered" for r in rows)
