"""`optical-memory serve` as a subprocess, over stdio with the SDK's client: every tool, and a clean stdout."""

from __future__ import annotations

import base64
import io
import logging
import os
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import IncomingMessage
from mcp.types import ImageContent, TextContent
from PIL import Image

from tests.test_server import TOOLS

TEXT = "first line\n" + "a line longer than one row of forty cells, so it wraps " * 3 + "\nlast line, 日本語 🙂"


async def test_serve_over_stdio_calls_every_tool(
    tmp_path: Path, archive_path: Path, config_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # `python -m server` is the console script's `main` without needing the script on PATH.
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "optical_memory_mcp", "serve", "--archive", str(archive_path), "--config", str(config_file)],
        cwd=tmp_path,
    )
    # The client turns each stdout line that is not a JSON-RPC message into an exception it hands
    # to the message handler (and logs): collecting them checks that stdout carried only protocol.
    not_protocol: list[Exception] = []

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            not_protocol.append(message)

    with caplog.at_level(logging.ERROR, logger="mcp.client.stdio"):
        async with Client(params, message_handler=on_message, read_timeout_seconds=60) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == TOOLS

            remembered = await client.call_tool("remember", {"text": TEXT, "role": "user", "title": "stdio"})
            assert not remembered.is_error and remembered.structured_content is not None
            spans = remembered.structured_content["spans"]
            assert [span["page_id"] for span in spans] == ["p1"]

            listing = await client.call_tool("list_pages", {"limit": 5})
            assert listing.structured_content is not None
            [page] = listing.structured_content["pages"]
            assert page["id"] == "p1" and page["title"] == "stdio" and page["tier"] == "hot"

            viewed = await client.call_tool("view_page", {"page_id": "p1"})
            image, caption = viewed.content
            assert isinstance(image, ImageContent) and image.mime_type == "image/png"
            assert isinstance(caption, TextContent) and caption.text.startswith("p1 ")
            with Image.open(io.BytesIO(base64.b64decode(image.data))) as decoded:
                assert decoded.size == (page["image_width"], page["image_height"])

            read = await client.call_tool("read_lines", {"page_id": "p1"})
            assert read.structured_content is not None
            assert "\n".join(line["text"] for line in read.structured_content["lines"]) == TEXT

            missing = await client.call_tool("read_lines", {"page_id": "p2"})
            assert missing.is_error
            assert isinstance(missing.content[0], TextContent)
            assert "no page 'p2'; pages run p1..p1" in missing.content[0].text

    assert not_protocol == []
    assert not [record for record in caplog.records if "Failed to parse" in record.getMessage()]


@pytest.mark.parametrize("reader", [None, "rapidocr"], ids=["default-trained", "rapidocr"])
async def test_real_readers_keep_stdout_clean(tmp_path: Path, archive_path: Path, reader: str | None) -> None:
    """OCR libraries like to print banners: with a real reader loaded inside the server (the default,
    our trained reader, or RapidOCR), stdout must still carry only protocol."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    if reader:
        env["OPTICAL_MEMORY_READER"] = reader
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "optical_memory_mcp", "serve", "--archive", str(archive_path)],
        cwd=tmp_path,
        env=env,
    )
    not_protocol: list[Exception] = []

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            not_protocol.append(message)

    async with Client(params, message_handler=on_message, read_timeout_seconds=60) as client:
        await client.call_tool("remember", {"text": "read by a real reader"})
        read = await client.call_tool("read_lines", {"page_id": "p1"})
        assert read.structured_content is not None
        assert read.structured_content["reader"] == (reader or "trained")
        if reader is None:  # ours is exact on hot pages
            assert read.structured_content["lines"] == [{"number": 1, "text": "read by a real reader"}]
    assert not_protocol == []
