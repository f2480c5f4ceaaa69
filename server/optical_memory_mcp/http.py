"""Streamable HTTP transport: the same server on a port, guarded for a machine shared with a browser.

* Binds 127.0.0.1 by default (``--host`` changes it; nothing is public unless asked for).
* Every request needs ``Authorization: Bearer <token>``. The token comes from
  ``OPTICAL_MEMORY_TOKEN`` (through the config; at least 16 characters), or is generated once into
  ``http-token`` (mode 0600) in the archive folder; its path is logged to stderr, never the token.
  A token file that others may read (group or other permission bits), that is not a regular file,
  or whose token is short is refused with an error that says how to fix it: the token may already
  have been read, so only its owner can decide to keep it.
* A request whose ``Origin`` is not local (a web page trying to reach the server) is refused, and
  so is a ``Host`` that is not this machine (DNS rebinding).
* Request bodies are capped (the SDK's limit, sized from ``limits.max_text_chars``); a request's
  headers and body must arrive within ``request_timeout_s`` (uvicorn itself only times out idle
  keep-alive connections, so a slow client could hold a connection forever: slowloris); an MCP
  session with no request for ``session_idle_s`` is closed.
* SIGINT or SIGTERM stop the server within a second: open streams are not waited for, and the
  fader stops between demotion steps.

One `Memory` serves every HTTP session: LMDB must not be opened twice in one process.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings
from uvicorn.protocols.http.h11_impl import H11Protocol

from optical_memory.config import Config
from optical_memory.errors import InvalidArgument
from optical_memory.memory import Memory
from optical_memory_mcp.app import build_server, max_request_bytes

__all__ = ["MIN_TOKEN_CHARS", "BearerAuth", "http_app", "serve_http", "timed_protocol", "token_for"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
TOKEN_FILE = "http-token"
MIN_TOKEN_CHARS = 16  # a guessable token is no guard; generated ones are 43
GRACEFUL_SHUTDOWN_S = 0.5  # open event streams never end by themselves: stop waiting for them after this


def _checked_token(token: str, source: str) -> str:
    if len(token) < MIN_TOKEN_CHARS:
        raise InvalidArgument(
            f"the HTTP token from {source} is {len(token)} characters; at least {MIN_TOKEN_CHARS} are needed "
            "(leave OPTICAL_MEMORY_TOKEN unset and one is generated)"
        )
    return token


def _read_token_file(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "r", encoding="ascii") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidArgument(f"{path} is not a regular file; delete it and a token is generated")
        if info.st_mode & 0o077:
            raise InvalidArgument(
                f"{path} has mode {stat.S_IMODE(info.st_mode):04o}, so others on this machine may have read the "
                f"token; if you are sure they have not, run 'chmod 600 {path}', else delete it and a new token "
                "is generated"
            )
        return file.read().strip()


def token_for(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """The bearer token: OPTICAL_MEMORY_TOKEN, else the archive's token file, made once.

    The token is the HTTP transport's own setting, so the adapter reads it, not the library's config.
    """
    given = (os.environ if environ is None else environ).get("OPTICAL_MEMORY_TOKEN")
    if given:
        return _checked_token(given, "OPTICAL_MEMORY_TOKEN")
    path = Path(config.archive.path) / TOKEN_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = _read_token_file(path)
        if token:
            log.info("HTTP bearer token: read from %s", path)
            return _checked_token(token, str(path))
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0))
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(token + "\n")
    log.warning("HTTP bearer token generated into %s (mode 0600): send it as 'Authorization: Bearer <token>'", path)
    return token


class BearerAuth:
    """ASGI middleware: 401 unless the request carries the bearer token (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = json.dumps({"error": "unauthorized", "detail": "send 'Authorization: Bearer <token>'"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def timed_protocol(request_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request (headers and body) takes longer than
    `request_timeout_s` to arrive, counted from the request's first byte (or the connection's start)."""

    class TimedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def _receiving(self) -> bool:
            return self.cycle is None or self.cycle.response_complete or self.cycle.more_body

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(request_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self._receiving() or self.transport.is_closing():
                return
            log.warning("closing a connection whose request took over %gs to arrive", request_timeout_s)
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True  # the app sees http.disconnect
                self.cycle.message_event.set()
            self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self.cycle is None or self.cycle.response_complete:
                self._arm()  # the first bytes of a new request on a kept-alive connection
            super().data_received(data)
            if self.cycle is not None and not self.cycle.more_body and not self.cycle.response_complete:
                self._disarm()  # received whole: the app's time to answer is not limited here

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedH11Protocol


def http_app(
    config: Config,
    memory: Memory | None = None,
    host: str = "127.0.0.1",
    *,
    session_idle_s: float = 1800.0,
    token: str | None = None,
) -> ASGIApp:
    """The guarded ASGI app: MCP at /mcp behind bearer auth, local origins only.

    The MCP server's lifespan (the same as over stdio) runs with the app's: it uses `memory` if
    given (the caller closes it), else opens one on `config`. Other routes (the web page) can be
    mounted on the returned app's inner Starlette app after /mcp.
    """
    # before anything else: a refused token stops the start with its reason
    token = _checked_token(token, "the caller") if token is not None else token_for(config)
    server = build_server(config, memory)
    hosts = [f"{h}:*" for h in LOCAL_HOSTS] + list(LOCAL_HOSTS)
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts += [host, f"{host}:*"]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}:*" for h in LOCAL_HOSTS] + [f"http://{h}" for h in LOCAL_HOSTS],
    )
    app = server.streamable_http_app(
        transport_security=security,
        max_request_body_size=max_request_bytes(config),
        session_idle_timeout=session_idle_s,
        host=host,
    )
    if memory is None:
        return BearerAuth(app, token)
    from optical_memory_mcp.web.mount import beside_mcp  # the web page at /, behind the same token

    return beside_mcp(BearerAuth(app, token), memory, token, host)


def serve_http(
    config: Config, host: str, port: int, *, request_timeout_s: float = 15.0, session_idle_s: float = 1800.0
) -> None:
    """Run the HTTP server until SIGINT or SIGTERM (uvicorn, logging to stderr)."""
    import uvicorn

    memory = Memory(config)
    try:
        app = http_app(config, memory, host, session_idle_s=session_idle_s)
        log.info("optical-memory serving MCP over HTTP at http://%s:%d/mcp", host, port)
        uvicorn.run(
            app,
            host=host,
            port=port,
            http=timed_protocol(request_timeout_s),
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,  # type: ignore[arg-type]  # a float works (asyncio.wait_for)
            log_level="warning",
        )
    finally:
        memory.close()
