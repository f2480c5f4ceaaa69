"""`optical-memory serve --http`: a real HTTP client with the right token, a wrong one and none."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

TOKEN = "test-token-4f9a"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(archive: Path, port: int, token: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    env["OPTICAL_MEMORY_READER"] = "template"
    if token:
        env["OPTICAL_MEMORY_TOKEN"] = token
    args = [
        sys.executable,
        "-m",
        "optical_memory_mcp",
        "serve",
        "--http",
        "--port",
        str(port),
        "--archive",
        str(archive),
    ]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("HTTP server did not start")


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err.decode()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = start(tmp_path / "archive", port, TOKEN)
    yield f"http://127.0.0.1:{port}/mcp"
    stop(proc)


def test_requests_without_the_right_token_are_refused(served: str) -> None:
    none = httpx2.post(served, json=INIT, headers=HEADERS)
    wrong = httpx2.post(served, json=INIT, headers={**HEADERS, "Authorization": "Bearer nope"})
    assert none.status_code == 401 and wrong.status_code == 401
    assert "Bearer" in none.json()["detail"]
    right = httpx2.post(served, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200


def test_a_page_from_another_origin_is_refused(served: str) -> None:
    headers = {**HEADERS, "Authorization": f"Bearer {TOKEN}", "Origin": "https://evil.example"}
    assert httpx2.post(served, json=INIT, headers=headers).status_code in (400, 403)
    local = {**HEADERS, "Authorization": f"Bearer {TOKEN}", "Origin": "http://localhost:3000"}
    assert httpx2.post(served, json=INIT, headers=local).status_code == 200


async def test_mcp_client_with_token_uses_every_tool(served: str) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    async with http, Client(streamable_http_client(served, http_client=http)) as client:
        stored = await client.call_tool("remember", {"text": "over http\n\tindented", "session": "web"})
        assert stored.structured_content is not None
        span = stored.structured_content["spans"][0]
        read = await client.call_tool("read_lines", {"page_id": span["page_id"]})
        assert read.structured_content is not None
        assert [line["text"] for line in read.structured_content["lines"]] == ["over http", "\tindented"]
        found = await client.call_tool("search", {"query": "indented"})
        assert found.structured_content is not None and found.structured_content["hits"]


def test_a_token_is_generated_once_into_a_private_file(tmp_path: Path) -> None:
    port = free_port()
    archive = tmp_path / "archive"
    err = stop(start(archive, port, None))
    token_file = archive / "http-token"
    token = token_file.read_text().strip()
    assert len(token) >= 32 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert str(token_file) in err and token not in err
    stop(start(archive, port, None))
    assert token_file.read_text().strip() == token  # reused, not regenerated
