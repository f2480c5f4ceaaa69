"""`optical-memory serve` as a subprocess over stdio: every tool through the SDK's client with a clean stdout,
a JSON-RPC error for every line that is no request, and a prompt stop on SIGINT, SIGTERM or the end of stdin."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import IncomingMessage
from mcp.types import ImageContent, TextContent
from PIL import Image

from optical_memory.config import load_config
from optical_memory.memory import Memory
from tests.conftest import SMALL_CONFIG
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
            [line] = read.structured_content["lines"]
            assert (line["number"], line["text"], line["verified"]) == (1, "read by a real reader", True)
    assert not_protocol == []


class RawServer:
    """`optical-memory serve` over raw pipes: what a client that sends bytes, not SDK calls, sees."""

    def __init__(self, archive: Path, config: Path, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
        args = ["-m", "optical_memory_mcp", "serve", "--archive", str(archive), "--config", str(config)]
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.log: list[str] = []
        self.serving = threading.Event()
        self.readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.replies.put(json.loads(line))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.decode(errors="replace"))
            if b"archive open at" in line:
                self.serving.set()

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        return self.replies.get(timeout=30)

    def stop_by(self, how: str) -> float:
        """Seconds from SIGINT, SIGTERM or closing stdin until the process has exited."""
        started = time.monotonic()
        if how == "close-stdin":
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        else:
            self.proc.send_signal(getattr(signal, how))
        try:
            self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            took = time.monotonic() - started
            for reader in self.readers:  # they end at the pipes' EOF
                reader.join(timeout=10)
            for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
        return took


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}


NOT_REQUESTS: list[tuple[bytes, int, int | None]] = [
    (b"this is not json", -32700, None),
    (b'{"jsonrpc": "2.0", "id": 5, "method": "tools/list"', -32700, None),  # cut short
    (b'{"jsonrpc": "2.0", "id": 6, "method": "ping", "params": {"x": "\xff\xfe"}}', -32700, None),  # not UTF-8
    (b'{"jsonrpc": "2.0", "id": 7, "method": "ping", "params": {"x": "\\ud800"}}', -32700, None),  # lone surrogate
    (b'{"jsonrpc": "2.0", "id": 8}', -32600, 8),  # JSON, but neither request, notification nor response
    (b"[1, 2, 3]", -32600, None),
]


def test_a_line_that_is_no_request_gets_a_json_rpc_error(tmp_path: Path, archive_path: Path, config_file: Path) -> None:
    server = RawServer(archive_path, config_file, tmp_path)
    try:
        server.send(json.dumps(INITIALIZE).encode())
        assert server.reply()["id"] == 1
        server.send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')
        for number, (line, code, request_id) in enumerate(NOT_REQUESTS, start=100):
            server.send(line)
            error = server.reply()
            assert error["jsonrpc"] == "2.0" and error["id"] == request_id, (line, error)
            assert error["error"]["code"] == code, (line, error)
            assert error["error"]["message"].startswith("Parse error" if code == -32700 else "Invalid Request")
            server.send(json.dumps({"jsonrpc": "2.0", "id": number, "method": "ping"}).encode())
            assert server.reply() == {"jsonrpc": "2.0", "id": number, "result": {}}  # and serving goes on
    finally:
        server.stop_by("close-stdin")


def test_a_line_longer_than_any_request_is_refused_without_holding_it(tmp_path: Path, archive_path: Path) -> None:
    config = tmp_path / "small-limits.toml"
    config.write_text(SMALL_CONFIG + "\n[limits]\nmax_text_chars = 1000\n", encoding="utf-8")
    limit = 1000 * 6 + (1 << 20)  # a remember of the largest text, escaped, and room for the rest
    server = RawServer(archive_path, config, tmp_path)
    try:
        server.send(json.dumps(INITIALIZE).encode())
        assert server.reply()["id"] == 1
        server.send(b'{"jsonrpc": "2.0", "id": 2, "method": "ping", "params": {"x": "' + b"x" * limit + b'"}}')
        error = server.reply()
        assert (error["id"], error["error"]["code"]) == (None, -32600)
        assert error["error"]["message"] == f"Invalid Request: a request line is over {limit:,} bytes"
        server.send(b'{"jsonrpc": "2.0", "id": 3, "method": "ping"}')
        assert server.reply() == {"jsonrpc": "2.0", "id": 3, "result": {}}
    finally:
        server.stop_by("close-stdin")


# Full-size pages that fade a tier for every newer page: 16 pages leave a backlog of about 40 demotion
# steps, several seconds of work, for the server to find at start and to abandon at stop.
BACKLOG_CONFIG = """\
[archive]
map_size_mib = 64

[reader]
name = "template"
""" + "".join(
    f'\n[[tiers]]\nname = "{name}"\nscale = {scale}\ncodec = "{codec}"\n'
    + (f"lossless = true\nafter_pages = {after}\n" if after else "")
    for name, scale, codec, after in [
        ("hot", 1.0, "png", 0),
        ("warm", 0.75, "webp", 1),
        ("cool", 0.5, "webp", 2),
        ("cold", 0.35, "webp", 3),
    ]
)


# A backlog that outlasts the wait before the stop signal on any machine: 320 pages fade in about 8 s
# here (48 pages did in 1.2 s once stored images decoded through libwebp, and a test stopped too late).
BACKLOG_TEXT = "\n".join(f"line {i} " + "lorem ipsum dolor sit amet " * 3 for i in range(63 * 320))


def fades_on(memory: Memory) -> bool:
    """Whether a demotion is still due: one page is faded (not the whole backlog, which takes seconds).

    A page due several tiers fades through them in one step, so that one page may count several."""
    asked = 0

    def after_one_step() -> bool:
        nonlocal asked
        asked += 1
        return asked > 1

    return memory.fade(stop=after_one_step) >= 1


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "close-stdin"])
def test_serve_stops_at_once_with_a_fading_backlog(tmp_path: Path, archive_path: Path, how: str) -> None:
    config_path = tmp_path / "backlog.toml"
    config_path.write_text(BACKLOG_CONFIG, encoding="utf-8")
    config = load_config(config_path, archive=archive_path, environ={})
    memory = Memory(config)
    memory.remember(BACKLOG_TEXT, fade=False)
    memory.close()

    server = RawServer(archive_path, config_path, tmp_path)
    assert server.serving.wait(60), "".join(server.log)
    time.sleep(0.5)  # the start-up fade is under way
    took = server.stop_by(how)
    assert server.proc.returncode == 0, "".join(server.log)
    assert took < 2, f"{how}: stopping took {took:.1f}s"

    memory = Memory(config)
    try:
        assert memory.page_info("p1").tier != "hot"  # fading had begun, oldest page first
        assert fades_on(memory)  # and the rest was left for the next start, which takes it up again
    finally:
        memory.close()
