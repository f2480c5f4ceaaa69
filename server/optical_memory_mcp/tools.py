"""The MCP tools: one small function per tool, each a call of one `Memory` facade method.

A tool's parameters are typed and bounded by their annotations, so the SDK rejects a malformed call
with an error naming the argument and what is valid; the facade checks the rest (the configured
limits, page ids, names) and raises an `OpticalMemoryError` whose message says what is valid, which
`tool_errors` hands to the model as the tool's error. The facade's typed results are the tools'
structured output. Tools are synchronous (the SDK runs them on worker threads, and the facade keeps
each LMDB transaction inside one such call), but for import_conversation, which reports progress
from its worker thread. The docstring is the model's manual.

`build_server` (app.py) registers these functions with their annotations and adds the configured
limits to their descriptions.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent
from pydantic import Field

from optical_memory.errors import OpticalMemoryError
from optical_memory.importers import Format
from optical_memory.ingest import ImportResult, import_conversation_content
from optical_memory.memory import MAX_NAME_CHARS, MAX_SEARCH_HITS, Memory
from optical_memory.passages import DEFAULT_CONTEXT, MAX_CONTEXT
from optical_memory.results import (
    EntryRead,
    ForgetResult,
    LinesRead,
    PageInfo,
    PageList,
    RememberResult,
    SearchResult,
    SessionList,
)
from optical_memory.search import MAX_QUERY_CHARS
from optical_memory_mcp.state import AppState

__all__ = [
    "forget",
    "import_conversation",
    "list_pages",
    "list_sessions",
    "read_entry",
    "read_lines",
    "remember",
    "search",
    "tool_errors",
    "view_page",
]

# Page ids are 'p' and a page number; anything longer is refused before the facade parses it.
MAX_ID_CHARS = 64

Ctx = Context[AppState, Any]
PageId = Annotated[
    str,
    Field(min_length=1, max_length=MAX_ID_CHARS, description="a page id such as 'p12' (from remember, list_pages)"),
]
# session, role and title are shown in page headers, so kept short (the facade checks their characters)
SessionName = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_CHARS, description="which session's pages to write on")
]
SessionFilter = Annotated[
    str | None,
    Field(min_length=1, max_length=MAX_NAME_CHARS, description="only this session's pages; all sessions if omitted"),
]


@contextmanager
def tool_errors() -> Iterator[None]:
    """Turn the library's deliberate errors into tool errors the model can act on."""
    try:
        yield
    except OpticalMemoryError as exc:
        raise ToolError(str(exc)) from exc


def _memory(ctx: Ctx) -> Memory:
    return ctx.request_context.lifespan_context.memory


def remember(
    ctx: Ctx,
    text: Annotated[str, Field(min_length=1, description="the text to keep, exactly as given (any Unicode)")],
    session: SessionName = "default",
    role: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_NAME_CHARS,
            description="who said it (e.g. 'user', 'assistant'); shown in the entry header",
        ),
    ] = None,
    title: Annotated[
        str | None,
        Field(min_length=1, max_length=MAX_NAME_CHARS, description="a short title shown in the entry header"),
    ] = None,
) -> RememberResult:
    """Keep text in long-term memory as rendered page images.

    Call it for what is worth keeping beyond this conversation: decisions, facts, results, the
    user's preferences. The text is split into lines on "\\n" and written onto the session's open
    page after what is already there; full pages are sealed and new ones started. The result's
    `spans` say where it went, in order: lines `start`..`end` of page `page_id`. To get the text
    back, call `read_lines(page_id, start, end)` for each span, join each span's lines with "\\n",
    and join consecutive spans with "" when the earlier span has `continues` true (one long line
    carried over to the next page) and with "\\n" otherwise: that reproduces the text exactly.

    Memory fades: once newer pages accumulate in a session (or days pass), older sealed pages
    are re-encoded smaller and blurrier, one tier at a time (by default hot, warm, cool, cold,
    frost), so they cost fewer image tokens to view; read_lines still checks every line against
    the check code kept now and says whether it read it back exactly (`verified`).
    """
    state = ctx.request_context.lifespan_context
    with tool_errors():
        result = state.memory.remember(text, session=session, role=role, title=title, fade=False)
    if result.pages_sealed:
        state.fader.request(session)  # demote off the request path: remember returns once stored
    return result


