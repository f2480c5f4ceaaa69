"""Conversations from other tools as `Message`s to remember: pure parsing, no archive.

One reader per format, each yielding `Message`s in conversation order with a `Problem` for every
part of the input it had to skip (its line where the format has lines), never skipping silently:

    text         plain text / markdown: the file is one message     (text.py)
    jsonl        JSONL of {role, content}                            (jsonl.py)
    claude-code  ~/.claude/projects/<project>/<session>.jsonl        (claude_code.py)
    codex        ~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl        (codex.py)
    claude-ai    the claude.ai export's conversations.json           (claude_ai.py)
    chatgpt      the ChatGPT export's conversations.json             (chatgpt.py)

`FORMATS` is the one list of these names (the CLI's choices and the MCP tool's take it from here).
Every reader takes a `Source`: a path, or the content itself as bytes (`read_content` takes text
too). `read_messages` picks the reader with `detect_format`: by extension, and for .json and .jsonl
(or content without a name) by the records' shape, since both exports name their file
conversations.json.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, get_args

from optical_memory.errors import InvalidArgument
from optical_memory.importers.base import Message, Problem, Record, Source, StrPath, read_json
from optical_memory.importers.chatgpt import read_chatgpt
from optical_memory.importers.claude_ai import read_claude_ai
from optical_memory.importers.claude_code import read_claude_code
from optical_memory.importers.codex import read_codex
from optical_memory.importers.jsonl import read_jsonl
from optical_memory.importers.text import read_text

__all__ = [
    "FORMATS",
    "FORMAT_CHOICES",
    "Format",
    "FormatChoice",
    "Message",
    "Problem",
    "Record",
    "Source",
    "detect_format",
    "read_chatgpt",
    "read_claude_ai",
    "read_claude_code",
    "read_codex",
    "read_content",
    "read_jsonl",
    "read_messages",
    "read_text",
]

Format = Literal["text", "jsonl", "claude-code", "codex", "claude-ai", "chatgpt"]
FormatChoice = Literal["auto"] | Format  # what a caller may ask for: a format, or "auto" to detect it
FORMATS: tuple[Format, ...] = get_args(Format)
FORMAT_CHOICES: tuple[str, ...] = ("auto", *FORMATS)

READERS: dict[Format, Callable[[Source], Iterator[Record]]] = {
    "text": read_text,
    "jsonl": read_jsonl,
    "claude-code": read_claude_code,
    "codex": read_codex,
    "claude-ai": read_claude_ai,
    "chatgpt": read_chatgpt,
}

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
# Where the shape of a JSON export shows: the first conversation's keys sit in its first bytes.
SNIFF_BYTES = 1 << 20
SNIFF_RECORDS = 50
_EXPORT_KEY = re.compile(rb'(?<!\\)"(mapping|chat_messages)"\s*:')
EXPORT_KEYS: dict[str, Format] = {"mapping": "chatgpt", "chat_messages": "claude-ai"}


def detect_format(source: Source) -> Format:
    """The format of `source` (a file, or content as bytes): by extension, then by its records' shape.

    .jsonl (or anything whose lines are JSON objects) is a Claude Code transcript when its records
    carry a `type` and a `uuid`, `sessionId` or `leafUuid`, a Codex rollout when they carry a
    `type` and a `payload` (or it opens with a `session_meta`), plain {role, content} JSONL
    otherwise; .json (or anything starting like JSON) is the ChatGPT export when its conversations
    have a `mapping`, the claude.ai export when they have `chat_messages`. Text and markdown
    extensions, and anything else, are text. A .json file of neither shape raises InvalidArgument.
    """
    suffix = "" if isinstance(source, bytes) else _file(source).suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in JSONL_SUFFIXES:
        return _jsonl_kind(source) or "jsonl"
    head = _head(source)
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
    if start == b"{":
        kind = _jsonl_kind(source)
        if kind:
            return kind
    if suffix == ".json" or start in (b"[", b"{"):
        kind = _export_kind(source, head)
        if kind:
            return kind
    if suffix == ".json" or (isinstance(source, bytes) and start == b"["):
        name = "the content" if isinstance(source, bytes) else str(source)
        raise InvalidArgument(
            f"{name} is neither a ChatGPT export (conversations with 'mapping') nor a claude.ai export "
            f"(conversations with 'chat_messages'); name the format: one of {', '.join(FORMATS)}"
        )
    return "text"


def read_messages(source: Source, format: FormatChoice = "auto") -> Iterator[Record]:
    """The messages of `source` (a file, or bytes of content), in conversation order, with a `Problem` for each skip."""
    if not isinstance(source, bytes):
        _file(source)
    return READERS[resolve_format(source, format)](source)


def read_content(content: str | bytes, format: FormatChoice = "auto") -> Iterator[Record]:
    """The messages of a file's content passed in (text is taken as UTF-8), as `read_messages` gives them."""
    if isinstance(content, str):
        # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, reported with its line
        content = content.encode("utf-8", "surrogatepass")
    return read_messages(content, format)


def resolve_format(source: Source, format: object) -> Format:
    """`format` itself, or the detected one for "auto"; InvalidArgument naming the valid ones otherwise."""
    if format == "auto":
        return detect_format(source)
    if format not in READERS:
        valid = ", ".join(repr(name) for name in FORMAT_CHOICES)
        raise InvalidArgument(f"unknown import format {format!r}; valid formats: {valid}")
    return format  # type: ignore[return-value]  # checked against READERS just above


def _file(path: StrPath) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"{path} is not a file; import takes one file at a time")
    return path


def _head(source: Source) -> bytes:
    if isinstance(source, bytes):
        return source[:SNIFF_BYTES]
    with Path(source).open("rb") as file:
        return file.read(SNIFF_BYTES)


def _export_kind(source: Source, head: bytes) -> Format | None:
    found = _EXPORT_KEY.search(head)
    if found:
        key = found.group(1).decode()
    elif len(head) == SNIFF_BYTES:  # a first conversation too big to sniff: parse the whole file
        data, _ = read_json(source)
        first = data[0] if isinstance(data, list) and data else data
        key = next((name for name in EXPORT_KEYS if isinstance(first, dict) and name in first), "")
    else:
        key = ""
    return EXPORT_KEYS.get(key)


def _jsonl_kind(source: Source) -> Format | None:
    """claude-code, codex or jsonl from the first records that parse; None when none do."""
    seen = 0
    with io.BytesIO(source) if isinstance(source, bytes) else Path(source).open("rb") as file:
        for raw in file:
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep to tell
                continue
            if not isinstance(record, dict):
                continue
            if "type" in record and any(key in record for key in ("uuid", "sessionId", "leafUuid")):
                return "claude-code"
            if record.get("type") == "session_meta" or ("type" in record and "payload" in record):
                return "codex"
            if "role" in record:
                return "jsonl"
            seen += 1
            if seen >= SNIFF_RECORDS:
                break
    return None
