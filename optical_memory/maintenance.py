"""Keeping an archive's files honest: erasing freed space, compacting, and saying what is where.

**Erase** (`erase_free_space`, run by `forget` after its transaction commits). LMDB is copy-on-write:
a deleted value's pages go to a free list and keep their bytes until reused, and a page rewritten after
a deletion can keep fragments of the deleted entry in its unused middle (LMDB copies only the used
parts of a page, and recycles its page buffers without clearing them). So, in order:

1. the environment is opened afresh: no recycled buffer holds deleted bytes;
2. two small writes, so the pages the forget freed can be reused (LMDB reuses a page only once no
   snapshot can still see it);
3. every value that takes exactly one overflow page is stored again (LMDB gives such a value a
   recycled buffer without clearing it, so the page's tail past the value keeps what the buffer held
   before: possibly what was just forgotten), and every leaf page of every database is rewritten (a
   probe key put next to each key and deleted again): each is copied into a clean buffer (into pages
   the forget freed), which leaves its old copy on the free list; two more small writes make those
   reusable too;
4. a scratch database is filled with zero-filled values, two per page so no page has an unused middle,
   until it has taken every free page; then it is emptied (its pages, all zeros, are free again).

A reader that another process keeps open for the whole of step 4 pins the pages freed after its
snapshot; step 4 is retried a few times, and the result says how many pages could not be reached.

**Compact** (`compact`): LMDB's compacting copy (only live pages, written afresh) replaces the data
file, only while no other process has the archive open (the open lock, `archive_files`).

**Stats** (`stats`): file size, used and free bytes, pages and image bytes per tier, token totals.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lmdb

from optical_memory.archive import _DATABASES, _DUPSORT, Archive, ArchiveTxn
from optical_memory.archive_files import check_data_file
from optical_memory.errors import ArchiveBusy, ArchiveReadOnly
from optical_memory.tokens import claude_image_tokens, deepseek_vision_tokens

__all__ = ["SCRATCH_DB", "compact", "erase_free_space", "page_counts", "rewrite_page_sized_values", "stats"]

SCRATCH_DB = b"erase-scratch"
_META_PAGES = 2
_PAGE_HEADER, _NODE_HEADER, _KEY = 16, 8, 8
_MAX_KEY = 511


def page_counts(archive: Archive) -> dict[str, int]:
    """Pages of the data file: total, used by the databases (and metas), and free (free-list included)."""
    env = archive.env
    with env.begin() as txn:
        used = sum(_pages(txn.stat(db)) for db in archive._dbs.values())
        with contextlib.suppress(lmdb.Error):
            scratch = env.open_db(SCRATCH_DB, txn=txn, create=False)
            used += _pages(txn.stat(scratch))
    used += _pages(env.stat()) + _META_PAGES  # the main database holds the named ones' roots
    total = env.info()["last_pgno"] + 1
    return {"page_size": env.stat()["psize"], "total": total, "used": used, "free": max(0, total - used)}


def _pages(stat: Any) -> int:  # an lmdb stat dict
    return stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]


def _touch_every_leaf(tx: ArchiveTxn, names: Sequence[str], batch: int = 4096) -> int:
    """Rewrite every leaf page: put a probe key just after each key (same leaf) and delete it again.

    Keys are read a batch at a time, so memory stays bounded at any archive size.
    """
    touched = 0
    for name in names:
        db = tx.db(name)
        last: bytes | None = None
        while True:
            keys = _keys_after(tx, db, last, batch, dupsort=name in _DUPSORT)
            for key in keys:
                probe = key + b"\x00"
                if len(probe) <= _MAX_KEY and tx.txn.put(probe, b"\x00", overwrite=False, db=db):
                    tx.txn.delete(probe, db=db)  # only the probe: put refused to touch an existing key
                    touched += 1
            if len(keys) < batch:
                break
            last = keys[-1]
    return touched


def _keys_after(tx: ArchiveTxn, db: Any, last: bytes | None, count: int, dupsort: bool) -> list[bytes]:
    """Up to `count` distinct keys of `db` after `last` (from the first key if None), in order."""
    keys: list[bytes] = []
    with tx.txn.cursor(db=db) as cursor:
        valid = cursor.first() if last is None else cursor.set_range(last)
        while valid and len(keys) < count:
            key = bytes(cursor.key())
            if key != last:
                keys.append(key)
            valid = cursor.next_nodup() if dupsort else cursor.next()
    return keys


def _bump(archive: Archive) -> None:
    """A write that commits, so pages freed by earlier transactions become reusable.

    It counts erase steps in meta `erase_epoch`: another process that sees it change reopens its
    environment before its next write (`Archive.write`), dropping page buffers that may hold what was
    just erased. This process's buffers are clean (the erase began by reopening), so it notes the epoch.
    """

    def bump(tx: ArchiveTxn) -> bytes:
        raw = tx.txn.get(b"erase_epoch", db=tx.db("meta"))
        epoch = (int.from_bytes(raw, "big") + 1 if raw else 1).to_bytes(8, "big")
        tx.txn.put(b"erase_epoch", epoch, db=tx.db("meta"))
        return epoch

    archive._erase_epoch = archive.write(bump)


_MARGIN = 8  # pages: the fill's own branch pages and free-list records come out of the free pages too
_FIRST_CHUNK, _MAX_CHUNK = 64, 2048  # pages filled per transaction, doubling while the file does not grow


def _fill(archive: Archive, scratch: Any, first_key: int, pages: int, psize: int) -> int:
    """Put `pages` pages' worth of zero values into the scratch database; returns the next key."""
    # two nodes per leaf and no unused middle: 2 * (node header + key + value + 2-byte index) == usable
    value = bytes((psize - _PAGE_HEADER) // 2 - 2 - _NODE_HEADER - _KEY)

    def fill(tx: ArchiveTxn) -> None:
        for n in range(first_key, first_key + 2 * pages):
            tx.txn.put(n.to_bytes(_KEY, "big"), value, append=True, db=scratch)

    archive.write(fill)
    return first_key + 2 * pages


def _free_list_pages(free: int, psize: int) -> int:
    """About how many pages the free list itself takes to hold `free` page numbers (8 bytes each)."""
    return -(-free * 8 // (psize - 64))


def _fill_free_pages(archive: Archive, scratch: Any) -> tuple[int, int]:
    """Fill the scratch database until every reusable free page is taken: (pages filled, pages left).

    A chunk at a time, doubling: LMDB extends the file only once no free page can be reused, so the
    first chunk that grows the file ends it, and the file grows by at most one chunk. What is still
    free then (beyond the free list's own pages) is pinned by another process's reader.
    """
    filled, key, chunk = 0, 0, _FIRST_CHUNK
    while True:
        counts = page_counts(archive)
        slack = _MARGIN + _free_list_pages(counts["free"], counts["page_size"])
        if counts["free"] <= slack and filled:
            return filled, 0
        pages = min(counts["free"] + _MARGIN, chunk)
        key = _fill(archive, scratch, key, pages, counts["page_size"])
        after = page_counts(archive)
        grown = after["total"] - counts["total"]
        filled += max(0, pages - grown)
        if grown > _MARGIN or after["used"] <= counts["used"]:  # the second: no progress, never loop
            # still free: the free list's own pages, those the last few writes freed, and any pinned
            left = after["free"] - 4 * _MARGIN - _free_list_pages(after["free"], after["page_size"])
            return filled, max(0, left)
        chunk = min(2 * chunk, _MAX_CHUNK)


def erase_free_space(archive: Archive, attempts: int = 2) -> dict[str, Any]:
    """Overwrite every free page of the data file (see the module docstring); returns what it cost."""
    started = time.perf_counter()
    archive.reopen()
    page_sized = _rewrite_page_sized(archive)  # their tails may hold what recycled buffers held
    names = [name for name in _DATABASES if name in archive._dbs]
    with archive.env.begin() as txn:  # what step 2 rewrites: every page but the values' overflow pages
        rewritten = sum(
            txn.stat(archive._dbs[n])["branch_pages"] + txn.stat(archive._dbs[n])["leaf_pages"] for n in names
        )
    archive.env.reader_check()
    _bump(archive)
    _bump(archive)  # the forget's freed pages are reusable now: the rewritten leaves go there
    touched = archive.write(lambda tx: _touch_every_leaf(tx, names))
    scratch = archive.env.open_db(SCRATCH_DB)
    archive.write(lambda tx: tx.txn.drop(scratch, delete=False))  # what an erase killed midway left
    filled = unreached = 0
    for attempt in range(attempts):
        archive.env.reader_check()  # a killed process's reader slot would pin pages for ever
        _bump(archive)
        _bump(archive)  # twice: the pages the first one freed become reusable too
        done, unreached = _fill_free_pages(archive, scratch)
        filled += done
        archive.write(lambda tx: tx.txn.drop(scratch, delete=False))
        if not unreached:
            break
        time.sleep(0.1 * (attempt + 1))  # another process's reader: give it a moment to finish
    _bump(archive)
    psize = page_counts(archive)["page_size"]
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "leaf_keys_touched": touched,
        "page_sized_values_rewritten": page_sized,
        "pages_rewritten": rewritten,
        "pages_overwritten": filled,
        "bytes_written": (rewritten + filled) * psize,
        "bytes_overwritten": filled * psize,
        "pages_unreached": unreached,
    }


def rewrite_page_sized_values(archive: Archive) -> int:
    """Store again, from clean buffers, every value that takes one overflow page; returns how many.

    LMDB gives a value of one overflow page a recycled page buffer without clearing it, so the page's
    tail past the value keeps what that buffer last held. In an archive written by the first round's
    code that is plain index terms, in live pages (page records, small images) that erasing free space
    never rewrites. Put again in a fresh environment, each such value moves to a clean page and its
    old page is freed, for `erase_free_space` to overwrite.
    """
    archive.reopen()
    return _rewrite_page_sized(archive)


def _rewrite_page_sized(archive: Archive) -> int:
    names = [name for name in _DATABASES if name in archive._dbs and name not in _DUPSORT]
    psize = archive.env.stat()["psize"]
    smallest = psize // 2 - 64  # below about half a page a value sits in its leaf, which erasing rewrites

    def rewrite(tx: ArchiveTxn) -> int:
        count = 0
        for name in names:
            db = tx.db(name)
            with tx.txn.cursor(db=db) as cursor:
                keys = [bytes(k) for k, v in cursor if smallest <= len(v) <= psize - _PAGE_HEADER]
            for key in keys:
                value = tx.txn.get(key, db=db)
                if value is not None:
                    tx.txn.put(key, bytes(value), db=db)
            count += len(keys)
        return count

    return archive.write(rewrite)


def compact(archive: Archive) -> dict[str, Any]:
    """Replace the data file by LMDB's compacting copy, if no other process has the archive open."""
    if archive.read_only_reason is not None:
        raise ArchiveReadOnly(f"cannot compact the archive at {archive.path}: {archive.read_only_reason}")
    if not archive.open_lock.exclusive():
        raise ArchiveBusy(
            f"cannot compact the archive at {archive.path}: another process has it open (an MCP server, "
            "the web page, an import); stop it and run `optical-memory compact` again"
        )
    data = archive.path / "data.mdb"
    for stale in archive.path.glob(".compact.*.mdb"):  # left by a compaction that was killed
        stale.unlink()
    started = time.perf_counter()
    before = data.stat().st_size
    fd, temp = tempfile.mkstemp(prefix=".compact.", suffix=".mdb", dir=archive.path)  # 0600
    try:
        archive.swap_data_file(lambda: _copy_into(archive, fd, temp), temp)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        archive.open_lock.downgrade()
    after = data.stat().st_size
    return {
        "bytes_before": before,
        "bytes_after": after,
        "bytes_freed": before - after,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _copy_into(archive: Archive, fd: int, temp: str) -> None:
    archive.env.copyfd(fd, compact=True)
    os.fsync(fd)
    check_data_file(Path(temp))  # what replaces the archive must itself be whole


def stats(archive: Archive, tier_names: Sequence[str]) -> dict[str, Any]:
    """What the archive holds and what its file costs, as plain JSON-able numbers."""
    counts = page_counts(archive)
    psize = counts["page_size"]
    tiers: dict[str, dict[str, int]] = {}
    totals = {"text_tokens": 0, "characters": 0, "image_tokens": 0, "vision_tokens": 0}

    def scan(tx: ArchiveTxn) -> int:
        for record in tx.pages():
            name = tier_names[min(record.tier, len(tier_names) - 1)] if tier_names else str(record.tier)
            tier = tiers.setdefault(name, {"pages": 0, "image_bytes": 0, "characters": 0})
            tier["pages"] += 1
            tier["image_bytes"] += record.image_bytes
            tier["characters"] += record.characters
            totals["text_tokens"] += record.text_tokens
            totals["characters"] += record.characters
            totals["image_tokens"] += claude_image_tokens(record.geometry.width, record.geometry.height)
            totals["vision_tokens"] += deepseek_vision_tokens(record.geometry.width, record.geometry.height)
        return sum(1 for _ in tx.sessions())

    sessions = archive.read(scan)
    with archive.env.begin() as txn:
        databases = {name: _pages(txn.stat(db)) * psize for name, db in archive._dbs.items()}
    file_bytes = (archive.path / "data.mdb").stat().st_size
    return {
        "archive": str(archive.path),
        "file_bytes": file_bytes,
        "used_bytes": counts["used"] * psize,
        "free_bytes": counts["free"] * psize,
        "free_fraction": round(counts["free"] / counts["total"], 4) if counts["total"] else 0.0,
        "pages": sum(t["pages"] for t in tiers.values()),
        "sessions": sessions,
        "tiers": {name: tiers[name] for name in [*tier_names, *sorted(set(tiers) - set(tier_names))] if name in tiers},
        "tokens": totals,
        "database_bytes": databases,
    }
