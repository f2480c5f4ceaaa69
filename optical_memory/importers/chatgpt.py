"""The ChatGPT data export: `conversations.json`, a list of conversations holding a `mapping` tree.

Each node of `mapping` has a `message`, a `parent` and `children`; an edit or a regenerated answer
adds a sibling branch. The branch the user last saw ends at `current_node`: it is followed back to
the root through `parent` and emitted root first; other branches are not imported. Without a usable
`current_node` (reported) the last childless node in the mapping is the leaf.

Each conversation is a session named by its `conversation_id` (or `id`), unique and stable where
titles repeat; the title is every message's `title`. Role is `author.role` (user, assistant,
system, tool); time is the message's `create_time` (epoch seconds), None where missing.

Skipped without a report, because every export has them and they hold nothing a reader saw:
nodes without a message (the root), messages with no text (the empty system message that opens
each conversation), messages marked `is_visually_hidden_from_conversation` (system prompts and
custom-instruction context the ChatGPT UI hides), and `reasoning_recap` ("Thought for 12s").

Content types become text: text and multimodal_text parts (an image part as
"[image: file-service://..., N bytes]"), code sent to a tool as "[tool_use python] code", a tool's
answer as "[tool_result python] ...", thoughts as "[thinking] ...", quotes, browsing results,
errors and memory context with a bracketed label; an unknown type keeps whatever text it has, or
reads "[content_type]". A malformed conversation or message is reported with its position and
title (a JSON export has no useful line numbers) and skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from optical_memory.importers.base import Message, Problem, Record, Source, each_conversation, iso_time

__all__ = ["read_chatgpt"]


def read_chatgpt(source: Source) -> Iterator[Record]:
    """Every conversation's active branch, conversation by conversation in file order."""
    return each_conversation(source, _conversation)


def _conversation(index: int, conversation: object) -> Iterator[Record]:
    if not isinstance(conversation, dict):
        yield Problem(None, f"conversation {index} is not an object; skipped")
        return
    raw_title = conversation.get("title")
    title = raw_title if isinstance(raw_title, str) and raw_title else None
    ident = conversation.get("conversation_id") or conversation.get("id")
    session = ident if isinstance(ident, str) and ident else title
    where = f"conversation {index} ({title or session or 'untitled'})"
    mapping = conversation.get("mapping")
    if not isinstance(mapping, dict):
        yield Problem(None, f"{where} has no mapping; skipped")
        return
    leaf = conversation.get("current_node")
    if not isinstance(leaf, str) or leaf not in mapping:
        childless = [key for key, node in mapping.items() if isinstance(node, dict) and not node.get("children")]
        yield Problem(None, f"{where}: current_node {leaf!r} is not in the mapping; following its last leaf")
        leaf = childless[-1] if childless else None

    branch: list[tuple[str, Any]] = []
    seen: set[str] = set()
    while isinstance(leaf, str) and leaf not in seen:
        seen.add(leaf)
        node = mapping.get(leaf)
        if not isinstance(node, dict):
            yield Problem(None, f"{where}: node {leaf} is missing or not an object; the branch starts after it")
            break
        branch.append((leaf, node))
        leaf = node.get("parent")
    branch.reverse()

    for node_id, node in branch:
        message = node.get("message")
        if message is None:
            continue
        label = f"{where}, node {node_id}"
        if not isinstance(message, dict):
            yield Problem(None, f"{label}: message is not an object; skipped")
            continue
        metadata = message.get("metadata")
        if isinstance(metadata, dict) and metadata.get("is_visually_hidden_from_conversation"):
            continue
        author = message.get("author")
        if not isinstance(author, dict) or not isinstance(author.get("role"), str) or not author["role"]:
            yield Problem(None, f"{label}: message has no author.role; skipped")
            continue
        try:
            text = _text(message, author)
        except ValueError as exc:
            yield Problem(None, f"{label}: {exc}; skipped")
            continue
        try:
            time = iso_time(message.get("create_time"))
        except ValueError as exc:
            yield Problem(None, f"{label}: {exc}; message kept without a time")
            time = None
        if text:
            yield Message(role=author["role"], text=text, time=time, session=session, title=title)


def _text(message: dict[str, Any], author: dict[str, Any]) -> str:
    content = message.get("content")
    if not isinstance(content, dict):
        raise ValueError("content is not an object")
    text = _content_text(content)
    if not text:
        return ""
    recipient = message.get("recipient")
    if author.get("role") == "assistant" and isinstance(recipient, str) and recipient not in ("", "all"):
        return f"[tool_use {recipient}] {text}"
    if author.get("role") == "tool":
        name = author.get("name")
        return f"[tool_result {name}] {text}" if isinstance(name, str) and name else f"[tool_result] {text}"
    return text


def _content_text(content: dict[str, Any]) -> str:
    kind = content.get("content_type")
    if kind == "reasoning_recap":
        return ""
    if kind == "thoughts":
        thoughts = content.get("thoughts")
        pieces = [
            "\n".join(_strings(thought.get("summary"), thought.get("content")))
            for thought in (thoughts if isinstance(thoughts, list) else [])
            if isinstance(thought, dict)
        ]
        body = "\n".join(piece for piece in pieces if piece)
        return f"[thinking] {body}" if body else ""
    if kind == "tether_quote":
        source = " ".join(_strings(content.get("title"), content.get("url")))
        return "\n".join(_strings(f"[quote: {source}]", content.get("text")))
    if kind == "system_error":
        label = " ".join(_strings("error", content.get("name")))
        return " ".join(_strings(f"[{label}]", content.get("text")))
    if kind == "user_editable_context":
        body = "\n".join(_strings(content.get("user_profile"), content.get("user_instructions")))
        return f"[custom instructions]\n{body}" if body else ""
    if kind == "model_editable_context":
        memory = content.get("model_set_context")
        return f"[memory] {memory}" if isinstance(memory, str) and memory else ""
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n".join(piece for piece in map(_part_text, parts) if piece)
    found = _strings(content.get("text"), content.get("result"))
    if found:
        return "\n".join(found)
    return f"[{kind}]" if isinstance(kind, str) and kind else ""


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return f"[{type(part).__name__} part]"
    kind = part.get("content_type")
    if kind == "image_asset_pointer":
        pointer = part.get("asset_pointer") or "image"
        size = part.get("size_bytes")
        return f"[image: {pointer}, {size} bytes]" if isinstance(size, int) else f"[image: {pointer}]"
    if isinstance(part.get("text"), str):
        return str(part["text"])
    return f"[{kind}]" if isinstance(kind, str) and kind else "[part]"


def _strings(*values: object) -> list[str]:
    return [value for value in values if isinstance(value, str) and value]
