"""The search index's upgrades: layout 1 (plain terms) and layout 2 (format-3 page entries) to layout 3.

Layout 1 kept plain terms in the dupsort `postings` database (value: u64 page | u16 line | u32 sid |
u16 count | u16 length) and JSON term lists in `page_terms`. `upgrade_index` moves it into
`postings`'s blocks, under `terms.TermHasher`'s hashes, inside the first index write after an
upgrade of the code; it needs no page text, as the old postings hold everything. Until then a
read-only search says so (`IndexNeedsUpgrade`) rather than miss what the old index holds.

Layout 2 is layout 3 with page entries in format 3 (4-byte prefixes as they came) instead of
format 4 (sorted and Rice-coded: a quarter fewer bytes, `page_entries`). Both formats read alike,
so nothing waits for this upgrade: each index write rewrites the next UPGRADE_PAGES old entries
(where it got to is kept in meta), so no write of a large archive stalls on all of them at once.

    meta        b"index_layout" -> b"3" once upgraded (b"2": page entries still being rewritten)
                b"index_upgrade_at" -> u64: the page whose entry a layout-2 upgrade rewrites next
"""

from __future__ import annotations

import json

from optical_memory.archive import LEGACY_INDEX_DB, ArchiveTxn
from optical_memory.errors import ArchiveError
from optical_memory.postings import (
    BLOCKS_DB,
    ENTRY_FORMATS,
    TERMS_DB,
    Posting,
    page_entry,
    parse_page_entry,
    put_blocks,
)
from optical_memory.terms import TermHasher

__all__ = ["LAYOUT", "LAYOUT_2", "LEGACY_DB", "UPGRADE_PAGES", "IndexNeedsUpgrade", "has_index", "upgrade_index"]

LEGACY_DB = LEGACY_INDEX_DB  # layout 1 (named where the archive checks for it at open)
LAYOUT_2, LAYOUT = b"2", b"3"
UPGRADE_PAGES = 500  # layout-2 page entries rewritten per write: about 0.1 s, so no write stalls long


class IndexNeedsUpgrade(ArchiveError):
    """The archive's index has layout 1; `upgrade_index` (in a write) moves it to layout 3."""


def upgrade_index(tx: ArchiveTxn) -> bool:
    """Move an older index to layout 3 (all of layout 1; the next slice of layout 2); True if it did.

    Runs inside a write transaction (every index write calls it: after the upgrade, one meta get).
    """
    meta = tx.db("meta")
    layout = tx.txn.get(b"index_layout", db=meta)
    if layout == LAYOUT:
        return False
    if layout == LAYOUT_2:
        if _rewrite_entries(tx, UPGRADE_PAGES):
            tx.txn.put(b"index_layout", LAYOUT, db=meta)
        return True
    _from_layout_1(tx)
    tx.txn.put(b"index_layout", LAYOUT, db=meta)
    return True


def _from_layout_1(tx: ArchiveTxn) -> None:
    """Layout 1's postings into blocks and its JSON page entries into format 4; the plain terms emptied.

    The old postings hold every (term, page, line, sid, count, length), so no page text is needed.
    """
    hashed = TermHasher(tx)
    with tx.txn.cursor(db=tx.db(LEGACY_DB)) as cursor:
        for key in list(cursor.iternext_nodup(keys=True, values=False)):
            cursor.set_key(key)
            df, first = cursor.count(), _legacy_posting(bytes(cursor.value()))[0]
            found = (_legacy_posting(bytes(value)) for value in cursor.iternext_dup())  # in (page, line) order
            put_blocks(tx, hashed(bytes(key).decode("utf-8", "surrogatepass")), first, found, df)
    page_terms = tx.db(TERMS_DB)
    for key, raw in list(tx.txn.cursor(db=page_terms)):
        if bytes(raw[:1]) == b"{":
            entry = json.loads(bytes(raw))
            lengths = {int(line): int(n) for line, n in entry["lengths"].items()}
            tx.txn.put(bytes(key), page_entry(lengths, [hashed(t) for t in entry["terms"]]), db=page_terms)
    tx.txn.drop(tx.db(LEGACY_DB), delete=False)


def _rewrite_entries(tx: ArchiveTxn, limit: int) -> bool:
    """Rewrite up to `limit` format-3 page entries as format 4, from where the last call stopped; True when done."""
    meta, page_terms = tx.db("meta"), tx.db(TERMS_DB)
    at = tx.txn.get(b"index_upgrade_at", db=meta)
    rewritten: list[tuple[bytes, bytes]] = []
    with tx.txn.cursor(db=page_terms) as cursor:
        valid = cursor.set_range(bytes(at)) if at else cursor.first()
        while valid and len(rewritten) < limit:
            raw = bytes(cursor.value())
            if raw[:1] == ENTRY_FORMATS[0]:
                rewritten.append((bytes(cursor.key()), page_entry(*parse_page_entry(raw))))
            valid = cursor.next()
        following = bytes(cursor.key()) if valid else None
    for key, value in rewritten:
        tx.txn.put(key, value, db=page_terms)
    if following is None:
        tx.txn.delete(b"index_upgrade_at", db=meta)
        return True
    tx.txn.put(b"index_upgrade_at", following, db=meta)
    return False


def _legacy_posting(value: bytes) -> Posting:
    """Layout 1's posting value: u64 page | u16 line | u32 sid | u16 count | u16 length."""
    return (
        int.from_bytes(value[:8], "big"),
        int.from_bytes(value[8:10], "big"),
        int.from_bytes(value[10:14], "big"),
        int.from_bytes(value[14:16], "big"),
        int.from_bytes(value[16:18], "big"),
    )


def has_index(tx: ArchiveTxn) -> bool:
    """Whether there is a layout-2 index to read; ArchiveError for a layout-1 one not upgraded yet."""
    try:
        legacy = tx.txn.stat(tx.db(LEGACY_DB))["entries"]
    except KeyError:  # opened read-only, and the database was never made
        legacy = 0
    if legacy and tx.txn.get(b"index_layout", db=tx.db("meta")) != LAYOUT:
        raise IndexNeedsUpgrade(
            "this archive's search index has layout 1 (plain terms): its next write upgrades it to keyed "
            "hashes (open it writable once, e.g. `optical-memory serve` or any remember)"
        )
    try:
        tx.db(BLOCKS_DB)
    except KeyError:  # a read-only archive from before layout 2, with nothing indexed
        return False
    return True
