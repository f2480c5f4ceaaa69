"""JSONL of chat messages: one `{"role": ..., "content": ...}` object a line.

`content` is a string or a list of Messages API blocks (see `blocks`); an optional `timestamp` or
`time` (ISO 8601 or epoch seconds) becomes the message's time, and optional `session` and `title`
strings are kept. Blank lines are ignored. A line that is not JSON, not an object, lacks a role or
content, or has no text is reported with its line number and skipped; an unreadable time is
reported and the message kept without one.
"""

from __future__ import annotations

from collections.abc import Iterator

from optical_memory.importers.base import Message, Problem, Record, Source, iso_time, json_values, jsonl_lines
from optical_memory.importers.blocks import content_text

__all__ = ["read_jsonl"]


def read_jsonl(source: Source) -> Iterator[Record]:
    """Each line's message, in file order."""
    for item in json_values(jsonl_lines(source)):
        if isinstance(item, Problem):
            yield item
            continue
        number, record = item
        yield from _message(number, record)


def _message(number: int, record: object) -> Iterator[Record]:
    if not isinstance(record, dict):
        yield Problem(number, f"a {type(record).__name__}, not a {{role, content}} object; line skipped")
        return
    role = record.get("role")
    if not isinstance(role, str) or not role:
        yield Problem(number, "no role (a non-empty string is needed); line skipped")
        return
    if "content" not in record:
        yield Problem(number, "no content; line skipped")
        return
    try:
        text = content_text(record["content"])
    except ValueError as exc:
        yield Problem(number, f"{exc}; line skipped")
        return
    if not text:
        yield Problem(number, "the message has no text; line skipped")
        return
    stamp = record.get("timestamp", record.get("time"))
    try:
        time = iso_time(stamp)
    except ValueError as exc:
        yield Problem(number, f"{exc}; message kept without a time")
        time = None
    extras: dict[str, str | None] = {}
    for key in ("session", "title"):
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            yield Problem(number, f"{key} is a {type(value).__name__}, not a string; ignored")
            value = None
        extras[key] = value or None
    yield Message(role=role, text=text, time=time, session=extras["session"], title=extras["title"], line=number)
