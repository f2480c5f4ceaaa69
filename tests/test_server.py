"""The MCP tools through a real in-process client: listing, round trips, fading, and tool errors."""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, ImageContent, TextContent
from PIL import Image

from optical_memory.config import Config
from optical_memory.memory import Memory
from optical_memory.tokens import claude_image_tokens
from optical_memory_mcp.app import AppState, build_server

READ_ONLY_TOOLS = {"list_pages", "view_page", "read_lines", "read_entry", "search", "list_sessions"}
TOOLS = READ_ONLY_TOOLS | {"remember", "forget", "import_conversation"}  # names are a public contract

# Texts the template reader must give back exactly at the hot tier (40 x 12 pages in these tests).
SEVERAL_PAGES = "\n".join(f"line {i}: " + "word " * (i % 7) for i in range(30))
LONG_LINE = "before\n" + "start " + "abcdefghij" * 100 + " end\nafter"
MIXED = (
    "tab\there, CR\r\nand trailing spaces   \n"
    "日本語のテキスト and emoji 🙂🚀\n"
    "the escape mark itself: ¤ and ¤41; stay as typed\n"
    "control \x00\x07\x1b characters\n"
    "\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n"
)


async def call(client: Client, tool: str, **arguments: Any) -> CallToolResult:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return result


async def read_back(client: Client, spans: list[dict[str, Any]]) -> str:
    """Join what read_lines returns over remember's spans, as the remember tool's docstring says."""
    text = ""
    for index, span in enumerate(spans):
        result = await call(client, "read_lines", page_id=span["page_id"], start=span["start"], end=span["end"])
        assert result.structured_content is not None
        lines = result.structured_content["lines"]
        assert [line["number"] for line in lines] == list(range(span["start"], span["end"] + 1))
        text += "\n".join(line["text"] for line in lines)
        if index < len(spans) - 1 and not span["continues"]:
            text += "\n"
    return text


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    assert isinstance(result.content[0], TextContent)
    return result.content[0].text


async def test_tools_are_listed_with_annotations_and_schemas(server: MCPServer[AppState], config: Config) -> None:
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(tools) == TOOLS
    for name, tool in tools.items():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (name in READ_ONLY_TOOLS)
        assert tool.annotations.open_world_hint is False
        assert tool.output_schema is not None, name
        assert "ctx" not in tool.input_schema["properties"]
    assert tools["remember"].annotations is not None
    assert tools["remember"].annotations.destructive_hint is False

    remember = tools["remember"].input_schema
    assert remember["required"] == ["text"]
    assert set(remember["properties"]) == {"text", "session", "role", "title"}
    assert remember["properties"]["text"]["minLength"] == 1
    assert remember["properties"]["session"]["default"] == "default"

    listing = tools["list_pages"].input_schema
    assert "required" not in listing
    assert listing["properties"]["limit"].items() >= {"default": 20, "minimum": 1}.items()
    # the configured maximum is checked by the facade, and the description says it
    assert f"`limit` at most {config.limits.max_list_limit}" in (tools["list_pages"].description or "")
    assert f"at most {config.limits.max_text_chars:,} characters" in (tools["remember"].description or "")

    assert tools["view_page"].input_schema["required"] == ["page_id"]
    read = tools["read_lines"].input_schema
    assert read["required"] == ["page_id"]
    assert read["properties"]["start"]["minimum"] == 1
    assert read["properties"]["start"]["default"] == 1

    # The docstrings are the model's manual: how to rejoin spans, and what fading means.
    manual = tools["remember"].description or ""
    assert "continues" in manual and "fade" in manual.lower()
    assert "next_cursor" in (tools["list_pages"].description or "")


