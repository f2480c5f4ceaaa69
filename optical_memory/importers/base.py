"""The records every importer yields, and the small helpers they share.

An importer reads a `Source`: a path, or the file's content as bytes (the MCP tool passes content,
never a path). It turns it into `Message`s in conversation order, with a `Problem` in between for
each part of the input it could not read (and skipped). Problems name a 1-based line of the file
where one is meaningful (JSONL, a JSON syntax error) and `None` otherwise (a record deep inside a
JSON export), in which case the message says which conversation and message it was.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "Lines",
    "Message",
    "Problem",
    "Record",
    "Source",
    "StrPath",
    "base64_size",
    "conversations",
    "each_conversation",
    "iso_time",
    "json_values",
    "jsonl_lines",
    "parse_json_line",
    "read_json",
    "source_bytes",
]

StrPath = str | os.PathLike[str]
Source = StrPath | bytes  # bytes: the content itself; anything else names a file
Lines = Iterable[tuple[int, str | None, str | None]]  # (line number, text, error), as `jsonl_lines` gives them


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation, ready for `Memory.remember`: `text` is never empty.

    `time` is ISO 8601 UTC to the second ("2025-06-02T18:46:59Z") when the source records one;
    `session` and `title` are `None` where the format has no such notion (the caller picks).
    """

    role: str
    text: str
    time: str | None = None
    session: str | None = None
    title: str | None = None
    line: int | None = field(default=None, compare=False)  # where it starts in the file, where that means something


@dataclass(frozen=True, slots=True)
class Problem:
    """A part of the input that could not be imported and was skipped: where, and why."""

    line: int | None
    message: str


Record = Message | Problem

# Epoch numbers past this are milliseconds: as seconds they would lie beyond the year 5138.
_MILLISECONDS_FROM = 1e11


def iso_time(value: object) -> str | None:
    """`value` (an ISO 8601 string or epoch seconds/milliseconds) as "YYYY-MM-DDTHH:MM:SSZ" in UTC.

    A time without a zone is taken as UTC; fractions of a second are dropped. Raises ValueError
    for anything else, so the importer can report it; `None` and "" mean "not recorded".
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        try:  # a 400-digit integer overflows already in the division
            seconds = value / 1000 if abs(value) >= _MILLISECONDS_FROM else value
            moment = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            shown = repr(value) if abs(value) < 1e30 else "of more than 30 digits"
            raise ValueError(f"epoch time {shown} is out of range") from exc
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value[:64]!r}") from None
        except OverflowError:  # 9999-12-31T23:00-05:00 is past the last UTC moment Python can hold
            raise ValueError(f"time {value[:64]!r} is out of range") from None
    else:
        raise ValueError(f"not a time: {value!r}")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def base64_size(data: object) -> int | None:
    """Decoded size in bytes of base64 `data` (counted, not decoded), or None when it is not a string."""
    if not isinstance(data, str):
        return None
    digits = "".join(data.split())
    padding = len(digits) - len(digits.rstrip("="))
    return len(digits) * 3 // 4 - padding


def source_bytes(source: Source) -> bytes:
    """The content of `source`: itself when bytes, else the file it names."""
    return source if isinstance(source, bytes) else Path(source).read_bytes()


def jsonl_lines(source: Source, first: int = 1) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, error) for each non-blank line of `source`, decoded as UTF-8 one line at a time.

    A line that is not UTF-8 comes back with `text=None` and the reason, so one bad line costs only
    itself. A UTF-8 byte order mark on the file's first line is dropped. `first` is the number of
    `source`'s first line (capture reads a transcript from a byte offset: 1 is the file's start).
    """
    with io.BytesIO(source) if isinstance(source, bytes) else Path(source).open("rb") as file:
        for number, raw in enumerate(file, start=first):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, None, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                continue
            if text.strip():
                yield number, text, None


def parse_json_line(number: int, line: str) -> tuple[object, Problem | None]:
    """One JSONL line's value, or None and the Problem that says why the line is skipped."""
    try:
        return json.loads(line), None
    except json.JSONDecodeError as exc:
        return None, Problem(number, f"not valid JSON ({exc.msg} at column {exc.colno}); line skipped")
    except RecursionError:
        return None, Problem(number, "JSON nested too deeply to read (over about 1,000 levels); line skipped")


def json_values(lines: Lines) -> Iterator[tuple[int, object] | Problem]:
    """Each line's JSON value with its number, or the Problem that says why the line is skipped."""
    for number, line, error in lines:
        if line is None:
            yield Problem(number, f"{error}; line skipped")
            continue
        value, problem = parse_json_line(number, line)
        yield problem if problem is not None else (number, value)


def read_json(source: Source) -> tuple[object, Problem | None]:
    """The JSON document in `source`, or None and a Problem naming the line where it stops parsing."""
    raw = source_bytes(source)
    try:
        return json.loads(raw.decode("utf-8-sig")), None
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return None, Problem(line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); nothing imported")
    except json.JSONDecodeError as exc:
        return None, Problem(exc.lineno, f"not valid JSON ({exc.msg} at column {exc.colno}); nothing imported")
    except RecursionError:
        return None, Problem(None, "JSON nested too deeply to read (over about 1,000 levels); nothing imported")


def conversations(data: object) -> tuple[list[object], Problem | None]:
    """An export's list of conversations (a lone conversation object counts as a list of one)."""
    if isinstance(data, dict):
        return [data], None
    if isinstance(data, list):
        return data, None
    return [], Problem(None, f"the file holds a JSON {type(data).__name__}, not a list of conversations")


def each_conversation(source: Source, read_one: Callable[[int, object], Iterator[Record]]) -> Iterator[Record]:
    """Parse a JSON export and run `read_one(index, conversation)` over its conversations (1-based)."""
    data, problem = read_json(source)
    if problem:
        yield problem
        return
    items, problem = conversations(data)
    if problem:
        yield problem
    for index, conversation in enumerate(items, start=1):
        yield from read_one(index, conversation)
