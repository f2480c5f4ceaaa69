"""Remember conversations from other tools: read them with `importers`, write their messages in batches.

Each message becomes one entry (role, title and original time in its header), in the message's own
session unless one is given; names are cut to what a header holds. A message longer than
`limits.max_text_chars` is written as several entries.

Idempotent: every message has a content key (a keyed hash of session, role, time, text and how
many times that same message came before it in the source), kept in `checkpoints`. A message
whose key is there is not written again, so importing a file twice adds nothing, and importing a
file that grew adds only what is new.

Fast: messages are written `BATCH_MESSAGES` at a time, each batch in ONE transaction
(`Memory.remember_batch`) together with its content keys, so a batch and its checkpoint commit
together or not at all. A batch that fails on one message (too large to lay out) is written again
message by message, and the one that failed is reported as a problem: it never aborts the import.
Every problem the importer reported is returned with its line number; nothing is skipped silently.
Ctrl-C stops between batches' commits: the result says what was imported so far (`interrupted`).
"""

from __future__ import annotations

import functools
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from optical_memory.importers import FormatChoice, Message, Problem, Record, read_content, read_messages, resolve_format

if TYPE_CHECKING:
    from optical_memory.archive import ArchiveTxn
    from optical_memory.checkpoints import Checkpoints
    from optical_memory.memory import Memory
    from optical_memory.results import RememberResult
    from optical_memory.writing import NewEntry

__all__ = [
    "BATCH_MESSAGES",
    "ImportProblem",
    "ImportReport",
    "ImportResult",
    "Progress",
    "ProgressBar",
    "import_conversation_content",
    "import_conversations",
    "import_folder",
    "remember_messages",
]

Progress = Callable[[int, "int | None"], None]  # (messages done, messages in all when known)
# per transaction: large enough that the commit's sync is amortised and that most of a batch's pages
# already have enough newer pages to be due to fade (encoded quickly, `writing`): 1024 imports about
# 20 % more messages per CPU-second than 256
BATCH_MESSAGES = 1024
BATCH_CHARS = 1_000_000  # ... and small enough that one batch's pages stay a few MB in memory
STREAMED = frozenset({"jsonl", "codex"})  # formats read line by line, so an import needs no list of them
MAX_NAME_CHARS = 128  # as `validation.check_name`: a header holds this much
MAX_NAME_BYTES = 400


@dataclass
class ImportProblem:
    """A part of the input that was not imported: its line where the format has lines, and why."""

    line: int | None
    message: str


@dataclass
class ImportResult:
    """What an import did: the typed result of the CLI's `import` and the MCP `import_conversation` tool."""

    format: str
    messages: int = 0  # messages remembered by this import
    entries: int = 0  # entries written (a message over limits.max_text_chars takes several)
    characters: int = 0
    sessions: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    already_remembered: int = 0  # messages skipped because an earlier import or capture wrote them
    interrupted: bool = False  # stopped (Ctrl-C) before the end: what is counted here was committed


ImportReport = ImportResult  # the name it had before it was typed


def import_conversations(
    memory: Memory,
    path: str | Path,
    fmt: FormatChoice | str = "auto",
    session: str | None = None,
    progress: Progress | None = None,
    *,
    fade: bool = True,
) -> ImportResult:
    """Remember every message of the conversation file at `path`; `progress(done, total)` as it goes."""
    chosen = resolve_format(Path(path), fmt)
    records = read_messages(Path(path), chosen)
    listed = records if chosen in STREAMED else list(records)  # the others hold the whole file anyway
    return remember_messages(memory, listed, chosen, session, progress, fade=fade)


def import_folder(
    memory: Memory,
    folder: str | Path,
    fmt: FormatChoice | str = "auto",
    session: str | None = None,
    progress: Progress | None = None,
    *,
    fade: bool = True,
) -> ImportResult:
    """Import every transcript under `folder`: Codex's `~/.codex/sessions`, Claude Code's `~/.claude/projects`.

    Files are `rollout-*.jsonl` where there are any (Codex), else every `*.jsonl`; each is imported
    as `import_conversations` does (so a folder imported again adds only what is new). A file
    that cannot be read is reported as a problem naming it; the others are imported.
    """
    from optical_memory.errors import OpticalMemoryError

    root = Path(folder)
    files = sorted(root.rglob("rollout-*.jsonl")) or sorted(root.rglob("*.jsonl"))
    total = ImportResult(format=str(fmt))
    for path in files:
        try:
            one = import_conversations(memory, path, fmt, session, progress, fade=fade)
        except OpticalMemoryError as exc:
            total.problems.append(ImportProblem(None, f"{path}: {exc}"))
            continue
        total.messages += one.messages
        total.entries += one.entries
        total.characters += one.characters
        total.already_remembered += one.already_remembered
        total.sessions.extend(name for name in one.sessions if name not in total.sessions)
        total.pages.extend(one.pages)
        total.problems.extend(ImportProblem(p.line, f"{path.name}: {p.message}") for p in one.problems)
        if one.interrupted:
            total.interrupted = True
            break
    if not files:
        total.problems.append(ImportProblem(None, f"no .jsonl transcripts under {root}"))
    return total


