"""The claude.ai data export: `conversations.json`, a list of conversations with `chat_messages`.

Each conversation (`uuid`, `name`, `created_at`, `chat_messages`) becomes its own session, named
by its uuid: names repeat ("Untitled", the same question asked twice) and change on rename, while
the uuid is unique and stable, so importing a later export lands in the same session. The name is
every message's `title`.

A message's `sender` "human" becomes role "user" (the word every other importer uses) and
"assistant" stays; its time is `created_at`. Its text comes from the `content` blocks of newer
exports (thinking and tool use included, rendered as `blocks` says) and from `text` where there are
none; pasted attachments follow as "[attachment: NAME]" and their extracted text, other files as
"[file: NAME]". Messages are in list order, unless `parent_message_uuid` shows the conversation
branches (an edit or a retry): then only the branch ending at the last message is kept, root first.
Messages with no text at all are skipped; anything unreadable is reported with the conversation's
position and name (a JSON export has no useful line numbers) and skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from optical_memory.importers.base import Message, Problem, Record, Source, each_conversation, iso_time
from optical_memory.importers.blocks import content_text

__all__ = ["read_claude_ai"]

ROLES = {"human": "user", "assistant": "assistant"}


def read_claude_ai(source: Source) -> Iterator[Record]:
    """Every conversation's messages, conversation by conversation in file order."""
    return each_conversation(source, _conversation)


def _conversation(index: int, conversation: object) -> Iterator[Record]:
    if not isinstance(conversation, dict):
        yield Problem(None, f"conversation {index} is not an object; skipped")
        return
    uuid, name = conversation.get("uuid"), conversation.get("name")
    title = name if isinstance(name, str) and name else None
    session = uuid if isinstance(uuid, str) and uuid else title
    where = f"conversation {index} ({title or session or 'unnamed'})"
    messages = conversation.get("chat_messages")
    if not isinstance(messages, list):
        yield Problem(None, f"{where} has no chat_messages list; skipped")
        return
    for position, message in _active_branch(messages):
        label = f"{where}, message {position}"
        if not isinstance(message, dict):
            yield Problem(None, f"{label} is not an object; skipped")
            continue
        sender = message.get("sender")
        if not isinstance(sender, str) or not sender:
            yield Problem(None, f"{label} has no sender; skipped")
            continue
        try:
            text = _text(message)
        except ValueError as exc:
            yield Problem(None, f"{label}: {exc}; skipped")
            continue
        try:
            time = iso_time(message.get("created_at"))
        except ValueError as exc:
            yield Problem(None, f"{label}: {exc}; message kept without a time")
            time = None
        if text:
            yield Message(role=ROLES.get(sender, sender), text=text, time=time, session=session, title=title)


def _active_branch(messages: list[Any]) -> list[tuple[int, Any]]:
    """(1-based position, message) along the branch that ends at the last message, root first."""
    numbered = list(enumerate(messages, start=1))
    parents = Counter(_parent(m) for m in messages)
    if not any(count > 1 for parent, count in parents.items() if parent):
        return numbered  # no branches: the list is the conversation
    by_uuid = {m["uuid"]: (i, m) for i, m in numbered if isinstance(m, dict) and isinstance(m.get("uuid"), str)}
    branch: list[tuple[int, Any]] = []
    seen: set[str] = set()
    current: tuple[int, Any] | None = numbered[-1]
    while current is not None:
        branch.append(current)
        parent = _parent(current[1])
        if parent is None or parent in seen:
            break
        seen.add(parent)
        current = by_uuid.get(parent)
    branch.reverse()
    return branch


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    text = content_text(content) if isinstance(content, list) and content else ""
    if not text:
        plain = message.get("text")
        if plain is not None and not isinstance(plain, str):
            raise ValueError(f"text is a {type(plain).__name__}, not a string")
        text = plain or ""
    pieces = [text]
    for attachment in _list(message.get("attachments")):
        if isinstance(attachment, dict):
            name = attachment.get("file_name") or "unnamed"
            extracted = attachment.get("extracted_content")
            pieces.append(f"[attachment: {name}]\n{extracted}" if extracted else f"[attachment: {name}]")
    for file in _list(message.get("files")):
        if isinstance(file, dict):
            pieces.append(f"[file: {file.get('file_name') or 'unnamed'}]")
    return "\n".join(piece for piece in pieces if piece)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _parent(message: object) -> str | None:
    parent = message.get("parent_message_uuid") if isinstance(message, dict) else None
    return parent if isinstance(parent, str) else None
