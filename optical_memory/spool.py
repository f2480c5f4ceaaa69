"""The spool: turns a capture hook has read but not yet laid onto pages, and the drain that remembers them.

A capture hook runs at every turn of an agent, in a fresh process. Laying turns onto pages needs
Pillow, numpy and the typed config (about 200 ms to import, more than the capture itself), so the
hook only reads the new turns and writes them here, with the transcript's moved mark, in one synced
transaction (`capture`), then starts a drainer and exits. The drainer (`python -m optical_memory.spool`,
in a new session, its standard streams on /dev/null) remembers each spooled capture, oldest first,
through `ingest.remember_messages`, as a capture did before: the same content keys, so nothing is
written twice, and the spooled capture is deleted in the transaction that writes its last batch.

Why nothing is lost or doubled:

* Killed mid-way (SIGKILL, a full disk), a drainer has committed whole batches with their content
  keys and left the spooled capture in place: the next drain reads it again and the keys let only
  what is missing through.
* One drains at a time: each holds `spool.lock` in the archive folder (flock, so a killed holder's
  lock goes with it). A drainer that finds it held leaves at once; the holder looks at the spool
  again after letting go, so a capture spooled while it drained is never left behind.
* A spooled capture that cannot be remembered (a failed write, other writers racing it) stays,
  logged to `capture.log`, for the next drain; those behind it are still drained.

The server drains at start and whenever a look at the spool (every `SpoolDrainer.interval_s`)
finds something, so turns are remembered even where no drainer could be started. Layout: the
`b"s"` and `b"n"` keys of `checkpoints`, which owns that sub-database and documents them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optical_memory.importers.base import Message

try:
    import fcntl
except ImportError:  # Windows: no flock, so hooks there remember their turns themselves (`SPOOLING`)
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from optical_memory.archive import Archive, ArchiveTxn
    from optical_memory.archive_location import ArchiveLocation
    from optical_memory.checkpoints import Checkpoints
    from optical_memory.memory import Memory

__all__ = [
    "SPOOLING",
    "DrainResult",
    "SpoolDrainer",
    "Spooled",
    "drain",
    "drop_spooled",
    "has_spooled",
    "start_drainer",
]

LOCK_NAME = "spool.lock"
_VERSION = 1
_MAX_RETRY_S = 300.0
SPOOLING = fcntl is not None and hasattr(os, "posix_spawn")  # a lock for drainers, and a way to start one

log = logging.getLogger(__name__)


@dataclass
class Spooled:
    """One capture's messages, as the hook read them: remembered in `session`, read as `format`."""

    format: str
    session: str
    messages: list[Message]
    problems: int = 0  # parts of the transcript the hook could not read (already in its log line)

    def to_bytes(self) -> bytes:
        rows = [[m.role, m.text, m.time, m.session, m.title, m.line] for m in self.messages]
        data = {"v": _VERSION, "format": self.format, "session": self.session, "messages": rows}
        return json.dumps(data, separators=(",", ":")).encode()  # ASCII: lone surrogates survive as escapes

    @classmethod
    def from_bytes(cls, raw: bytes) -> Spooled:
        """The spooled capture in `raw`; ValueError if it is not one this version wrote."""
        try:
            data = json.loads(raw)
            if data["v"] != _VERSION:
                raise ValueError(f"spool item version {data['v']}; this version reads {_VERSION}")
            messages = [Message(*row) for row in data["messages"]]
            return cls(str(data["format"]), str(data["session"]), messages)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a spooled capture: {exc!r}") from None


@dataclass
class DrainResult:
    """What a drain remembered."""

    captures: int = 0  # spooled captures remembered and removed
    messages: int = 0  # messages remembered now
    already_remembered: int = 0  # messages a content key showed were remembered before
    sessions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    left: int = 0  # spooled captures that stay for the next drain (each has a problem saying why)
    busy: bool = False  # another drainer held the lock: it drains what this one found


def drop_spooled(tx: ArchiveTxn, session: str) -> int:
    """Delete the spooled captures of `session` (forget calls this in its transaction, so turns a hook
    took just before will not come back as pages after it); returns how many."""
    from optical_memory.checkpoints import Checkpoints

    checkpoints = Checkpoints(tx)
    dropped = 0
    for sequence, raw in checkpoints.spooled():
        try:
            spooled_session = Spooled.from_bytes(raw).session
        except ValueError:
            continue  # not one this version reads: it is left, as a drain leaves it
        if spooled_session == session:
            checkpoints.unspool(sequence)
            dropped += 1
    return dropped


