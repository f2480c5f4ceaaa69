"""Several processes on one archive: writers, readers and fading at once; stale readers cleared."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from optical_memory.archive import Archive
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier

ENTRIES = 30
SESSIONS = ("alpha", "beta", "gamma")
# Fading by count, fast: pages are demoted while other processes write (3 newer pages -> warm).
TIERS = (Tier("hot", 1.0), Tier("warm", 0.7, "webp", 85, after_pages=3), Tier("cold", 0.4, "webp", 70, after_pages=6))


def _memory(path: str) -> Memory:
    return Memory(replace(load_config(archive=path, environ={}), tiers=TIERS), reader=TemplateReader())


def _writer(path: str, session: str) -> None:
    memory = _memory(path)
    for n in range(ENTRIES):
        # titles are kept in the page records, so order can be checked without OCR on faded pages
        memory.remember(f"{session} {n}\n" + "w" * (n * 97 % 5000), session=session, title=f"{session}-{n}")
    memory.close()


def _reader(path: str, stop_after: float) -> None:
    memory = _memory(path)
    deadline = time.monotonic() + stop_after
    while time.monotonic() < deadline:
        for page in memory.list_pages(limit=50).pages:
            memory.view_page(page.id)
            memory.read_lines(page.id, 1, 1)
    memory.close()


@pytest.mark.slow
def test_three_writers_and_a_reader_lose_nothing_while_pages_fade(tmp_path: Path) -> None:
    path = str(tmp_path / "busy")
    Archive(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, s)) for s in SESSIONS]
    procs.append(ctx.Process(target=_reader, args=(path, 8.0)))
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=180)
        assert proc.exitcode == 0, "a process failed: see its traceback above"

    memory = _memory(path)
    assert memory.archive.check() == []
    for session in SESSIONS:
        titles: list[str] = []
        records = memory.archive.read(
            lambda tx, s=session: [tx.page(pid) for _, pid in tx.page_ids_newest_first(tx.session(s)["sid"])]
        )
        for record in reversed(records):
            titles += [e["title"] for e in record["entries"]]
        deduped = list(dict.fromkeys(titles))  # an entry split over pages appears on each
        assert deduped == [f"{session}-{n}" for n in range(ENTRIES)]
    tiers = {p.tier for p in memory.list_pages(limit=200).pages}
    assert {"hot", "cold"} <= tiers  # fading really ran during the writes
    memory.close()


HOLDER = """
import sys, time
from optical_memory.archive import Archive
archive = Archive(sys.argv[1])
if sys.argv[2] == "read":
    txn = archive.env.begin()  # a read transaction that is never finished
    txn.get(b"schema")
print("holding", flush=True)
time.sleep(60)
"""


def test_readers_left_by_killed_processes_are_cleared(tmp_path: Path) -> None:
    path = tmp_path / "stale"
    Archive(path).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}

    def hold(mode: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode], stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"holding"
        return proc

    # Another server keeps the archive open (so LMDB does not reset its lock file), while a
    # process that was reading is killed: its reader slot stays behind until someone checks.
    server, reader = hold("open"), hold("read")
    try:
        reader.send_signal(signal.SIGKILL)
        reader.wait(timeout=30)
        archive = Archive(path)
        assert archive.stale_readers_cleared == 1
        archive.close()
    finally:
        for proc in (server, reader):
            proc.kill()
            proc.wait(timeout=30)
            assert proc.stdout is not None
            proc.stdout.close()
