"""The MCP adapter: tools and resources over the `Memory` facade, opened once by one lifespan.

Each tool is a thin, synchronous call of one facade method (the SDK runs sync tools on worker
threads, and the facade keeps every LMDB transaction inside one such call). The facade's typed
results are the tools' structured output; every `OpticalMemoryError` becomes a `ToolError` with
the same message, which already says what was wrong and what is valid. Logging goes to stderr:
over stdio, stdout carries nothing but protocol.

`build_server` is written without `from __future__ import annotations`: the tools are closures
whose parameter annotations use the configured limits, and the SDK resolves them at registration.
"""

import base64
import dataclasses
import inspect
import json
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import Field, StringConstraints

from optical_memory.config import Config
from optical_memory.errors import OpticalMemoryError
from optical_memory.fading import BackgroundFader
from optical_memory.memory import MAX_NAME_CHARS, MAX_SEARCH_HITS, Memory
from optical_memory.results import (
    ForgetResult,
    LinesRead,
    PageInfo,
    PageList,
    RememberResult,
    SearchResult,
    SessionList,
)
from optical_memory.tiers import MIME_TYPES

__all__ = ["AppState", "build_server"]

log = logging.getLogger(__name__)

_Fn = TypeVar("_Fn", bound=Callable[..., Any])

INSTRUCTIONS = """\
Long-term memory kept as page images. `remember` lays text onto pages of a session and returns
where it went (spans of line numbers per page). `list_pages` shows pages newest first,
`view_page` shows one page as an image (older pages fade: they are stored smaller and blurrier
and cost fewer image tokens), and `read_lines` reads lines of a page back as text by OCR (exact
on pages that have not faded). `search` finds lines by words and identifiers; `list_sessions`
and `forget` manage what is kept. Pages are also resources: optical-memory://pages/{page_id}/info
(metadata) and optical-memory://pages/{page_id}/image.{image_format} (the image).
"""


@dataclass(frozen=True)
class AppState:
    """What the lifespan yields to every tool call."""

    memory: Memory
    fader: BackgroundFader  # demotes pages off the request path, so remember returns once stored


# session, role and title: shown in page headers, so kept short (the facade checks the rest)
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]


def _read_only(title: str) -> ToolAnnotations:
    return ToolAnnotations(title=title, read_only_hint=True, idempotent_hint=True, open_world_hint=False)


def _writes(title: str, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=False,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


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
            fader = BackgroundFader(memory.fade)
            try:
                yield AppState(memory, fader)
            finally:
                await anyio.to_thread.run_sync(fader.close)
            return
        # Opening may wait (bounded) while another process opens or resizes the archive.
        opened = await anyio.to_thread.run_sync(Memory, config)
        log.info("optical-memory archive open at %s", config.archive.path)
        fader = BackgroundFader(opened.fade)
        fader.request(None)  # pages that aged past a tier while no server ran fade now, off the request path
        try:
            yield AppState(opened, fader)
        finally:
            await anyio.to_thread.run_sync(fader.close)
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

    @tool(_writes("Remember text"))
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
            state = ctx.request_context.lifespan_context
            result = state.memory.remember(text, session=session, role=role, title=title, fade=False)
            if result.pages_sealed:
                state.fader.request(session)
            return result

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

    @tool(_read_only("Search memory"))
    def search(
        ctx: Context[AppState, Any],
        query: Annotated[
            str, Field(min_length=1, description="words, identifiers, paths, numbers, hex ids or error codes")
        ],
        session: Annotated[str | None, Field(description="only this session; all sessions if omitted")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_SEARCH_HITS, description="how many hits to return")] = 10,
    ) -> SearchResult:
        """Find remembered lines by their words and identifiers, best first.

        The query is cut into terms the way code and logs are written: `parse_config` also
        matches `parse` and `config`, `ConfigLoader` matches `config` and `loader`, dotted names
        and paths match whole and by component, and numbers, hex ids and error codes match whole.
        Lines are ranked by BM25 (newer pages first on ties). Each hit gives page_id, line numbers,
        tier and the lines as OCR reads them now, so a hit on a faded page shows what memory
        still holds. Use read_lines around a hit for context, or view_page to see the page.
        """
        with _tool_errors():
            return _memory(ctx).search(query, session=session, limit=limit)

    @tool(_read_only("List memory sessions"))
    def list_sessions(ctx: Context[AppState, Any]) -> SessionList:
        """List the sessions of this memory: name, number of pages, creation and update times.

        Every other tool takes `session` to stay inside one; sessions never share pages.
        """
        with _tool_errors():
            return _memory(ctx).list_sessions()

    @tool(_writes("Forget memory pages", destructive=True, idempotent=True))
    def forget(
        ctx: Context[AppState, Any],
        page_id: Annotated[str | None, Field(description="forget this one page, e.g. 'p12'")] = None,
        session: Annotated[
            str | None, Field(description="forget every page of this session and the session itself")
        ] = None,
    ) -> ForgetResult:
        """Forget pages for good: their images, metadata and search terms are deleted.

        Give `page_id` to forget one page, or `session` to forget a whole session (with both,
        the page must belong to that session). This cannot be undone.
        """
        with _tool_errors():
            return _memory(ctx).forget(page_id=page_id, session=session)

    @tool(_writes("Import a conversation"))
    async def import_conversation(
        ctx: Context[AppState, Any],
        content: Annotated[
            str,
            Field(min_length=1, description="the file's content: a transcript, a chat export, JSONL or plain text"),
        ],
        format: Annotated[
            Literal["auto", "text", "jsonl", "claude-code", "claude-ai", "chatgpt"],
            Field(description="what the content is; auto detects it from its shape"),
        ] = "auto",
        session: Annotated[
            Name | None, Field(description="remember every message in this session (default: the content's own)")
        ] = None,
    ) -> dict[str, Any]:
        """Remember a whole conversation from another tool, one entry per message, with progress.

        Accepts a Claude Code session transcript (.jsonl), a claude.ai or ChatGPT export
        (conversations.json), JSONL of {role, content} messages, or plain text / markdown. Roles
        and original times are kept, tool calls and results become readable text. Records that
        cannot be read are listed in `problems` with their line numbers; the rest is imported.
        The content is passed in, never a path: the server reads no file outside its archive.
        """
        memory = _memory(ctx)
        suffix = _suffix_for(content, format)

        def progress(done: int, total: int) -> None:  # runs on the worker thread below
            anyio.from_thread.run(ctx.report_progress, done, total)

        def run() -> dict[str, Any]:
            from optical_memory.ingest import import_conversations

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"conversation{suffix}"
                path.write_text(content, encoding="utf-8", errors="surrogatepass")
                return dataclasses.asdict(import_conversations(memory, path, format, session, progress))

        with _tool_errors():
            return await anyio.to_thread.run_sync(run)

    _register_resources(server)
    return server


