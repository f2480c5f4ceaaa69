"""Conversations from other tools, remembered: CLI with a progress bar, and the MCP tool with progress."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from optical_memory.ingest import import_conversation_content, import_conversations
from optical_memory.memory import Memory
from optical_memory_mcp.app import AppState
from optical_memory_mcp.cli import main

TRANSCRIPT: list[dict[str, Any]] = [
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
    seen: list[tuple[int, int | None]] = []
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


# --- idempotent import, every format -------------------------------------------------------------

CODEX_LINES: list[dict[str, Any]] = [
    {
        "timestamp": "2026-11-20T09:00:00.100Z",
        "type": "session_meta",
        "payload": {
            "id": "0199a1b2-codex",
            "timestamp": "2026-11-20T09:00:00Z",
            "cwd": "/w",
            "originator": "codex_cli",
        },
    },
    {
        "timestamp": "2026-11-20T09:00:01.000Z",
        "type": "response_item",
        "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run the tests"}]},
    },
    {
        "timestamp": "2026-11-20T09:00:02.000Z",
        "type": "response_item",
        "payload": {"type": "function_call", "name": "shell", "arguments": '{"command":["pytest"]}', "call_id": "c1"},
    },
    {
        "timestamp": "2026-11-20T09:00:03.000Z",
        "type": "response_item",
        "payload": {"type": "function_call_output", "call_id": "c1", "output": "1 failed"},
    },
]


def gpt_node(node: str, parent: str | None, child: str | None, role: str, text: str, at: int) -> dict[str, object]:
    message = {"author": {"role": role}, "content": {"content_type": "text", "parts": [text]}, "create_time": at}
    return {"id": node, "message": message, "parent": parent, "children": [child] if child else []}


SOURCES: dict[str, tuple[str, str]] = {
    "text": ("notes.md", "# Notes\n\nThe staging host is db-7.\n"),
    "jsonl": (
        "chat.jsonl",
        "".join(json.dumps({"role": r, "content": f"{r} says ok"}) + "\n" for r in ("user", "user")),
    ),
    "claude-code": ("s.jsonl", "".join(json.dumps(r) + "\n" for r in TRANSCRIPT)),
    "codex": ("rollout-2026-11-20T09-00-00-0199a1b2.jsonl", "".join(json.dumps(r) + "\n" for r in CODEX_LINES)),
    "claude-ai": (
        "conversations.json",
        json.dumps(
            [
                {
                    "uuid": "c-1",
                    "name": "Trip",
                    "chat_messages": [
                        {"uuid": "m1", "sender": "human", "text": "Book Lisbon", "created_at": "2026-01-02T10:00:00Z"},
                        {"uuid": "m2", "sender": "assistant", "text": "Booked", "created_at": "2026-01-02T10:00:09Z"},
                    ],
                }
            ]
        ),
    ),
    "chatgpt": (
        "conversations.json",
        json.dumps(
            [
                {
                    "conversation_id": "g-1",
                    "title": "Regex",
                    "current_node": "n2",
                    "mapping": {
                        "n1": gpt_node("n1", None, "n2", "user", "a regex for dates?", 1767348000),
                        "n2": gpt_node("n2", "n1", None, "assistant", r"\d{4}-\d{2}-\d{2}", 1767348005),
                    },
                }
            ]
        ),
    ),
}


def entries_in_archive(memory: Memory) -> int:
    return memory.archive.read(lambda tx: sum(len(page.entries) for page in tx.pages()))


def test_every_importer_adds_nothing_on_three_reruns(memory: Memory, tmp_path: Path) -> None:
    for fmt, (name, content) in SOURCES.items():
        path = tmp_path / fmt / name
        path.parent.mkdir()
        path.write_text(content, encoding="utf-8")
        first = import_conversations(memory, path)
        assert first.format == fmt and first.messages >= 1 and not first.problems, (fmt, first)
        stored = entries_in_archive(memory)
        for _ in range(3):
            again = import_conversations(memory, path)
            assert (again.messages, again.already_remembered) == (0, first.messages), fmt
        assert entries_in_archive(memory) == stored, fmt
    # the two identical "user says ok" lines of the JSONL file are two messages, both kept once
    assert import_conversations(memory, tmp_path / "jsonl" / "chat.jsonl").already_remembered == 2


def test_a_grown_file_adds_only_the_new_messages(memory: Memory, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TRANSCRIPT), encoding="utf-8")
    assert import_conversations(memory, path).messages == 3
    grown = {**TRANSCRIPT[0], "uuid": "u3", "parentUuid": "u2", "timestamp": "2026-11-20T09:01:00Z"}
    grown["message"] = {"role": "user", "content": "and now?"}
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(grown) + "\n")
    again = import_conversations(memory, path)
    assert (again.messages, again.already_remembered) == (1, 3)


def test_a_forgotten_conversation_can_be_imported_again(memory: Memory, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TRANSCRIPT), encoding="utf-8")
    assert import_conversations(memory, path).messages == 3
    memory.forget(session="sess-1")
    assert import_conversations(memory, path).messages == 3


def test_content_is_imported_like_the_file(memory: Memory, tmp_path: Path) -> None:
    _name, content = SOURCES["codex"]
    from_text = import_conversation_content(memory, content)
    assert from_text.format == "codex" and from_text.messages == 3
    assert import_conversation_content(memory, content.encode()).already_remembered == 3


def test_bad_records_cost_only_themselves(memory: Memory, tmp_path: Path, config: Any) -> None:
    """Deep nesting, far-future times, an oversized message and session name: reported, the rest imported."""
    inner: dict[str, Any] = {"type": "tool_result", "content": []}
    deep = {"role": "user", "content": [inner]}
    for _ in range(40):
        nested: dict[str, Any] = {"type": "tool_result", "content": []}
        inner["content"].append(nested)
        inner = nested
    too_many_lines = "x\n" * (config.limits.max_pages_per_call * config.page.rows)
    lines = [
        "[" * 100_000,  # deeper than any JSON parser goes
        json.dumps(deep),
        json.dumps({"role": "user", "content": "far future", "timestamp": "9999-12-31T23:59:59-05:00"}),
        json.dumps({"role": "user", "content": "huge epoch", "timestamp": 10**400}),
        json.dumps({"role": "user", "content": too_many_lines}),
        json.dumps({"role": "user", "content": "long session name", "session": "🦜" * 128}),
        json.dumps({"role": "assistant", "content": "still here"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_conversations(memory, path)
    by_line = {problem.line: problem.message for problem in result.problems}
    assert "nested too deeply" in by_line[1] and "nested more than" in by_line[2]
    assert "out of range" in by_line[3] and "out of range" in by_line[4]
    assert "message not imported" in by_line[5] and "pages" in by_line[5]
    assert result.messages == 4  # far future, huge epoch (both without a time), long session name, still here
    assert any(len(name.encode()) <= 400 and name.startswith("🦜") for name in result.sessions)


def test_ctrl_c_keeps_what_was_committed(memory: Memory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("optical_memory.ingest.BATCH_MESSAGES", 5)
    path = tmp_path / "many.jsonl"
    path.write_text(
        "".join(json.dumps({"role": "user", "content": f"m{i}"}) + "\n" for i in range(12)), encoding="utf-8"
    )

    def stop_after_first_batch(done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    result = import_conversations(memory, path, progress=stop_after_first_batch)
    assert result.interrupted and result.messages == 5
    assert import_conversations(memory, path).messages == 7  # the rest, nothing twice


def test_a_codex_sessions_folder_is_imported_once(
    config_file: Path, archive_path: Path, tmp_path: Path, capsys: Any
) -> None:
    sessions = tmp_path / ".codex" / "sessions"
    for day, sid in (("19", "0199-a"), ("20", "0199-b")):
        lines = [{**CODEX_LINES[0], "payload": {**CODEX_LINES[0]["payload"], "id": sid}}, *CODEX_LINES[1:]]
        path = sessions / "2026" / "11" / day / f"rollout-2026-11-{day}T09-00-00-{sid}.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    args = ["--config", str(config_file), "--archive", str(archive_path), "import", str(sessions)]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["messages"] == 6 and sorted(first["sessions"]) == ["0199-a", "0199-b"]
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["messages"], again["already_remembered"]) == (0, 6)


def test_forgetting_pages_erases_their_content_keys(memory: Memory, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TRANSCRIPT), encoding="utf-8")
    result = import_conversations(memory, path)

    def keys(tx: Any) -> list[bytes]:
        with tx.txn.cursor(db=tx.db("checkpoints")) as cursor:
            return [bytes(key) for key in cursor.iternext(values=False)]

    assert len(memory.archive.read(keys)) == 2 * result.messages  # a content key and its reverse per message
    memory.forget(session="sess-1")  # forget drops them in its own transaction
    assert memory.archive.read(keys) == []


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from optical_memory.ingest import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock = iter(float(n) for n in range(100))
    monkeypatch.setattr("optical_memory.ingest.time.monotonic", lambda: next(clock))
    log, terminal = io.StringIO(), Terminal()
    for stream in (log, terminal):
        with ProgressBar(stream, "messages", every_s=5.0) as bar:
            for done in range(0, 1001, 100):
                bar.update(done, 1000)
    assert "\r" not in log.getvalue()
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("1,000/1,000 messages in ") and "messages/s" in lines[-1]
    frames = terminal.getvalue().split("\r")[1:]
    assert len(frames) == 11 and frames[-1].startswith("[" + "#" * 30 + "] 1,000/1,000 messages")
    assert "messages/s" in frames[-1] and terminal.getvalue().endswith("\n")
    assert re.search(r"messages/s in \d+\.\d s\n$", frames[-1])  # the bar's last frame says how long it took


def test_a_bulk_import_keeps_its_hot_pages_compact_and_every_page_exact(memory: Memory, tmp_path: Path) -> None:
    # one batch fills many pages of one session: the older ones are due to fade and encoded quickly
    # (their hot image is transient), the newest stay hot and are encoded as compactly as ever
    from optical_memory.tiers import decode_image, encode_image

    lines = [json.dumps({"role": "user", "content": f"note {n}: the deploy of shard {n} finished"}) for n in range(120)]
    source = tmp_path / "chat.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_conversations(memory, source, fade=False)
    assert result.messages == 120
    hot = memory.config.tiers[0]
    due_after = memory.config.tiers[1].after_pages
    assert due_after is not None

    def stored(tx: Any) -> list[tuple[bool, bytes]]:
        records = sorted(tx.pages(), key=lambda record: record.number)
        return [(record.sealed, tx.image(record.id)) for record in records]

    pages = memory.archive.read(stored)
    sealed = [data for is_sealed, data in pages if is_sealed]
    assert len(sealed) > due_after + 2
    for data in sealed[-(due_after - 1) :]:  # what stays hot (the open page is one of the newer): encoded well
        assert data == encode_image(decode_image(data), hot)
    assert all(len(data) >= len(encode_image(decode_image(data), hot)) for data in sealed)
    for page_id in result.pages[:3] + result.pages[-3:]:  # early and late pages read back exactly
        read = memory.read_lines(page_id, 1, 1)
        assert read.lines and read.lines[0].text.startswith(("note", "user"))
    memory.fade()
    faded = memory.archive.read(lambda tx: [record.tier for record in tx.pages() if record.sealed])
    assert faded.count(0) == due_after - 1  # the quickly encoded ones have all moved on


def _strip_per_row(renderer: Any, canvas: Any, tiles: Any, row: int, first_cell: int, cells: str) -> None:
    """`Renderer._draw_cells` as it was: a row's tiles gathered into a strip, then copied onto the canvas."""
    import numpy as np

    if not cells:
        return
    g = renderer.geometry
    strip = tiles[np.fromiter((renderer._index[ch] for ch in cells), dtype=np.int32, count=len(cells))]
    n, h, w = strip.shape
    top, left = g.margin + row * g.cell_height, g.margin + first_cell * g.cell_width
    canvas[top : top + h, left : left + n * w] = strip.transpose(1, 0, 2).reshape(h, n * w)


