"""A web page to look through the archive: sessions, pages by tier, a page beside its lines, search, fading.

`optical-memory web --archive PATH` serves it alone; `optical-memory serve --http` serves it at `/`
beside MCP at `/mcp`. Server-rendered HTML with a little vanilla JavaScript, all inside this package:
no build step, nothing fetched from elsewhere. It reads the archive through the `Memory` facade only.
Security is in `guard`; what the pages count and how cheaply, in `stats`.
"""

from __future__ import annotations

from optical_memory_mcp.web.routes import web_app

__all__ = ["web_app"]
