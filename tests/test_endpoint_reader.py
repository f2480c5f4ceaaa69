"""The endpoint reader against a chat-completions server the test runs on 127.0.0.1.

The server answers by the first part of the request path, one scenario each: a good answer, a slow
one, a 500 before a good one, a body that is not JSON, JSON of the wrong shape, and a key check. A
refused connection uses a port nothing listens on. What is sent is recorded and checked too: the
band as a PNG data URL, the OCR prompt, the model name, the token cap and the bearer key.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from optical_memory.config import load_config
from optical_memory.errors import InvalidArgument, ReaderError
from optical_memory.pages import HEADER, PageFormat, PlannedRow
from optical_memory.readers import load_reader
from optical_memory.readers.deepseek import band_image
from optical_memory.readers.endpoint import EndpointReader
from optical_memory.render import Geometry, Renderer

ANSWER = "Hi\nyou"
DRAWN = {1: "H  i", 2: "    you"}
KEY = "test-key-123"
SLOW_S = 1.0


@dataclass
class Server:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)


def _completion(content: str) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "choices": [{"message": {"content": content}}]}).encode()


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            scenario, _, rest = self.path.lstrip("/").partition("/")
            state.hits[scenario] = state.hits.get(scenario, 0) + 1
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append({"path": "/" + rest, **json.loads(body)})
            state.headers.append(dict(self.headers))
            if scenario == "slow":
                time.sleep(SLOW_S)
                self._send(200, _completion(ANSWER))
            elif scenario == "flaky" and state.hits[scenario] == 1:
                self._send(500, b'{"error": "warming up"}')
            elif scenario == "garbage":
                self._send(200, b"<html>502 Bad Gateway</html>")
            elif scenario == "shape":
                self._send(200, b'{"error": {"message": "model not loaded"}}')
            elif scenario == "auth" and self.headers.get("Authorization") != f"Bearer {KEY}":
                self._send(401, b'{"error": "bad key"}')
            else:
                self._send(200, _completion(ANSWER))

        def _send(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the slow case: client gone
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False  # the slow handler may still sleep when the test ends
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def page() -> tuple[Image.Image, Geometry]:
    renderer = Renderer(PageFormat(columns=40, rows=12))
    rows = [PlannedRow(HEADER, "user · default · 2026-11-25 18:00")]
    rows += [PlannedRow(code, DRAWN[code]) for code in sorted(DRAWN)]
    return Image.fromarray(renderer.render(rows)), renderer.geometry


def _reader(server: Server, scenario: str, **options: Any) -> EndpointReader:
    options = {"timeout_s": 2.0, "retries": 1, "backoff_s": 0.01, **options}
    return EndpointReader(base_url=f"{server.url}/{scenario}/v1", model="deepseek-ai/DeepSeek-OCR", **options)


def test_good_answer_is_mapped_to_rows_and_the_request_has_the_chat_shape(
    server: Server, page: tuple[Image.Image, Geometry]
) -> None:
    image, geometry = page
    reader = _reader(server, "good", extra_body={"vllm_xargs": {"ngram_size": 30}})
    assert reader.read_rows(image, geometry, [2, 1, 7]) == ["    you", "H  i", ""]
    assert len(server.requests) == 1  # rows 1-2 are one band; blank row 7 needs no request
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "deepseek-ai/DeepSeek-OCR"
    assert request["temperature"] == 0.0
    assert request["vllm_xargs"] == {"ngram_size": 30}
    assert request["max_tokens"] == 16 + 2 * (2 * geometry.columns + 1)
    (message,) = request["messages"]
    assert message["role"] == "user"
    picture, prompt = message["content"]
    assert prompt == {"type": "text", "text": "Free OCR."}
    assert picture["type"] == "image_url"
    prefix = "data:image/png;base64,"
    assert picture["image_url"]["url"].startswith(prefix)
    sent = Image.open(io.BytesIO(base64.b64decode(picture["image_url"]["url"][len(prefix) :])))
    assert sent.format == "PNG"
    assert sent.size == band_image(image, geometry, 1, 2).size  # the two rows' band, not the page
    assert "Authorization" not in server.headers[0]


def test_a_slow_server_times_out_with_bounded_retries(server: Server, page: tuple[Image.Image, Geometry]) -> None:
    reader = _reader(server, "slow", timeout_s=0.2, retries=1)
    start = time.perf_counter()
    with pytest.raises(ReaderError, match=r"failed 2 time\(s\), last: no answer within timeout_s=0\.2"):
        reader.read_rows(*page, [1])
    assert time.perf_counter() - start < SLOW_S  # gave up on its own clock, not the server's
    assert server.hits["slow"] == 2


def test_a_500_is_retried_and_then_succeeds(server: Server, page: tuple[Image.Image, Geometry]) -> None:
    assert _reader(server, "flaky").read_rows(*page, [1, 2]) == ["H  i", "    you"]
    assert server.hits["flaky"] == 2


def test_an_answer_that_is_not_json_is_a_clear_error(server: Server, page: tuple[Image.Image, Geometry]) -> None:
    with pytest.raises(ReaderError, match=r"not JSON: '<html>502 Bad Gateway</html>'"):
        _reader(server, "garbage").read_rows(*page, [1])
    assert server.hits["garbage"] == 1  # a 200 with garbage is not retried: it would answer the same


def test_json_of_the_wrong_shape_is_a_clear_error(server: Server, page: tuple[Image.Image, Geometry]) -> None:
    with pytest.raises(ReaderError, match=r"without choices\[0\]\.message\.content: .*model not loaded"):
        _reader(server, "shape").read_rows(*page, [1])


def test_a_refused_connection_says_to_check_the_server(page: tuple[Image.Image, Geometry]) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reader = EndpointReader(base_url=f"http://127.0.0.1:{port}/v1", retries=2, backoff_s=0.01)
    with pytest.raises(ReaderError, match=r"failed 3 time\(s\), last: unreachable .*vllm serve .*base_url"):
        reader.read_rows(*page, [1])


def test_the_key_comes_from_the_environment_through_config(
    server: Server, page: tuple[Image.Image, Geometry], tmp_path: Path
) -> None:
    config_file = tmp_path / "om.toml"
    config_file.write_text(
        f'[reader]\nname = "endpoint"\noptions = {{ base_url = "{server.url}/auth/v1", api_key_env = "OCR_KEY" }}\n',
        encoding="utf-8",
    )
    config = load_config(config_file, archive=tmp_path / "archive", environ={"OCR_KEY": KEY})
    assert config.reader_options == {"base_url": f"{server.url}/auth/v1", "api_key": KEY}
    reader = load_reader(config.reader, **config.reader_options)
    assert reader.read_rows(*page, [1, 2]) == ["H  i", "    you"]
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"


def test_a_wrong_key_is_not_retried_and_says_so(server: Server, page: tuple[Image.Image, Geometry]) -> None:
    with pytest.raises(ReaderError, match=r"HTTP 401: .*bad key.*api_key"):
        _reader(server, "auth", api_key="wrong").read_rows(*page, [1])
    assert server.hits["auth"] == 1


def test_bad_options_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="http:// or https://"):
        EndpointReader(base_url="localhost:8000/v1")
    with pytest.raises(InvalidArgument, match="timeout_s > 0"):
        EndpointReader(timeout_s=0)
