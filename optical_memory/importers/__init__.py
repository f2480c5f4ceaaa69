"""Conversations from other tools as `Message`s to remember: pure parsing, no archive.

One reader per format, each yielding `Message`s in conversation order with a `Problem` for every
part of the input it had to skip (its line where the format has lines), never skipping silently:

    text         plain text / markdown: the file is one message     (text.py)
    jsonl        JSONL of {role, content}                            (jsonl.py)
    claude-code  ~/.claude/projects/<project>/<session>.jsonl        (claude_code.py)
    claude-ai    the claude.ai export's conversations.json           (claude_ai.py)
    chatgpt      the ChatGPT export's conversations.json             (chatgpt.py)

`read_messages(path)` picks the reader with `detect_format`: by extension, and for .json and
.jsonl by the records' shape, since both exports name their file conversations.json.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, get_args

from optical_memory.errors import InvalidArgument
from optical_memory.importers.base import Message, Problem, Record, StrPath, read_json
from optical_memory.importers.chatgpt import read_chatgpt
from optical_memory.importers.claude_ai import read_claude_ai
from optical_memory.importers.claude_code import read_claude_code
from optical_memory.importers.jsonl import read_jsonl
from optical_memory.importers.text import read_text

__all__ = [
    "FORMATS",
    "Format",
    "Message",
    "Problem",
    "Record",
    "detect_format",
    "read_chatgpt",
    "read_claude_ai",
    "read_claude_code",
    "read_jsonl",
    "read_messages",
    "read_text",
]

Format = Literal["text", "jsonl", "claude-code", "claude-ai", "chatgpt"]
FORMATS: tuple[Format, ...] = get_args(Format)

READERS: dict[Format, Callable[[StrPath], Iterator[Record]]] = {
    "text": read_text,
    "jsonl": read_jsonl,
    "claude-code": read_claude_code,
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


def detect_format(path: StrPath) -> Format:
    """The format of the file at `path`: by extension, then by the shape of its records.

    .jsonl (or any file whose lines are JSON objects) is a Claude Code transcript when its records
    carry a `type` and a `uuid`, `sessionId` or `leafUuid`, plain {role, content} JSONL otherwise;
    .json (or any file starting like JSON) is the ChatGPT export when its conversations have a
    `mapping`, the claude.ai export when they have `chat_messages`. Text and markdown extensions,
    and anything else, are text. A .json file of neither shape raises InvalidArgument.
    """
    path = _file(path)
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in JSONL_SUFFIXES:
        return _jsonl_kind(path) or "jsonl"
    head = _head(path)
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
    if start == b"{":
        kind = _jsonl_kind(path)
        if kind:
            return kind
    if suffix == ".json" or start in (b"[", b"{"):
        kind = _export_kind(path, head)
        if kind:
            return kind
    if suffix == ".json":
        raise InvalidArgument(
            f"{path} is neither a ChatGPT export (conversations with 'mapping') nor a claude.ai export "
            f"(conversations with 'chat_messages'); name the format: one of {', '.join(FORMATS)}"
        )
    return "text"


def read_messages(path: StrPath, format: Format | Literal["auto"] = "auto") -> Iterator[Record]:
    """The messages of the file at `path`, in conversation order, with a `Problem` for each skip."""
    _file(path)
    if format == "auto":
        format = detect_format(path)
    elif format not in READERS:
        valid = ", ".join(repr(name) for name in ("auto", *FORMATS))
        raise InvalidArgument(f"unknown import format {format!r}; valid formats: {valid}")
    return READERS[format](path)


def _file(path: StrPath) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InvalidArgument(f"{path} is not a file; import takes one file at a time")
    return path


def _head(path: Path) -> bytes:
    with path.open("rb") as file:
        return file.read(SNIFF_BYTES)


def _export_kind(path: Path, head: bytes) -> Format | None:
    found = _EXPORT_KEY.search(head)
    if found:
        key = found.group(1).decode()
    elif len(head) == SNIFF_BYTES:  # a first conversation too big to sniff: parse the whole file
        data, _ = read_json(path)
        first = data[0] if isinstance(data, list) and data else data
        key = next((name for name in EXPORT_KEYS if isinstance(first, dict) and name in first), "")
    else:
        key = ""
    return EXPORT_KEYS.get(key)


def _jsonl_kind(path: Path) -> Format | None:
    """claude-code or jsonl from the first records that parse; None when none do."""
    seen = 0
    with path.open("rb") as file:
        for raw in file:
            try:
                record = json.loads(raw)
            except ValueError:  # not JSON, or not UTF-8
                continue
            if not isinstance(record, dict):
                continue
            if "type" in record and any(key in record for key in ("uuid", "sessionId", "leafUuid")):
                return "claude-code"
            if "role" in record:
                return "jsonl"
            seen += 1
            if seen >= SNIFF_RECORDS:
                break
    return None