def list_pages(
    ctx: Ctx,
    session: SessionFilter = None,
    cursor: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_ID_CHARS,
            description="a `next_cursor` from an earlier list_pages call, to continue listing",
        ),
    ] = None,
    limit: Annotated[int, Field(ge=1, description="how many pages to return")] = 20,
) -> PageList:
    """List memory pages, newest first, with what each holds and what it costs to look at.

    Each page has its session, creation and update times, tier (how far it has faded: hot is
    sharpest, then by default warm, cool, cold and frost), number of lines and characters,
    estimated text tokens, image size in pixels and bytes, image tokens (Claude units:
    width * height / 750) and title. When more pages remain, `next_cursor` is set: pass it as
    `cursor` to get the next, older ones.
    """
    with tool_errors():
        return _memory(ctx).list_pages(session=session, cursor=cursor, limit=limit)


def view_page(ctx: Ctx, page_id: PageId) -> Annotated[CallToolResult, PageInfo]:
    """Look at a memory page: its stored image, exactly as kept at its current tier, and a caption.

    The image shows each entry's header row (role, session, time, title) and its lines with
    their line numbers in the left gutter; a line wider than the page wraps onto rows marked
    as continuations in the gutter. Characters the page font cannot draw (CJK, emoji, tabs,
    ...) appear as escapes like ¤9; (the code point in hex), which read_lines decodes. Faded
    pages (past the hot tier) are smaller and blurrier. For exact text, call read_lines with
    the line numbers you see.
    """
    with tool_errors():
        page = _memory(ctx).view_page(page_id)
    image = ImageContent(type="image", data=base64.b64encode(page.data).decode("ascii"), mime_type=page.mime_type)
    return CallToolResult(
        content=[image, TextContent(type="text", text=page.caption)],
        structured_content=page.info.model_dump(mode="json"),
    )


def read_lines(
    ctx: Ctx,
    page_id: PageId,
    start: Annotated[int, Field(ge=1, description="first line number to read (1-based)")] = 1,
    end: Annotated[
        int | None, Field(ge=1, description="last line number to read, inclusive; the page's last line if omitted")
    ] = None,
) -> LinesRead:
    """Read lines of a memory page back as text, by OCR of its stored image now.

    Returns the lines `start`..`end` with their numbers, the page's tier and `total_lines`.
    Join lines with "\\n". `continued` means line 1 continues the last line of the previous
    page, and `continues` that the page's last line goes on to the next page: join those
    without a newline. Each line says whether its text is exact: `verified` true means it
    matches the check code kept when it was remembered; false means no reading matched, the
    text is the reader's best guess and the characters at the `uncertain` columns (0-based) are
    doubtful (`alternative` is the runner-up reading); null means the page has no check codes
    (remembered before they existed), and `uncertain` lists the characters the reader is unsure
    of. Hot pages read back exactly; faded ones may not.
    """
    with tool_errors():
        return _memory(ctx).read_lines(page_id, start=start, end=end)


def read_entry(
    ctx: Ctx,
    page_id: PageId,
    line: Annotated[int, Field(ge=1, description="any line of the entry on that page (1-based)")] = 1,
) -> EntryRead:
    """Read one remembered entry (one remember call, or one imported message) back whole and exact.

    Give any page and line the entry touches (from a search hit or read_lines). The entry is read
    across every page it spans, its spans joined the way remember describes, so `text` is what was
    remembered. `verified` is true when every line matched its check code, false when some did not
    (listed in `unverified_lines` as 'page:line'; read those with read_lines to see the doubtful
    columns), null when a page has no check codes. Also gives the entry's role, time and title.
    """
    with tool_errors():
        return _memory(ctx).read_entry(page_id, line)


