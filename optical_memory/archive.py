"""The LMDB archive: one environment per archive folder, one owning class.

Sub-databases and their key/value layouts (integers big-endian, so keys sort numerically)::

    meta           b"schema"    -> b"1"
                   b"next_page" -> u64: number of the next page (page ids are "p<number>")
                   b"next_sid"  -> u32: id of the next session
                   b"key"       -> 32 random bytes: this archive's secret, from which the keys of the
                                   line check codes and the search index's term hashes derive
                   b"erase_epoch" -> counts `erase_free_space` runs: a process that sees it change
                                   reopens before writing, so its stale page buffers never write
                                   forgotten bytes back
    pages          b"p<n>"      -> page record (`records.PageRecord`, deflated JSON): session, times, tier,
                                   geometry, row layout, counts, image checksum, line check codes.
                                   Never any source text.
    images         b"p<n>"      -> the stored image bytes at the page's current tier
    sessions       name (UTF-8) -> session record (`records.SessionRecord`, JSON)
    session_pages  u32 sid + u64 n -> b"p<n>": a session's pages in order
    order          u64 n        -> b"p<n>": every page in order
    postings       index layout 1 (plain terms; dupsort): emptied when `search.upgrade_index` moves it
    term_blocks    keyed term hashes -> compact blocks of where they occur (layout in `postings`)
    page_terms     u64 n        -> a page's line lengths and term-hash prefixes, so forgetting it can unpost them
    checkpoints    what importers and capture have already remembered, and the capture spool (layout in `checkpoints`)
    erase-scratch  empty but while `maintenance.erase_free_space` fills the free pages with zeros

Files in the folder: data.mdb and lock.mdb (LMDB's), and open.lock, on which every open archive
holds a shared lock so that `compact` (which needs it exclusively) runs only while no other process
has the archive open.

One logical write (a `remember`, one demotion) is one write transaction: it commits whole or not at
all. Several processes share an archive (each MCP client starts its own server): LMDB serialises
writers with its lock; the map is reserved large up front (a sparse file) so resizing is rare.
When a write still meets a full map, the transaction is aborted, the map grows (bounded) and the
write runs again from the start (`_once` pattern); a map grown by another process
(MapResizedError) is adopted and the transaction retried. Transactions never span threads or
awaits: each public call begins and ends its own, and the map is resized only while no
transaction of this process is open (a readers-writer lock).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from optical_memory.archive_check import archive_problems
from optical_memory.archive_errors import file_error, write_error
from optical_memory.archive_files import OpenLock, check_data_file, disk_free, read_only_reason
from optical_memory.archive_open import create_folder, open_environment
from optical_memory.archive_txn import MAX_PAGE_DIGITS, ArchiveTxn, page_number, u32, u64
from optical_memory.errors import ArchiveBusy, ArchiveDamaged, ArchiveError, ArchiveFull, ArchiveReadOnly
from optical_memory.shared_lock import SharedExclusiveLock

# ArchiveTxn and the key helpers live in `archive_txn`; importing them from here keeps working.
__all__ = ["MAX_PAGE_DIGITS", "Archive", "ArchiveTxn", "page_number", "u32", "u64"]

log = logging.getLogger(__name__)

T = TypeVar("T")
SCHEMA = b"1"
_DATABASES = (
    "meta",
    "pages",
    "images",
    "sessions",
    "session_pages",
    "order",
    "postings",
    "page_terms",
    "checkpoints",
    "term_blocks",
)
_DUPSORT = frozenset({"postings"})
_MIB = 1 << 20


LEGACY_INDEX_DB = "postings"  # the first round's plain-term index (`index_upgrade.LEGACY_DB`)


class Archive:
    """An optical-memory archive folder (LMDB environment). Thread-safe; share one per process."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        map_size_mib: int = 32768,
        max_map_size_mib: int = 1048576,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.path = Path(path).expanduser()
        self.max_map_size = max_map_size_mib * _MIB
        self.busy_timeout_s = busy_timeout_s
        self._lock = SharedExclusiveLock()
        self._map_size = map_size_mib * _MIB
        self._erase_epoch: bytes | None = None  # the last `erase_free_space` this process has seen
        create_folder(self.path)
        data = self.path / "data.mdb"
        self.read_only_reason = read_only_reason(self.path)
        if self.read_only_reason is not None and not data.exists():
            raise ArchiveReadOnly(f"cannot create an archive at {self.path}: {self.read_only_reason}")
        try:
            self.open_lock = OpenLock(self.path, writable=self.read_only_reason is None)
        except OSError as exc:
            raise file_error(self.path, "create its lock file", exc) from exc
        try:
            self.open_lock.shared(busy_timeout_s)  # held while open: compaction waits for every process
            if data.exists():
                self._check_data_file(data)  # before LMDB maps it: a truncated file would crash us with SIGBUS
            self.env, self._dbs = self._open(self._map_size)
            self._erase_epoch = self._read_erase_epoch()
        except BaseException:
            self.open_lock.close()
            raise
        # Readers left by killed processes pin old pages, so the file would grow without bound.
        self.stale_readers_cleared = 0 if self.read_only else self.env.reader_check()
        if self.stale_readers_cleared:
            log.info("cleared %d stale reader slot(s) in %s", self.stale_readers_cleared, self.path)
        if not self.read_only:
            self._init_meta()
            self._upgrade_plain_index()

    def _check_data_file(self, data: Path) -> None:
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                check_data_file(data)
                return
            except OSError as exc:
                raise file_error(self.path, f"read {data}", exc) from exc
            except ArchiveDamaged:
                # No meta page yet may mean another process is creating the archive this moment (LMDB
                # writes its two meta pages just after creating the file); a process alone knows not.
                if data.stat().st_size >= 2 * 4096 or time.monotonic() >= deadline or self._alone():
                    raise
                time.sleep(0.05)

    def _alone(self) -> bool:
        """Whether no other process has the archive open (checked through the open lock)."""
        if self.open_lock.exclusive():
            self.open_lock.downgrade()
            return True
        return False

    @property
    def read_only(self) -> bool:
        """Whether this archive can only be read (`read_only_reason` says why)."""
        return self.read_only_reason is not None

    def _open(self, map_size: int) -> tuple[lmdb.Environment, dict[str, Any]]:
        return open_environment(self.path, map_size, self.read_only_reason, self.busy_timeout_s, _DATABASES, _DUPSORT)

    def _read_erase_epoch(self) -> bytes | None:
        raw = self.read(lambda tx: tx.txn.get(b"erase_epoch", db=tx.db("meta")))
        return None if raw is None else bytes(raw)

    def reopen(self) -> None:
        """Close and open the environment again, while no transaction of this process runs.

        LMDB recycles a process's page buffers without clearing them; `erase_free_space` starts from a
        fresh environment so no buffer still holds bytes of what was just deleted.
        """
        with self._lock.exclusive():
            self.env.close()
            self.env, self._dbs = self._open(self._map_size)

    def _init_meta(self) -> None:
        def ready(tx: ArchiveTxn) -> bool:
            schema, key = (tx.txn.get(name, db=self._dbs["meta"]) for name in (b"schema", b"key"))
            return schema is not None and bytes(schema) == SCHEMA and key is not None

        if self.read(ready):  # the usual open: no write transaction, so no wait behind another writer
            return

        def init(tx: ArchiveTxn) -> None:
            schema = tx.txn.get(b"schema", db=self._dbs["meta"])
            if schema is None:
                tx.txn.put(b"schema", SCHEMA, db=self._dbs["meta"])
            elif bytes(schema) != SCHEMA:
                raise ArchiveError(f"archive {self.path} has schema {bytes(schema)!r}; this version reads {SCHEMA!r}")
            if tx.txn.get(b"key", db=self._dbs["meta"]) is None:
                tx.txn.put(b"key", os.urandom(32), db=self._dbs["meta"])  # archives made before keys get one now

        self.write(init)

    def _upgrade_plain_index(self) -> None:
        """An index of plain terms (the first round's layout 1) moves to keyed hashes at the first
        writable open, and what it leaves is erased at once: the plain terms' freed pages, whatever the
        first round's `forget` (which erased nothing) left, and the tails of live pages that the first
        round's writes filled from recycled buffers (`maintenance.rewrite_page_sized_values`)."""
        if not self.read(lambda tx: tx.txn.stat(tx.db(LEGACY_INDEX_DB))["entries"]):
            return  # the usual open: nothing to upgrade, and nothing more imported (a hook opens at every turn)
        from optical_memory.index_upgrade import upgrade_index
        from optical_memory.maintenance import rewrite_page_sized_values

        self.write(upgrade_index)
        rewrite_page_sized_values(self)
        self.erase_free_space()

    def close(self) -> None:
        with self._lock.exclusive():
            self.env.close()
            self.open_lock.close()

    # transactions -----------------------------------------------------------------------------
    def read(self, fn: Callable[[ArchiveTxn], T]) -> T:
        """Run `fn` in a read transaction on this thread; the result must not hold LMDB buffers."""
        for _ in range(8):
            with self._lock.shared():
                try:
                    with self.env.begin(buffers=False) as txn:
                        return fn(ArchiveTxn(txn, self._dbs))
                except lmdb.MapResizedError:
                    pass
            self._adopt_map_size()
        raise ArchiveBusy(f"the archive at {self.path} kept being resized by other processes; try again")

    def write(self, fn: Callable[[ArchiveTxn], T]) -> T:
        """Run `fn` in one write transaction; on a full map, grow it and run `fn` again from the start.

        `fn` must have no effects outside the transaction: it may run more than once.
        """
        if self.read_only_reason is not None:
            raise ArchiveReadOnly(
                f"the archive at {self.path} is read-only ({self.read_only_reason}): it can be read, "
                "but nothing can be written; make it writable to remember, fade or forget"
            )
        for _ in range(32):
            with self._lock.shared():
                try:
                    return self._write_once(fn)
                except _Erased as erased:
                    epoch: bytes | None = erased.epoch
                except lmdb.MapResizedError:
                    resized, epoch = True, b""
                except lmdb.MapFullError:
                    resized, epoch = False, b""
            if epoch != b"":
                self.reopen()  # see `_write_once`
                self._erase_epoch = epoch
            elif resized:
                self._adopt_map_size()
            else:
                self._grow()
        raise ArchiveFull(f"the archive at {self.path} could not make room for this write")

    def _write_once(self, fn: Callable[[ArchiveTxn], T]) -> T:
        try:
            with self.env.begin(write=True, buffers=False) as txn:
                # Another process erased freed space (`erase_free_space`) since this one last wrote:
                # this process's recycled page buffers may hold bytes of what was forgotten, so it
                # writes nothing before reopening its environment. Checked under the writer lock,
                # so no write can slip in between an erase and this check.
                epoch = txn.get(b"erase_epoch", db=self._dbs["meta"])
                if epoch != self._erase_epoch:
                    raise _Erased(epoch)
                return fn(ArchiveTxn(txn, self._dbs))
        except (lmdb.MapFullError, lmdb.MapResizedError):
            raise
        except lmdb.Error as exc:
            # ENOSPC and other I/O failures surface here, at a put or at commit: the transaction
            # was aborted, so the archive is exactly as it was before this write.
            raise write_error(self.path, exc, disk_free(self.path)) from exc

    def _adopt_map_size(self) -> None:
        with self._lock.exclusive():
            self.env.set_mapsize(0)  # 0: take the size another process already set

    def _grow(self) -> None:
        with self._lock.exclusive():
            current = self.env.info()["map_size"]
            if current >= self.max_map_size:
                raise ArchiveFull(
                    f"the archive at {self.path} reached its maximum map size "
                    f"({self.max_map_size // _MIB} MiB, archive.max_map_size_mib in the config)"
                )
            new_size = min(self.max_map_size, current * 2)
            log.info("growing archive map %d -> %d MiB", current // _MIB, new_size // _MIB)
            try:
                self.env.set_mapsize(new_size)
            except lmdb.Error as exc:
                raise ArchiveFull(f"could not grow the archive map to {new_size // _MIB} MiB: {exc}") from exc

    def check(self) -> list[str]:
        """Check the archive's invariants; returns the problems found (empty when consistent).

        Every page has its image and the reverse; both order indexes list exactly the stored pages;
        each session's open page exists and is the session's only unsealed page (`archive_check`).
        """
        return self.read(archive_problems)

    def stat(self) -> dict[str, int]:
        """Counts and sizes: pages, sessions, bytes on disk."""
        with self._lock.shared(), self.env.begin() as txn:
            pages = txn.stat(self._dbs["pages"])["entries"]
            sessions = txn.stat(self._dbs["sessions"])["entries"]
        size = sum(f.stat().st_size for f in self.path.glob("*.mdb"))
        return {"pages": pages, "sessions": sessions, "bytes_on_disk": size}

    # maintenance (the work is in `maintenance`) -----------------------------------------------
    def erase_free_space(self) -> dict[str, Any]:
        """Overwrite the data file's free pages, so nothing deleted can be carved out of it (after forget)."""
        from optical_memory.maintenance import erase_free_space

        return erase_free_space(self)

    def compact(self) -> dict[str, Any]:
        """Give freed space back to the file system: LMDB's compacting copy, swapped in while no other
        process has the archive open (ArchiveBusy otherwise)."""
        from optical_memory.maintenance import compact

        return compact(self)

    def swap_data_file(self, write_copy: Callable[[], None], copy: str | os.PathLike[str]) -> None:
        """Replace data.mdb by `copy` once `write_copy()` has written it, with the environment closed.

        Only for a caller holding the open lock exclusively (no other process has the archive open):
        the lock file's reader table belongs to the old file, so it goes too (LMDB makes a new one).
        """
        with self._lock.exclusive():
            write_copy()
            self.env.close()
            try:
                os.replace(copy, self.path / "data.mdb")
                with contextlib.suppress(FileNotFoundError):
                    (self.path / "lock.mdb").unlink()
                folder = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(folder)
                finally:
                    os.close(folder)
            finally:
                self.env, self._dbs = self._open(self._map_size)


class _Erased(Exception):
    """A write found that another process erased freed space since this one last wrote."""

    def __init__(self, epoch: bytes | None) -> None:
        super().__init__("erased")
        self.epoch = epoch
