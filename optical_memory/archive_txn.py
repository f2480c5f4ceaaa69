"""Typed access to the archive's sub-databases inside one transaction, and the key codings they share.

The layouts themselves are written down once, in `optical_memory.archive` (the module that owns the
LMDB environment); `ArchiveTxn` reads and writes them as typed records (`records.PageRecord`,
`records.SessionRecord`), so no other module spells a key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lmdb

from optical_memory.errors import ArchiveError
from optical_memory.records import PageRecord, SessionRecord

__all__ = ["MAX_PAGE_DIGITS", "ArchiveTxn", "page_number", "u32", "u64"]


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _session_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")


MAX_PAGE_DIGITS = 18  # page numbers are u64 keys; 18 digits stay well inside


def page_number(page_id: object) -> int | None:
    """The number in a page id ("p17" -> 17), or None if it is not a page id.

    Only ASCII digits count ("p²" is no page id, though "²".isdigit()), and at most 18 of them.
    """
    if not isinstance(page_id, str) or not 1 < len(page_id) <= MAX_PAGE_DIGITS + 1 or page_id[0] != "p":
        return None
    digits = page_id[1:]
    if digits.isascii() and digits.isdigit() and digits[0] != "0":
        return int(digits)
    return None


class ArchiveTxn:
    """Typed access to the sub-databases inside one transaction."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any]) -> None:
        self.txn = txn
        self._dbs = dbs

    def db(self, name: str) -> Any:
        """A sub-database handle, for modules that own a layout of their own (search)."""
        return self._dbs[name]

    # meta -------------------------------------------------------------------------------------
    def next_page_id(self) -> tuple[str, int]:
        """Allocate the next page number (write transactions only)."""
        raw = self.txn.get(b"next_page", db=self._dbs["meta"])
        number = int.from_bytes(raw, "big") if raw else 1
        self.txn.put(b"next_page", u64(number + 1), db=self._dbs["meta"])
        return f"p{number}", number

    def next_session_id(self) -> int:
        raw = self.txn.get(b"next_sid", db=self._dbs["meta"])
        sid = int.from_bytes(raw, "big") if raw else 1
        self.txn.put(b"next_sid", u32(sid + 1), db=self._dbs["meta"])
        return sid

    def archive_key(self) -> bytes:
        """This archive's secret (made when the archive was created; see the module docstring)."""
        raw = self.txn.get(b"key", db=self._dbs["meta"])
        if raw is None:
            raise ArchiveError("the archive has no key yet: it was opened read-only before its first write")
        return bytes(raw)

    # pages and images -------------------------------------------------------------------------
    def page(self, page_id: str) -> PageRecord | None:
        if page_number(page_id) is None:
            return None
        raw = self.txn.get(page_id.encode("ascii"), db=self._dbs["pages"])
        return None if raw is None else PageRecord.from_bytes(bytes(raw))

    def pages(self) -> Iterator[PageRecord]:
        """Every page record, in key order (not page order)."""
        with self.txn.cursor(db=self._dbs["pages"]) as cursor:
            for value in cursor.iternext(keys=False):
                yield PageRecord.from_bytes(bytes(value))

    def put_page(self, record: PageRecord) -> None:
        self.txn.put(record.id.encode("ascii"), record.to_bytes(), db=self._dbs["pages"])

    def image(self, page_id: str) -> bytes | None:
        if page_number(page_id) is None:
            return None
        raw = self.txn.get(page_id.encode("ascii"), db=self._dbs["images"])
        return None if raw is None else bytes(raw)

    def put_image(self, page_id: str, data: bytes) -> None:
        self.txn.put(page_id.encode("ascii"), data, db=self._dbs["images"])

    def add_page_to_indexes(self, sid: int, number: int, page_id: str) -> None:
        self.txn.put(u32(sid) + u64(number), page_id.encode("ascii"), db=self._dbs["session_pages"])
        self.txn.put(u64(number), page_id.encode("ascii"), db=self._dbs["order"])

    def delete_page(self, sid: int, number: int, page_id: str) -> None:
        """Remove a page's record, image and order entries (its postings are the search module's)."""
        key = page_id.encode("ascii")
        self.txn.delete(key, db=self._dbs["pages"])
        self.txn.delete(key, db=self._dbs["images"])
        self.txn.delete(u32(sid) + u64(number), db=self._dbs["session_pages"])
        self.txn.delete(u64(number), db=self._dbs["order"])

    def delete_session(self, name: str) -> None:
        self.txn.delete(_session_key(name), db=self._dbs["sessions"])

    # sessions ---------------------------------------------------------------------------------
    def session(self, name: str) -> SessionRecord | None:
        raw = self.txn.get(_session_key(name), db=self._dbs["sessions"])
        return None if raw is None else SessionRecord.from_bytes(bytes(raw))

    def put_session(self, name: str, record: SessionRecord) -> None:
        self.txn.put(_session_key(name), record.to_bytes(), db=self._dbs["sessions"])

    def sessions(self) -> Iterator[tuple[str, SessionRecord]]:
        with self.txn.cursor(db=self._dbs["sessions"]) as cursor:
            for key, value in cursor:
                yield bytes(key).decode("utf-8", "surrogatepass"), SessionRecord.from_bytes(bytes(value))

    def neighbour_pages(self, sid: int, number: int) -> tuple[str | None, str | None]:
        """The ids of the pages before and after page `number` in session `sid` (None at either end)."""
        db = self._dbs["session_pages"]
        prefix = u32(sid)
        before = after = None
        with self.txn.cursor(db=db) as cursor:
            if cursor.set_range(prefix + u64(number + 1)) and bytes(cursor.key()).startswith(prefix):
                after = bytes(cursor.value()).decode("ascii")
            # the last key < this page's: one step back from the first key >= it (or the very last key)
            valid = cursor.prev() if cursor.set_range(prefix + u64(number)) else cursor.last()
            if valid and bytes(cursor.key()).startswith(prefix):
                before = bytes(cursor.value()).decode("ascii")
        return before, after

    # ordered listings -------------------------------------------------------------------------
    def page_ids_newest_first(self, sid: int | None = None, before: int | None = None) -> Iterator[tuple[int, str]]:
        """(number, id) of pages newest first, of one session or all, with number < `before`."""
        if sid is None:
            db, prefix = self._dbs["order"], b""
        else:
            db, prefix = self._dbs["session_pages"], u32(sid)
        upper = prefix + u64(before if before is not None else 1 << 63)
        with self.txn.cursor(db=db) as cursor:
            # position on the first key >= upper, then step back to the last key < upper
            found = cursor.set_range(upper)
            valid = cursor.prev() if found else cursor.last()
            while valid:
                key = bytes(cursor.key())
                if not key.startswith(prefix):
                    break
                yield int.from_bytes(key[len(prefix) :], "big"), bytes(cursor.value()).decode("ascii")
                valid = cursor.prev()
