"""What the server tells the model, what its one lifespan does at start and stop, and the import tool."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from optical_memory.config import Config, load_config
from optical_memory.fading import BackgroundFader
from optical_memory.memory import Memory
from optical_memory_mcp.app import build_server
from tests.conftest import SMALL_CONFIG
from tests.test_stdio import BACKLOG_CONFIG

# 12 full pages of 11 lines in one session: the oldest are due for warm (8 newer pages) at once.
DUE_TEXT = "\n".join(f"line {i}" for i in range(12 * 11))


def tiers_of(memory: Memory) -> dict[str, str]:
    return {page.id: page.tier for page in memory.list_pages(limit=200).pages}


async def test_instructions_and_descriptions_are_true_to_the_default_config(tmp_path: Path) -> None:
    defaults = load_config(archive=tmp_path / "archive", environ={})
    names = [tier.name for tier in defaults.tiers]
    assert names == ["hot", "warm", "cool", "cold", "frost"]  # what the static docstrings below name
    server = build_server(defaults)
    manual = server.instructions or ""
    for tier in defaults.tiers:
        assert f"- {tier.name}: {tier.scale:.0%} scale" in manual
        if tier.after_pages is not None:
            assert f"once {tier.after_pages} newer pages exist" in manual
    for needed in ("`search` before answering", "continues", "verified", "uncertain", "null", "check code"):
        assert needed in manual, needed
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    described = {name: " ".join((tool.description or "").split()) for name, tool in tools.items()}
    assert "hot, warm, cool, cold, frost" in described["remember"]
    assert "hot is sharpest, then by default warm, cool, cold and frost" in described["list_pages"]
    read = described["read_lines"]
    assert "`verified` true" in read and "`uncertain` columns" in read and "null" in read


@pytest.mark.parametrize("reconsolidate", [False, True])
async def test_read_lines_is_read_only_unless_recall_writes(tmp_path: Path, reconsolidate: bool) -> None:
    path = tmp_path / "config.toml"
    path.write_text(SMALL_CONFIG + f"\n[recall]\nreconsolidate = {str(reconsolidate).lower()}\n", encoding="utf-8")
    config = load_config(path, archive=tmp_path / "archive", environ={})
    async with Client(build_server(config)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    hints = tools["read_lines"].annotations
    assert hints is not None
    assert hints.read_only_hint is (not reconsolidate)
    assert hints.destructive_hint in (None, False)


async def test_the_lifespan_fades_what_aged_while_no_server_ran(config: Config) -> None:
    memory = Memory(config)
    memory.remember(DUE_TEXT, fade=False)
    assert set(tiers_of(memory).values()) == {"hot"}
    memory.close()

    async with Client(build_server(config)) as client:
        deadline = time.monotonic() + 30
        while True:
            listing = (await client.call_tool("list_pages", {"limit": 200})).structured_content
            assert listing is not None
            if {page["id"]: page["tier"] for page in listing["pages"]}["p1"] == "warm":
                break
            assert time.monotonic() < deadline, "the start-up fade did not run"
            await anyio.sleep(0.05)


def test_closing_the_fader_stops_between_steps_and_refuses_later_requests(memory: Memory) -> None:
    memory.remember(DUE_TEXT, fade=False)
    asked = threading.Event()
    steps: list[int] = []

    def fade_session(session: str | None, stop: Any) -> None:
        def stop_once_closing() -> bool:  # hold the first step until close() is under way
            asked.set()
            deadline = time.monotonic() + 10
            while not stop() and time.monotonic() < deadline:
                time.sleep(0.001)
            return bool(stop())

        steps.append(memory.fade(session, stop=stop_once_closing))

    fader = BackgroundFader(fade_session)
    assert fader.request(None) is True and fader.running
    assert asked.wait(10)
    started = time.monotonic()
    fader.close()
    assert time.monotonic() - started < 2
    assert steps == [0]  # stopped before its first demotion: nothing was done after close
    assert not fader.running
    assert fader.request("default") is False  # after close: refused, and no thread comes back
    time.sleep(0.05)
    assert not fader.running and set(tiers_of(memory).values()) == {"hot"}
    assert memory.fade() > 0  # what close left undone is still due: fading resumes at the next run
    assert tiers_of(memory)["p1"] == "warm"


def test_fading_cut_short_is_finished_by_the_next_run(tmp_path: Path) -> None:
    path = tmp_path / "backlog.toml"
    path.write_text(BACKLOG_CONFIG, encoding="utf-8")
    memory = Memory(load_config(path, archive=tmp_path / "archive", environ={}))
    try:
        memory.remember("\n".join(f"line {i}" for i in range(63 * 6)), fade=False)
        asked = 0

        def after_two_pages() -> bool:  # stop is asked before each page; oldest first, both due cold
            nonlocal asked
            asked += 1
            return asked > 2

        assert memory.fade(stop=after_two_pages) == 6  # two pages, three tiers each
        rest = memory.fade()  # a later run finds every page that is still due
        assert rest > 0
        assert memory.fade() == 0
        tiers = [page.tier for page in reversed(memory.list_pages(limit=200).pages)]  # oldest first
        assert tiers == ["cold", "cold", "cold", "cool", "warm", "hot"]  # each page at its due tier
    finally:
        memory.close()


async def test_import_conversation_passes_content_without_a_temporary_file(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_temporary_file(*args: object, **kwargs: object) -> None:
        raise AssertionError("import_conversation wrote its content to a temporary file")

    for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile", "TemporaryDirectory"):
        monkeypatch.setattr(tempfile, name, no_temporary_file)
    content = '{"role": "user", "content": "the launch code is 4711"}\n{"role": "assistant", "content": "kept"}\n'
    async with Client(server) as client:
        result = await client.call_tool("import_conversation", {"content": content, "session": "imported"})
        assert not result.is_error, result.content
        report = result.structured_content
        assert report is not None
        assert (report["format"], report["messages"], report["sessions"]) == ("jsonl", 2, ["imported"])
        assert report["problems"] == []
        found = await client.call_tool("search", {"query": "4711", "session": "imported"})
        assert found.structured_content is not None
        assert [hit["lines"][0]["text"] for hit in found.structured_content["hits"]] == ["the launch code is 4711"]
