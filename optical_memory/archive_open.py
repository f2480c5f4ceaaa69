"""Opening an archive's LMDB environment: its folder, then the environment and its sub-databases.

An open that fails says at once what is wrong (damaged, disk full, read-only: `archive_errors`);
only a transient failure, another process creating or closing the archive this moment, is retried
until the busy timeout. The sub-databases themselves are `archive`'s to name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import lmdb

from optical_memory.archive_errors import open_error
from optical_memory.errors import ArchiveBusy, ArchiveError, ArchiveFull, ArchiveReadOnly

__all__ = ["create_folder", "open_environment"]


def create_folder(path: Path) -> None:
    """Make the archive folder (private to its owner), or say why it cannot be made."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise ArchiveError(f"{path} exists and is not a folder; an archive is a folder") from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ArchiveFull(f"cannot create the archive at {path}: the disk is full") from exc
        raise ArchiveReadOnly(f"cannot create the archive folder {path}: {exc.strerror}") from exc
    with contextlib.suppress(OSError):  # a folder made by someone else keeps its mode
        path.chmod(0o700)


def open_environment(
    path: Path,
    map_size: int,
    read_only_reason: str | None,
    busy_timeout_s: float,
    databases: Sequence[str],
    dupsort: Collection[str],
) -> tuple[lmdb.Environment, dict[str, Any]]:
    """Open the environment and its `databases`; errors say at once what is wrong, and only a
    transient failure (another process creating or closing the archive) is retried."""
    deadline = time.monotonic() + busy_timeout_s
    delay = 0.01
    while True:
        try:
            return _open_once(path, map_size, read_only_reason is not None, databases, dupsort)
        except lmdb.Error as exc:
            known = open_error(path, exc, read_only_reason)
            if known is not None:
                raise known from exc
            if time.monotonic() >= deadline:
                raise ArchiveBusy(f"could not open the archive at {path}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _open_once(
    path: Path, map_size: int, read_only: bool, databases: Sequence[str], dupsort: Collection[str]
) -> tuple[lmdb.Environment, dict[str, Any]]:
    if read_only:
        # No lock file we may write: no other process can write either, so reading unlocked is safe.
        lockable = os.access(path / "lock.mdb", os.W_OK)
        env = lmdb.open(str(path), readonly=True, lock=lockable, max_dbs=len(databases) + 2, readahead=False)
        dbs = {}
        for name in databases:
            with contextlib.suppress(lmdb.NotFoundError):  # a database newer than the archive
                dbs[name] = env.open_db(name.encode(), create=False, dupsort=name in dupsort)
        return env, dbs
    env = lmdb.open(
        str(path),
        map_size=map_size,
        max_dbs=len(databases) + 2,  # + the scratch database `erase_free_space` fills
        max_readers=256,
        mode=0o600,
        readahead=False,
    )
    for name in ("data.mdb", "lock.mdb"):
        with contextlib.suppress(OSError):
            (path / name).chmod(0o600)
    try:
        return env, {name: env.open_db(name.encode(), dupsort=name in dupsort) for name in databases}
    except BaseException:
        env.close()
        raise
