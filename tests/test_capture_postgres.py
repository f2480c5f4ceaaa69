"""Capture hooks on a PostgreSQL archive: no spool there, the hook remembers its turns itself, exactly once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from optical_memory.capture_hook import run_hook
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.spool import has_spooled
from tests.test_capture import Transcript, tokens

pytest_plugins = ["tests.pg"]  # the PostgreSQL server and a schema per test


def test_a_hook_on_postgres_remembers_its_turns_before_it_exits(
    pg_url: str, config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTICAL_MEMORY_ARCHIVE_URL", pg_url)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # no archive folder: the log goes to the data dir
    transcript = Transcript(tmp_path / "t.jsonl")
    for n in range(3):
        transcript.append(*transcript.turn(n))
        for event in ("Stop", "Stop", "PreCompact"):  # the reruns add nothing
            result = run_hook(str(config_file), None, None, stdin=io.BytesIO(transcript.payload(event)))
            assert result is not None and not result.spooled
    memory = Memory(load_config(config_file), reader=TemplateReader())
    try:
        assert not has_spooled(memory.archive)
        seen = tokens(memory)  # read at once: nothing waits for a drainer
    finally:
        memory.close()
    assert set(seen) == {f"TOKEN{n}{kind}" for n in range(3) for kind in "PRT"}
    assert set(seen.values()) == {1}
    log = (tmp_path / "data" / "optical-memory" / "capture.log").read_text(encoding="utf-8")
    assert log.count("3 new turn(s) into") == 3 and "failed" not in log
