"""Serving over stdio: the SDK's stdio loop, fed by a stdin reader that answers every line it cannot use,
and stopped at once by SIGINT, SIGTERM or the end of stdin.

Upstream behaviour this works around (mcp 2.3, ``mcp.server.stdio.stdio_server``):

* stdin is decoded as UTF-8 with ``errors="replace"``, so bytes that are not UTF-8 silently become
  U+FFFD inside an otherwise valid request, which is then served with altered text;
* a line that is not a JSON-RPC message (not JSON at all, or JSON holding a lone surrogate escape
  such as ``"\\ud800"``, which pydantic's parser rejects) reaches the server loop as an exception,
  which ``JSONRPCDispatcher._dispatch`` logs at debug level and drops: the client gets no reply and
  waits out its timeout (over HTTP the same body gets a -32700 parse error);
* stdin is read on an AnyIO worker thread, which is not a daemon: a read blocked on a silent client
  keeps the process from exiting, so Ctrl-C did not stop ``optical-memory serve``.

Here stdin is read as bytes on a daemon thread, each line is decoded strictly and parsed, and a line
that fails is answered on the server's own write stream as JSON-RPC 2.0 asks: -32700 "Parse error"
(not UTF-8, not JSON) or -32600 "Invalid Request" (JSON, but not a JSON-RPC message, or longer than
any request the server accepts), with the request's id when it has one. Only valid lines reach the
SDK. The SDK still claims stdout (fd 1 points at stderr while serving, so stray prints from OCR
libraries cannot corrupt the protocol); fd 0 is claimed here the same way (it reads /dev/null).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import pydantic_core
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import ErrorData, JSONRPCError, jsonrpc_message_adapter
from pydantic import ValidationError

__all__ = ["StdinLines", "check_line", "serve_stdio"]

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
_TOO_LONG = b""  # handed on for a line over the limit: readline returns b"" only at EOF, which is not handed on


class StdinLines:
    """The lines of the wire that are JSON-RPC messages, as text, for ``stdio_server(stdin=...)``.

    Every other line is answered with a JSON-RPC error through `answer_on`'s write stream. Lines
    are read on a daemon thread, so a read blocked on a silent client never delays exit.
    """

    def __init__(self, wire: BinaryIO, max_line_bytes: int) -> None:
        self._wire = wire
        self._max = max_line_bytes
        send, receive = anyio.create_memory_object_stream[bytes](4)
        self._send: MemoryObjectSendStream[bytes] = send
        self._lines: MemoryObjectReceiveStream[bytes] = receive
        self._replies: Any = None
        self._ready = anyio.Event()

    def start(self) -> None:
        token = anyio.lowlevel.current_token()
        threading.Thread(target=self._pump, args=(token,), name="optical-memory-stdin", daemon=True).start()

    def answer_on(self, write_stream: Any) -> None:
        """Where error replies go: the server's write stream, which the SDK writes to stdout."""
        self._replies = write_stream
        self._ready.set()

    def _read_line(self) -> bytes | None:
        """The next line, `_TOO_LONG` for one over the limit, None at EOF."""
        line = self._wire.readline(self._max + 1)
        if len(line) > self._max and not line.endswith(b"\n"):
            while True:  # drop the rest of the over-long line, without holding it in memory
                rest = self._wire.readline(1 << 16)
                if not rest or rest.endswith(b"\n"):
                    return _TOO_LONG
        return line or None

    def _pump(self, token: anyio.lowlevel.EventLoopToken) -> None:
        try:
            while (line := self._read_line()) is not None:
                anyio.from_thread.run(self._send.send, line, token=token)
        except (OSError, ValueError, RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the wire closed, or serving ended while this thread waited: nothing left to hand on
        finally:
            with contextlib.suppress(RuntimeError):
                anyio.from_thread.run_sync(self._send.close, token=token)

    def __aiter__(self) -> StdinLines:
        return self

    async def __anext__(self) -> str:
        while True:
            try:
                raw = await self._lines.receive()
            except anyio.EndOfStream:
                raise StopAsyncIteration from None
            checked = check_line(raw, self._max)
            if isinstance(checked, str):
                return checked
            if checked is not None:
                await self._answer(checked)

    async def _answer(self, reply: JSONRPCError) -> None:
        log.warning("stdin: %s", reply.error.message)
        await self._ready.wait()
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._replies.send(SessionMessage(reply))


def _error(request_id: int | str | None, code: int, message: str) -> JSONRPCError:
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message))


def check_line(raw: bytes, max_line_bytes: int) -> str | JSONRPCError | None:
    """A stdin line as text if it is a JSON-RPC message; else its error reply (None: a blank line, ignored)."""
    if raw == _TOO_LONG:
        return _error(None, INVALID_REQUEST, f"Invalid Request: a request line is over {max_line_bytes:,} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _error(
            None, PARSE_ERROR, f"Parse error: the request line is not UTF-8 ({exc.reason} at byte {exc.start})"
        )
    if not text.strip():
        return None
    try:
        value = pydantic_core.from_json(text)
    except ValueError as exc:
        return _error(None, PARSE_ERROR, f"Parse error: {exc}")
    try:
        jsonrpc_message_adapter.validate_python(value, by_name=False)
    except ValidationError as exc:
        request_id = value.get("id") if isinstance(value, dict) else None
        valid_id = request_id if isinstance(request_id, int | str) and not isinstance(request_id, bool) else None
        return _error(
            valid_id, INVALID_REQUEST, f"Invalid Request: not a JSON-RPC 2.0 message ({exc.error_count()} errors)"
        )
    return text


@contextlib.contextmanager
def _claim_stdin() -> Iterator[BinaryIO]:
    """The wire as a private duplicate of fd 0, while fd 0 itself reads /dev/null (restored after)."""
    private = os.dup(0)
    os.set_inheritable(private, False)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        # closefd=False: the daemon thread may still block on it after serving ends
        yield os.fdopen(private, "rb", closefd=False)
    finally:
        os.dup2(private, 0)


async def _stop_on_signals(scope: anyio.CancelScope) -> None:
    if sys.platform == "win32":  # no loop signal handlers there: Ctrl-C raises KeyboardInterrupt
        return
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping on %s", signal.Signals(signum).name)
            scope.cancel()
            return


async def _serve(server: MCPServer[Any], wire: BinaryIO, max_line_bytes: int) -> None:
    # MCPServer's only stdio entry point (run_stdio_async) builds the SDK's own stdin reader: run
    # the low-level server that it wraps on our streams instead.
    lowlevel = server._lowlevel_server
    lines = StdinLines(wire, max_line_bytes)
    async with anyio.create_task_group() as group:
        group.start_soon(_stop_on_signals, group.cancel_scope)
        lines.start()
        async with stdio_server(stdin=cast(Any, lines)) as (read_stream, write_stream):
            lines.answer_on(write_stream)
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
        group.cancel_scope.cancel()


def serve_stdio(server: MCPServer[Any], max_line_bytes: int) -> None:
    """Serve `server` on stdin/stdout until stdin ends or SIGINT/SIGTERM arrives."""
    with _claim_stdin() as wire:
        anyio.run(_serve, server, wire, max_line_bytes)
