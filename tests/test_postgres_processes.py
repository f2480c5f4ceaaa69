"""Several processes (as several hosts) on one PostgreSQL archive: writers, a reader and fading at once;
two faders racing over the same pages; a writer killed with SIGKILL mid-write.

The same assertions as test_concurrency and test_crash make on LMDB: nothing acknowledged is lost
or duplicated, each session keeps its order, no page is demoted twice, the archive stays consistent.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
from tests.test_concurrency import ENTRIES, SESSIONS, TIERS
from tests.test_crash import entry_text, read_entry

pytest_plugins = ["tests.pg"]

ROOT = Path(__file__).resolve().parent.parent
CRASH_TRIALS = 2  # each starts a process: a few keep the suite quick; every kill lands mid-stream


def _memory(url: str, tiers: tuple[Tier, ...] = TIERS) -> Memory:
    config = load_config(environ={"OPTICAL_MEMORY_ARCHIVE_URL": url})
    return Memory(replace(config, tiers=tiers), reader=TemplateReader())


def _writer(url: str, session: str, acknowledged: str) -> None:
    memory = _memory(url)
    with open(acknowledged, "w", encoding="utf-8") as out:
        for n in range(ENTRIES):
            text = f"{session} {n}\n" + "w" * (n * 97 % 5000)
            result = memory.remember(text, session=session, title=f"{session}-{n}")
            for span in result.spans:
                out.write(json.dumps([span.page_id, span.start, span.end, f"{session}-{n}"]) + "\n")
    memory.close()


def _reader(url: str, stop_after: float) -> None:
    memory = _memory(url)
    deadline = time.monotonic() + stop_after
    while time.monotonic() < deadline:
        for page in memory.list_pages(limit=50).pages:
            memory.view_page(page.id)
            memory.read_lines(page.id, 1, 1)
    memory.close()


def entry_parts(memory: Memory, session: str) -> list[list[object]]:
    """Every entry part on a session's pages, in page order: [page id, first line, last line, title]."""

    def collect(tx):  # type: ignore[no-untyped-def]
        sess = tx.session(session)
        return [tx.page(pid) for _, pid in tx.page_ids_newest_first(sess.sid)]

    records = reversed(memory.archive.read(collect))
    return [[r.id, e.first_line, e.last_line, e.title] for r in records for e in r.entries]


@pytest.mark.slow
def test_three_writers_and_a_reader_on_one_database_lose_nothing_while_pages_fade(pg_url: str, tmp_path: Path) -> None:
    _memory(pg_url).close()  # the tables exist before the writers race to them
    ctx = multiprocessing.get_context("spawn")
    logs = {s: tmp_path / f"{s}.jsonl" for s in SESSIONS}
    procs = [ctx.Process(target=_writer, args=(pg_url, s, str(logs[s]))) for s in SESSIONS]
    procs.append(ctx.Process(target=_reader, args=(pg_url, 4.0)))
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=180)
        assert proc.exitcode == 0, "a process failed: see its traceback above"
    memory = _memory(pg_url)
    assert memory.archive.check() == []
    for session in SESSIONS:
        # exactly the acknowledged entries' spans, in the order acknowledged: none lost, none twice
        acknowledged = [json.loads(line) for line in logs[session].read_text().splitlines()]
        assert len({part[3] for part in acknowledged}) == ENTRIES
        assert entry_parts(memory, session) == acknowledged
    tiers = {p.tier for p in memory.list_pages(limit=200).pages}
    assert {"hot", "cold"} <= tiers  # fading really ran during the writes
    memory.close()


def test_two_servers_fading_the_same_pages_demote_each_page_once(pg_url: str) -> None:
    writer = _memory(pg_url)
    for n in range(10):
        writer.remember("\n".join(f"entry {n} line {i}" for i in range(30)), session="s", fade=False)
    servers = [_memory(pg_url), _memory(pg_url)]  # two pools: two hosts
    steps = [0, 0]
    start = threading.Barrier(2)

    def fade(index: int) -> None:
        start.wait()
        steps[index] = servers[index].fade("s")

    threads = [threading.Thread(target=fade, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    pages = writer.list_pages(session="s", limit=200).pages
    taken = sum(p.tier_index for p in pages)  # every page starts hot: its tier index is its steps
    assert taken > 0 and sum(steps) == taken  # a step counted twice would be a page demoted twice
    assert writer.fade("s") == 0 and writer.archive.check() == []
    for memory in (writer, *servers):
        memory.close()


WRITER = """
import json, os, sys
sys.path.insert(0, sys.argv[4])
from test_crash import entry_text
from test_postgres_processes import _memory
from optical_memory.tiers import Tier
url, log, trial = sys.argv[1], sys.argv[2], int(sys.argv[3])
memory = _memory(url, (Tier("hot", 1.0),))
with open(log, "a") as out:
    out.write(json.dumps({"trial": trial, "started": True}) + "\\n"); out.flush(); os.fsync(out.fileno())
    n = 0
    while True:
        result = memory.remember(entry_text(trial, n), session=f"s{n % 3}", role="user")
        out.write(json.dumps({"trial": trial, "n": n, "spans": [s.model_dump() for s in result.spans]}) + "\\n")
        out.flush(); os.fsync(out.fileno())
        n += 1
"""


def _kill_a_writer(url: str, log: Path, trial: int, rng: random.Random) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    args = [sys.executable, "-c", WRITER, url, str(log), str(trial), str(ROOT / "tests")]
    writer = subprocess.Popen(args, env=env, stderr=subprocess.PIPE)
    # wait until it has stored an entry (a loaded machine starts slowly), then kill it at a random moment
    deadline = time.monotonic() + 60
    while not (log.exists() and f'"trial": {trial}, "n": 0,' in log.read_text()):
        assert writer.poll() is None, writer.stderr.read().decode() if writer.stderr else "writer died"
        assert time.monotonic() < deadline, "writer did not start"
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.6))
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.stderr is not None
    writer.stderr.close()


@pytest.mark.slow
def test_a_writer_killed_mid_write_loses_nothing_it_was_told_was_stored(pg_url: str, tmp_path: Path) -> None:
    log, rng, checked = tmp_path / "log.jsonl", random.Random(2026), 0
    for trial in range(CRASH_TRIALS):
        _kill_a_writer(pg_url, log, trial, rng)
        memory = _memory(pg_url, (Tier("hot", 1.0),))  # the killed connection's transaction was rolled back
        assert memory.archive.check() == []
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the kill landed while the log line was being written
            if record.get("trial") == trial and "spans" in record:
                assert read_entry(memory, record["spans"]) == entry_text(trial, record["n"])
                checked += 1
        memory.close()
    assert checked >= CRASH_TRIALS  # the kills did not all land before the first write