def _rows_the_old_way(renderer: Any, canvas: Any, first_row: int, rows: Any) -> None:
    """`Renderer.draw_rows` as it was: every row's gutter mark drawn cell by cell, like its text."""
    from optical_memory.pages import HEADER
    from optical_memory.render import CONTINUATION_MARK, display_text

    g = renderer.geometry
    for offset, planned in enumerate(rows):
        row = first_row + offset
        if planned.code == HEADER:
            top, left = g.margin + row * g.cell_height, g.margin + g.gutter * g.cell_width
            canvas[top : top + g.cell_height, left : left + g.columns * g.cell_width] = int(255 * 0.80)
            cells = display_text(planned.cells)[: g.columns]
            _strip_per_row(renderer, canvas, renderer._header_tiles, row, g.gutter, cells)
            continue
        mark = f"{planned.code:>3}" if planned.code > 0 else f"{CONTINUATION_MARK:>3}"
        _strip_per_row(renderer, canvas, renderer._gutter_tiles, row, 0, mark)
        _strip_per_row(renderer, canvas, renderer._tiles, row, g.gutter, planned.cells)


def test_rows_drawn_together_are_the_pixels_of_rows_drawn_one_by_one() -> None:
    """Every glyph, header rows (undrawable characters shown as '?'), continuation marks and rows of any
    length: drawn in one call or a few, the pixels the row-by-row drawing gave; a row too long is refused."""
    import random

    import numpy as np

    from optical_memory.alphabet import ALPHABET
    from optical_memory.pages import HEADER, PageFormat, PlannedRow
    from optical_memory.render import Renderer

    renderer = Renderer(PageFormat(columns=100, rows=64))
    rng = random.Random(4)
    glyphs = "".join(ALPHABET)
    rows = [PlannedRow(HEADER, "assistant · s · 2026-11-27 03:00:00Z · 漢字 title " + "x" * 90)]
    for n in range(1, 64):
        start = rng.randrange(len(glyphs))
        cells = (glyphs[start:] + glyphs)[: rng.choice((0, 1, 37, 99, 100))]
        rows.append(PlannedRow(HEADER, cells) if n % 9 == 0 else PlannedRow(n if n % 4 else -n, cells))
    before = renderer.blank()
    _rows_the_old_way(renderer, before, 0, rows)
    assert np.array_equal(renderer.render(rows), before)
    together = renderer.blank()
    for first, last in ((0, 1), (1, 30), (30, 31), (31, 64)):
        renderer.draw_rows(together, first, rows[first:last])
    assert np.array_equal(together, before)
    with pytest.raises(ValueError, match="at most 100 cells"):
        renderer.draw_rows(renderer.blank(), 0, [PlannedRow(1, "x" * 101)])
    with pytest.raises(KeyError):
        renderer.draw_rows(renderer.blank(), 0, [PlannedRow(1, "ok \u4e00")])


