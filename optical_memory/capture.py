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
  moved by another (a Stop and a SessionEnd hook at once) starts over from the new mark.
* Turns go to the session named after the project, the transcript's working directory
  (`project_session`: "~/src/shop"), the same for every transcript of that project, whichever agent
  wrote it.

It never fails the agent: every error goes to `capture.log` in the archive folder (or in the data
dir when the archive cannot be opened), the exit status is 0, and nothing is written on stdout,
which Claude Code reads as the hook's instructions. Fading is left to the server (or the next one
to start), so a capture costs only its own turns.

This module imports only the standard library at load: a hook starts a fresh process each time, and
numpy, Pillow and the reader would cost more than the capture.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optical_memory.archive import ArchiveTxn
    from optical_memory.checkpoints import Checkpoints, Mark
    from optical_memory.config import Config
    from optical_memory.memory import Memory

__all__ = ["CaptureResult", "capture_transcript", "project_session", "read_payload", "run_hook"]

LOG_NAME = "capture.log"
LOG_MAX_BYTES = 1 << 20  # then it is rotated once to capture.log.1: a hook log is for the last problems
MAX_PAYLOAD_BYTES = 1 << 20  # a hook payload is a few hundred bytes
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


def read_payload(stream: IO[bytes]) -> dict[str, Any]:
    """The hook payload on `stream`: a JSON object naming `transcript_path`."""
    raw = stream.read(MAX_PAYLOAD_BYTES + 1)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"the hook payload is over {MAX_PAYLOAD_BYTES} bytes; a Claude Code payload is a few hundred")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise ValueError(
            f"the hook payload on stdin is not JSON ({exc}); run from a hook or pass --transcript"
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("transcript_path"), str):
        raise ValueError("the hook payload has no transcript_path; run from a Claude Code hook, or pass --transcript")
    return payload


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
    transcript names, else of `cwd`, the hook payload's).
    """
    from optical_memory.errors import InvalidArgument

    transcript = Path(path).expanduser().absolute()
    if not transcript.is_file():
        raise InvalidArgument(f"transcript {transcript} is not a file")
    for _attempt in range(5):
        try:
            return _capture_once(memory, transcript, session, fmt, cwd)
        except _MarkMoved:
            continue
    raise InvalidArgument(f"transcript {transcript} kept changing under other captures; try again")


def _capture_once(
    memory: Memory, transcript: Path, session: str | None, fmt: str | None, cwd: str | None
) -> CaptureResult:
    from optical_memory.checkpoints import Checkpoints, Mark, line_hash
    from optical_memory.ingest import remember_messages

    source = str(transcript)
    mark = memory.archive.read(lambda tx: Checkpoints(tx).mark(source))
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
        return result
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

    def move_mark(tx: ArchiveTxn, checkpoints: Checkpoints) -> None:
        if checkpoints.mark(source) != mark:
            raise _MarkMoved
        checkpoints.put_mark(source, new_mark)

    imported = remember_messages(
        memory,
        _records(chosen, data, lines_before, target),
        chosen,
        target,
        None,
        fade=False,
        in_transaction=move_mark,
    )
    result.messages, result.already_remembered = imported.messages, imported.already_remembered
    result.problems = [asdict(problem) for problem in imported.problems]
    if imported.interrupted:
        raise KeyboardInterrupt
    return result


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


# the command --------------------------------------------------------------------------------------


def run_hook(
    config_path: str | None,
    archive: str | None,
    transcript: str | None,
    session: str | None = None,
    fmt: str | None = None,
    stdin: IO[bytes] | None = None,
) -> CaptureResult | None:
    """`optical-memory capture`: capture, log what happened, never raise (the agent must not fail)."""
    started = time.perf_counter()
    log_dir: Path | None = None
    event, cwd = "manual", None
    try:
        from optical_memory.config import load_config

        config = load_config(config_path, archive)
        log_dir = Path(config.archive.path)
        if transcript is None:
            if stdin is None and sys.stdin.isatty():  # run by hand: do not wait for a payload that never comes
                print(
                    "optical-memory capture: pass --transcript PATH (a hook gets its payload on stdin)", file=sys.stderr
                )
                raise ValueError("run from a terminal without --transcript: no hook payload to read")
            payload = read_payload(stdin if stdin is not None else sys.stdin.buffer)
            transcript, event = payload["transcript_path"], str(payload.get("hook_event_name") or "hook")
            cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) else None
        result = _capture_with(config, transcript, session, fmt, cwd)
    except (Exception, KeyboardInterrupt) as exc:  # a hook must never fail the agent, whatever happened
        _log(log_dir, f"{event} {transcript or '-'}: failed: {_describe(exc)}")
        return None
    took = (time.perf_counter() - started) * 1000
    _log(
        log_dir,
        f"{event} {result.transcript}: {result.messages} new turn(s) into {result.session!r}, "
        f"bytes {result.read_from}-{result.read_to}{' (rewritten: read whole)' if result.rewritten else ''}, "
        f"{len(result.problems)} problem(s), {took:.0f} ms",
    )
    return result


def _capture_with(
    config: Config, transcript: str, session: str | None, fmt: str | None, cwd: str | None
) -> CaptureResult:
    from optical_memory.memory import Memory

    memory = Memory(config)
    try:
        return capture_transcript(memory, transcript, session=session, fmt=fmt, cwd=cwd)
    finally:
        memory.close()


def _describe(exc: BaseException) -> str:
    from optical_memory.errors import OpticalMemoryError

    if isinstance(exc, OpticalMemoryError | OSError | ValueError):
        return f"{type(exc).__name__}: {exc}"
    return "".join(traceback.format_exception(exc)).rstrip()


def _log(directory: Path | None, line: str) -> None:
    """Append one line to the capture log; a log that cannot be written is given up silently."""
    try:
        if directory is None or not directory.is_dir():
            from optical_memory.config import default_archive_path

            directory = default_archive_path().parent
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / LOG_NAME
        if path.exists() and path.stat().st_size > LOG_MAX_BYTES:
            path.replace(path.with_name(LOG_NAME + ".1"))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with path.open("a", encoding="utf-8", errors="backslashreplace") as file:
            file.write(f"{stamp} {line}\n")
    except OSError:
        pass