def _suffix_for(content: str, fmt: str) -> str:
    """A file name suffix that lets the importers' detection see what `content` is."""
    if fmt in ("claude-code", "jsonl"):
        return ".jsonl"
    if fmt in ("claude-ai", "chatgpt"):
        return ".json"
    if fmt == "text":
        return ".md"
    stripped = content.lstrip()
    if stripped.startswith("["):
        return ".json"
    if stripped.startswith("{"):
        first = stripped.split("\n", 1)[0]
        try:
            json.loads(first)
            return ".jsonl"
        except ValueError:
            return ".json"
    return ".md"


def _register_resources(server: MCPServer[AppState]) -> None:
    """Pages as resources, so a client can link to a page instead of inlining it.

    ``optical-memory://pages/{page_id}/info`` is the page's metadata (JSON, as list_pages gives it);
    ``optical-memory://pages/{page_id}/image.png`` (or ``.webp``, ``.jpeg``: the page's
    `image_format`) is its stored image.
    """

    @server.resource(
        "optical-memory://pages/{page_id}/info",
        name="page",
        description="A memory page's metadata, as list_pages reports it",
        mime_type="application/json",
    )
    def page_metadata(page_id: str, ctx: Context[AppState, Any]) -> str:
        try:
            return _memory(ctx).page_info(page_id).model_dump_json()
        except OpticalMemoryError as exc:
            raise ResourceError(str(exc)) from exc

    def image_reader(codec: str) -> Callable[[str, Context[AppState, Any]], bytes]:
        def page_image(page_id: str, ctx: Context[AppState, Any]) -> bytes:
            try:
                page = _memory(ctx).view_page(page_id)
            except OpticalMemoryError as exc:
                raise ResourceError(str(exc)) from exc
            if page.info.image_format != codec:
                fmt = page.info.image_format
                raise ResourceError(
                    f"page {page_id} is stored as {fmt}; read optical-memory://pages/{page_id}/image.{fmt}"
                )
            return page.data

        return page_image

    for codec, mime in MIME_TYPES.items():
        server.resource(
            f"optical-memory://pages/{{page_id}}/image.{codec}",
            name=f"page-image-{codec}",
            description=f"A memory page's stored image, for pages whose image_format is {codec}",
            mime_type=mime,
        )(image_reader(codec))


def _version() -> str:
    try:
        return version("optical-memory")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"
