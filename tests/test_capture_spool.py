"""The capture hook's fast path: light imports, the spool, and drains that lose and double nothing."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from optical_memory.archive_location import archive_location, default_archive_path
from optical_memory.capture import spool_transcript
from optical_memory.config import default_archive_path as config_default_archive_path
from optical_memory.config import load_config
from optical_memory.errors import SessionNotFound
from optical_memory.ingest import BATCH_MESSAGES
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.spool import has_spooled
from optical_memory.spool import main as drainer_main
from optical_memory_mcp.app import build_server
from tests.test_capture import CWD, Transcript, all_text, drained

HEAVY = ("numpy", "PIL", "pydantic", "mcp", "importlib.metadata", "onnxruntime", "optical_memory_mcp.app")

# Default-sized pages (few of them for hundreds of messages), read back exactly by the template reader.
BIG_PAGES = '[reader]\nname = "template"\n'


def spool_turns(memory: Memory, transcript: Transcript, turns: range) -> None:
    for n in turns:
        transcript.append(*transcript.turn(n))
    result, waiting = spool_transcript(memory.archive, transcript.path)
    assert result.spooled and waiting and result.messages == 3 * len(turns)


def counted(memory: Memory) -> Counter[str]:
    return Counter(re.findall(r"TOKEN\d+[PRT]", all_text(memory)))


# the archive's location, without pydantic -------------------------------------------------------

LOCATIONS: list[tuple[str, dict[str, str], str | None, bool]] = [
    # (config file's [archive] table, environment, --archive, whether a PostgreSQL url wins)
    ("", {}, None, False),
    ("", {}, "/srv/flag", False),
    ('path = "~/notes/archive"\nmap_size_mib = 512\nbusy_timeout_s = 2.5', {}, None, False),
    ('path = "/srv/file"', {"OPTICAL_MEMORY_ARCHIVE": "/srv/env"}, None, False),
    ('path = "/srv/file"', {"OPTICAL_MEMORY_ARCHIVE": "/srv/env"}, "/srv/flag", False),
    ('url = "postgresql://u@h/db"', {}, None, True),
    ('url = "postgresql://u@h/db"', {"OPTICAL_MEMORY_ARCHIVE": "/srv/env"}, None, False),
    ("", {"OPTICAL_MEMORY_ARCHIVE_URL": "postgresql://u@h/db", "OPTICAL_MEMORY_ARCHIVE": "/srv/env"}, None, True),
    ("", {"OPTICAL_MEMORY_ARCHIVE_URL": "postgresql://u@h/db"}, "/srv/flag", False),
]


@pytest.mark.parametrize(("table", "env", "flag", "postgres"), LOCATIONS)
def test_the_hook_finds_the_archive_where_load_config_does(
    tmp_path: Path, table: str, env: dict[str, str], flag: str | None, postgres: bool
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[archive]\n{table}\n", encoding="utf-8")
    environ = {**env, "OPTICAL_MEMORY_CONFIG": str(path)}
    full = load_config(archive=flag, environ=environ).archive
    light = archive_location(archive=flag, environ=environ)
    assert (full.url is not None) is postgres
    if postgres:
        assert light is None  # PostgreSQL: the hook takes the full path
        return
    assert light is not None
    assert (light.path, light.map_size_mib, light.max_map_size_mib, light.busy_timeout_s) == (
        full.path,
        full.map_size_mib,
        full.max_map_size_mib,
        full.busy_timeout_s,
    )


def test_the_hook_leaves_an_unusual_config_to_load_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    for text in ("[archive]\nmap_size_mib = 'big'\n", "[archive\n", "archive = 3\n"):
        path.write_text(text, encoding="utf-8")
        assert archive_location(path, environ={}) is None
    assert archive_location(tmp_path / "missing.toml", environ={}) is None
    assert default_archive_path() == config_default_archive_path()


# the hook process ---------------------------------------------------------------------------------


def test_the_capture_hook_loads_no_heavy_library(config_file: Path, archive_path: Path, tmp_path: Path) -> None:
    """A hook starts at every turn of the agent: it must not load numpy, Pillow, pydantic or the MCP SDK."""
    transcript = Transcript(tmp_path / "t.jsonl")
    transcript.append(*transcript.turn(0))
    base = [sys.executable, "-X", "importtime", "-m", "optical_memory_mcp", "--config", str(config_file)]
    done = subprocess.run(
        [*base, "--archive", str(archive_path), "capture"],
        input=transcript.payload("Stop"),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == b""
    imported = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines() if "import time:" in line}
    assert "optical_memory.capture" in imported and "lmdb" in imported  # it did capture, with the archive
    loaded = sorted(name for name in imported if name.split(".")[0] in HEAVY or name in HEAVY)
    assert loaded == []
    memory = Memory(load_config(config_file, archive=archive_path))
    try:
        assert drained(memory)
        assert "TOKEN0R" in all_text(memory)
    finally:
        memory.close()


def test_capture_with_a_broken_archive_exits_0_and_logs(config_file: Path, archive_path: Path, tmp_path: Path) -> None:
    archive_path.mkdir()
    (archive_path / "data.mdb").write_bytes(b"not an LMDB file " * 1000)
    transcript = Transcript(tmp_path / "t.jsonl")
    transcript.append(*transcript.turn(0))
    command = [sys.executable, "-m", "optical_memory_mcp", "--config", str(config_file), "--archive", str(archive_path)]
    done = subprocess.run([*command, "capture"], input=transcript.payload("Stop"), capture_output=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    log = (archive_path / "capture.log").read_text(encoding="utf-8")
    assert "Stop " in log and "failed: ArchiveDamaged" in log


# draining -----------------------------------------------------------------------------------------

DYING_DRAINER = """
import os, signal, sys
from optical_memory import spool
from optical_memory.memory import Memory