def has_spooled(archive: Archive) -> bool:
    """Whether any capture waits in the spool (a read transaction: cheap enough to poll)."""
    from optical_memory.checkpoints import Checkpoints

    return archive.read(lambda tx: Checkpoints(tx).spooled_after(0)) is not None


def drain(memory: Memory, *, wait: bool = False, stop: Callable[[], bool] | None = None) -> DrainResult:
    """Remember every spooled capture, oldest first; those that fail stay for the next drain.

    With `wait`, waits for a drainer holding the lock to finish (a capture by hand, which then writes
    after it); without, leaves at once, since the holder drains what is there. `stop()` true (the
    server is stopping) ends the drain after the batch being written: the rest stays spooled.
    """
    result = DrainResult()
    done = 0  # every capture numbered up to here was remembered or left by this drain
    while _spooled_after(memory.archive, done) is not None:
        with _drain_lock(getattr(memory.archive, "path", None), wait) as held:
            if not held:
                result.busy = True
                return result
            done = _drain_held(memory, done, result, stop)
        if stop is not None and stop():
            break
    return result


def _drain_held(memory: Memory, after: int, result: DrainResult, stop: Callable[[], bool] | None) -> int:
    """Remember the spooled captures numbered above `after`, holding the lock; the last number handled."""
    while not (stop is not None and stop()):
        found = _spooled_after(memory.archive, after)
        if found is None:
            break
        after, raw = found
        try:
            item = Spooled.from_bytes(raw)
        except ValueError as exc:
            result.left += 1
            result.problems.append(f"spooled capture {after} left in the spool: {exc}")
            continue
        _remember(memory, after, item, result, stop)
    return after


def _remember(
    memory: Memory, sequence: int, item: Spooled, result: DrainResult, stop: Callable[[], bool] | None
) -> None:
    from optical_memory.ingest import remember_messages

    def unspool(tx: Any, checkpoints: Checkpoints) -> None:
        checkpoints.unspool(sequence)  # in the last batch's transaction; gone already: another drain took it

    def progress(done: int, total: int | None) -> None:
        if stop is not None and stop():
            raise KeyboardInterrupt  # remember_messages stops after the batch it committed

    imported = remember_messages(
        memory, item.messages, item.format, item.session, progress, fade=False, in_transaction=unspool
    )
    if imported.interrupted and not (stop is not None and stop()):
        raise KeyboardInterrupt  # Ctrl-C: what was committed stays, and so does the spooled capture
    result.messages += imported.messages
    result.already_remembered += imported.already_remembered
    result.problems.extend(f"line {p.line}: {p.message}" if p.line else p.message for p in imported.problems)
    following = _spooled_after(memory.archive, sequence - 1)
    if following is None or following[0] != sequence:  # read back: a retried or failed commit cannot fool it
        result.captures += 1
        for name in imported.sessions or [item.session]:
            if name not in result.sessions:
                result.sessions.append(name)
    else:  # the transaction that removes it never ran: other writers kept racing this batch
        result.left += 1
        result.problems.append(f"spooled capture {sequence} left in the spool for the next drain")


def _spooled_after(archive: Archive, sequence: int) -> tuple[int, bytes] | None:
    from optical_memory.checkpoints import Checkpoints

    return archive.read(lambda tx: Checkpoints(tx).spooled_after(sequence))


_IN_PROCESS = threading.Lock()  # flock is per open file: threads of one process need their own lock too


@contextlib.contextmanager
def _drain_lock(folder: Path | None, wait: bool) -> Iterator[bool]:
    """Hold the spool's lock (yields True), or yield False at once when another holds it and not `wait`."""
    if not _IN_PROCESS.acquire(blocking=wait):
        yield False
        return
    try:
        if folder is None or fcntl is None:  # PostgreSQL or Windows: hooks never spool there
            yield True
            return
        handle = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(handle)  # lets go of the flock
    finally:
        _IN_PROCESS.release()


# the drainer process ------------------------------------------------------------------------------


def start_drainer(config_path: str | None, archive: str | os.PathLike[str] | None) -> int:
    """Start `python -m optical_memory.spool` detached: a new session, stdio on /dev/null; its pid.

    The hook that starts it exits at once; the drainer outlives it (and the agent's wait).
    """
    argv = [sys.executable, "-m", "optical_memory.spool"]
    if config_path:
        argv += ["--config", os.path.abspath(config_path)]
    if archive:
        argv += ["--archive", os.path.abspath(os.path.expanduser(archive))]
    null = os.open(os.devnull, os.O_RDWR)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]
        return os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions, setsid=True)
    finally:
        os.close(null)


