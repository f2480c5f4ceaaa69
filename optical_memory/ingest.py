"""Remember conversations from other tools: read them with `importers`, write each message as an entry.

Each message becomes one `remember` entry (role, title and original time in its header), in the
message's own session unless one is given. Roles and titles are cut to what a header holds, and a
message longer than `limits.max_text_chars` is written as several entries. Every problem the
importer reported (malformed record, unknown type, ...) is returned with its line number: nothing
is skipped silently.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from optical_memory.importers import Message, Problem, read_messages
from optical_memory.memory import MAX_NAME_CHARS, Memory

__all__ = ["ImportReport", "import_conversations"]

Progress = Callable[[int, int], None]


@dataclass
class ImportReport:
    format: str
    messages: int = 0
    entries: int = 0
    characters: int = 0
    sessions: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    problems: list[dict[str, object]] = field(default_factory=list)


def _label(value: str | None) -> str | None:
    if value is None:
        return None
    clean = "".join(ch if unicodedata.category(ch) not in ("Cc", "Cs", "Cn") else " " for ch in value).strip()
    return clean[:MAX_NAME_CHARS] or None


def import_conversations(
    memory: Memory, path: str | Path, fmt: str = "auto", session: str | None = None, progress: Progress | None = None
) -> ImportReport:
    """Remember every message of the conversation file at `path`; `progress(done, total)` as it goes."""
    from optical_memory.importers import detect_format

    chosen = detect_format(path) if fmt == "auto" else fmt
    records = list(read_messages(path, format=chosen))  # type: ignore[arg-type]
    messages = [r for r in records if isinstance(r, Message)]
    report = ImportReport(format=chosen)
    report.problems = [{"line": r.line, "message": r.message} for r in records if isinstance(r, Problem)]
    limit = memory.config.limits.max_text_chars
    for done, message in enumerate(messages, start=1):
        target = _label(session or message.session) or "import"
        said = datetime.fromisoformat(message.time.replace("Z", "+00:00")) if message.time else None
        for start in range(0, len(message.text), limit):
            result = memory.remember(
                message.text[start : start + limit],
                session=target,
                role=_label(message.role),
                title=_label(message.title),
                said_at=said,
            )
            report.entries += 1
            report.pages.extend(span.page_id for span in result.spans)
        report.messages += 1
        report.characters += len(message.text)
        if target not in report.sessions:
            report.sessions.append(target)
        if progress is not None:
            progress(done, len(messages))
    report.pages = list(dict.fromkeys(report.pages))
    return report
