"""Capture a coding agent's session as it goes: remember only the turns a transcript grew by.

`optical-memory capture` runs as a Claude Code hook (Stop, PreCompact, SessionEnd): Claude Code
passes a JSON payload on stdin naming the transcript (`transcript_path`, plus `session_id`, `cwd`,
`hook_event_name`). It also takes `--transcript PATH`, for a Claude Code transcript or a Codex
rollout file (`~/.codex/sessions/**/rollout-*.jsonl`).

How a capture stays small and exact:

* The archive keeps a mark per transcript (`checkpoints.Mark`): the byte offset up to which it was
  captured and a hash of the last line taken. A capture reads the file from the start of that line:
  when the line is still there it reads on from the offset (a few turns, however long the file),
  otherwise the file was rewritten and it reads it whole. Only complete lines are taken: a line
  still being written is left for the next capture.
* Every message also has a content key (`ingest`), so reading a rewritten or compacted file whole
  adds only what is new, and a rerun adds nothing.
* The new turns and the moved mark are written in one transaction; a capture that finds the mark
  moved by another (a Stop and a SessionEnd hook at once) starts over from the new mark. A hook
  (`spool_transcript`) writes the turns, as read, into the spool with the mark, and a drainer lays
  them onto pages (`spool`); `capture_transcript` (by hand, or a fallback) lays them out at once.
* Turns go to the session named after the project, the transcript's working directory
  (`project_session`: "~/src/shop"), the same for every transcript of that project, whichever agent
  wrote it.

The command, which never fails the agent, is `capture_hook`. Fading is left to the server (or the
next one to start), so a capture costs only its own turns.

This module imports only the standard library at load, and the spooling path only the archive and
the importers' parsers: a hook starts a fresh process each time, and numpy, Pillow, pydantic and
the reader would cost more than the capture.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optical_memory.archive import Archive, ArchiveTxn
    from optical_memory.checkpoints import Checkpoints, Mark
    from optical_memory.memory import Memory

__all__ = ["CaptureResult", "capture_transcript", "project_session", "spool_transcript"]

FORMATS = ("claude-code", "codex")
_CWD_SCAN_LINES = 50


@dataclass
class CaptureResult:
    """What one capture did."""

    transcript: str
    format: str
    session: str
    messages: int = 0  # turns remembered now
    already_remembered: int = 0  # turns read again that were remembered before (a rewritten file)
    read_from: int = 0  # the byte offset reading started at
    read_to: int = 0  # the new mark: bytes of the file now captured
    rewritten: bool = False  # the file no longer matched its mark and was read whole
    problems: list[dict[str, Any]] = field(default_factory=list)
    spooled: bool = False  # the turns went to the spool: a drainer remembers them within about a second


class _MarkMoved(Exception):
    """Another capture of the same transcript committed since this one read the mark."""


def project_session(cwd: str) -> str:
    """The session a project's turns go to: its folder, with the home folder as "~" ("~/src/shop")."""
    path = cwd.rstrip("/\\") or cwd
    home = str(Path.home())
    if path == home or path.startswith(home.rstrip("/\\") + os.sep):
        path = "~" + path[len(home.rstrip("/\\")) :]
    clean = "".join(ch if ch.isprintable() else " " for ch in path).strip() or "capture"
    while len(clean) > 128 or len(clean.encode("utf-8")) > 400:  # what a session name may hold
        clean = "…" + clean[2:]
    return clean