def main(argv: list[str] | None = None) -> int:
    """The drainer: drain, log what happened (or failed) to capture.log, exit 0; never a traceback."""
    from optical_memory.archive_location import archive_location
    from optical_memory.capture_hook import write_log

    parser = argparse.ArgumentParser(prog="python -m optical_memory.spool", description="drain the capture spool")
    parser.add_argument("--config", help="TOML file over the defaults (as the capture that started it)")
    parser.add_argument("--archive", help="archive folder (as the capture that started it)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    location = archive_location(args.config, args.archive)
    folder = location.path if location is not None else None
    try:
        if location is not None and _nothing_to_drain(location):
            return 0  # before loading numpy, Pillow and pydantic: hooks at once start a drainer each
        from optical_memory.config import load_config
        from optical_memory.memory import Memory

        config = load_config(args.config, args.archive)
        folder = config.archive.path
        memory = Memory(config)
        try:
            result = drain(memory)
        finally:
            memory.close()
    except (Exception, KeyboardInterrupt) as exc:  # the spool stays as it was for the next drain
        write_log(folder, f"drain failed, the spool is kept for the next one: {describe(exc)}")
        return 0
    if result.captures or result.problems:
        write_log(folder, drain_summary(result, time.perf_counter() - started))
    return 0


def _nothing_to_drain(location: ArchiveLocation) -> bool:
    """Whether another drainer holds the lock (it drains what waits) or nothing waits in the spool."""
    from optical_memory.archive import Archive

    with _drain_lock(location.path, wait=False) as held:
        if not held:
            return True  # its holder looks at the spool again after letting go: nothing is left behind
    archive = Archive(location.path, location.map_size_mib, location.max_map_size_mib, location.busy_timeout_s)
    try:
        return not has_spooled(archive)
    finally:
        archive.close()


def drain_summary(result: DrainResult, seconds: float) -> str:
    """The capture.log line of a drain."""
    problems = "".join(f"; {problem}" for problem in result.problems[:5])
    return (
        f"drain: {result.messages} turn(s) remembered from {result.captures} spooled capture(s) "
        f"({result.already_remembered} already remembered, {result.left} left), {seconds * 1000:.0f} ms{problems}"
    )


def describe(exc: BaseException) -> str:
    from optical_memory.capture_hook import describe_error

    return describe_error(exc)


class SpoolDrainer:
    """The server's drainer: drains at start, then whenever a look every `interval_s` finds the spool
    non-empty, on a daemon thread; `on_drained(session)` for each session it wrote to (to fade them).

    Capture hooks start their own drainers; this is for the turns of one that could not start or
    was killed, and costs one read transaction per look.
    """

    def __init__(
        self, memory: Memory, on_drained: Callable[[str], object] | None = None, interval_s: float = 2.0
    ) -> None:
        self.memory = memory
        self.on_drained = on_drained
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="optical-memory-spool", daemon=True)

    def start(self) -> SpoolDrainer:
        self._thread.start()
        return self

    def _run(self) -> None:
        delay = self.interval_s
        while not self._stop.is_set():
            try:
                if has_spooled(self.memory.archive):
                    self._drain()
                delay = self.interval_s
            except Exception as exc:  # never let the thread die: the spool is kept, the next look retries
                from optical_memory.capture_hook import write_log

                message = f"drain failed, the spool is kept for the next one: {describe(exc)}"
                log.warning("%s", message)
                write_log(getattr(self.memory.archive, "path", None), message)
                delay = min(delay * 4, _MAX_RETRY_S)  # a lasting failure (a full disk) is logged now and then
            self._stop.wait(delay)

    def _drain(self) -> None:
        from optical_memory.capture_hook import write_log

        started = time.perf_counter()
        result = drain(self.memory, stop=self._stop.is_set)
        if result.captures or result.problems:
            write_log(getattr(self.memory.archive, "path", None), drain_summary(result, time.perf_counter() - started))
        for name in result.sessions:
            if self.on_drained is not None:
                self.on_drained(name)

    def close(self) -> None:
        """Stop after the spooled capture in progress; what is left stays spooled for the next drain."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


if __name__ == "__main__":
    code = main()
    # Nothing is left to tear down (the archive is closed, the log written): skip the interpreter's
    # teardown of numpy, Pillow and pydantic, CPU that the agent's next hook would wait behind.
    os._exit(code)
