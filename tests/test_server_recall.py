"""search, list_sessions, forget and the page resources, through a real MCP client."""

from __future__ import annotations

import base64
import io
import json

import pytest
from mcp import Client, MCPError
from mcp.server.mcpserver import MCPServer
from mcp.types import BlobResourceContents, TextContent, TextResourceContents
from PIL import Image

from optical_memory_mcp.app import AppState


async def test_search_then_forget_through_mcp(server: MCPServer[AppState]) -> None:
    async with Client(server) as client:
        await client.call_tool("remember", {"text": "def load_settings():\n    pass", "session": "code"})
        await client.call_tool("remember", {"text": "ERROR E4711 disk full", "session": "ops"})

        found = await client.call_tool("search", {"query": "load_settings"})
        assert not found.is_error and found.structured_content is not None
        hit = found.structured_content["hits"][0]
        assert hit["session"] == "code" and hit["lines"][0]["text"] == "def load_settings():"

        sessions = await client.call_tool("list_sessions", {})
        assert sessions.structured_content is not None
        assert sorted(s["name"] for s in sessions.structured_content["sessions"]) == ["code", "ops"]

        gone = await client.call_tool("forget", {"session": "ops"})
        assert gone.structured_content is not None and gone.structured_content["sessions_removed"] == ["ops"]
        again = await client.call_tool("search", {"query": "E4711"})
        assert again.structured_content is not None and again.structured_content["hits"] == []

        missing = await client.call_tool("forget", {"page_id": "p404"})
        assert missing.is_error and isinstance(missing.content[0], TextContent)
        assert "no page 'p404'" in missing.content[0].text

        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["forget"].annotations is not None and tools["forget"].annotations.destructive_hint is True


async def test_pages_are_resources(server: MCPServer[AppState]) -> None:
    async with Client(server) as client:
        result = await client.call_tool("remember", {"text": "linked, not inlined"})
        assert result.structured_content is not None
        page_id = result.structured_content["spans"][0]["page_id"]
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert {"optical-memory://pages/{page_id}/info", "optical-memory://pages/{page_id}/image.png"} <= templates

        meta = (await client.read_resource(f"optical-memory://pages/{page_id}/info")).contents[0]
        assert isinstance(meta, TextResourceContents) and json.loads(meta.text)["id"] == page_id

        image = (await client.read_resource(f"optical-memory://pages/{page_id}/image.png")).contents[0]
        assert isinstance(image, BlobResourceContents) and image.mime_type == "image/png"
        assert Image.open(io.BytesIO(base64.b64decode(image.blob))).format == "PNG"


async def test_a_resource_that_cannot_be_read_says_what_to_read_instead(server: MCPServer[AppState]) -> None:
    async with Client(server) as client:
        await client.call_tool("remember", {"text": "one page, stored as PNG"})
        for uri, says in [
            ("optical-memory://pages/p999/info", "no page 'p999'; pages run p1..p1"),
            ("optical-memory://pages/p²/info", "'p²' is not a page id; page ids look like 'p12'"),
            (
                "optical-memory://pages/p1/image.webp",
                "page p1 is stored as png; read optical-memory://pages/p1/image.png",
            ),
        ]:
            with pytest.raises(MCPError) as raised:
                await client.read_resource(uri)
            assert says in str(raised.value), (uri, str(raised.value))
