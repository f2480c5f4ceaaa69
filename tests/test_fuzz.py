"""Bad input: any string round-trips exactly; malformed tool calls get clear errors, never a crash."""

from __future__ import annotations

import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

from optical_memory.config import Config, load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
from optical_memory_mcp.app import AppState

# What can arrive through JSON: every code point incl. NUL, DEL, C1 controls, RTL marks, combining
# sequences and lone surrogates (JSON "\ud800" escapes decode to them), tabs, CR, long lines.
hard_text = st.lists(
    st.one_of(
        st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF),
        st.sampled_from(["\x00", "\x7f", "\x85", "\x9f", "\u200f", "\u202e", "e\u0301", "\ud800", "\r\n", "\t", " "]),
    ),
    min_size=1,
    max_size=300,
).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hard_text, min_size=1, max_size=3), st.integers(min_value=0, max_value=10_000))
def test_any_text_reads_back_exactly_through_the_reader(parts: list[str], long_line: int) -> None:
    text = "\n".join(parts) + ("\n" + "L" * long_line if long_line > 9_000 else "")
    with tempfile.TemporaryDirectory() as tmp:
        config = replace(load_config(archive=Path(tmp), environ={}), tiers=(Tier("hot", 1.0),))
        memory = Memory(config, reader=TemplateReader())
        result = memory.remember(text)
        pieces: list[str] = []
        for index, span in enumerate(result.spans):
            if index:
                pieces.append("" if result.spans[index - 1].continues else "\n")
            pieces.append("\n".join(line.text for line in memory.read_lines(span.page_id, span.start, span.end).lines))
        memory.close()
    assert "".join(pieces) == text


# Each bad call, and what its error must say: what was wrong (the argument, or its value) and what is
# valid. Ids like 'p²', a 5,000-digit id or cursor, an empty or 128-emoji session name (#12.13) included.
BAD_CALLS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("remember", {"text": ""}, ("text", "at least 1 character")),
    ("remember", {"text": 42}, ("text", "valid string")),
    ("remember", {}, ("text", "Field required")),
    ("remember", {"text": "x", "session": "a\x00b"}, ("session", "control", "use printable characters")),
    ("remember", {"text": "x", "session": "\U0010ffff" * 3}, ("session", "unassigned", "use printable characters")),
    ("remember", {"text": "x", "session": "é" * 500}, ("session", "at most 128 characters")),
    ("remember", {"text": "x", "session": ""}, ("session", "at least 1 character")),
    ("remember", {"text": "x", "session": "   "}, ("session", "blank", "at least one visible character")),
    ("remember", {"text": "x", "session": "🙂" * 128}, ("session is 512 bytes", "at most 400")),
    ("remember", {"text": "x" * 200_001}, ("text is 200,001 characters", "at most 200,000")),
    ("read_lines", {"page_id": "p1", "start": 0}, ("start", "greater than or equal to 1")),
    ("read_lines", {"page_id": "p1", "start": -5}, ("start", "greater than or equal to 1")),
    ("read_lines", {"page_id": "p1", "start": 10**12}, ("not on page p1", "lines 1..1")),
    ("read_lines", {"page_id": "p1", "start": 3, "end": 2}, ("lines 3..2", "start must be >= 1 and <= end")),
    ("read_lines", {"page_id": "p1", "start": "one"}, ("start", "valid integer")),
    ("read_lines", {"page_id": "p999999999999"}, ("no page 'p999999999999'", "pages run p1..p1")),
    ("read_lines", {"page_id": "../../etc/passwd"}, ("not a page id", "like 'p12'")),
    ("read_lines", {"page_id": None}, ("page_id", "valid string")),
    (
        "read_lines",
        {"page_id": None, "start": 0},
        ("page_id: Input should be a valid string (got None); start: Input",),
    ),
    ("read_lines", {"page_id": "p²"}, ("'p²' is not a page id", "like 'p12'")),
    ("read_lines", {"page_id": "p" + "9" * 5000}, ("page_id", "at most 64 characters")),
    ("read_lines", {"page_id": "p" + "9" * 40}, ("is not a page id", "at most 18")),
    ("view_page", {"page_id": "p0"}, ("'p0' is not a page id", "like 'p12'")),
    ("view_page", {"page_id": "P1"}, ("'P1' is not a page id", "like 'p12'")),
    ("view_page", {"page_id": "p²"}, ("'p²' is not a page id", "like 'p12'")),
    ("list_pages", {"limit": 0}, ("limit", "greater than or equal to 1")),
    ("list_pages", {"limit": 10**9}, ("limit must be between 1 and 200",)),
    ("list_pages", {"cursor": "'; DROP TABLE"}, ("cursor", "pass a next_cursor from list_pages")),
    ("list_pages", {"cursor": "p" + "9" * 5000}, ("cursor", "at most 64 characters")),
    ("list_pages", {"cursor": "p²"}, ("cursor 'p²'", "pass a next_cursor from list_pages")),
    ("list_pages", {"session": "nobody"}, ("no session 'nobody'", "sessions: 'default'")),
    ("list_pages", {"session": ""}, ("session", "at least 1 character")),
    ("list_pages", {"session": "🙂" * 128}, ("no session", "sessions: 'default'")),
    ("search", {"query": ""}, ("query", "at least 1 character")),
    ("search", {"query": "!!!"}, ("no searchable terms", "letters, digits or identifiers")),
    ("search", {"query": "x" * 20_000}, ("query is 20,000 characters", "at most 1,000")),
    ("search", {"query": "x", "session": ""}, ("session", "at least 1 character")),
    ("search", {"query": "x", "limit": 51}, ("limit", "less than or equal to 50")),
    ("forget", {}, ("forget needs page_id", "or session")),
    ("forget", {"session": "nobody"}, ("no session 'nobody'", "sessions: 'default'")),
    ("forget", {"page_id": "p²"}, ("'p²' is not a page id", "like 'p12'")),
    ("import_conversation", {"content": ""}, ("content", "at least 1 character")),
    ("import_conversation", {"content": "x", "format": "nope"}, ("format", "'auto', 'text'", "'chatgpt'")),
    ("import_conversation", {"content": "x", "session": ""}, ("session", "at least 1 character")),
]


