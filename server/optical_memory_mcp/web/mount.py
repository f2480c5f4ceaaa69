"""The web page beside MCP in one ASGI app, for `serve --http`: `/mcp` is MCP's, every other path the page's."""

from __future__ import annotations

from optical_memory.memory import Memory
from optical_memory_mcp.web.guard import ASGIApp, Receive, Scope, Send
from optical_memory_mcp.web.routes import web_app

__all__ = ["beside_mcp"]


def beside_mcp(mcp: ASGIApp, memory: Memory, token: str, host: str) -> ASGIApp:
    """`mcp` (already behind its bearer check) at /mcp, the guarded web page everywhere else."""
    web = web_app(memory, token, host)

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        # lifespan events go to MCP: its session manager runs there; the web page needs none
        if scope["type"] == "lifespan" or path == "/mcp" or path.startswith("/mcp/"):
            await mcp(scope, receive, send)
        else:
            await web(scope, receive, send)

    return route
