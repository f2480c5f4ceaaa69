"""`optical-memory capture` as a hook: read the payload, capture, log, and never fail the agent.

Claude Code runs the hook (Stop, PreCompact, SessionEnd) with a JSON payload on stdin naming the
transcript (`transcript_path`, plus `session_id`, `cwd`, `hook_event_name`), and reads whatever the
hook prints on stdout as instructions: so nothing is printed, every error goes to `capture.log` in
the archive folder (in the data dir when the archive cannot be found), and the exit status is 0.

A hook starts a fresh process at every turn, so this path loads only what it uses: the archive's
location comes from `archive_location` (not the pydantic config), the new turns go to the spool
(`capture.spool_transcript`: the archive, the importers' parsers, the standard library), a detached
drainer (`spool`) lays them onto pages, and the hook exits. numpy, Pillow, pydantic and the reader
load only in the drainer, or here where the location needs the full config (a PostgreSQL archive,
an unusual config file) or for a capture by hand, which remembers its turns before it returns.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from optical_memory.capture import CaptureResult, capture_transcript, spool_transcript

if TYPE_CHECKING:
    from optical_memory.archive_location import ArchiveLocation
    from optical_memory.config import Config

__all__ = ["LOG_NAME", "describe_error", "read_payload", "run_hook", "write_log"]

LOG_NAME = "capture.log"
LOG_MAX_BYTES = 1 << 20  # then it is rotated once to capture.log.1: a hook log is for the last problems
MAX_PAYLOAD_BYTES = 1 << 20  # a hook payload is a few hundred bytes


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


def run_hook(
    config_path: str | None,
    archive: str | None,
    transcript: str | None,
    session: str | None = None,
    fmt: str | None = None,
    stdin: IO[bytes] | None = None,
    *,
    spool: bool = True,
) -> CaptureResult | None:
    """`optical-memory capture`: capture, log what happened, never raise (the agent must not fail).

    With `spool` (a hook), the new turns go to the archive's spool and a detached drainer is started
    to remember them, so the hook exits before anything is laid out; without (a capture by hand),
    or where the archive's location needs the full config (PostgreSQL, an unusual config file), they
    are remembered here and now.
    """
    from optical_memory.archive_location import archive_location
    from optical_memory.spool import SPOOLING

    started = time.perf_counter()
    log_dir: Path | None = None
    event, cwd = "manual", None
    waiting = False
    try:
        location = archive_location(config_path, archive) if spool and SPOOLING else None
        config = None
        if location is not None:
            log_dir = location.path
        else:
            from optical_memory.config import load_config

            config = load_config(config_path, archive)
            log_dir = Path(config.archive.path)
        if transcript is None:
            transcript, event, cwd = _hook_payload(stdin)
        if location is not None:
            result, waiting = _spool_with(location, transcript, session, fmt, cwd)
        else:
            assert config is not None
            result = _capture_with(config, transcript, session, fmt, cwd)
    except (Exception, KeyboardInterrupt) as exc:  # a hook must never fail the agent, whatever happened
        write_log(log_dir, f"{event} {transcript or '-'}: failed: {describe_error(exc)}")
        return None
    write_log(log_dir, f"{event} {_summary(result)}, {(time.perf_counter() - started) * 1000:.0f} ms")
    if waiting:
        _start_drainer(config_path, archive, log_dir)
    return result


def _hook_payload(stdin: IO[bytes] | None) -> tuple[str, str, str | None]:
    """(transcript path, hook event, working directory) from the payload on stdin."""
    if stdin is None and sys.stdin.isatty():  # run by hand: do not wait for a payload that never comes
        print("optical-memory capture: pass --transcript PATH (a hook gets its payload on stdin)", file=sys.stderr)
        raise ValueError("run from a terminal without --transcript: no hook payload to read")
    payload = read_payload(stdin if stdin is not None else sys.stdin.buffer)
    cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) else None
    return payload["transcript_path"], str(payload.get("hook_event_name") or "hook"), cwd


def _summary(result: CaptureResult) -> str:
    where = "spooled for" if result.spooled else "into"
    rewritten = " (rewritten: read whole)" if result.rewritten else ""
    return (
        f"{result.transcript}: {result.messages} new turn(s) {where} {result.session!r}, "
        f"bytes {result.read_from}-{result.read_to}{rewritten}, {len(result.problems)} problem(s)"
    )


def _spool_with(
    location: ArchiveLocation, transcript: str, session: str | None, fmt: str | None, cwd: str | None
) -> tuple[CaptureResult, bool]:
    from optical_memory.archive import Archive

    archive = Archive(location.path, location.map_size_mib, location.max_map_size_mib, location.busy_timeout_s)
    try:
        return spool_transcript(archive, transcript, session=session, fmt=fmt, cwd=cwd)
    finally:
        archive.close()


def _start_drainer(config_path: str | None, archive: str | None, log_dir: Path | None) -> None:
    from optical_memory.spool import start_drainer

    try:
        start_drainer(config_path, archive)
    except OSError as exc:  # the spool stays: the next hook's drainer, or the server, drains it
        write_log(log_dir, f"could not start a drainer ({describe_error(exc)}); the server drains the spool")


def _capture_with(
    config: Config, transcript: str, session: str | None, fmt: str | None, cwd: str | None
) -> CaptureResult:
    from optical_memory.memory import Memory

    memory = Memory(config)
    try:
        return capture_transcript(memory, transcript, session=session, fmt=fmt, cwd=cwd)
    finally:
        memory.close()


def describe_error(exc: BaseException) -> str:
    """An error as one log line (a traceback only for what is not an expected kind of failure)."""
    from optical_memory.errors import OpticalMemoryError

    if isinstance(exc, OpticalMemoryError | OSError | ValueError):
        return f"{type(exc).__name__}: {exc}"
    return "".join(traceback.format_exception(exc)).rstrip()


def write_log(directory: Path | None, line: str) -> None:
    """Append one line to the capture log; a log that cannot be written is given up silently."""
    try:
        if directory is None or not directory.is_dir():
            from optical_memory.archive_location import default_archive_path

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
