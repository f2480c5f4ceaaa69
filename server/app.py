"""The MCP adapter: four tools over the `Memory` facade, opened once by one lifespan.

Each tool is a thin, synchronous call of one facade method (the SDK runs sync tools on worker
threads, and the facade keeps every LMDB transaction inside one such call). The facade's typed
results are the tools' structured output; every `OpticalMemoryError` becomes a `ToolError` with
the same message, which already says what was wrong and what is valid. Logging goes to stderr:
over stdio, stdout carries nothing but protocol.

`build_server` is written without `from __future__ import annotations`: the tools are closures
whose parameter annotations use the configured limits, and the SDK resolves them at registration.
"""

import base64
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import Field, StringConstraints

from optical_memory.config import Config
from optical_memory.errors import OpticalMemoryError
from optical_memory.memory import MAX_NAME_CHARS, Memory
from optical_memory.results import LinesRead, PageInfo, PageList, RememberResult

__all__ = ["AppState", "build_server"]

log = logging.getLogger(__name__)

_Fn = TypeVar("_Fn", bound=Callable[..., Any])

INSTRUCTIONS = """\
Long-term memory kept as page images. `remember` lays text onto pages of a session and returns
where it went (spans of line numbers per page). `list_pages` shows pages newest first,
`view_page` shows one page as an image (older pages fade: they are stored smaller and blurrier
and cost fewer image tokens), and `read_lines` reads lines of a page back as text by OCR (exact
on pages that have not faded).
"""


@dataclass(frozen=True)
class AppState:
    """What the lifespan yields to every tool call."""

    memory: Memory


# session, role and title: shown in page headers, so kept short (the facade checks the rest)
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]


def _read_only(title: str) -> ToolAnnotations:
    return ToolAnnotations(title=title, read_only_hint=True, idempotent_hint=True, open_world_hint=False)


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Turn the library's deliberate errors into tool errors the model can act on."""
    try:
        yield
    except OpticalMemoryError as exc:
        raise ToolError(str(exc)) from exc


def _memory(ctx: Context[AppState, Any]) -> Memory:
    return ctx.request_context.lifespan_context.memory