async def test_remember_list_view_read(server: MCPServer[AppState]) -> None:
    async with Client(server) as client:
        remembered = await call(client, "remember", text="hello\nworld", session="s1", role="user", title="greeting")
        assert remembered.structured_content == {
            "session": "s1",
            "spans": [{"page_id": "p1", "start": 1, "end": 2, "continues": False}],
            "characters": 11,
            "text_tokens": 3,
            "pages_sealed": [],
        }

        listing = (await call(client, "list_pages")).structured_content
        assert listing is not None
        assert listing["next_cursor"] is None
        [page] = listing["pages"]
        expected = {
            "id": "p1",
            "session": "s1",
            "tier": "hot",
            "lines": 2,
            "characters": 10,
            "title": "greeting",
            "image_format": "png",
        }
        assert page.items() >= expected.items()
        assert page["image_tokens"] == claude_image_tokens(page["image_width"], page["image_height"])

        viewed = await call(client, "view_page", page_id="p1")
        image, caption = viewed.content
        assert isinstance(image, ImageContent) and isinstance(caption, TextContent)
        assert image.mime_type == "image/png"
        data = base64.b64decode(image.data)
        with Image.open(io.BytesIO(data)) as decoded:
            assert decoded.format == "PNG"
            assert decoded.size == (page["image_width"], page["image_height"])
        assert len(data) == page["image_bytes"]
        assert "\n" not in caption.text and caption.text.startswith("p1 ")
        assert viewed.structured_content == page

        read = (await call(client, "read_lines", page_id="p1")).structured_content
        assert read is not None
        lines = read.pop("lines")
        assert read == {
            "page_id": "p1",
            "tier": "hot",
            "total_lines": 2,
            "continued": False,
            "continues": False,
            "reader": "template",
            "recalled_into": [],
            "session": "s1",
            "previous_page": None,
            "next_page": None,
        }
        assert [(line["number"], line["text"], line["verified"]) for line in lines] == [
            (1, "hello", True),
            (2, "world", True),
        ]
        assert {(line["role"], line["title"]) for line in lines} == {("user", "greeting")}
        assert all(line["time"].endswith("Z") for line in lines)


@pytest.mark.parametrize("text", [SEVERAL_PAGES, LONG_LINE, MIXED], ids=["several-pages", "long-line", "mixed"])
async def test_spans_read_back_exactly(server: MCPServer[AppState], text: str) -> None:
    async with Client(server) as client:
        await call(client, "remember", text="an earlier entry\nleaves the open page part full")
        result = (await call(client, "remember", text=text, role="assistant")).structured_content
        assert result is not None
        assert result["characters"] == len(text)
        assert await read_back(client, result["spans"]) == text


async def test_a_line_longer_than_a_page_continues_across_spans(server: MCPServer[AppState]) -> None:
    async with Client(server) as client:
        result = (await call(client, "remember", text=LONG_LINE)).structured_content
        assert result is not None
        spans = result["spans"]
        assert len({span["page_id"] for span in spans}) >= 3
        assert any(span["continues"] for span in spans)
        assert result["pages_sealed"] == [span["page_id"] for span in spans[:-1]]
        first = (await call(client, "read_lines", page_id=spans[1]["page_id"])).structured_content
        assert first is not None and first["continued"] is True


async def test_list_pages_pages_newest_first_with_a_cursor(server: MCPServer[AppState]) -> None:
    async with Client(server) as client:
        await call(client, "remember", text=SEVERAL_PAGES, session="a")
        await call(client, "remember", text="another session", session="b")
        seen: list[str] = []
        cursor = None
        while True:
            arguments: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            listing = (await call(client, "list_pages", **arguments)).structured_content
            assert listing is not None
            assert len(listing["pages"]) <= 2
            seen += [page["id"] for page in listing["pages"]]
            cursor = listing["next_cursor"]
            if cursor is None:
                break
        numbers = [int(page_id[1:]) for page_id in seen]
        assert numbers == sorted(numbers, reverse=True) == list(range(len(seen), 0, -1))

        only_b = (await call(client, "list_pages", session="b")).structured_content
        assert only_b is not None
        assert [page["session"] for page in only_b["pages"]] == ["b"]


