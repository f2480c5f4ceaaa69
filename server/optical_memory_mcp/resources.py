"""Pages as MCP resources, so a client can link to a page instead of inlining it.

``optical-memory://pages/{page_id}/info`` is the page's metadata (JSON, as list_pages gives it);
``optical-memory://pages/{page_id}/image.png`` (or ``.webp``, ``.jpeg``: the page's `image_format`)
is its stored image. One image template per codec, so each carries its own MIME type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from optical_memory.errors import OpticalMemoryError
from optical_memory.tiers import MIME_TYPES
from optical_memory_mcp.state import AppState

__all__ = ["IMAGE_URI", "INFO_URI", "page_info", "register_resources"]

INFO_URI = "optical-memory://pages/{page_id}/info"
IMAGE_URI = "optical-memory://pages/{page_id}/image.{image_format}"

Ctx = Context[AppState, Any]


def page_info(page_id: str, ctx: Ctx) -> str:
    """A memory page's metadata, as list_pages reports it."""
    try:
        return ctx.request_context.lifespan_context.memory.page_info(page_id).model_dump_json()
    except OpticalMemoryError as exc:
        raise ResourceError(str(exc)) from exc


def page_image(codec: str) -> Callable[[str, Ctx], bytes]:
    """The resource function for the stored images of pages kept as `codec`."""

    def read(page_id: str, ctx: Ctx) -> bytes:
        try:
            page = ctx.request_context.lifespan_context.memory.view_page(page_id)
        except OpticalMemoryError as exc:
            raise ResourceError(str(exc)) from exc
        stored = page.info.image_format
        if stored != codec:
            raise ResourceError(
                f"page {page_id} is stored as {stored}; read {IMAGE_URI.format(page_id=page_id, image_format=stored)}"
            )
        return page.data

    return read


def register_resources(server: MCPServer[AppState]) -> None:
    server.resource(
        INFO_URI,
        name="page",
        description="A memory page's metadata, as list_pages reports it",
        mime_type="application/json",
    )(page_info)
    for codec, mime in MIME_TYPES.items():
        server.resource(
            IMAGE_URI.replace("{image_format}", codec),
            name=f"page-image-{codec}",
            description=f"A memory page's stored image, for pages whose image_format is {codec}",
            mime_type=mime,
        )(page_image(codec))
