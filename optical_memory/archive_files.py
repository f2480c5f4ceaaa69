"""The archive's files before LMDB sees them: damage checks, write access, the open lock, free disk.

LMDB maps `data.mdb` into memory and trusts it: a file cut short (a full disk during a copy, a sync
tool, a crash of the file system) makes the first read past its end kill the process with SIGBUS. So
before mapping it, `check_data_file` reads the two meta pages (LMDB's own layout, below) and checks
that the file holds every page the last committed transaction says it has.

Meta page layout (LMDB 0.9, 64-bit, native byte order), at offset 0 and at one page size::

    16  u32 magic 0xBEEFC0DE     20  u32 version (1)
    40  u32 page size (the free-page database's md_pad)
    136 u64 last page number     144 u64 transaction id   (the meta with the larger id is current)

Every process that opens an archive holds a shared `flock` on ``open.lock`` in its folder for as
long as it has it open; `optical-memory compact` needs it exclusively, so it never swaps the data file
under a process that has the old one mapped.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import time
from pathlib import Path

from optical_memory.errors import ArchiveBusy, ArchiveDamaged

try:
    import fcntl
except ImportError:  # Windows: no flock; compaction then refuses (it cannot tell who has the archive open)
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "OpenLock", "check_data_file", "disk_free", "read_only_reason"]

LOCK_NAME = "open.lock"
_MAGIC, _VERSION = 0xBEEFC0DE, 1
_META = struct.Struct("=II16x I92x QQ")  # from offset 16: magic, version, (address, mapsize), psize, ..., last, txnid
_RESTORE = "restore the folder from a backup or an export, or move it away to start a new archive"


def _meta(raw: bytes) -> tuple[int, int, int] | None:
    """(page size, last page, txn id) of one meta page, or None if it is not one."""
    if len(raw) < 16 + _META.size:
        return None
    magic, version, psize, last, txnid = _META.unpack_from(raw, 16)
    if magic != _MAGIC or version != _VERSION or psize < 512 or psize & (psize - 1):
        return None
    return psize, last, txnid


def check_data_file(path: Path) -> None:
    """Raise ArchiveDamaged if `path` (a data.mdb) is empty, not LMDB, or shorter than its last commit needs."""
    with open(path, "rb") as handle:
        first = handle.read(4096)
        head = _meta(first)
        second = None
        if head is not None:
            handle.seek(head[0])
            second = _meta(handle.read(4096))
        size = os.fstat(handle.fileno()).st_size  # after the metas: the file only grows while in use
    if size == 0:
        raise ArchiveDamaged(f"{path} is empty (0 bytes): the archive is damaged, not new; {_RESTORE}")
    metas = [m for m in (head, second) if m is not None]
    if not metas:
        raise ArchiveDamaged(f"{path} is not an LMDB data file (no valid meta page): it is damaged; {_RESTORE}")
    psize, last, _ = max(metas, key=lambda m: m[2])
    needed = (last + 1) * psize
    if size < needed:
        raise ArchiveDamaged(
            f"{path} is truncated: it holds {size:,} bytes but its last committed write needs {needed:,}; "
            f"it was not opened (reading it would crash); {_RESTORE}"
        )


def read_only_reason(folder: Path) -> str | None:
    """Why the archive in `folder` cannot be written (None if it can): file system, folder or files."""
    with contextlib.suppress(OSError, AttributeError):  # no statvfs on Windows
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "its file system is mounted read-only"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"its folder {folder} is not writable"
    for name in ("data.mdb", "lock.mdb"):
        file = folder / name
        if file.exists() and not os.access(file, os.W_OK):
            return f"{file} is not writable"
    return None


def disk_free(path: Path) -> int | None:
    """Bytes free to this user on the file system holding `path`, or None if it cannot be told."""
    try:
        stats = os.statvfs(path)
    except (OSError, AttributeError):  # no statvfs on Windows
        return None
    return stats.f_bavail * stats.f_frsize


class OpenLock:
    """A shared flock on the archive's open.lock while open; `exclusive` for compaction (see the module)."""

    def __init__(self, folder: Path, writable: bool) -> None:
        self.path = folder / LOCK_NAME
        self.fd: int | None = None
        flags = os.O_RDWR | os.O_CREAT if writable else os.O_RDONLY
        try:
            no_follow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)  # POSIX only
            self.fd = os.open(self.path, flags | no_follow, 0o600)
        except OSError:
            if writable:
                raise
            # a read-only archive without a lock file: nobody can compact it anyway

    def shared(self, timeout_s: float) -> None:
        """Take the shared lock, waiting at most `timeout_s` for a compaction to finish."""
        if self.fd is None or fcntl is None:
            return
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ArchiveBusy(
                        f"the archive at {self.path.parent} is being compacted by another process; "
                        "try again when `optical-memory compact` has finished"
                    ) from None
                time.sleep(0.05)

    def exclusive(self) -> bool:
        """Try to hold the archive alone (no other process has it open); False if another one does."""
        if self.fd is None or fcntl is None:
            return False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            # a failed conversion may have dropped our shared lock: take it back before saying no
            fcntl.flock(self.fd, fcntl.LOCK_SH)
            return False
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                fcntl.flock(self.fd, fcntl.LOCK_SH)
                return False
            raise

    def downgrade(self) -> None:
        if self.fd is not None and fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_SH)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None
