"""Bad input: any string round-trips exactly; malformed tool calls get clear errors, never a crash."""

from __future__ import annotations

import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import TextContent

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


BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("remember", {"text": ""}, "at least 1 character"),
    ("remember", {"text": 42}, "valid string"),
    ("remember", {}, "text"),
    ("remember", {"text": "x", "session": "a\x00b"}, "control"),
    ("remember", {"text": "x", "session": "\U0010ffff" * 3}, "unassigned"),
    ("remember", {"text": "x", "session": "é" * 500}, "at most 128"),
    ("remember", {"text": "x" * 200_001}, "at most 200,000"),
    ("read_lines", {"page_id": "p1", "start": 0}, "greater than or equal to 1"),
    ("read_lines", {"page_id": "p1", "start": -5}, "greater than or equal to 1"),
    ("read_lines", {"page_id": "p1", "start": 10**12}, "lines 1..1"),
    ("read_lines", {"page_id": "p1", "start": 3, "end": 2}, "start must be >= 1 and <= end"),
    ("read_lines", {"page_id": "p1", "start": "one"}, "valid integer"),
    ("read_lines", {"page_id": "p999999999999"}, "no page"),
    ("read_lines", {"page_id": "../../etc/passwd"}, "not a page id"),
    ("read_lines", {"page_id": None}, "valid string"),
    ("view_page", {"page_id": "p0"}, "not a page id"),
    ("view_page", {"page_id": "P1"}, "not a page id"),
    ("list_pages", {"limit": 0}, "greater than or equal to 1"),
    ("list_pages", {"limit": 10**9}, "less than or equal to"),
    ("list_pages", {"cursor": "'; DROP TABLE"}, "cursor"),
    ("list_pages", {"session": "nobody"}, "no session"),
    ("search", {"query": ""}, "at least 1 character"),
    ("search", {"query": "!!!"}, "no searchable terms"),
    ("forget", {}, "page_id"),
    ("forget", {"session": "nobody"}, "no session"),
    ("no_such_tool", {}, "no_such_tool"),
]


def small_limits(config: Config) -> Config:
    return replace(config, limits=replace(config.limits, max_text_chars=200_000))


async def test_malformed_calls_get_clear_errors_and_change_nothing(config: Config) -> None:
    from optical_memory_mcp.app import build_server

    memory = Memory(small_limits(config), reader=TemplateReader())
    server: MCPServer[AppState] = build_server(small_limits(config), memory=memory)
    async with Client(server) as client:
        await client.call_tool("remember", {"text": "the only line"})
        for tool, args, says in BAD_CALLS:
            result = await client.call_tool(tool, args)
            assert result.is_error, (tool, args)
            text = result.content[0].text if isinstance(result.content[0], TextContent) else ""
            assert says in text, (tool, args, text)
        read = await client.call_tool("read_lines", {"page_id": "p1"})
        assert read.structured_content is not None
        assert read.structured_content["lines"] == [{"number": 1, "text": "the only line"}]
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
            result = await client.call_tool(tool, args)  # an error result is fine; an exception is not
            if result.is_error:
                assert isinstance(result.content[0], TextContent) and result.content[0].text
        assert (await client.call_tool("list_sessions", {})).structured_content is not None
    assert memory.archive.check() == []
    memory.close()
