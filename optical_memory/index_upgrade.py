"""The search index's upgrade from layout 1 (plain terms) to layout 2 (keyed hashes in blocks).

Layout 1 kept plain terms in the dupsort `postings` database (value: u64 page | u16 line | u32 sid |
u16 count | u16 length) and JSON term lists in `page_terms`. `upgrade_index` moves it into layout 2
(`postings`'s blocks, under `terms.TermHasher`'s hashes) inside the first index write after an
upgrade of the code; it needs no page text, as the old postings hold everything. Until then a
read-only search says so (`IndexNeedsUpgrade`) rather than miss what the old index holds.

    meta        b"index_layout" -> b"2" once upgraded
"""

from __future__ import annotations

import json

from optical_memory.archive import LEGACY_INDEX_DB, ArchiveTxn
from optical_memory.errors import ArchiveError
from optical_memory.postings import BLOCKS_DB, TERMS_DB, Posting, page_entry, put_blocks
from optical_memory.terms import TermHasher

__all__ = ["LAYOUT", "LEGACY_DB", "IndexNeedsUpgrade", "has_index", "upgrade_index"]

LEGACY_DB = LEGACY_INDEX_DB  # layout 1 (named where the archive checks for it at open)
LAYOUT = b"2"


class IndexNeedsUpgrade(ArchiveError):
    """The archive's index has layout 1; `upgrade_index` (in a write) moves it to layout 2."""


def upgrade_index(tx: ArchiveTxn) -> bool:
    """Move a layout-1 index (plain terms) into layout 2 (keyed hashes, blocks); True if it did.

    Runs inside a write transaction (the first index write after an upgrade of the code does it).
    The old postings hold every (term, page, line, sid, count, length), so no page text is needed;
    the plain-term database is emptied in the same transaction.
    """
    meta = tx.db("meta")
    if tx.txn.get(b"index_layout", db=meta) == LAYOUT:
        return False
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
    tx.txn.put(b"index_layout", LAYOUT, db=meta)
    return True


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
