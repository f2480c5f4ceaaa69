"""`optical-memory serve --http`: a real HTTP client with the right token, a wrong one and none; tokens that
are refused; slow requests and idle sessions cut off; the start-up fade; a prompt stop with a fading backlog."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from optical_memory.config import Config, load_config
from optical_memory.memory import Memory
from tests.test_stdio import BACKLOG_CONFIG, BACKLOG_TEXT, fades_on

TOKEN = "test-token-4f9a-5e6b"
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


def serve_args(archive: Path, port: int, token: str | None, *extra: str) -> tuple[list[str], dict[str, str]]:
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
    return [*args, *extra], env


def start(archive: Path, port: int, token: str | None, *extra: str) -> subprocess.Popen[bytes]:
    args, env = serve_args(archive, port, token, *extra)
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


def refused_start(archive: Path, token: str | None) -> subprocess.CompletedProcess[str]:
    args, env = serve_args(archive, free_port(), token)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_a_short_token_is_refused(tmp_path: Path) -> None:
    done = refused_start(tmp_path / "archive", "x" * 15)
    assert (done.returncode, done.stdout) == (2, "")
    [line] = done.stderr.strip().splitlines()
    assert line == (
        "optical-memory: error: the HTTP token from OPTICAL_MEMORY_TOKEN is 15 characters; at least 16 are "
        "needed (leave OPTICAL_MEMORY_TOKEN unset and one is generated)"
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_token_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    token_file = archive / "http-token"
    token_file.write_text("a-token-that-others-could-read-0123456789\n")
    token_file.chmod(mode)
    done = refused_start(archive, None)
    assert (done.returncode, done.stdout) == (2, "")
    [line] = done.stderr.strip().splitlines()
    assert f"{token_file} has mode {mode:04o}" in line and f"chmod 600 {token_file}" in line
    assert "a-token-that-others-could-read" not in done.stderr
    assert stat.S_IMODE(token_file.stat().st_mode) == mode  # left as it was: the owner decides


def connection_closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_request_that_arrives_too_slowly_is_cut_off(tmp_path: Path) -> None:
    port = free_port()
    proc = start(tmp_path / "archive", port, TOKEN, "--request-timeout", "1")
    try:
        for stall_in_body in (False, True):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                if stall_in_body:
                    sock.sendall(f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n{{".encode())
                assert connection_closed_within(sock, 10), "stalled in the body" if stall_in_body else "in the headers"
        # a client that sends its request in time is served as before
        assert httpx2.post(f"http://127.0.0.1:{port}/mcp", json=INIT, headers=HEADERS).status_code == 401
    finally:
        stop(proc)


def test_an_idle_session_expires(tmp_path: Path) -> None:
    port = free_port()
    proc = start(tmp_path / "archive", port, TOKEN, "--session-idle", "1")
    url = f"http://127.0.0.1:{port}/mcp"
    headers = {**HEADERS, "Authorization": f"Bearer {TOKEN}"}
    try:
        opened = httpx2.post(url, json=INIT, headers=headers)
        session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        assert httpx2.post(url, json=ping, headers=session).status_code == 200
        time.sleep(3)
        assert httpx2.post(url, json=ping, headers=session).status_code == 404  # closed: the client starts anew
    finally:
        stop(proc)


async def test_http_serving_fades_what_aged_while_no_server_ran(tmp_path: Path, config: Config) -> None:
    memory = Memory(config)
    memory.remember("\n".join(f"line {i}" for i in range(12 * 11)), fade=False)  # the oldest are due for warm
    memory.close()
    port = free_port()
    proc = start(config.archive.path, port, TOKEN, "--config", str(tmp_path / "optical-memory.toml"))
    try:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        url = f"http://127.0.0.1:{port}/mcp"
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            deadline = time.monotonic() + 30
            while True:
                listing = (await client.call_tool("list_pages", {"limit": 200})).structured_content
                assert listing is not None
                if {page["id"]: page["tier"] for page in listing["pages"]}["p1"] == "warm":
                    break
                assert time.monotonic() < deadline, "HTTP serving skipped the start-up fade"
                await anyio.sleep(0.1)
    finally:
        stop(proc)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_http_serving_stops_at_once_with_a_fading_backlog(
    tmp_path: Path, archive_path: Path, signum: signal.Signals
) -> None:
    config_path = tmp_path / "backlog.toml"
    config_path.write_text(BACKLOG_CONFIG, encoding="utf-8")
    config = load_config(config_path, archive=archive_path, environ={})
    memory = Memory(config)
    memory.remember(BACKLOG_TEXT, fade=False)
    memory.close()

    proc = start(archive_path, free_port(), TOKEN, "--config", str(config_path))
    time.sleep(1)  # serving, and the start-up fade under way
    started = time.monotonic()
    proc.send_signal(signum)
    try:
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    took = time.monotonic() - started
    assert took < 2, f"{signum.name}: stopping took {took:.1f}s"

    memory = Memory(config)
    try:
        assert fades_on(memory)  # the backlog was left for the next start
    finally:
        memory.close()
