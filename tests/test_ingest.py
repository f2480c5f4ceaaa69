"""Conversations from other tools, remembered: CLI with a progress bar, and the MCP tool with progress."""

from __future__ import annotations

import json
from pathlib import Path

from mcp import Client
from mcp.server.mcpserver import MCPServer

from optical_memory.ingest import import_conversations
from optical_memory.memory import Memory
from optical_memory_mcp.app import AppState
from optical_memory_mcp.cli import main

TRANSCRIPT = [
    {
        "type": "user",
        "uuid": "u1",
        "parentUuid": None,
        "sessionId": "sess-1",
        "timestamp": "2026-11-20T09:00:00Z",
        "cwd": "/w",
        "message": {"role": "user", "content": "Why does test_parse fail?"},
    },
    {
        "type": "assistant",
        "uuid": "a1",
        "parentUuid": "u1",
        "sessionId": "sess-1",
        "timestamp": "2026-11-20T09:00:05Z",
        "cwd": "/w",
        "message": {
            "id": "m1",
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me run it."},
                {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "pytest -k parse"}},
            ],
        },
    },
    {
        "type": "user",
        "uuid": "u2",
        "parentUuid": "a1",
        "sessionId": "sess-1",
        "timestamp": "2026-11-20T09:00:09Z",
        "cwd": "/w",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "E   KeyError: 'ERR_4417'"}],
        },
    },
]


def write_transcript(path: Path) -> Path:
    lines = [json.dumps(record) for record in TRANSCRIPT]
    lines.insert(2, "{not json")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_keeps_roles_times_and_reports_bad_lines(memory: Memory, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    report = import_conversations(
        memory, write_transcript(tmp_path / "s.jsonl"), progress=lambda d, t: seen.append((d, t))
    )
    assert report.format == "claude-code" and report.messages == 3 and report.sessions == ["sess-1"]
    assert [p.line for p in report.problems] == [3]
    assert seen[-1] == (3, 3)
    hit = memory.search("ERR_4417").hits[0]
    assert any("KeyError: 'ERR_4417'" in line.text for line in hit.lines)
    record = memory.archive.read(lambda tx: tx.page(hit.page_id))
    assert record is not None and [(e.role, e.time) for e in record.entries] == [
        ("user", "2026-11-20T09:00:00Z"),
        ("assistant", "2026-11-20T09:00:05Z"),
        ("user", "2026-11-20T09:00:09Z"),
    ]


def test_cli_import_shows_progress_and_problems(config_file: Path, archive_path: Path, tmp_path: Path, capsys) -> None:
    source = write_transcript(tmp_path / "s.jsonl")
    assert main(["--config", str(config_file), "--archive", str(archive_path), "import", str(source)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["messages"] == 3
    assert "3/3 messages" in err and "skipped line 3" in err


async def test_import_tool_reports_progress(server: MCPServer[AppState], tmp_path: Path) -> None:
    content = write_transcript(tmp_path / "s.jsonl").read_text(encoding="utf-8")
    updates: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(progress)

    async with Client(server) as client:
        result = await client.call_tool("import_conversation", {"content": content}, progress_callback=on_progress)
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["messages"] == 3
        assert result.structured_content["problems"][0]["line"] == 3
    assert updates and updates[-1] == 3
