"""Several processes on one archive: writers, readers and fading at once; stale readers cleared."""

from __future__ import annotations

import json
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
            lambda tx, s=session: [tx.page(pid) for _, pid in tx.page_ids_newest_first(tx.session(s).sid)]
        )
        for record in reversed(records):
            titles += [e.title for e in record.entries]
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


FLAKY_WRITER = """
import json, os, random, sys
from dataclasses import replace
import lmdb
from optical_memory.archive import ArchiveTxn
from optical_memory.config import load_config
from optical_memory.errors import ArchiveFull
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
path, log, name, fail_rate = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
rng = random.Random(name)
original = ArchiveTxn.put_image
def put_image(self, *args):
    if rng.random() < fail_rate:  # a full disk, at the step that stores the page's pixels
        raise lmdb.DiskError("mdb_put: No space left on device")
    return original(self, *args)
ArchiveTxn.put_image = put_image
memory = Memory(replace(load_config(archive=path, environ={}), tiers=(Tier("hot", 1.0),)), reader=TemplateReader())
with open(log, "w") as out:
    for n in range(24):
        lines = [f"{name} {n} line {i}" for i in range(rng.choice([1, 3, 12, 30]))]
        try:
            result = memory.remember("\\n".join(lines), session="shared")
        except ArchiveFull:
            out.write(json.dumps({"n": n, "failed": lines}) + "\\n")
            continue
        spans = [s.model_dump() for s in result.spans]
        out.write(json.dumps({"n": n, "lines": lines, "spans": spans}) + "\\n")
        out.flush()
memory.close()
"""


@pytest.mark.slow
def test_two_writers_one_session_with_disk_full_in_one_lose_nothing_acknowledged(tmp_path: Path) -> None:
    """#12: failed writes interleaved with another process's: every acknowledged line reads back as written."""
    path = str(tmp_path / "flaky")
    Archive(path).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    logs = {name: tmp_path / f"{name}.jsonl" for name in ("failing", "steady")}
    procs = [
        subprocess.Popen([sys.executable, "-c", FLAKY_WRITER, path, str(log), name, rate], env=env)
        for (name, log), rate in zip(logs.items(), ("0.4", "0"), strict=True)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    memory = _memory(path)
    assert memory.archive.check() == []
    acknowledged: list[str] = []
    failed = 0
    for log in logs.values():
        for record in map(json.loads, log.read_text().splitlines()):
            if "failed" in record:
                failed += 1
                continue
            read: list[str] = []
            for span in record["spans"]:
                read += [line.text for line in memory.read_lines(span["page_id"], span["start"], span["end"]).lines]
            assert read == record["lines"]
            acknowledged += record["lines"]
    assert failed >= 3  # the injected full disk really failed writes
    pages = reversed(memory.list_pages(session="shared", limit=200).pages)
    stored = [line.text for page in pages for line in memory.read_lines(page.id).lines]
    assert sorted(stored) == sorted(acknowledged)  # nothing of a failed write, nothing acknowledged missing
    memory.close()
