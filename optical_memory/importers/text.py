"""Plain text and markdown: the whole file is one message, role "document", title the file name.

Why not one message per markdown heading: a note's sections lean on each other, headings are
often not there or not meant as boundaries, and `#` opens a comment line in the code blocks
markdown is full of, so a split would cut some files in the wrong places. One message keeps the
file reading back exactly as written; a caller that wants smaller pieces can split the text.

Line endings become "\\n" (the page encoding would otherwise keep every "\\r") and trailing newlines
are dropped; nothing else changes. `time` is the file's modification time, the only time a plain
file has (content passed in has neither a name nor a time). A file that is not UTF-8 is reported
with the line of its first bad byte and skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from optical_memory.importers.base import Message, Problem, Record, Source, iso_time, source_bytes

__all__ = ["read_text"]


def read_text(source: Source) -> Iterator[Record]:
    """The file (or content) as one `Message(role="document", title=<file name>)`."""
    raw = source_bytes(source).removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        yield Problem(line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); file skipped: convert it to UTF-8")
        return
    text = text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    if not text:
        yield Problem(None, "the file is empty; nothing to import")
        return
    if isinstance(source, bytes):
        yield Message(role="document", text=text)
    else:
        path = Path(source)
        yield Message(role="document", text=text, time=iso_time(path.stat().st_mtime), title=path.name)
