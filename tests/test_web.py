"""The web page over HTTP: who it refuses, what it escapes, what forget needs, and the figures it shows.

One server for the module (a thread of this process) over small pages and the template reader:
these tests are about the page, not OCR. The browser itself is in test_web_browser.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest

from optical_memory.config import load_config
from optical_memory.errors import PageNotFound
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory_mcp.web import web_app
from optical_memory_mcp.web.html import highlight, marked_line
from optical_memory_mcp.web.serve import running
from optical_memory_mcp.web.stats import ArchiveFigures, TierCounts, newer_page, session_tier_counts, walk_pages
from optical_memory_mcp.web.views import Views

TOKEN = "web-test-token-7c1d2e"
XSS_SESSION = "<script>alert(1)</script>"
XSS_LINE = '<img src=x onerror="alert(2)"> & </td>'
SMALL = '[page]\ncolumns = 40\nrows = 12\n\n[archive]\nmap_size_mib = 64\n\n[reader]\nname = "template"\n'


def fill(memory: Memory) -> None:
    """'demo': 30 entries over several pages, faded by age and rank; 'fresh': one page; the XSS session."""
    for n in range(30):
        memory.remember(f"entry {n} parse_config ConfigLoader\nsecond line {n} <b>not bold</b>", "demo", role="user")
    memory.fade("demo", now=datetime.now(UTC) + timedelta(days=3))  # warm by age, colder by rank
    memory.remember("a fresh page", "fresh", role="assistant")
    memory.remember(XSS_LINE, XSS_SESSION, role="user", title="<i>title</i>")


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Memory]:
    folder = tmp_path_factory.mktemp("web")
    (folder / "config.toml").write_text(SMALL, encoding="utf-8")
    mem = Memory(load_config(folder / "config.toml", archive=folder / "archive", environ={}), reader=TemplateReader())
    fill(mem)
    yield mem
    mem.close()


@pytest.fixture(scope="module")
def base(memory: Memory) -> Iterator[str]:
    with running(web_app(memory, TOKEN)) as url:
        yield url


@pytest.fixture
def client(base: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def page_ids(memory: Memory, session: str) -> list[str]:
    return [p.id for p in walk_pages(memory, session)]


# who is refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/session?name=demo", "/page/p1", "/page/p1/image", "/search?q=entry"])
def test_without_the_token_every_page_refuses(base: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "optical_memory=forged"}):
        response = httpx2.get(base + path, headers=headers)
        assert response.status_code == 401
        assert "ConfigLoader" not in response.text and "not bold" not in response.text  # nothing of the archive
        assert 'name="token"' in response.text  # the login form instead


def test_a_foreign_origin_or_host_is_refused_even_with_the_token(client: httpx2.Client) -> None:
    assert client.get("/", headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.get("/", headers={"Origin": "null"}).status_code == 403
    # DNS rebinding: a name that resolves here, but is not this machine's name
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 421
    assert client.get("/").status_code == 200


def test_the_token_given_once_becomes_an_http_only_strict_cookie(base: str) -> None:
    with httpx2.Client(base_url=base) as browser:
        response = browser.get("/session", params={"name": "demo", "token": TOKEN})
        assert response.status_code == 303
        assert response.headers["location"] == "/session?name=demo"  # the token leaves the address bar
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert TOKEN not in cookie  # a keyed hash of it: the cookie opens these pages, not /mcp
        assert browser.get("/session", params={"name": "demo"}).status_code == 200
    with httpx2.Client(base_url=base) as browser:
        wrong = browser.get("/", params={"token": "nope"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers and "not this server" in wrong.text
        assert browser.post("/login", data={"token": "nope", "next": "/"}).status_code == 401
        response = browser.post("/login", data={"token": TOKEN, "next": "//evil.example/"})
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert browser.get("/").status_code == 200


# forget -----------------------------------------------------------------------------------------


def test_forget_without_the_csrf_token_changes_nothing(client: httpx2.Client, memory: Memory) -> None:
    victim = page_ids(memory, "demo")[-1]
    confirm = client.get("/forget", params={"page": victim})
    assert confirm.status_code == 200 and "Forget for good" in confirm.text
    for data in ({"page": victim, "confirm": "yes"}, {"page": victim, "confirm": "yes", "csrf": "0" * 64}):
        assert client.post("/forget", data=data).status_code == 403
    csrf = confirm.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    # the right CSRF token from another site's page: refused by its Origin before the token is looked at
    foreign = client.post("/forget", data={"page": victim, "confirm": "yes", "csrf": csrf}, headers={"Origin": "x"})
    assert foreign.status_code == 403
    assert client.post("/forget", data={"page": victim, "csrf": csrf}).status_code == 400  # not confirmed
    assert memory.page_info(victim).id == victim


def test_forget_with_csrf_and_confirmation_removes_the_page(client: httpx2.Client, memory: Memory) -> None:
    memory.remember("to be forgotten", "doomed")
    victim = page_ids(memory, "doomed")[0]
    csrf = client.get("/forget", params={"session": "doomed"}).text.split('name="csrf" value="', 1)[1][:64]
    response = client.post("/forget", data={"session": "doomed", "confirm": "yes", "csrf": csrf})
    assert response.status_code == 200 and "Forgot 1 page" in response.text
    with pytest.raises(PageNotFound):
        memory.page_info(victim)
    assert "doomed" not in client.get("/").text


# escaping and validation ----------------------------------------------------------------------


def test_names_and_lines_are_escaped(client: httpx2.Client, memory: Memory) -> None:
    listing = client.get("/").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    assert XSS_SESSION not in listing
    page = page_ids(memory, XSS_SESSION)[0]
    view = client.get(f"/page/{page}").text
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; &lt;/td&gt;" in view
    assert "<img src=x" not in view and "<i>title</i>" not in view
    hits = client.get("/search", params={"q": "not bold"}).text
    assert "&lt;b&gt;<mark>not</mark> <mark>bold</mark>&lt;/b&gt;" in hits
    assert "default-src 'none'" in client.get("/").headers["content-security-policy"]


def test_a_line_with_a_lone_surrogate_still_shows(client: httpx2.Client, memory: Memory) -> None:
    """Text may hold lone surrogates (remember takes any str); UTF-8 HTML cannot: they show as U+FFFD."""
    span = memory.remember("half a pair: \udc80 here", "surrogates").spans[0]
    view = client.get(f"/page/{span.page_id}")
    assert view.status_code == 200 and "half a pair: \ufffd here" in view.text


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/page/p0", 404, "is not a page id"),
        ("/page/abc", 404, "is not a page id"),
        ("/page/p" + "9" * 5000, 404, "is not a page id"),
        ("/page/p999999", 404, "no page"),
        ("/session?name=demo&cursor=zzz", 404, "is not a page id"),
        ("/session?name=" + "x" * 200, 400, "at most 128"),
        ("/session?name=a%00b", 400, "control"),
        ("/session?name=nobody", 404, "no session &#x27;nobody&#x27;"),
        ("/search?q=" + "x" * 2000, 400, "at most 1,000"),
        ("/forget", 400, "forget needs"),
    ],
)
def test_arguments_from_the_address_are_validated(client: httpx2.Client, path: str, status: int, says: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert says in response.text


def test_download_has_the_stored_bytes_and_their_extension(client: httpx2.Client, memory: Memory) -> None:
    magic = {"png": b"\x89PNG", "webp": b"RIFF", "jpeg": b"\xff\xd8"}
    formats = set()
    for page_id in page_ids(memory, "demo"):
        stored = memory.view_page(page_id)
        response = client.get(f"/page/{page_id}/image", params={"download": 1})
        fmt = stored.info.image_format
        formats.add(fmt)
        assert response.headers["content-disposition"] == f'attachment; filename="{page_id}.{fmt}"'
        assert response.headers["content-type"] == stored.mime_type
        assert response.content == stored.data and response.content.startswith(magic[fmt])
        again = client.get(f"/page/{page_id}/image", headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304
    assert formats == {"png", "webp"}  # faded pages are WebP: a .png name would lie


# what the pages count ---------------------------------------------------------------------------


def test_tier_counts_match_every_page_counted(memory: Memory) -> None:
    for info in memory.list_sessions().sessions:
        brute = [0] * len(memory.tiers)
        for page in walk_pages(memory, info.name):
            brute[page.tier_index] += 1
        assert session_tier_counts(memory, info) == brute
    demo = next(s for s in memory.list_sessions().sessions if s.name == "demo")
    assert sum(1 for c in session_tier_counts(memory, demo) if c) >= 2  # the fixture really faded


def test_tier_counts_stop_at_the_coldest_tier(memory: Memory, tmp_path: Path) -> None:
    """A long session fully faded: the walk counts the rest without reading it (and is still exact)."""
    config = load_config(None, archive=tmp_path / "a", environ={})
    with_small = Memory(replace(config, page=memory.config.page), reader=TemplateReader())
    try:
        for n in range(40):
            with_small.remember("\n".join(f"line {n}.{k}" for k in range(11)), "long")
        with_small.fade("long", now=datetime.now(UTC) + timedelta(days=800))  # past the coldest tier's 730
        info = with_small.list_sessions().sessions[0]
        counts = session_tier_counts(with_small, info)
        assert counts[-1] == info.pages - counts[0] and counts[-1] > 30
    finally:
        with_small.close()


def test_newer_page_is_the_next_page_of_the_session(memory: Memory) -> None:
    memory.remember("interleaved\n" * 20, "fresh")  # pages of another session between demo's
    ids = page_ids(memory, "demo")[::-1]  # oldest first
    for older, newer in zip(ids, [*ids[1:], None], strict=True):
        assert newer_page(memory, "demo", older) == newer


def test_highlight_marks_terms_in_any_case_and_escapes_the_rest() -> None:
    assert highlight("Parse <x> PARSER", ["parse"]) == "<mark>Parse</mark> &lt;x&gt; <mark>PARSE</mark>R"
    assert highlight("config_loader", ["config", "config_loader"]) == "<mark>config_loader</mark>"
    assert highlight("İstanbul", ["stan"]) == "İ<mark>stan</mark>bul"  # 'İ'.lower() is two characters
    assert marked_line("a<b", [1]).count('class="unsure"') == 1 and "&lt;" in marked_line("a<b", [1])


def test_the_fading_page_and_the_session_bar_are_drawn(client: httpx2.Client, memory: Memory) -> None:
    fading = client.get("/fading")
    assert fading.status_code == 200 and fading.text.count("<svg") == 4
    bar = client.get("/session/tiers.svg", params={"name": "demo"})
    assert bar.headers["content-type"].startswith("image/svg+xml") and "hot" in bar.text
    demo = next(s for s in memory.list_sessions().sessions if s.name == "demo")
    counts = session_tier_counts(memory, demo)
    legend = client.get("/session/tiers.svg", params={"name": "demo", "legend": 1}).text
    for tier, count in zip(memory.tiers, counts, strict=True):
        assert f">{tier.name} {count:,}</text>" in legend


def test_the_fading_figures_are_counted_off_the_request(memory: Memory) -> None:
    figures = ArchiveFigures(memory, wait_s=0)
    deadline = time.monotonic() + 30
    while (totals := figures.totals()) is None:
        assert time.monotonic() < deadline, "the count never finished"
        time.sleep(0.02)
    brute = [0] * len(memory.tiers)
    for page in walk_pages(memory, None):
        brute[page.tier_index] += 1
    assert totals.pages == brute

    class StillCounting(ArchiveFigures):
        def totals(self) -> None:
            return None

    waiting = Views(memory, TierCounts(memory), StillCounting(memory)).fading()
    assert "Counting the archive" in waiting and '<meta http-equiv="refresh" content="3">' in waiting


# the two ways to serve it -----------------------------------------------------------------------


def test_serve_http_has_the_page_beside_mcp(memory: Memory) -> None:
    from optical_memory_mcp.http import http_app

    with running(http_app(memory.config, memory, token=TOKEN)) as url:
        assert httpx2.get(url + "/mcp").status_code == 401
        assert httpx2.get(url + "/").status_code == 401
        page = httpx2.get(url + "/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert page.status_code == 200 and "demo" in page.text


def test_the_web_command_serves_the_archive(memory: Memory) -> None:
    """`optical-memory web` in its own process, on the archive this module's memory has open (LMDB shares it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    env.update(OPTICAL_MEMORY_TOKEN=TOKEN, OPTICAL_MEMORY_READER="template")
    args = ["web", "--archive", str(memory.config.archive.path), "--port", str(port)]
    proc = subprocess.Popen([sys.executable, "-m", "optical_memory_mcp", *args], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx2.get(f"http://127.0.0.1:{port}/", headers={"Authorization": f"Bearer {TOKEN}"})
                break
            except httpx2.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline, "optical-memory web did not start"
                time.sleep(0.1)
        assert response.status_code == 200 and "demo" in response.text
        assert httpx2.get(f"http://127.0.0.1:{port}/").status_code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert TOKEN not in err.decode()  # the log names where the token is, never the token
