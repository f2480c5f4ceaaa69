"""Crash safety: a writer killed with SIGKILL at random moments never leaves the archive half-written.

Each trial starts a writer process that remembers a stream of texts into one archive and logs, with
fsync, every call that returned; the test kills it at a random moment, reopens the archive, checks its
invariants, and reads back every logged entry exactly. The archive carries over from trial to trial.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier

TRIALS = 20
ROOT = Path(__file__).resolve().parent.parent


def entry_text(trial: int, n: int) -> str:
    """The n-th text of a trial: sizes from one line to a few pages, so kills land mid-page and mid-split."""
    rng = random.Random(trial * 100_003 + n)
    lines = [f"trial {trial} entry {n}"]
    for k in range(rng.choice([1, 5, 30, 90])):
        lines.append(f"{k:04d} " + "".join(rng.choice("abc xyz|-") for _ in range(rng.randint(0, 180))))
    return "\n".join(lines)


WRITER = """
import json, os, sys
from dataclasses import replace
sys.path.insert(0, sys.argv[4])
from test_crash import entry_text
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
path, log, trial = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = replace(load_config(archive=path, environ={}), tiers=(Tier("hot", 1.0),))
memory = Memory(config, reader=TemplateReader())
with open(log, "a") as out:
    out.write(json.dumps({"trial": trial, "started": True}) + "\\n"); out.flush(); os.fsync(out.fileno())
    n = 0
    while True:
        result = memory.remember(entry_text(trial, n), session=f"s{n % 3}", role="user")
        out.write(json.dumps({"trial": trial, "n": n, "spans": [s.model_dump() for s in result.spans]}) + "\\n")
        out.flush(); os.fsync(out.fileno())
        n += 1
"""


def hot_memory(path: Path) -> Memory:
    return Memory(replace(load_config(archive=path, environ={}), tiers=(Tier("hot", 1.0),)), reader=TemplateReader())


def read_entry(memory: Memory, spans: list[dict]) -> str:
    parts: list[str] = []
    for index, span in enumerate(spans):
        if index:
            parts.append("" if spans[index - 1]["continues"] else "\n")
        lines = memory.read_lines(span["page_id"], span["start"], span["end"]).lines
        parts.append("\n".join(line.text for line in lines))
    return "".join(parts)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_that_returned(tmp_path: Path) -> None:
    archive, log = tmp_path / "archive", tmp_path / "log.jsonl"
    rng = random.Random(2026)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    total_checked = 0
    for trial in range(TRIALS):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(archive), str(log), str(trial), str(ROOT / "tests")],
            env=env,
            stderr=subprocess.PIPE,
        )
        # wait until the writer is really writing, then kill it at a random moment
        deadline = time.monotonic() + 30
        while not (log.exists() and f'"trial": {trial}, "started"' in log.read_text()):
            assert writer.poll() is None, writer.stderr.read().decode() if writer.stderr else "writer died"
            assert time.monotonic() < deadline, "writer did not start"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.05, 0.8))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        assert writer.stderr is not None
        writer.stderr.close()

        memory = hot_memory(archive)
        assert memory.archive.check() == []
        for line in log.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the kill landed while the log line was being written
            if record.get("trial") == trial and "spans" in record:
                assert read_entry(memory, record["spans"]) == entry_text(trial, record["n"])
                total_checked += 1
        memory.close()
    assert total_checked >= TRIALS  # the kills did not all land before the first write
