"""The search index's on-disk layout: compact blocks of postings under keyed term hashes.

`search` cuts text into terms and ranks lines; this module stores and reads where each term occurs.
A term is known here only by its 8-byte keyed hash `h` (never its text). Layout 2 (integers
big-endian in keys; values varint-coded)::

    term_blocks h + u64 first -> a block of the term's postings for pages >= `first`:
                                 varint(last page - first), varint(df: the term's postings in all
                                 its blocks, kept in its last block only; 0 in the others), then
                                 the postings sorted by (page, line), each
                                 varint(page - previous page; the first from `first`),
                                 [varint(sid): in the first posting and whenever the page changes],
                                 varint(line * 2 + (count > 1)), [varint(count): when > 1],
                                 varint(terms on the line: BM25's length, so ranking reads nothing else)
                (a term's postings for page P lie in its block with the greatest first <= P: blocks
                partition the pages, so a new page appends to the last block without decoding it,
                and forgetting a page rewrites one block per term)
    page_terms  u64 page      -> the page's entry (`page_entries`): its lines' term counts and the
                                 first 4 bytes of the hash of each distinct term on the page, sorted
                                 and Rice-coded: what forgetting the page unposts (every term whose
                                 hash starts so) and what verified reading checks spellings against

A block stays under BLOCK_BYTES (LMDB keeps values under ~2 KB inline, never on overflow pages),
except that one page's postings are never split across blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

from optical_memory.archive import ArchiveTxn, u64
from optical_memory.page_entries import ENTRY_FORMATS, decode_entry, encode_entry
from optical_memory.page_entries import read_varint as _read_varint
from optical_memory.page_entries import varint as _varint

__all__ = [
    "BLOCKS_DB",
    "ENTRY_FORMATS",
    "HASH_BYTES",
    "TERMS_DB",
    "Posting",
    "block_at",
    "decode_block",
    "document_frequency",
    "families",
    "newest_first",
    "page_entry",
    "parse_page_entry",
    "post",
    "post_pages",
    "put_blocks",
    "unpost",
]

BLOCKS_DB, TERMS_DB = "term_blocks", "page_terms"
HASH_BYTES = 8  # 2^64: collisions among even 10^8 distinct terms are unlikely (and cost one stray hit)
PREFIX_BYTES = 4  # of each hash in a page's entry: enough to find its blocks, half the bytes
BLOCK_BYTES = 1024

Posting = tuple[int, int, int, int, int]  # page, line, sid, count, length


def _varints(data: bytes) -> list[int]:
    if max(data, default=0) < 0x80:  # every value under 128 (common terms' blocks): C speed
        return list(data)
    out: list[int] = []
    value = shift = 0
    for byte in data:
        if byte < 0x80:
            out.append(value | (byte << shift))
            value = shift = 0
        else:
            value |= (byte & 0x7F) << shift
            shift += 7
    return out


def _header(value: bytes) -> tuple[int, int, int]:
    """(last page - first, df, where the postings begin) of a block."""
    span, offset = _read_varint(value)
    df, offset = _read_varint(value, offset)
    return span, df, offset


def _encode(postings: Iterable[Posting], previous: int, fresh: bool, out: bytearray) -> int:
    """Append sorted `postings` after one at page `previous` (or, `fresh`, at a block's start); last page."""
    add = out.append
    for page, line, sid, count, length in postings:
        delta = page - previous
        fields: tuple[int, ...] = (delta, sid) if delta or fresh else (delta,)
        fresh = False
        flagged = line << 1 | (count > 1)
        fields += (flagged, count, length) if count > 1 else (flagged, length)
        for value in fields:
            if value < 0x80:  # nearly every field: one byte
                add(value)
            else:
                _varint(value, out)
        previous = page
    return previous


def decode_block(first: int, value: bytes) -> list[Posting]:
    """The postings of a block whose key says `first`, in (page, line) order."""
    ints = _varints(value)
    out: list[Posting] = []
    page, sid, i, n = first, 0, 2, len(ints)
    fresh = True
    while i < n:
        delta = ints[i]
        page += delta
        if delta or fresh:
            sid, i, fresh = ints[i + 1], i + 2, False
        else:
            i += 1
        flagged = ints[i]
        if flagged & 1:
            count, i = ints[i + 1], i + 2
        else:
            count, i = 1, i + 1
        out.append((page, flagged >> 1, sid, count, ints[i]))
        i += 1
    return out


def _block(first: int, postings: Sequence[Posting], df: int) -> bytes:
    body = bytearray()
    last = _encode(postings, first, True, body)
    head = bytearray()
    _varint(last - first, head)
    _varint(df, head)
    return bytes(head + body)


def _with_df(value: bytes, df: int) -> bytes:
    span, _, offset = _header(value)
    head = bytearray()
    _varint(span, head)
    _varint(df, head)
    return bytes(head) + value[offset:]


# finding blocks -------------------------------------------------------------------------------------


def _at(cursor: Any, h: bytes) -> tuple[int, bytes] | None:
    key = bytes(cursor.key())
    if key[:HASH_BYTES] != h:
        return None
    return int.from_bytes(key[HASH_BYTES:], "big"), bytes(cursor.value())


def block_at(cursor: Any, h: bytes, page: int) -> tuple[int, bytes] | None:
    """(first, value) of the block of term `h` that holds page `page`'s postings, if any."""
    valid = cursor.prev() if cursor.set_range(h + u64(page + 1)) else cursor.last()
    return _at(cursor, h) if valid else None


def _last_block(cursor: Any, h: bytes) -> tuple[int, bytes] | None:
    valid = cursor.prev() if cursor.set_range(h + b"\xff" * 8) else cursor.last()
    return _at(cursor, h) if valid else None


def document_frequency(cursor: Any, h: bytes) -> int:
    """How many postings term `h` has (0: none)."""
    last = _last_block(cursor, h)
    return _header(last[1])[1] if last is not None else 0


def newest_first(cursor: Any, h: bytes) -> Iterator[Posting]:
    """A term's postings from the newest page back."""
    valid = cursor.prev() if cursor.set_range(h + b"\xff" * 8) else cursor.last()
    while valid and (block := _at(cursor, h)) is not None:
        yield from reversed(decode_block(*block))
        valid = cursor.prev()


# changing blocks ------------------------------------------------------------------------------------


def put_blocks(tx: ArchiveTxn, h: bytes, first: int, postings: Iterable[Posting], df: int) -> None:
    """Store sorted `postings` as blocks of about BLOCK_BYTES, the first keyed `first`; a page is never split.

    `df` goes into the last of them: pass 0 unless they end the term's blocks. `postings` is read
    once, as it comes (an upgrade streams a term's millions of postings through here).
    """
    db = tx.db(BLOCKS_DB)
    chunk: list[Posting] = []
    for posting in postings:
        # about 6 bytes a posting: the bound needs no precision
        if len(chunk) * 6 >= BLOCK_BYTES and posting[0] != chunk[-1][0]:
            tx.txn.put(h + u64(first), _block(first, chunk, 0), db=db)
            first, chunk = posting[0], []
        chunk.append(posting)
    if chunk:
        tx.txn.put(h + u64(first), _block(first, chunk, df), db=db)


def _add_to_last(tx: ArchiveTxn, cursor: Any, h: bytes, delta: int) -> None:
    last = _last_block(cursor, h)
    if last is not None:
        tx.txn.put(h + u64(last[0]), _with_df(last[1], _header(last[1])[1] + delta), db=tx.db(BLOCKS_DB))


def post(tx: ArchiveTxn, cursor: Any, h: bytes, page: int, postings: list[Posting]) -> None:
    """Add one page's postings of term `h` (sorted by line) to its blocks."""
    db = tx.db(BLOCKS_DB)
    last = _last_block(cursor, h)
    if last is None:
        put_blocks(tx, h, page, postings, len(postings))
        return
    first, value = last
    span, df, offset = _header(value)
    top = first + span
    if page > top and len(value) >= BLOCK_BYTES:  # a full block: the next one starts at this page
        tx.txn.put(h + u64(first), _with_df(value, 0), db=db)
        put_blocks(tx, h, page, postings, df + len(postings))
    elif page >= top:  # the usual case: the newest page, appended without decoding the block
        out = bytearray()
        _varint(page - first, out)
        _varint(df + len(postings), out)
        out += memoryview(value)[offset:]
        _encode(postings, top, False, out)
        cursor.put(h + u64(first), bytes(out))  # the cursor is on this block: no second search
    else:  # an older session's open page grew after newer pages were written: merge in order
        found = block_at(cursor, h, page)
        if found is None:  # older than every block: a block of its own
            put_blocks(tx, h, page, postings, 0)
        else:
            is_last = found[0] == first
            merged = sorted(decode_block(*found) + postings)
            put_blocks(tx, h, found[0], merged, df + len(postings) if is_last else 0)
            if is_last:
                return
        _add_to_last(tx, cursor, h, len(postings))


def post_pages(tx: ArchiveTxn, cursor: Any, h: bytes, postings: Sequence[Posting]) -> None:
    """Add term `h`'s postings on any number of pages (sorted by page, line) with one write per block.

    What a batch of many pages posts: the same blocks as posting page by page (`post`), but each
    block is decoded and written once, not once per page. Pages older than the term's newest
    (an older session's open page grew) are merged in page by page, as `post` does.
    """
    last = _last_block(cursor, h)
    top = -1 if last is None else last[0] + _header(last[1])[0]
    newer = 0
    while newer < len(postings) and postings[newer][0] < top:
        newer += 1
    if newer:  # rare: merged into older blocks one page at a time
        for page, group in groupby(postings[:newer], key=itemgetter(0)):
            post(tx, cursor, h, page, list(group))
        last = _last_block(cursor, h)
    if newer < len(postings):
        _append_pages(tx, h, last, postings[newer:])


def _append_pages(tx: ArchiveTxn, h: bytes, last: tuple[int, bytes] | None, postings: Sequence[Posting]) -> None:
    """Append postings on pages >= the term's newest to its last block, starting a block where `post` would."""
    db = tx.db(BLOCKS_DB)
    if last is None:
        first, body, top, df, fresh = postings[0][0], bytearray(), postings[0][0], 0, True
    else:
        first, value = last
        span, df, offset = _header(value)
        body, top, fresh = bytearray(memoryview(value)[offset:]), first + span, False
    for page, group in groupby(postings, key=itemgetter(0)):
        if page > top and not fresh and _head_bytes(top - first, df) + len(body) >= BLOCK_BYTES:
            tx.txn.put(h + u64(first), _headed(top - first, 0, body), db=db)  # full: the next block starts here
            first, body, fresh = page, bytearray(), True
            top = page
        found = list(group)
        top = _encode(found, top, fresh, body)
        fresh = False
        df += len(found)
    tx.txn.put(h + u64(first), _headed(top - first, df, body), db=db)


def _head_bytes(span: int, df: int) -> int:
    return sum(1 + (max(n, 1).bit_length() - 1) // 7 for n in (span, df))


def _headed(span: int, df: int, body: bytearray) -> bytes:
    head = bytearray()
    _varint(span, head)
    _varint(df, head)
    return bytes(head + body)


def unpost(tx: ArchiveTxn, cursor: Any, h: bytes, page: int) -> None:
    """Remove page `page`'s postings of term `h`."""
    db = tx.db(BLOCKS_DB)
    found = block_at(cursor, h, page)
    if found is None:
        return
    first, value = found
    postings = decode_block(first, value)
    kept = [p for p in postings if p[0] != page]
    removed = len(postings) - len(kept)
    if not removed:
        return
    last = _last_block(cursor, h)
    assert last is not None
    df = _header(last[1])[1] - removed
    if kept:  # the key stays: blocks still partition the pages
        tx.txn.put(h + u64(first), _block(first, kept, df if last[0] == first else 0), db=db)
        if last[0] != first:
            tx.txn.put(h + u64(last[0]), _with_df(last[1], df), db=db)
        return
    tx.txn.delete(h + u64(first), db=db)
    if last[0] != first:
        tx.txn.put(h + u64(last[0]), _with_df(last[1], df), db=db)
    elif (before := _last_block(cursor, h)) is not None:  # the block before becomes the last
        tx.txn.put(h + u64(before[0]), _with_df(before[1], df), db=db)


def families(cursor: Any, prefix: bytes) -> Iterator[bytes]:
    """The hashes of every term whose hash starts with `prefix` (one seek each)."""
    valid = cursor.set_range(prefix)
    while valid:
        key = bytes(cursor.key())
        if not key.startswith(prefix):
            return
        h = key[:HASH_BYTES]
        yield h
        valid = cursor.set_range(h + b"\xff" * 8)


# page entries ---------------------------------------------------------------------------------------


def parse_page_entry(raw: bytes) -> tuple[dict[int, int], list[bytes]]:
    """A page's {line: terms on it} and the hash prefixes of its distinct terms (`page_entries`)."""
    return decode_entry(raw)


def page_entry(lengths: dict[int, int], hashes: Iterable[bytes]) -> bytes:
    """A page's entry: its line lengths and the prefixes of its term hashes (each kept once)."""
    return encode_entry(lengths, hashes, PREFIX_BYTES)
