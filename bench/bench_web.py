"""The web page's speed on a large archive, and screenshots of its views.

    python bench/bench_web.py                          # 100,000 pages in 100 sessions (several minutes)
    python bench/bench_web.py --pages 5000 --reps 20   # a quick look
    python bench/bench_web.py --screenshots docs/web   # the README's screenshots (a small, real archive)

Speed: an archive of N pages is written directly, as bench/run.py's scale probe does (copies of a
few really remembered pages, each at the tier its rank in its session gives it; search postings
only with --postings, which most of the writing time goes to). `optical-memory web` then serves it
in its own process with the default (trained) reader, and each view is fetched over HTTP with the
token, one request at a time, after one untimed request per view (but the "cold" ones). Targets
(issue 11): the sessions list and a session's first screen of thumbnails <= 100 ms p50; a page view
with its lines read <= 150 ms p50.

Screenshots: a small archive remembered through the facade (three sessions, faded by rank and
by age with `Memory.fade(now=...)`), served in-process and shot with the system's headless Chromium.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import quote

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scale as bench_scale
from bench.common import corpus_entries, machine, mixed_text, percentile
from bench.run import Results, fade_pages, generate_archive, remember_pages
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.trained import TrainedReader

TOKEN = "bench-web-token-5f0c8a2e"
PER_SESSION = 1000  # as the scale probe: a long-running agent's session


# the archive ------------------------------------------------------------------------------------


def build_archive(path: Path, n_pages: int, postings: bool = False) -> float:
    """N pages written directly (bench/run.py's generator over 12 really remembered pages); seconds.

    The pages to copy are remembered into the same archive first (session 'bench'), so their check
    codes are keyed with this archive's key and verify as a real archive's pages do. Without
    `postings` the copies get no search postings (most of the writing time; no view timed here but
    search reads them), and search is not timed.
    """
    config = load_config(None, archive=path, environ={})
    memory = Memory(replace(config, tiers=config.tiers[:1]), reader=TrainedReader())  # hot only: faded below
    results = Results("bench_web", machine(), "", config.tiers)
    entries, _ = corpus_entries(None, 13)
    truth = remember_pages(memory, entries, "bench", results)
    pages = fade_pages(memory, truth, config.tiers)
    memory.close()
    with contextlib.ExitStack() as stack:
        if not postings:
            stack.enter_context(mock.patch.object(bench_scale, "index_lines", lambda *args: None))
        return generate_archive(path, pages, n_pages, PER_SESSION, config.tiers, progress=True)


# the server and the client ----------------------------------------------------------------------


def start_server(archive: Path) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    env["OPTICAL_MEMORY_TOKEN"] = TOKEN
    command = [sys.executable, "-m", "optical_memory_mcp", "web", "--archive", str(archive), "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("optical-memory web did not start")


class RequestFailed(Exception):
    pass


class Client:
    """One kept-alive connection, as a browser tab has; every request carries the token."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str) -> bytes:
        try:
            self.conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
            response = self.conn.getresponse()
        except http.client.RemoteDisconnected:  # uvicorn closes a connection idle for 5 s: open another
            self.conn.close()
            self.conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
            response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RequestFailed(f"GET {path}: {response.status} {body[:200]!r}")
        return body


def timed(
    fetch: Callable[[str], object],
    paths: list[str],
    warm_up: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    if warm_up:
        fetch(paths[0])  # untimed: the first request of a kind loads what it needs (the reader's model)
    times = []
    for path in paths:
        start = clock()
        fetch(path)
        times.append(1000 * (clock() - start))
    return times


def first_screen(client: Client, path: str) -> None:
    """A session's first screen as the browser loads it: the HTML, then each thumbnail in it (the
    pages-per-tier bar above them is an image of its own, timed on its own)."""
    html = client.get(path).decode()
    for chunk in html.split('<img src="')[1:]:
        source = chunk.split('"', 1)[0].replace("&amp;", "&")
        if source.startswith("/page/"):
            client.get(source)


def until_counted(client: Client, path: str) -> None:
    """Poll the fading page until it shows its plots (every record is counted on the server's worker)."""
    while b"<svg" not in client.get(path):
        time.sleep(0.25)


def measure(archive: Path, n_pages: int, reps: int, search: bool) -> dict[str, list[float] | str]:
    """Each view's request times (ms), or why it could not be measured."""
    sessions = -(-n_pages // PER_SESSION)
    rng = random.Random(3)
    names = [f"s{rng.randrange(sessions)}" for _ in range(reps)]
    pages = [f"p{rng.randint(1, n_pages)}" for _ in range(reps)]
    bars = [f"/session/tiers.svg?name=s{k}" for k in rng.sample(range(sessions), min(reps, sessions))]
    proc, port = start_server(archive)
    client = Client(port)
    memory = Memory(load_config(None, archive=archive, environ={}))  # LMDB: this process reads it alongside
    views: dict[str, tuple[Callable[[str], object], list[str]]] = {
        "sessions list (HTML)": (client.get, ["/"] * reps),
        "a session's first screen (HTML)": (client.get, [f"/session?name={n}" for n in names]),
        "a session's first screen (HTML + 24 thumbnails)": (
            lambda p: first_screen(client, p),
            [f"/session?name={n}" for n in names],
        ),
        "pages-per-tier bar, first time per session (cold)": (client.get, bars),
        "pages-per-tier bar, again (cached 30 s)": (client.get, bars),
        "page view, lines read (trained reader)": (client.get, [f"/page/{p}" for p in pages]),
        "  of which read_lines alone (in-process, no web)": (memory.read_lines, pages),
        "  read_lines alone, CPU time of this process": (memory.read_lines, pages),
        "stored image of a page": (client.get, [f"/page/{p}/image" for p in pages]),
        "fading plot, first view (cold: says it is counting)": (client.get, ["/fading"]),
        "fading plot, until its figures show (cold)": (lambda p: until_counted(client, p), ["/fading"]),
        "fading plot, then (counted)": (client.get, ["/fading"] * reps),
    }
    if search:
        views["search (top 20, lines read)"] = (client.get, [f"/search?q={quote(q)}" for q in queries(reps)])
    figures: dict[str, list[float] | str] = {}
    try:
        for name, (fetch, paths) in views.items():
            try:
                clock = time.process_time if "CPU" in name else time.perf_counter
                figures[name] = timed(fetch, paths, warm_up="cold" not in name, clock=clock)
            except RequestFailed as exc:
                figures[name] = f"failed: {exc}"
    finally:
        proc.terminate()
        proc.wait(30)
        memory.close()
    return figures


def queries(count: int) -> list[str]:
    rng = random.Random(11)
    words = [w for w in mixed_text(2).split() if w.isalpha() and len(w) >= 5]
    return [rng.choice(words) for _ in range(count)]


# screenshots ------------------------------------------------------------------------------------


def most_doubted(memory: Memory, session: str) -> str:
    """The session's page with the most lines the reader could not verify: the page view's best example."""
    pages = memory.list_pages(session=session, limit=50).pages
    doubts = {p.id: sum(not line.verified for line in memory.read_lines(p.id).lines) for p in pages if p.lines}
    return max(doubts, key=lambda page_id: doubts[page_id])


def screenshots(folder: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from optical_memory_mcp.web import web_app
    from optical_memory_mcp.web.serve import running

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        memory = Memory(load_config(None, archive=Path(tmp) / "archive", environ={}), reader=TrainedReader())
        now = datetime.now(UTC)
        for name, pages, days in (("refactor-parser", 14, 70), ("release-notes", 42, 3), ("today", 3, 0)):
            for entry in corpus_entries(None, pages)[0]:
                memory.remember(entry, name, role=random.Random(len(entry)).choice(("user", "assistant")))
            memory.fade(name, now=now + timedelta(days=days))
        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        try:
            with running(web_app(memory, TOKEN)) as url:
                driver.get(f"{url}/?token={TOKEN}")
                driver.save_screenshot(str(folder / "sessions.png"))
                driver.get(f"{url}/session?name=release-notes")
                driver.save_screenshot(str(folder / "session.png"))
                driver.get(f"{url}/page/{most_doubted(memory, 'refactor-parser')}")
                driver.save_screenshot(str(folder / "page.png"))
                driver.execute_script(  # the lines the reader doubts, in view beside the (sticky) image
                    "const row = document.querySelector('tr.unverified');"
                    "if (row) row.scrollIntoView({block: 'center'});"
                )
                driver.save_screenshot(str(folder / "page-unverified.png"))
                driver.get(f"{url}/fading")
                driver.save_screenshot(str(folder / "fading.png"))
                box = driver.find_element(By.NAME, "q")
                box.send_keys(queries(1)[0])
                box.submit()
                driver.save_screenshot(str(folder / "search.png"))
        finally:
            driver.quit()
            memory.close()
    print(f"screenshots in {folder}: " + ", ".join(sorted(p.name for p in folder.glob("*.png"))))


# the run ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=50, help="requests per view")
    parser.add_argument(
        "--archive", type=Path, help="keep the archive here, and reuse it when it exists (default: a temporary one)"
    )
    parser.add_argument("--postings", action="store_true", help="also write search postings, and time search")
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="only write the views' screenshots to DIR")
    args = parser.parse_args()
    if args.screenshots:
        screenshots(args.screenshots)
        return
    with tempfile.TemporaryDirectory() as tmp:
        archive = args.archive or Path(tmp) / "scale"
        if not (archive / "data.mdb").exists():
            print(f"writing {args.pages:,} pages ...", flush=True)
            print(f"  written in {build_archive(archive, args.pages, args.postings):.0f} s", flush=True)
        figures = measure(archive, args.pages, args.reps, args.postings)
    print(
        f"\n{args.pages:,} pages in {-(-args.pages // PER_SESSION)} sessions; {machine()['cpu']}, "
        f"{machine()['cores']} cores, load average {os.getloadavg()[0]:.1f} at the end; "
        f"p50 / p95 ms over {args.reps} requests (HTTP, kept-alive, with the token)"
    )
    for name, times in figures.items():
        if isinstance(times, str):
            print(f"  {name:<50} {times}")
        else:
            print(f"  {name:<50} {percentile(times, 0.5):8.1f} {percentile(times, 0.95):8.1f}  (n={len(times)})")


if __name__ == "__main__":
    main()