def reason(tool: str, result: CallToolResult) -> str:
    """The error's own words after the SDK's prefix.

    A deliberate error (a rejected argument, an `OpticalMemoryError`) reads "Error executing tool X: <why>";
    a crash (any other exception, a KeyError say) reads "Error executing tool X" and nothing more: the SDK
    keeps its text on the server. That bare wrapper is no clear error, so it fails here.
    """
    assert result.is_error, result
    [content] = result.content
    assert isinstance(content, TextContent)
    prefix = f"Error executing tool {tool}: "
    assert content.text.startswith(prefix), f"{tool}: not a deliberate error: {content.text!r}"
    return content.text.removeprefix(prefix)


def small_limits(config: Config) -> Config:
    return replace(config, limits=replace(config.limits, max_text_chars=200_000))


async def test_malformed_calls_get_clear_errors_and_change_nothing(config: Config) -> None:
    from optical_memory_mcp.app import build_server

    memory = Memory(small_limits(config), reader=TemplateReader())
    server: MCPServer[AppState] = build_server(small_limits(config), memory=memory)
    async with Client(server) as client:
        await client.call_tool("remember", {"text": "the only line"})
        for tool, args, says in BAD_CALLS:
            why = reason(tool, await client.call_tool(tool, args))
            for words in says:
                assert words in why, (tool, args, why)
            # one line, without pydantic's type tags and documentation links
            assert "\n" not in why and "[type=" not in why and "errors.pydantic.dev" not in why, why
        unknown = await client.call_tool("no_such_tool", {})
        assert unknown.is_error and isinstance(unknown.content[0], TextContent)
        assert unknown.content[0].text == "Unknown tool: no_such_tool"
        read = await client.call_tool("read_lines", {"page_id": "p1"})
        assert read.structured_content is not None
        assert [(line["number"], line["text"]) for line in read.structured_content["lines"]] == [(1, "the only line")]
    memory.close()


async def test_random_argument_fuzz_never_crashes_the_server(config: Config) -> None:
    from optical_memory_mcp.app import build_server

    rng = random.Random(5)
    values: list[Any] = [None, 0, -1, 1, 2**63, 1.5, "", "p1", "p2", "x" * 1000, [], {}, True, "\ud800", "🙂" * 50]
    memory = Memory(small_limits(config), reader=TemplateReader())
    server = build_server(small_limits(config), memory=memory)
    tools = {
        "remember": ["text", "session", "role", "title"],
        "list_pages": ["session", "cursor", "limit"],
        "view_page": ["page_id"],
        "read_lines": ["page_id", "start", "end"],
        "search": ["query", "session", "limit"],
        "list_sessions": [],
        "forget": ["page_id", "session"],
    }
    async with Client(server) as client:
        await client.call_tool("remember", {"text": "seed"})
        for _ in range(300):
            tool = rng.choice(list(tools))
            args = {k: rng.choice(values) for k in tools[tool] if rng.random() < 0.7}
            result = await client.call_tool(tool, args)  # an error result is fine; a crash is not
            if result.is_error:
                assert reason(tool, result).strip(), (tool, args)
        assert (await client.call_tool("list_sessions", {})).structured_content is not None
    assert memory.archive.check() == []
    memory.close()


async def test_a_crash_inside_a_tool_fails_the_clear_error_check(config: Config, monkeypatch: Any) -> None:
    """The check above must be able to fail: a KeyError inside a tool reaches the client as the bare wrapper."""
    from optical_memory_mcp.app import build_server

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyError("geometry")

    memory = Memory(config, reader=TemplateReader())
    monkeypatch.setattr(memory, "read_lines", crash)
    async with Client(build_server(config, memory=memory)) as client:
        result = await client.call_tool("read_lines", {"page_id": "p1"})
    memory.close()
    assert result.is_error and isinstance(result.content[0], TextContent)
    assert result.content[0].text == "Error executing tool read_lines"
    with pytest.raises(AssertionError, match="not a deliberate error"):
        reason("read_lines", result)