def capture_transcript(
    memory: Memory,
    path: str | os.PathLike[str],
    *,
    session: str | None = None,
    fmt: str | None = None,
    cwd: str | None = None,
) -> CaptureResult:
    """Remember the turns `path` grew by since its last capture (all of it the first time).

    The session is `session`, else the project's (`project_session` of the working directory the
    transcript names, else of `cwd`, the hook payload's). Turns that hooks spooled are remembered
    first (`spool.drain`).
    """
    from optical_memory.errors import InvalidArgument
    from optical_memory.spool import drain

    transcript = Path(path).expanduser().absolute()
    if not transcript.is_file():
        raise InvalidArgument(f"transcript {transcript} is not a file")
    drain(memory, wait=True)  # turns hooks spooled go first, so pages keep the transcript's order
    for _attempt in range(5):
        try:
            return _capture_once(memory, transcript, session, fmt, cwd)
        except _MarkMoved:
            continue
    raise InvalidArgument(f"transcript {transcript} kept changing under other captures; try again")


@dataclass
class _NewLines:
    """What a capture read: the transcript's mark, the complete lines it grew by, and the mark to move to."""

    mark: Mark | None
    result: CaptureResult
    data: bytes
    lines_before: int
    new_mark: Mark | None  # None when there is nothing new
    spool_waiting: bool = False  # the spool held captures already (a drainer may have died)


def _read_new(archive: Archive, transcript: Path, session: str | None, fmt: str | None, cwd: str | None) -> _NewLines:
    from optical_memory.checkpoints import Checkpoints, Mark, line_hash

    source = str(transcript)

    def look(tx: ArchiveTxn) -> tuple[Mark | None, bool]:
        checkpoints = Checkpoints(tx)
        return checkpoints.mark(source), checkpoints.spooled_after(0) is not None

    mark, waiting = archive.read(look)
    with transcript.open("rb") as file:
        start, lines_before, rewritten = _resume_point(file, mark)
        file.seek(start)
        data = file.read()
    data = data[: data.rfind(b"\n") + 1]  # complete lines only: the last may still be being written
    known = mark is not None and not rewritten
    chosen = fmt or (mark.format if known and mark else None) or _detect(data)
    target = (
        session
        or (mark.session if known and mark else None)
        or project_session(_cwd(data) or cwd or str(transcript.parent))
    )
    result = CaptureResult(source, chosen, target, read_from=start, read_to=start + len(data), rewritten=rewritten)
    if not data:
        return _NewLines(mark, result, data, lines_before, None, waiting)
    last_start = data.rfind(b"\n", 0, len(data) - 1) + 1
    new_mark = Mark(
        offset=start + len(data),
        line_start=start + last_start,
        line_hash=line_hash(data[last_start:]),
        lines=lines_before + data.count(b"\n"),
        session=target,
        format=chosen,
        uuid=_uuid(data[last_start:]),
    )
    return _NewLines(mark, result, data, lines_before, new_mark, waiting)


def _capture_once(
    memory: Memory, transcript: Path, session: str | None, fmt: str | None, cwd: str | None
) -> CaptureResult:
    from optical_memory.ingest import remember_messages

    new = _read_new(memory.archive, transcript, session, fmt, cwd)
    result = new.result
    if new.new_mark is None:
        return result
    new_mark = new.new_mark

    def move_mark(tx: ArchiveTxn, checkpoints: Checkpoints) -> None:
        if checkpoints.mark(result.transcript) != new.mark:
            raise _MarkMoved
        checkpoints.put_mark(result.transcript, new_mark)

    imported = remember_messages(
        memory,
        _records(result.format, new.data, new.lines_before, result.session),
        result.format,
        result.session,
        None,
        fade=False,
        in_transaction=move_mark,
    )
    result.messages, result.already_remembered = imported.messages, imported.already_remembered
    result.problems = [asdict(problem) for problem in imported.problems]
    if imported.interrupted:
        raise KeyboardInterrupt
    return result