batches = 0
remember_batch = Memory.remember_batch

def dies_at_the_second_batch(self, *args, **kwargs):
    global batches
    batches += 1
    if batches == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return remember_batch(self, *args, **kwargs)

Memory.remember_batch = dies_at_the_second_batch
spool.main(sys.argv[1:])
"""


def test_a_drainer_killed_mid_way_loses_and_doubles_nothing(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(BIG_PAGES, encoding="utf-8")
    config = load_config(config_path, archive=tmp_path / "archive", environ={})
    transcript = Transcript(tmp_path / "t.jsonl")
    turns = BATCH_MESSAGES // 3 + 10  # three messages a turn: a little more than one batch of remember_messages
    memory = Memory(config, reader=TemplateReader())
    spool_turns(memory, transcript, range(turns))
    memory.close()
    killed = subprocess.run(
        [sys.executable, "-c", DYING_DRAINER, "--config", str(config_path), "--archive", str(config.archive.path)],
        capture_output=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    memory = Memory(config, reader=TemplateReader())
    try:
        assert has_spooled(memory.archive)  # the spooled capture outlives the drainer that died
        half = counted(memory)
        assert len(half) == BATCH_MESSAGES and set(half.values()) == {1}  # the first batch was committed whole
        result = memory.drain()
        assert (result.captures, result.already_remembered, result.left) == (1, len(half), 0)
        assert not has_spooled(memory.archive)
        seen = counted(memory)
        assert set(seen) == {f"TOKEN{n}{kind}" for n in range(turns) for kind in "PRT"}
        assert set(seen.values()) == {1}, [token for token, count in seen.items() if count > 1]
        assert memory.drain().captures == 0  # a drain that finds nothing does nothing
    finally:
        memory.close()


def test_a_failing_drainer_logs_and_keeps_the_spool(config: Any, archive_path: Path, tmp_path: Path) -> None:
    memory = Memory(config, reader=TemplateReader())
    spool_turns(memory, Transcript(tmp_path / "t.jsonl"), range(2))
    memory.close()
    bad = tmp_path / "bad.toml"
    bad.write_text("[page]\ncolumns = 'wide'\n", encoding="utf-8")
    assert drainer_main(["--config", str(bad), "--archive", str(archive_path)]) == 0
    log = (archive_path / "capture.log").read_text(encoding="utf-8")
    assert "drain failed, the spool is kept for the next one" in log and "columns" in log
    memory = Memory(config, reader=TemplateReader())
    try:
        assert has_spooled(memory.archive) and memory.archive.stat()["pages"] == 0
        assert memory.drain().messages == 6
        assert set(counted(memory).values()) == {1} and len(counted(memory)) == 6
    finally:
        memory.close()


def test_drain_by_hand_says_what_it_remembered(
    config: Any, config_file: Path, archive_path: Path, tmp_path: Path
) -> None:
    memory = Memory(config, reader=TemplateReader())
    spool_turns(memory, Transcript(tmp_path / "t.jsonl"), range(3))
    memory.close()
    command = [sys.executable, "-m", "optical_memory_mcp", "--config", str(config_file), "--archive", str(archive_path)]
    done = subprocess.run([*command, "capture", "--drain"], capture_output=True, check=True)
    report = json.loads(done.stdout)
    assert (report["captures"], report["messages"], report["sessions"], report["left"]) == (1, 9, [CWD], 0)


async def test_the_server_drains_the_spool_and_search_finds_the_turns(
    config: Any, archive_path: Path, tmp_path: Path
) -> None:
    memory = Memory(config, reader=TemplateReader())
    spool_turns(memory, Transcript(tmp_path / "t.jsonl"), range(2))
    memory.close()
    async with Client(build_server(config)) as client:  # its lifespan drains at start
        with anyio.fail_after(60):
            while True:
                found = (await client.call_tool("search", {"query": "TOKEN1R"})).structured_content
                assert found is not None
                if found["hits"]:
                    break
                await anyio.sleep(0.05)
    hit = found["hits"][0]
    assert hit["session"] == CWD and hit["role"] == "assistant"
    assert any("TOKEN1R" in line["text"] for line in hit["lines"])


def test_forgetting_a_session_drops_its_spooled_turns(config: Any, tmp_path: Path) -> None:
    """Turns a hook took just before `forget` must not come back as pages when the next drain runs."""
    memory = Memory(config, reader=TemplateReader())
    try:
        transcript = Transcript(tmp_path / "t.jsonl")
        spool_turns(memory, transcript, range(1))
        memory.drain()  # the session exists, with its first turn
        spool_turns(memory, transcript, range(1, 3))  # two more turns wait in the spool
        other = Transcript(tmp_path / "other" / "t.jsonl")
        other.append(*other.turn(7))
        assert spool_transcript(memory.archive, other.path, session="elsewhere")[0].spooled
        memory.forget(session=CWD)
        result = memory.drain()
        assert (result.captures, result.sessions) == (1, ["elsewhere"])
        assert [session.name for session in memory.list_sessions().sessions] == ["elsewhere"]
        assert set(counted(memory)) == {"TOKEN7P", "TOKEN7R", "TOKEN7T"}
    finally:
        memory.close()


def test_forgetting_a_session_that_so_far_exists_only_in_the_spool(config: Any, tmp_path: Path) -> None:
    """A session whose first turns a hook has spooled but no drain has laid out yet can be forgotten."""
    memory = Memory(config, reader=TemplateReader())
    try:
        transcript = Transcript(tmp_path / "t.jsonl")
        spool_turns(memory, transcript, range(2))
        forgotten = memory.forget(session=CWD)
        assert (forgotten.forgotten, forgotten.sessions_removed) == ([], [CWD])
        assert memory.drain().captures == 0
        assert memory.list_sessions().sessions == []
        with pytest.raises(SessionNotFound):
            memory.forget(session=CWD)  # nothing of it is left, anywhere
    finally:
        memory.close()