async def test_a_faded_page_is_viewed_in_its_stored_format(server: MCPServer[AppState], memory: Memory) -> None:
    async with Client(server) as client:
        result = (await call(client, "remember", text=SEVERAL_PAGES)).structured_content
        assert result is not None and result["pages_sealed"]
        hot = (await call(client, "view_page", page_id="p1")).structured_content
        assert hot is not None
        assert memory.fade(now=datetime.now(UTC) + timedelta(days=3)) > 0  # warm: 2 days after sealing

        viewed = await call(client, "view_page", page_id="p1")
        image = viewed.content[0]
        assert isinstance(image, ImageContent)
        assert image.mime_type == "image/webp"
        with Image.open(io.BytesIO(base64.b64decode(image.data))) as decoded:
            assert decoded.format == "WEBP"
            assert decoded.width < hot["image_width"]
        assert viewed.structured_content is not None and viewed.structured_content["tier"] == "warm"

        read = (await call(client, "read_lines", page_id="p1", start=2, end=3)).structured_content
        assert read is not None
        assert read["tier"] == "warm" and [line["number"] for line in read["lines"]] == [2, 3]


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("read_lines", {"page_id": "p999"}, "no page 'p999'; pages run p1..p1"),
        ("view_page", {"page_id": "p999"}, "no page 'p999'; pages run p1..p1"),
        ("view_page", {"page_id": "page-1"}, "page ids look like 'p12'"),
        ("read_lines", {"page_id": "p1", "start": 5}, "which has lines 1..2"),
        ("read_lines", {"page_id": "p1", "start": 2, "end": 1}, "start must be >= 1 and <= end"),
        ("read_lines", {"page_id": "p1", "start": 0}, "greater than or equal to 1"),
        ("remember", {"text": ""}, "at least 1 character"),
        ("remember", {"text": "x", "session": "bell\x07"}, "use printable characters"),
        ("list_pages", {"cursor": "zz"}, "pass a next_cursor from list_pages"),
        ("list_pages", {"session": "nope"}, "no session 'nope'; sessions: 'default'"),
        ("list_pages", {"limit": 0}, "greater than or equal to 1"),
        ("list_pages", {"limit": 201}, "limit must be between 1 and 200"),
    ],
)
async def test_tool_errors_say_what_is_valid(
    server: MCPServer[AppState], tool: str, arguments: dict[str, Any], expected: str
) -> None:
    async with Client(server) as client:
        await call(client, "remember", text="one\ntwo")
        result = await client.call_tool(tool, arguments)
    assert expected in error_text(result)


async def test_oversized_text_is_a_tool_error(config: Config) -> None:
    small = replace(config, limits=replace(config.limits, max_text_chars=100))
    async with Client(build_server(small)) as client:
        result = await client.call_tool("remember", {"text": "x" * 101})
    assert "text is 101 characters; one remember call takes at most 100" in error_text(result)


async def test_the_lifespan_opens_the_archive_and_loads_the_configured_reader(config: Config) -> None:
    async with Client(build_server(config)) as client:
        result = (await call(client, "remember", text=MIXED)).structured_content
        assert result is not None
        assert await read_back(client, result["spans"]) == MIXED  # the template reader, by name from config

    reopened = Memory(config)  # the server closed its archive: another owner can open it and see the pages
    try:
        assert [page.id for page in reopened.list_pages().pages][-1] == "p1"
    finally:
        reopened.close()


async def test_read_entry_gives_a_remembered_text_back_whole(server: MCPServer[AppState]) -> None:
    async with Client(server) as client:
        await call(client, "remember", text="an earlier entry\nleaves the open page part full")
        result = (await call(client, "remember", text=LONG_LINE, role="assistant", title="t")).structured_content
        assert result is not None and len(result["spans"]) > 1
        last = result["spans"][-1]
        entry = (await call(client, "read_entry", page_id=last["page_id"], line=last["end"])).structured_content
        assert entry is not None
        assert entry["text"] == LONG_LINE and entry["role"] == "assistant" and entry["title"] == "t"
        assert entry["spans"] == result["spans"] and entry["verified"] is True
