"""Streamable HTTP transport: the same server on a port, guarded for a machine shared with a browser.

* Binds 127.0.0.1 by default (``--host`` changes it; nothing is public unless asked for).
* Every request needs ``Authorization: Bearer <token>``. The token comes from
  ``OPTICAL_MEMORY_TOKEN`` (through the config), or is generated once into ``http-token`` (mode
  0600) in the archive folder; its path is logged to stderr, never the token itself.
* A request whose ``Origin`` is not local (a web page trying to reach the server) is refused, and
  so is a ``Host`` that is not this machine (DNS rebinding).
* Request bodies are capped (the SDK's limit, sized from ``limits.max_text_chars``).

One `Memory` serves every HTTP session: LMDB must not be opened twice in one process.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from mcp.server.transport_security import TransportSecuritySettings

from optical_memory.config import Config
from optical_memory.memory import Memory
from optical_memory_mcp.app import build_server

__all__ = ["BearerAuth", "http_app", "serve_http", "token_for"]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
TOKEN_FILE = "http-token"


def token_for(config: Config) -> str:
    """The bearer token: from the config (OPTICAL_MEMORY_TOKEN), else the archive's token file, made once."""
    if config.http_token:
        return config.http_token
    path = Path(config.archive.path) / TOKEN_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text(encoding="ascii").strip()
        if token:
            log.info("HTTP bearer token: read from %s", path)
            return token
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
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


def http_app(config: Config, memory: Memory, host: str = "127.0.0.1") -> ASGIApp:
    """The guarded ASGI app: MCP at /mcp behind bearer auth, local origins only."""
    server = build_server(config, memory=memory)
    hosts = [f"{h}:*" for h in LOCAL_HOSTS] + list(LOCAL_HOSTS)
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts += [host, f"{host}:*"]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{h}:*" for h in LOCAL_HOSTS] + [f"http://{h}" for h in LOCAL_HOSTS],
    )
    # a remember of the largest allowed text, as JSON (up to 6 bytes per character escaped), plus room
    max_body = config.limits.max_text_chars * 6 + (1 << 20)
    app = server.streamable_http_app(transport_security=security, max_request_body_size=max_body, host=host)
    token = token_for(config)
    from optical_memory_mcp.web.mount import beside_mcp  # the web page at /, behind the same token

    return beside_mcp(BearerAuth(app, token), memory, token, host)


def serve_http(config: Config, host: str, port: int) -> None:
    """Run the HTTP server until interrupted (uvicorn, logging to stderr)."""
    import uvicorn

    memory = Memory(config)
    try:
        app = http_app(config, memory, host)
        log.info("optical-memory serving MCP over HTTP at http://%s:%d/mcp", host, port)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        memory.close()
