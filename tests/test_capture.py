"""Capture: Claude Code hook payloads for a growing transcript, each turn remembered exactly once."""

from __future__ import annotations

import fcntl
import io
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from optical_memory.capture import capture_transcript, project_session
from optical_memory.capture_hook import run_hook
from optical_memory.memory import Memory
from optical_memory.spool import LOCK_NAME, has_spooled
from optical_memory_mcp.cli import main

SID = "5b0a7c9e-2f41-4d3b-8a61-0c2e9d7f1a35"
CWD = "/home/ada/shop"


class Transcript:
    """A Claude Code transcript as Claude Code writes it: one JSON record a line, appended as the session goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parent: str | None = None
        self.count = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")

    def record(self, kind: str, message: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        self.count += 1
        uuid = f"{kind[0]}-{self.count:04d}-7c1e-4b0a-9d2f-{self.count:012d}"
        record: dict[str, Any] = {
            "parentUuid": self.parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": CWD,
            "sessionId": SID,
            "version": "2.0.14",
            "gitBranch": "main",
            "type": kind,
            "uuid": uuid,
            "timestamp": f"2026-11-20T09:{self.count // 60:02d}:{self.count % 60:02d}.512Z",
            **extra,
        }
        if message is not None:
            record["message"] = message
        self.parent = uuid
        return record

    def append(self, *records: dict[str, Any], partial: str = "") -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write("".join(json.dumps(record) + "\n" for record in records) + partial)

    def turn(self, n: int) -> list[dict[str, Any]]:
        """A user prompt, a reply written as two lines sharing message.id (text, tool_use), and the tool's result."""
        reply = f"msg_{n:04d}"
        return [
            self.record("user", {"role": "user", "content": f"prompt TOKEN{n}P please"}),
            self.record(
                "assistant",
                {
                    "id": reply,
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "text", "text": f"reply TOKEN{n}R"}],
                },
            ),
            self.record(
                "assistant",
                {
                    "id": reply,
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": f"toolu_{n}", "name": "Bash", "input": {"command": "ls"}}],
                },
            ),
            self.record(
                "user",
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": f"out TOKEN{n}T"}],
                },
                toolUseResult={"stdout": f"out TOKEN{n}T", "stderr": ""},
            ),
        ]

    def payload(self, event: str) -> bytes:
        data: dict[str, Any] = {
            "session_id": SID,
            "transcript_path": str(self.path),
            "cwd": CWD,
            "hook_event_name": event,
        }
        if event == "Stop":
            data["stop_hook_active"] = False
        if event == "PreCompact":
            data.update(trigger="auto", custom_instructions="")
        if event == "SessionEnd":
            data["reason"] = "exit"
        return json.dumps(data).encode()


def all_text(memory: Memory) -> str:
    """Every line of every page, read back (pages stay hot: capture leaves fading to the server)."""
    texts: list[str] = []
    cursor = None
    while True:
        listing = memory.list_pages(cursor=cursor, limit=50)
        for page in listing.pages:
            texts.extend(line.text for line in memory.read_lines(page.id, start=1, end=page.lines).lines)
        cursor = listing.next_cursor
        if cursor is None:
            return "\n".join(texts)


def tokens(memory: Memory) -> Counter[str]:
    return Counter(re.findall(r"TOKEN\d+[PRT]", all_text(memory)))


def hook(config_file: Path, archive_path: Path, payload: bytes) -> None:
    assert run_hook(str(config_file), str(archive_path), None, stdin=io.BytesIO(payload)) is not None


