"""Messages API content (a string or a list of blocks) as readable text.

Shared by the JSONL, Claude Code and claude.ai importers, which all carry this shape. Each block
becomes one piece of text, joined by newlines in block order:

    text          its text
    thinking      "[thinking] ..."                      (an empty one, as signed-only thinking is, is dropped)
    tool_use      "[tool_use Bash] {json input}"
    tool_result   "[tool_result Bash] ..." ("[tool_result Bash error] ..." when is_error); the tool's
                  name comes from the block or, in Claude Code, from the tool_use it answers
    image         "[image: image/png, 1234 bytes]" (bytes of the decoded data), "[image: URL]" for a link
    document      "[document: application/pdf, 1234 bytes]", or its text for a plain-text document
    anything else "[type]", so nothing disappears without a trace
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from optical_memory.importers.base import base64_size

__all__ = ["MAX_DEPTH", "content_text"]

MAX_DEPTH = 16  # tool results nest content in content; real transcripts use two or three levels


def content_text(content: object, tool_names: Mapping[str, str] | None = None, depth: int = 0) -> str:
    """`content` as text; raises ValueError when it is neither a string nor a list of blocks."""
    if depth > MAX_DEPTH:
        raise ValueError(f"content blocks nested more than {MAX_DEPTH} deep")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        raise ValueError(f"content is a {type(content).__name__}, not a string or a list of blocks")
    pieces = [_block_text(block, tool_names or {}, depth) for block in content]
    return "\n".join(piece for piece in pieces if piece)


def _block_text(block: object, tool_names: Mapping[str, str], depth: int) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        raise ValueError(f"a content block is a {type(block).__name__}, not an object")
    kind = block.get("type")
    if kind == "text":
        return _string(block.get("text"), "text block's text")
    if kind == "thinking":
        thinking = _string(block.get("thinking"), "thinking block's thinking")
        return f"[thinking] {thinking}" if thinking else ""
    if kind == "redacted_thinking":
        return "[redacted thinking]"
    if kind in ("tool_use", "server_tool_use"):
        try:
            arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
        except RecursionError:
            raise ValueError("a tool_use input is nested too deeply to write out") from None
        return f"[tool_use {block.get('name') or '?'}] {arguments}"
    if kind == "tool_result" or (isinstance(kind, str) and kind.endswith("_tool_result")):
        name = block.get("name") or tool_names.get(str(block.get("tool_use_id")), "")
        label = " ".join(part for part in ("tool_result", name, "error" if block.get("is_error") else "") if part)
        body = content_text(block.get("content"), tool_names, depth + 1)
        return f"[{label}] {body}" if body else f"[{label}]"
    if kind in ("image", "document"):
        return _media_text(kind, block.get("source"), block.get("title"))
    return f"[{kind}]" if isinstance(kind, str) and kind else "[block without a type]"


def _media_text(kind: str, source: object, title: object) -> str:
    if not isinstance(source, dict):
        return f"[{kind}]"
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        heading = f"[{kind}: {title}]" if isinstance(title, str) and title else f"[{kind}]"
        return f"{heading}\n{source['data']}"
    if isinstance(source.get("url"), str):
        return f"[{kind}: {source['url']}]"
    size = base64_size(source.get("data"))
    media_type = source.get("media_type") or "unknown type"
    if size is None:
        return f"[{kind}: {media_type}]"
    return f"[{kind}: {media_type}, {size} bytes]"


def _string(value: object, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} is a {type(value).__name__}, not a string")
    return value