@pytest.mark.parametrize("levels", [16, 256, 4])
def test_imported_pages_are_the_bytes_the_row_by_row_drawing_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, levels: int
) -> None:
    """Pages drawn as PNG rows (`scanlines`: 16 and 256 levels) or in grey (4) store what grey pixels drawn
    row by row and encoded by `tiers.encode_image` stored, also when an open page's canvas is dropped
    between two imports (decoded from the archive) and on pages begun by another writer."""
    from dataclasses import replace

    from optical_memory.config import load_config
    from optical_memory.render import Renderer
    from optical_memory.scanlines import GreyPages, ScanlinePages
    from optical_memory.writing import CanvasCache

    source, rest = tmp_path / "chat.jsonl", tmp_path / "rest.jsonl"
    lines = [
        {
            "role": "user" if n % 2 else "assistant",
            "content": f"{n} ünïcode 漢字 tabs\tand\nnew lines " * (n % 9 + 1),
            "timestamp": 1_767_000_000 + n,  # headers show it: without, two imports a second apart differ
            **({"session": "other"} if n % 7 == 0 else {}),
        }
        for n in range(400)
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines[:300]), encoding="utf-8")
    rest.write_text("".join(json.dumps(line) + "\n" for line in lines[300:]), encoding="utf-8")
    config = load_config(None, tmp_path / "x", environ={})
    hot = replace(config.tiers[0], levels=levels)

    def images(name: str, kind: type) -> dict[str, bytes | None]:
        memory = Memory(replace(config.with_archive(tmp_path / name), tiers=(hot, *config.tiers[1:])))
        try:
            assert isinstance(memory.writer.pages, kind)
            pages = import_conversations(memory, source, fade=False).pages
            memory.writer.canvases = CanvasCache()  # the open pages are decoded from what was stored
            pages += import_conversations(memory, rest, fade=False).pages
            return memory.archive.read(lambda tx: {page: tx.image(page) for page in pages})
        finally:
            memory.close()

    now = images("now", GreyPages if levels == 4 else ScanlinePages)
    monkeypatch.setattr(Renderer, "draw_rows", _rows_the_old_way)
    monkeypatch.setattr(ScanlinePages, "fits", staticmethod(lambda renderer, tier: False))
    before = images("before", GreyPages)
    assert len(now) > 10 and now == before


def test_entry_times_are_written_as_strftime_wrote_them() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from optical_memory.writing import _said_texts

    zones = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11)))
    moments = [datetime(year, 1, 1, 12, 30, 5, tzinfo=zone) for year in (1, 9, 999, 1000, 1970, 2026) for zone in zones]
    moments += [datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2026, 11, 27, 3, 4, 5, 999)]  # naive: local
    for moment in moments:
        utc = moment.astimezone(UTC)
        assert _said_texts(moment) == (utc.strftime("%Y-%m-%d %H:%M:%SZ"), utc.strftime("%Y-%m-%dT%H:%M:%SZ"))