def search(
    ctx: Ctx,
    query: Annotated[
        str,
        Field(
            min_length=1,
            description=f"words, identifiers, paths, numbers, hex ids or error codes (at most {MAX_QUERY_CHARS:,} "
            "characters)",
        ),
    ],
    session: Annotated[
        str | None,
        Field(min_length=1, max_length=MAX_NAME_CHARS, description="only this session; all sessions if omitted"),
    ] = None,
    limit: Annotated[int, Field(ge=1, le=MAX_SEARCH_HITS, description="how many hits to return")] = 10,
    context: Annotated[
        int, Field(ge=0, le=MAX_CONTEXT, description="lines shown before and after each matching line")
    ] = DEFAULT_CONTEXT,
) -> SearchResult:
    """Find remembered passages by their words and identifiers, best first.

    Search before answering from memory, and whenever the user refers to something said or done
    earlier. The query is cut into terms the way code and logs are written: `parse_config` also
    matches `parse` and `config`, `ConfigLoader` matches `config` and `loader`, dotted names and
    paths match whole and by component, and numbers, hex ids and error codes match whole. Lines
    are ranked by BM25 weighted by how many of the query's terms they hold (newer pages first on
    ties). Each hit is a passage: lines `start`..`end` of page_id, the matching ones (`matches`)
    with `context` lines around them, the role, time and title of the entry they belong to, the
    page's tier, and each line as OCR reads it now with `verified` (as read_lines gives it), so a
    hit on a faded page shows what memory still holds. Overlapping hits on a page are merged; the
    same line on other pages is folded into one hit (`also_on`, `duplicates`). Use read_entry on a
    hit to get its whole entry, read_lines for more of the page, view_page to see it.
    """
    with tool_errors():
        return _memory(ctx).search(query, session=session, limit=limit, context=context)


def list_sessions(ctx: Ctx) -> SessionList:
    """List the sessions of this memory: name, number of pages, creation and update times.

    Every other tool takes `session` to stay inside one; sessions never share pages.
    """
    with tool_errors():
        return _memory(ctx).list_sessions()


def forget(
    ctx: Ctx,
    page_id: Annotated[
        str | None, Field(min_length=1, max_length=MAX_ID_CHARS, description="forget this one page, e.g. 'p12'")
    ] = None,
    session: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_NAME_CHARS,
            description="forget every page of this session and the session itself",
        ),
    ] = None,
) -> ForgetResult:
    """Forget pages for good: their images, metadata and search terms are erased.

    Give `page_id` to forget one page, or `session` to forget a whole session (with both,
    the page must belong to that session). This cannot be undone.
    """
    with tool_errors():
        return _memory(ctx).forget(page_id=page_id, session=session)


async def import_conversation(
    ctx: Ctx,
    content: Annotated[
        str,
        Field(min_length=1, description="the file's content: a transcript, a chat export, JSONL or plain text"),
    ],
    format: Annotated[
        Literal["auto", Format],  # one flat Literal: a wrong value is told every valid one
        Field(description="what the content is; auto detects it from its shape"),
    ] = "auto",
    session: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_NAME_CHARS,
            description="remember every message in this session (default: the content's own)",
        ),
    ] = None,
) -> ImportResult:
    """Remember a whole conversation from another tool, one entry per message, with progress.

    Accepts a Claude Code session transcript (.jsonl), a Codex rollout (.jsonl), a claude.ai or
    ChatGPT export (conversations.json), JSONL of {role, content} messages, or plain text /
    markdown. Roles and original times are kept, tool calls and results become readable text.
    Messages already remembered (by an earlier import or capture) are skipped and counted in
    `already_remembered`. Records that cannot be read are listed in `problems` with their line
    numbers; the rest is imported.
    The content is passed in, never a path: the server reads no file outside its archive, and
    the content goes straight to the importer, never to a temporary file.
    """
    memory = _memory(ctx)

    def progress(done: int, total: int | None) -> None:  # runs on the worker thread below
        anyio.from_thread.run(ctx.report_progress, done, total)

    def run() -> ImportResult:
        return import_conversation_content(memory, content, format, session, progress)

    with tool_errors():
        return await anyio.to_thread.run_sync(run)