def spool_transcript(
    archive: Archive,
    path: str | os.PathLike[str],
    *,
    session: str | None = None,
    fmt: str | None = None,
    cwd: str | None = None,
) -> tuple[CaptureResult, bool]:
    """Take the turns `path` grew by into the spool, with its moved mark, in one transaction.

    Returns the result and whether the spool now holds anything (then a drainer is due). The turns
    are remembered by the next drain (`spool.drain`); this needs neither numpy, Pillow nor pydantic.
    """
    from optical_memory.errors import InvalidArgument

    transcript = Path(path).expanduser().absolute()
    if not transcript.is_file():
        raise InvalidArgument(f"transcript {transcript} is not a file")
    for _attempt in range(5):
        try:
            return _spool_once(archive, transcript, session, fmt, cwd)
        except _MarkMoved:
            continue
    raise InvalidArgument(f"transcript {transcript} kept changing under other captures; try again")


def _spool_once(
    archive: Archive, transcript: Path, session: str | None, fmt: str | None, cwd: str | None
) -> tuple[CaptureResult, bool]:
    from optical_memory.checkpoints import Checkpoints
    from optical_memory.importers.base import Message
    from optical_memory.spool import Spooled

    new = _read_new(archive, transcript, session, fmt, cwd)
    result = new.result
    if new.new_mark is None:
        return result, new.spool_waiting
    new_mark = new.new_mark
    messages: list[Message] = []
    for record in _records(result.format, new.data, new.lines_before, result.session):
        if isinstance(record, Message):
            messages.append(record)
        else:
            result.problems.append({"line": record.line, "message": record.message})
    item = Spooled(result.format, result.session, messages).to_bytes() if messages else None

    def commit(tx: ArchiveTxn) -> bool:
        checkpoints = Checkpoints(tx)
        if checkpoints.mark(result.transcript) != new.mark:
            raise _MarkMoved
        checkpoints.put_mark(result.transcript, new_mark)
        if item is not None:
            checkpoints.spool(item)
        return checkpoints.spooled_after(0) is not None

    waiting = archive.write(commit)
    result.messages, result.spooled = len(messages), item is not None
    return result, waiting


def _resume_point(file: IO[bytes], mark: Mark | None) -> tuple[int, int, bool]:
    """(offset to read from, lines before it, whether the file was rewritten since `mark`)."""
    from optical_memory.checkpoints import line_hash

    if mark is None:
        return 0, 0, False
    size = os.fstat(file.fileno()).st_size
    if mark.offset > size or mark.line_start >= mark.offset:
        return 0, 0, True
    file.seek(mark.line_start)
    if line_hash(file.read(mark.offset - mark.line_start)) != mark.line_hash:
        return 0, 0, True
    return mark.offset, mark.lines, False


def _records(fmt: str, data: bytes, lines_before: int, session: str) -> Iterator[Any]:
    from optical_memory.importers.base import jsonl_lines
    from optical_memory.importers.claude_code import read_claude_code_in_order
    from optical_memory.importers.codex import read_codex_lines

    lines = jsonl_lines(data, first=lines_before + 1)  # a byte order mark only ever on the file's line 1
    if fmt == "codex":
        return read_codex_lines(lines, session)
    return read_claude_code_in_order(lines, session)


def _detect(data: bytes) -> str:
    from optical_memory.errors import InvalidArgument
    from optical_memory.importers import detect_format

    found = detect_format(data[: 1 << 20]) if data else "claude-code"
    if found not in FORMATS:
        raise InvalidArgument(
            f"not a Claude Code transcript or Codex rollout (it reads as {found}); capture takes those"
        )
    return found


def _cwd(data: bytes) -> str | None:
    """The working directory the transcript's first records name (Claude Code's `cwd`, Codex's session_meta)."""
    from optical_memory.importers.codex import rollout_cwd

    for raw in io.BytesIO(data[: 1 << 20]).readlines()[:_CWD_SCAN_LINES]:
        try:
            record = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            cwd = record.get("cwd") if isinstance(record.get("cwd"), str) else rollout_cwd(record)
            if cwd:
                return str(cwd)
    return None


def _uuid(line: bytes) -> str | None:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    uuid = record.get("uuid") if isinstance(record, dict) else None
    return uuid if isinstance(uuid, str) else None
