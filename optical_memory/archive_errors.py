"""What an LMDB or OS failure while opening or writing an archive means, said as an archive error.

Each says what happened and what to do; a failed write also says that nothing was written (the
transaction was aborted whole).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import lmdb

from optical_memory.errors import ArchiveDamaged, ArchiveError, ArchiveFull, ArchiveReadOnly

__all__ = ["file_error", "open_error", "write_error"]

_DISK_LOW = 1 << 20  # below this many free bytes, an I/O error on write is the disk being full


def _errno_of(exc: lmdb.Error) -> int | None:
    text = str(exc)
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO):
        if os.strerror(code) in text:
            return code
    return None


def open_error(path: Path, exc: lmdb.Error, read_only: str | None) -> Exception | None:
    """The error an open failure means, or None if it may pass (another process creating the archive)."""
    code = _errno_of(exc)
    damaged = (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError, lmdb.PanicError)
    if isinstance(exc, (*damaged, lmdb.PageNotFoundError)):
        return ArchiveDamaged(
            f"the archive at {path} is damaged ({exc}): restore it from a backup or an export, "
            "or move the folder away to start a new archive"
        )
    if code == errno.ENOSPC:
        return ArchiveFull(f"cannot open the archive at {path}: the disk is full ({exc})")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or isinstance(exc, lmdb.ReadonlyError):
        why = read_only or str(exc)
        return ArchiveReadOnly(f"cannot open the archive at {path}: {why}; check its permissions")
    return None


def file_error(path: Path, doing: str, exc: OSError) -> ArchiveError:
    """An OS error while opening, said as what it means."""
    if exc.errno == errno.ENOSPC:
        return ArchiveFull(f"cannot open the archive at {path}: the disk is full ({exc.strerror})")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = f"cannot {doing} ({exc.strerror}); check its permissions"
        return ArchiveReadOnly(f"cannot open the archive at {path}: {why}")
    return ArchiveError(f"cannot open the archive at {path}: cannot {doing} ({exc.strerror})")


def write_error(path: Path, exc: lmdb.Error, free: int | None) -> ArchiveError:
    """What a failed write means to the caller, given the disk's `free` bytes; in every case nothing was written."""
    code = _errno_of(exc)
    io_error = code == errno.EIO or isinstance(exc, lmdb.DiskError)
    if code == errno.ENOSPC or (io_error and (free or 0) < _DISK_LOW):
        shown = f" ({free:,} bytes free)" if free is not None else ""
        return ArchiveFull(
            f"the disk holding {path} is full{shown}; nothing was written: free some space and try again ({exc})"
        )
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ArchiveReadOnly(f"the archive at {path} cannot be written ({exc}); nothing was written")
    return ArchiveError(f"the archive at {path} refused the write; nothing was written: {exc}")
