"""The MCP server: the tools (tools.py) and page resources (resources.py) over the `Memory` facade,
with one lifespan (`state.serving`) that both transports run: stdio (stdio.py) and HTTP (http.py).

`build_server` only wires: it registers each tool with its annotations, adds the configured limits
to the descriptions, and writes the server's instructions from the configured tiers, so what the
model reads is true to the config it runs with. Logging goes to stderr: over stdio, stdout carries
nothing but protocol.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from optical_memory.config import Config
from optical_memory.memory import Memory
from optical_memory.tiers import Tier
from optical_memory_mcp import package_version, tools
from optical_memory_mcp.argument_errors import ConciseArgumentErrors
from optical_memory_mcp.resources import IMAGE_URI, INFO_URI, register_resources
from optical_memory_mcp.state import AppState, serving

__all__ = ["AppState", "build_server", "instructions", "max_request_bytes"]


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


def _tier_line(tier: Tier) -> str:
    triggers = []
    if tier.after_pages is not None:
        triggers.append(f"{tier.after_pages} newer pages exist in its session")
    if tier.after_days is not None:
        triggers.append(f"{tier.after_days:g} days have passed since it was sealed")
    when = "once " + " or ".join(triggers) if triggers else "where every page starts"
    return f"- {tier.name}: {tier.scale:.0%} scale, {when}"


def instructions(config: Config) -> str:
    """The server's instructions to the model: when to use which tool, and how to read what comes back."""
    tiers = "\n".join(_tier_line(tier) for tier in config.tiers)
    return f"""\
Long-term memory, kept as page images that fade with age.

When: call `search` before answering anything that may depend on earlier conversations (names,
decisions, identifiers, errors, preferences), and `remember` what is worth keeping beyond this one.

Spans: `remember` returns where the text went as spans (lines start..end of a page). Read each span
with `read_lines`; join a span's lines with "\\n", and consecutive spans with "" when the earlier one
has `continues` true, else with "\\n": that gives the text back exactly. Or call `read_entry` with
any page and line of an entry (a search hit, say) to get the whole entry back, joined for you.

Pages: `list_pages` lists pages newest first (pass `next_cursor` on to page further), `view_page`
shows one page as an image with its line numbers, `read_lines` reads lines back as text by OCR of the
stored image, and `search` finds lines by words and identifiers. `list_sessions` and `forget` manage
what is kept; `import_conversation` remembers a whole transcript or chat export.

Tiers: a sealed page fades one tier at a time, re-stored smaller and blurrier so it costs fewer image
tokens to view; a page's (or search hit's) `tier` says how far it has faded:
{tiers}

Verified: every line read back carries `verified`. true: the text matches the check code kept when it
was remembered, so it is exact. false: no reading matched; the text is the reader's best guess and
the characters at its `uncertain` columns are doubtful. null: the page has no check codes (remembered
before they existed), so exactness is unknown; its `uncertain` columns, if any, are where the reader
is unsure. Hot pages read back exactly.

Resources: {INFO_URI} (a page's metadata) and {IMAGE_URI} (its image, in the page's image_format).
"""


def _limits(config: Config) -> dict[str, str]:
    """What each tool's description adds about the configured limits."""
    limits = config.limits
    return {
        "remember": f"Limits: at most {limits.max_text_chars:,} characters of text and "
        f"{limits.max_pages_per_call:,} pages per call.",
        "list_pages": f"Limits: `limit` at most {limits.max_list_limit:,}.",
    }


def build_server(config: Config, memory: Memory | None = None) -> MCPServer[AppState]:
    """The optical-memory MCP server over `config`'s archive.

    With `memory`, the server uses it and leaves it open (the caller owns it); without, the
    lifespan opens a `Memory` on `config` and closes it when serving ends. The reader is loaded
    lazily by `Memory` on the first read.
    """
    server: MCPServer[AppState] = MCPServer(
        "optical-memory",
        instructions=instructions(config),
        lifespan=lambda _: serving(config, memory),
        version=package_version(),
        middleware=[ConciseArgumentErrors()],
    )
    # With reconsolidation on, read_lines writes what it read onto a fresh page: not read-only then.
    reads_write = config.recall_reconsolidates
    registered: list[tuple[Callable[..., Any], ToolAnnotations]] = [
        (tools.remember, _writes("Remember text")),
        (tools.list_pages, _read_only("List memory pages")),
        (tools.view_page, _read_only("View a memory page")),
        (tools.read_lines, _writes("Read memory lines") if reads_write else _read_only("Read memory lines")),
        (tools.read_entry, _read_only("Read a whole memory entry")),
        (tools.search, _read_only("Search memory")),
        (tools.list_sessions, _read_only("List memory sessions")),
        (tools.forget, _writes("Forget memory pages", destructive=True, idempotent=True)),
        (tools.import_conversation, _writes("Import a conversation")),
    ]
    limits = _limits(config)
    for fn, hints in registered:
        description = inspect.getdoc(fn) or ""
        if fn.__name__ in limits:
            description += "\n\n" + limits[fn.__name__]
        server.add_tool(fn, description=description, annotations=hints)
    register_resources(server)
    return server


def max_request_bytes(config: Config) -> int:
    """The largest request either transport accepts: a remember of the largest allowed text, as
    JSON (up to 6 bytes per character, escaped), plus room for the rest of the message."""
    return config.limits.max_text_chars * 6 + (1 << 20)
