"""The web page in a real browser: Debian's headless Chromium, driven by Selenium through chromedriver.

One browser and one server for the module. Nothing downloads a browser: the system's chromium and
chromedriver are used (`apt-get install chromium chromium-driver`; .ci/run installs them), and a
missing one fails these tests with that instruction rather than skipping them. Screenshots of each
view are saved under the module's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from optical_memory.config import load_config
from optical_memory.errors import PageNotFound
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory_mcp.web import web_app
from optical_memory_mcp.web.serve import running

TOKEN = "browser-test-token-91ab3f"
SMALL = '[page]\ncolumns = 40\nrows = 12\n\n[archive]\nmap_size_mib = 64\n\n[reader]\nname = "template"\n'
XSS_SESSION = "<script>alert(1)</script>"
LINES = [f"step {n}: parse_config <c{n}.toml> & go" for n in range(1, 6)]  # one row each: one page


def _executable(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"the browser tests need {' or '.join(names)} on PATH: install Debian's packages with "
        "'apt-get install -y chromium chromium-driver' (nothing here downloads a browser)",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Memory]:
    folder = tmp_path_factory.mktemp("web-browser")
    (folder / "config.toml").write_text(SMALL, encoding="utf-8")
    mem = Memory(load_config(folder / "config.toml", archive=folder / "archive", environ={}), reader=TemplateReader())
    mem.remember("\n".join(LINES), "work", role="assistant", title="the plan")  # p1, the session's oldest
    for n in range(6):
        mem.remember(f"later entry {n}\nsomething else {n}", "work", role="user")
    mem.remember("<b>not bold</b>", XSS_SESSION, role="user")
    yield mem
    mem.close()


@pytest.fixture(scope="module")
def base(memory: Memory) -> Iterator[str]:
    with running(web_app(memory, TOKEN)) as url:
        yield url


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def browser(base: str) -> Iterator[WebDriver]:
    chromium = _executable("chromium", "chromium-browser")
    driver_path = _executable("chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch drivers or browsers
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.implicitly_wait(5)
    try:
        driver.get(f"{base}/?token={TOKEN}")  # the one time the token is given: a cookie from here on
        yield driver
    finally:
        driver.quit()


def _no_alert(driver: WebDriver) -> None:
    with pytest.raises(NoAlertPresentException):
        print(driver.switch_to.alert.text)  # an alert here would be the page running injected script


def test_sessions_then_a_page_and_its_lines(browser: WebDriver, base: str, shots: Path, memory: Memory) -> None:
    d = browser
    d.get(base + "/")
    assert "token" not in d.current_url
    names = [a.text for a in d.find_elements(By.CSS_SELECTOR, "a.session")]
    assert names == [XSS_SESSION, "work"]  # newest first; the script tag is text, not a script
    _no_alert(d)
    d.save_screenshot(str(shots / "sessions.png"))

    d.find_element(By.LINK_TEXT, "work").click()
    cards = d.find_elements(By.CSS_SELECTOR, ".grid a.card")
    assert len(cards) == memory.list_sessions().sessions[-1].pages
    loaded = d.execute_script(
        "return [...document.querySelectorAll('.grid img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    assert loaded, "a thumbnail did not load"
    d.save_screenshot(str(shots / "session.png"))

    cards[-1].click()  # the oldest page holds the plan
    texts = [td.text for td in d.find_elements(By.CSS_SELECTOR, "tr.line td.text")]
    assert texts[: len(LINES)] == LINES
    entries = [td.text for td in d.find_elements(By.CSS_SELECTOR, "tr.entry")]
    assert any(e.startswith("assistant · ") and e.endswith("the plan") for e in entries)
    d.save_screenshot(str(shots / "page.png"))


def test_search_highlights_terms_and_links_to_the_line(browser: WebDriver, base: str, shots: Path) -> None:
    d = browser
    d.get(base + "/")
    box = d.find_element(By.NAME, "q")
    box.send_keys("parse_config")
    box.submit()
    marks = {m.text.lower() for m in d.find_elements(By.CSS_SELECTOR, "li.hit mark")}
    assert "parse_config" in marks
    d.save_screenshot(str(shots / "search.png"))
    first = d.find_element(By.CSS_SELECTOR, "li.hit a")
    line = int(first.get_attribute("href").rsplit("#L", 1)[1])  # the first line that matched
    first.click()
    target = d.find_element(By.CSS_SELECTOR, f"tr#L{line} td.text")
    assert "parse_config" in target.text
    assert d.current_url.endswith(f"#L{line}")


def test_forget_asks_first_then_forgets(browser: WebDriver, base: str, shots: Path, memory: Memory) -> None:
    d = browser
    victim = memory.list_pages(session="work", limit=20).pages[1].id  # not the plan's page
    d.get(f"{base}/page/{victim}")
    d.find_element(By.PARTIAL_LINK_TEXT, "Forget this page").click()
    d.find_element(By.LINK_TEXT, "Keep it").click()
    assert memory.page_info(victim).id == victim  # asked, declined: still there
    d.find_element(By.PARTIAL_LINK_TEXT, "Forget this page").click()
    d.save_screenshot(str(shots / "forget.png"))
    d.find_element(By.CSS_SELECTOR, "button.danger").click()
    assert "Forgot 1 page(s)" in d.find_element(By.CSS_SELECTOR, "p.done").text
    with pytest.raises(PageNotFound):
        memory.page_info(victim)


def test_html_in_a_session_name_and_its_lines_stays_text(browser: WebDriver, base: str) -> None:
    d = browser
    d.get(base + "/")
    d.find_element(By.LINK_TEXT, XSS_SESSION).click()
    assert d.find_element(By.CSS_SELECTOR, "h1 .name").text == XSS_SESSION
    d.find_element(By.CSS_SELECTOR, ".grid a.card").click()
    assert d.find_element(By.CSS_SELECTOR, "tr#L1 td.text").text == "<b>not bold</b>"
    assert d.execute_script("return document.querySelectorAll('td.text b').length") == 0  # no markup made
    _no_alert(d)


def test_the_login_form_takes_the_token_once(browser: WebDriver, base: str) -> None:
    d = browser
    d.delete_all_cookies()
    d.get(base + "/session?name=work")
    assert "later entry" not in d.page_source  # refused: the login form instead
    field = d.find_element(By.NAME, "token")
    field.send_keys(TOKEN)
    field.submit()
    assert d.current_url == base + "/session?name=work"  # back where it was going, logged in
    assert d.find_element(By.CSS_SELECTOR, "h1 .name").text == "work"
    cookie = d.get_cookies()[0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != TOKEN