def import_conversation_content(
    memory: Memory,
    content: str | bytes,
    format: FormatChoice | str = "auto",
    session: str | None = None,
    progress: Progress | None = None,
    *,
    fade: bool = True,
) -> ImportResult:
    """Remember every message of a conversation file's content, passed in (no file is written).

    The MCP tool passes `fade=False` and leaves fading to the server's background fader.
    """
    data = content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content
    chosen = resolve_format(data, format)
    return remember_messages(memory, read_content(data, chosen), chosen, session, progress, fade=fade)


def remember_messages(
    memory: Memory,
    records: Iterable[Record],
    format: str,
    session: str | None = None,
    progress: Progress | None = None,
    *,
    fade: bool = True,
    in_transaction: Callable[[ArchiveTxn, Checkpoints], None] | None = None,
) -> ImportResult:
    """Remember the messages among `records` (problems are reported) that are not remembered yet.

    With `fade`, the sessions written to are faded once at the end (not at every batch); without,
    fading is left to the server's fader. `in_transaction(tx, checkpoints)` runs in the transaction
    of the last batch (`capture` moves its transcript's mark there); it also runs, alone, when
    there is nothing new to write.
    """
    result = ImportResult(format=format)
    batches = _Batches(memory, result, session, progress)
    try:
        if isinstance(records, list):  # known in advance: progress shows how far along
            batches.total = sum(1 for record in records if isinstance(record, Message))
        for record in records:  # else streamed: a JSONL file of a million messages is never all in memory
            if isinstance(record, Problem):
                result.problems.append(ImportProblem(record.line, record.message))
            else:
                batches.add(record)
        batches.flush(in_transaction)
    except KeyboardInterrupt:
        result.interrupted = True
    result.pages = list(dict.fromkeys(result.pages))
    if fade and not result.interrupted:
        batches.fade()
    return result


@dataclass
class _Pending:
    """A message waiting for its batch: its content key and the entries it is written as."""

    message: Message
    session: str
    fields: tuple[str, str, str | None, str, int]  # what its content key hashes
    entries: list[NewEntry]
    key: bytes = b""


class _Raced(Exception):
    """Another process wrote some of this batch's messages (or moved the mark) since we looked."""