def drained(memory: Memory, timeout_s: float = 60.0) -> bool:
    """Wait until the hooks' detached drainers have emptied the spool and let go of its lock."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not has_spooled(memory.archive) and _lock_free(memory.archive.path / LOCK_NAME):
            return True
        time.sleep(0.02)
    return False


def _lock_free(path: Path) -> bool:
    if not path.exists():
        return True
    with path.open("rb") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True  # closing the file lets go of it


def test_hook_payloads_for_a_growing_transcript_remember_every_turn_once(
    config_file: Path, archive_path: Path, tmp_path: Path, config: Any
) -> None:
    transcript = Transcript(tmp_path / "projects" / "-home-ada-shop" / f"{SID}.jsonl")
    transcript.append(transcript.record("summary", leafUuid="x", summary="Shop checkout work"))
    turns, half_turn = 0, -1
    for round_ in range(6):
        for _ in range(2):
            transcript.append(*transcript.turn(turns))
            turns += 1
        if round_ == 2:  # Claude Code is still writing a line when the hook runs: it waits for the next capture
            partial, half_turn = json.dumps(transcript.turn(turns)[0]), turns  # only its prompt is ever written
            transcript.append(partial=partial[:40])
            hook(config_file, archive_path, transcript.payload("Stop"))
            with transcript.path.open("a", encoding="utf-8") as file:
                file.write(partial[40:] + "\n")
            turns += 1
        for event in ("Stop", "Stop", "PreCompact"):  # reruns add nothing
            hook(config_file, archive_path, transcript.payload(event))
    hook(config_file, archive_path, transcript.payload("SessionEnd"))

    memory = Memory(config)
    try:
        assert drained(memory)  # the hooks only spooled their turns: detached drainers remember them
        seen = tokens(memory)
        sessions = [session.name for session in memory.list_sessions().sessions]
        pages = memory.archive.stat()["pages"]
    finally:
        memory.close()
    for event in ("Stop", "Stop", "PreCompact"):  # three reruns of a finished transcript add nothing
        hook(config_file, archive_path, transcript.payload(event))
    memory = Memory(config)
    try:
        assert not has_spooled(memory.archive)  # nothing new was even spooled
        assert memory.archive.stat()["pages"] == pages and tokens(memory) == seen
    finally:
        memory.close()
    expected = {f"TOKEN{n}{kind}" for n in range(turns) for kind in "PRT" if n != half_turn or kind == "P"}
    assert set(seen) == expected
    assert all(count == 1 for count in seen.values()), seen
    assert sessions == [CWD]  # the project's folder names the session
    log = (archive_path / "capture.log").read_text(encoding="utf-8")
    assert "spooled for '/home/ada/shop'" in log and "drain: " in log and "failed" not in log


def test_a_rewritten_transcript_adds_only_what_is_new(memory: Memory, tmp_path: Path) -> None:
    transcript = Transcript(tmp_path / "t.jsonl")
    records = [record for n in range(3) for record in transcript.turn(n)]
    transcript.append(*records)
    first = capture_transcript(memory, transcript.path)
    assert first.messages == 9 and not first.rewritten
    # Compaction rewrote the file: the same records, reordered keys, then new ones.
    more = transcript.turn(3)
    transcript.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records + more), encoding="utf-8")
    second = capture_transcript(memory, transcript.path)
    assert second.rewritten and second.messages == 3 and second.already_remembered == 9
    assert capture_transcript(memory, transcript.path).messages == 0
    assert set(tokens(memory).values()) == {1}


def test_codex_rollout_is_captured_incrementally(memory: Memory, tmp_path: Path) -> None:
    path = tmp_path / "sessions" / "2026" / "11" / "20" / "rollout-2026-11-20T09-00-00-0199a1b2.jsonl"
    path.parent.mkdir(parents=True)
    meta = {"id": "0199a1b2", "timestamp": "2026-11-20T09:00:00Z", "cwd": "/home/ada/api", "originator": "codex_cli"}
    lines = [{"timestamp": "2026-11-20T09:00:00.100Z", "type": "session_meta", "payload": meta}]
    for n in range(4):
        lines.append(
            {
                "timestamp": f"2026-11-20T09:00:{n + 1:02d}.000Z",
                "type": "response_item",
                "payload": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": f"ask TOKEN{n}P"}],
                },
            }
        )
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        result = capture_transcript(memory, path)
        assert (result.messages, result.session) == (1, "/home/ada/api")
    assert capture_transcript(memory, path).messages == 0
    assert set(tokens(memory).values()) == {1} and len(tokens(memory)) == 4


def test_capture_never_fails_the_agent(
    config_file: Path, archive_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    archive_path.mkdir()
    for stdin in (
        b"not json",
        b'{"hook_event_name": "Stop"}',
        json.dumps({"transcript_path": str(tmp_path / "gone.jsonl")}).encode(),
    ):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        assert main(["--config", str(config_file), "--archive", str(archive_path), "capture"]) == 0
        out, _ = capsys.readouterr()
        assert out == ""  # Claude Code reads a hook's stdout as instructions
    log = (archive_path / "capture.log").read_text(encoding="utf-8")
    assert "not JSON" in log and "no transcript_path" in log and "gone.jsonl is not a file" in log


def test_project_session_names_the_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert project_session(str(tmp_path / "src" / "shop")) == "~/src/shop"
    assert project_session(str(tmp_path / "src" / "shop") + "/") == "~/src/shop"
    assert project_session("/srv/x\n") == "/srv/x"
    long = project_session("/" + "d" * 300)
    assert len(long) <= 128 and long.endswith("d" * 100)


def test_hooks_running_at_once_remember_each_turn_once(
    config_file: Path, archive_path: Path, tmp_path: Path, config: Any
) -> None:
    """Background Stop hooks can overlap: each capture commits its turns and mark together, or starts over."""
    import subprocess
    import sys

    transcript = Transcript(tmp_path / "t.jsonl")
    command = [
        sys.executable,
        "-m",
        "optical_memory_mcp",
        "--config",
        str(config_file),
        "--archive",
        str(archive_path),
        "capture",
    ]
    running = []
    for n in range(4):
        transcript.append(*transcript.turn(n))
        for event in ("Stop", "PreCompact"):
            running.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
            running[-1].stdin.write(transcript.payload(event))  # type: ignore[union-attr]
            running[-1].stdin.close()  # type: ignore[union-attr]
    outputs = [process.stdout.read() for process in running]  # type: ignore[union-attr]
    for process in running:
        process.wait()
        process.stdout.close()  # type: ignore[union-attr]
    assert [process.returncode for process in running] == [0] * len(running) and set(outputs) == {b""}
    hook(config_file, archive_path, transcript.payload("SessionEnd"))
    memory = Memory(config)
    try:
        assert drained(memory)
        seen = tokens(memory)
    finally:
        memory.close()
    assert set(seen) == {f"TOKEN{n}{kind}" for n in range(4) for kind in "PRT"}
    assert set(seen.values()) == {1}, seen
    assert "failed" not in (archive_path / "capture.log").read_text(encoding="utf-8")