def build_server(config: Config, memory: Memory | None = None) -> MCPServer[AppState]:
    """The optical-memory MCP server over `config`'s archive.

    With `memory`, the server uses it and leaves it open (the caller owns it, as tests do);
    without, the lifespan opens a `Memory` on `config` once per connection and closes it after.
    The reader is loaded lazily by `Memory` on the first `read_lines`.
    """

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if memory is not None:
            yield AppState(memory)
            return
        # Opening may wait (bounded) while another process opens or resizes the archive.
        opened = await anyio.to_thread.run_sync(Memory, config)
        log.info("optical-memory archive open at %s", config.archive.path)
        try:
            yield AppState(opened)
        finally:
            opened.close()

    server: MCPServer[AppState] = MCPServer(
        "optical-memory", instructions=INSTRUCTIONS, lifespan=lifespan, version=_version()
    )
    max_text = config.limits.max_text_chars
    max_list = config.limits.max_list_limit

    def tool(annotations: ToolAnnotations) -> Callable[[_Fn], _Fn]:
        def register(fn: _Fn) -> _Fn:
            # The docstring is the model's manual: dedented, so it reads as written.
            server.add_tool(fn, description=inspect.getdoc(fn), annotations=annotations)
            return fn

        return register

    @tool(
        ToolAnnotations(
            title="Remember text",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        )
    )
    def remember(
        ctx: Context[AppState, Any],
        text: Annotated[
            str,
            Field(
                min_length=1,
                description=f"the text to keep, exactly as given (any Unicode; at most {max_text:,} characters)",
            ),
        ],
        session: Annotated[
            Name, Field(description="which session's pages to write on; each session has its own pages")
        ] = "default",
        role: Annotated[
            Name | None, Field(description="who said it (e.g. 'user', 'assistant'); shown in the entry header")
        ] = None,
        title: Annotated[Name | None, Field(description="a short title shown in the entry header")] = None,
    ) -> RememberResult:
        """Keep text in long-term memory as rendered page images.

        The text is split into lines on "\\n" and written onto the session's open page after what
        is already there; full pages are sealed and new ones started. The result's `spans` say
        where it went, in order: lines `start`..`end` of page `page_id`. To get the text back,
        call `read_lines(page_id, start, end)` for each span, join each span's lines with "\\n",
        and join consecutive spans with "" when the earlier span has `continues` true (one long
        line carried over to the next page) and with "\\n" otherwise: that reproduces the text
        exactly.

        Memory fades: once newer pages accumulate in a session (or days pass), older sealed
        pages are re-encoded smaller and blurrier, tier by tier (by default hot, warm, cool,
        cold), so they cost fewer image tokens to view but read back less reliably.
        """
        with _tool_errors():
            return _memory(ctx).remember(text, session=session, role=role, title=title)

    @tool(_read_only("List memory pages"))
    def list_pages(
        ctx: Context[AppState, Any],
        session: Annotated[str | None, Field(description="only this session's pages; all sessions if omitted")] = None,
        cursor: Annotated[
            str | None, Field(description="a `next_cursor` from an earlier list_pages call, to continue listing")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=max_list, description="how many pages to return")] = 20,
    ) -> PageList:
        """List memory pages, newest first, with what each holds and what it costs to look at.

        Each page has its session, creation and update times, tier (how far it has faded: hot is
        sharpest, then warm, cool, cold), number of lines and characters, estimated text tokens,
        image size in pixels and bytes, image tokens (Claude units: width * height / 750) and
        title. When more pages remain, `next_cursor` is set: pass it as `cursor` to get the next,
        older ones.
        """
        with _tool_errors():
            return _memory(ctx).list_pages(session=session, cursor=cursor, limit=limit)

    @tool(_read_only("View a memory page"))
    def view_page(
        ctx: Context[AppState, Any],
        page_id: Annotated[str, Field(description="a page id such as 'p12', from remember or list_pages")],
    ) -> Annotated[CallToolResult, PageInfo]:
        """Look at a memory page: its stored image, exactly as kept at its current tier, and a caption.

        The image shows each entry's header row (role, session, time, title) and its lines with
        their line numbers in the left gutter; a line wider than the page wraps onto rows marked
        as continuations in the gutter. Characters the page font cannot draw (CJK, emoji, tabs,
        ...) appear as escapes like ¤9; (the code point in hex), which read_lines decodes. Faded
        pages (past the hot tier) are smaller and blurrier. For exact text, call read_lines with
        the line numbers you see.
        """
        with _tool_errors():
            page = _memory(ctx).view_page(page_id)
        image = ImageContent(type="image", data=base64.b64encode(page.data).decode("ascii"), mime_type=page.mime_type)
        return CallToolResult(
            content=[image, TextContent(type="text", text=page.caption)],
            structured_content=page.info.model_dump(mode="json"),
        )

    @tool(_read_only("Read memory lines"))
    def read_lines(
        ctx: Context[AppState, Any],
        page_id: Annotated[str, Field(description="a page id such as 'p12', from remember or list_pages")],
        start: Annotated[int, Field(ge=1, description="first line number to read (1-based)")] = 1,
        end: Annotated[
            int | None, Field(ge=1, description="last line number to read, inclusive; the page's last line if omitted")
        ] = None,
    ) -> LinesRead:
        """Read lines of a memory page back as text, by OCR of its stored image now.

        Returns the lines `start`..`end` with their numbers, the page's tier and `total_lines`.
        Join lines with "\\n". `continued` means line 1 continues the last line of the previous
        page, and `continues` that the page's last line goes on to the next page: join those
        without a newline. Hot pages read back exactly; faded ones may contain OCR errors.
        """
        with _tool_errors():
            return _memory(ctx).read_lines(page_id, start=start, end=end)

    return server


def _version() -> str:
    try:
        return version("optical-memory")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"