class _Batches:
    """Collects messages into batches and writes each in one transaction with its content keys."""

    def __init__(self, memory: Memory, result: ImportResult, session: str | None, progress: Progress | None) -> None:
        self.memory = memory
        self.result = result
        self.session = _label(session) if session else None
        self.progress = progress
        self.total: int | None = None
        self.done = 0
        self.pending: list[_Pending] = []
        self.chars = 0
        self.occurrences: dict[tuple[str, str, str | None, str], int] = {}

    def add(self, message: Message) -> None:
        from optical_memory.writing import NewEntry

        target = self.session or _label(message.session) or "import"
        role = _label(message.role) or "note"
        title = _label(message.title)
        said = _said_at(message.time)
        base = (target, role, message.time, message.text)
        seen_before = self.occurrences.get(base, 0)
        self.occurrences[base] = seen_before + 1
        limit = self.memory.config.limits.max_text_chars
        entries = [
            NewEntry(message.text[start : start + limit], session=target, role=role, title=title, said_at=said)
            for start in range(0, len(message.text), limit)
        ]
        self.pending.append(_Pending(message, target, (*base, seen_before), entries))
        self.chars += len(message.text)
        if len(self.pending) >= BATCH_MESSAGES or self.chars >= BATCH_CHARS:
            self.flush(None)

    def flush(self, in_transaction: Callable[[ArchiveTxn, Checkpoints], None] | None) -> None:
        """Write the pending messages not remembered yet, in one transaction (again if raced)."""
        batch, self.pending, self.chars = self.pending, [], 0
        for _attempt in range(3):
            fresh = self.memory.archive.read(lambda tx: self._unseen(tx, batch))
            try:
                self._write(fresh, in_transaction)
            except _Raced:
                continue
            self.result.already_remembered += len(batch) - len(fresh)
            break
        else:
            self.result.problems.append(
                ImportProblem(batch[0].message.line, "other writers kept importing the same messages; batch skipped")
            )
        self.done += len(batch)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _unseen(self, tx: ArchiveTxn, batch: list[_Pending]) -> list[_Pending]:
        from optical_memory.checkpoints import Checkpoints

        checkpoints = Checkpoints(tx)
        fresh = []
        for item in batch:
            item.key = checkpoints.content_key(*item.fields)
            if not checkpoints.seen(item.key):
                fresh.append(item)
        return fresh

    def _write(self, fresh: list[_Pending], in_transaction: Callable[[ArchiveTxn, Checkpoints], None] | None) -> None:
        from optical_memory.errors import OpticalMemoryError

        if not fresh:
            if in_transaction is not None:
                self.memory.archive.write(lambda tx: self._record(tx, [], [], in_transaction))
            return
        entries = [entry for item in fresh for entry in item.entries]
        try:
            results = self.memory.remember_batch(
                entries, fade=False, in_transaction=lambda tx, res: self._record(tx, fresh, res, in_transaction)
            )
        except OpticalMemoryError as exc:
            if len(fresh) == 1:
                item = fresh[0]
                self.result.problems.append(ImportProblem(item.message.line, f"message not imported: {exc}"))
                return
            for item in fresh:  # one message spoils the batch: write them one by one to find it
                self._write([item], None)
            if in_transaction is not None:
                self._write([], in_transaction)
            return
        self._count(fresh, results)

    def _record(
        self,
        tx: ArchiveTxn,
        fresh: list[_Pending],
        results: list[RememberResult],
        in_transaction: Callable[[ArchiveTxn, Checkpoints], None] | None,
    ) -> None:
        from optical_memory.archive import page_number
        from optical_memory.checkpoints import Checkpoints

        checkpoints = Checkpoints(tx)
        index = 0
        for item in fresh:
            first = results[index]
            index += len(item.entries)
            if checkpoints.seen(item.key):
                raise _Raced
            number = page_number(first.spans[0].page_id)
            assert number is not None
            checkpoints.remember(item.key, number)
        if in_transaction is not None:
            in_transaction(tx, checkpoints)

    def _count(self, fresh: list[_Pending], results: list[RememberResult]) -> None:
        result = self.result
        for item in fresh:
            result.messages += 1
            result.entries += len(item.entries)
            result.characters += len(item.message.text)
            if item.session not in result.sessions:
                result.sessions.append(item.session)
        for written in results:
            result.pages.extend(span.page_id for span in written.spans)

    def fade(self) -> None:
        """Fade the sessions this import wrote to once, at the end, rather than at every batch."""
        from optical_memory.errors import OpticalMemoryError

        for name in self.result.sessions:
            try:
                self.memory.fade(name)
            except OpticalMemoryError as exc:  # stored; fading is retried at the next seal or start
                self.result.problems.append(ImportProblem(None, f"fading session {name!r} failed: {exc}"))


@functools.lru_cache(maxsize=1024)  # roles and sessions repeat: each is cleaned once (3.8 us a message -> 0.3)
def _label(value: str | None) -> str | None:
    """`value` as a valid session, role or title name: control characters blanked, cut to fit."""
    if value is None:
        return None
    clean = "".join(ch if unicodedata.category(ch) not in ("Cc", "Cs", "Cn") else " " for ch in value).strip()
    clean = clean[:MAX_NAME_CHARS]
    while len(clean.encode("utf-8")) > MAX_NAME_BYTES:
        clean = clean[:-1]
    return clean.strip() or None


def _said_at(time: str | None) -> datetime | None:
    return datetime.fromisoformat(time.replace("Z", "+00:00")) if time else None


class ProgressBar:
    """Progress on `stream` with the rate: a bar redrawn in place on a terminal, else a line every few seconds.

    A log file or a pipe gets no carriage-return frames, only whole lines it can keep.
    """

    def __init__(self, stream: TextIO, unit: str = "messages", every_s: float = 5.0) -> None:
        self.stream, self.unit, self.every_s = stream, unit, every_s
        self.terminal = stream.isatty()
        self.started = self.shown = time.monotonic()
        self.done = 0
        self.total: int | None = None
        self.drawn = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.terminal and self.drawn:  # the last frame stays: say how long it all took
            self.stream.write(f" in {time.monotonic() - self.started:.1f} s\n")
        elif not self.terminal and self.done:
            self.stream.write(f"{self._counts()} in {time.monotonic() - self.started:.1f} s, {self._rate()}\n")
        self.stream.flush()

    def update(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        now = time.monotonic()
        if self.terminal and (now - self.shown >= 0.1 or done == total):
            width = 30
            filled = width * done // max(total or done, 1)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self._counts()}  {self._rate()}")
            self.drawn = True
        elif not self.terminal and now - self.shown >= self.every_s:
            self.stream.write(f"{self._counts()}, {self._rate()}\n")
        else:
            return
        self.shown = now
        self.stream.flush()

    def _counts(self) -> str:
        return f"{self.done:,}/{self.total:,} {self.unit}" if self.total is not None else f"{self.done:,} {self.unit}"

    def _rate(self) -> str:
        return f"{self.done / max(time.monotonic() - self.started, 1e-6):,.0f} {self.unit}/s"
