"""Search: locate lines by their terms (an index kept beside the pages), then transcribe them.

The index holds no words: at `remember` time each line piece is cut into terms, each term becomes an
8-byte keyed hash (blake2b under `checkcode.derive_key(archive_key, "terms")`), and the hash posts
(page, line, session, count, terms on the line) into compact blocks, in the same transaction that
stores the page. A search cuts and hashes the query the same way, ranks lines with BM25 over those
postings, and the caller reads the winning lines from the page images with the reader, so a hit shows
exactly what memory still holds at the page's tier - fading included.

Terms are cut for how agents search: words; identifiers whole and in parts (``snake_case`` ->
``snake_case``, ``snake``, ``case``; ``camelCase`` -> ``camelcase``, ``camel``, ``case``); dotted
names and paths whole and by component (``os.path.join``, ``src/app/main.py``); numbers, hex ids
and error codes whole (``0x1f3a``, ``E1234``, ``HTTP-503``). Everything is lower-cased.

Layout 2 (integers big-endian in keys; values varint-coded)::

    term_blocks h + u64 0     -> varint: postings of the term (its document frequency)
                h + u64 first -> a block: varint(last page - first), then postings sorted by (page,
                                 line), each varint(page - previous page; the first from `first`),
                                 [varint(sid): when the page changes, and in the first posting],
                                 varint(line * 2 + (count > 1)), [varint(count) when > 1],
                                 varint(terms on the line: BM25's length, so ranking reads nothing else)
                (h: the term's 8-byte keyed hash. A term's postings for page P lie in its block with
                the greatest first <= P: blocks partition the pages, and appends go to the last one.)
    page_terms  u64 page      -> b"\\x02", varint(lines), (varint line, varint length) per line, then
                                 the 8-byte hashes of the page's distinct terms (what forgetting unposts)
    meta        b"index_lines", b"index_terms" -> u64 (BM25's average line length);
                b"index_layout" -> b"2"

Layout 1 (plain terms in the dupsort `postings`, JSON term lists in `page_terms`) is moved into
layout 2 by `upgrade_index`, which needs no page text: its postings hold everything, only hashed.
What the index still reveals is in the README (Search).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from optical_memory.archive import ArchiveTxn, u64
from optical_memory.checkcode import derive_key
from optical_memory.errors import ArchiveError, InvalidArgument

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TERMS",
    "LineHit",
    "bump_index_counts",
    "index_lines",
    "query_terms",
    "rank",
    "terms",
    "unindex_page",
    "upgrade_index",
]

BLOCKS_DB, TERMS_DB, LEGACY_DB = "term_blocks", "page_terms", "postings"
LAYOUT = b"2"
TERMS_PURPOSE = "terms"
HASH_BYTES = 8  # 2^64: collisions among even 10^8 distinct terms are unlikely (and cost one stray hit)
BLOCK_BYTES = 1024  # well under LMDB's ~2 KB inline limit: a block never takes an overflow page
MAX_TERM = 64  # longer runs (base64 blobs, minified code) are indexed by their first 64 characters
# Postings read per query term. A term on more lines than this (think "the" in a 100,000-page
# archive) is only looked up on the lines rarer terms found, or, if every term is that common,
# read from the newest pages back: search stays bounded in time and memory at any archive size.
MAX_SCAN = 20_000
MAX_SCAN_TOTAL = 4 * MAX_SCAN  # over all the terms of one query
MAX_LOOKUP = 2_000  # best candidate lines a too-common term is looked up on
# A query is a few words or identifiers; a pasted page would cost seconds and hundreds of MB.
MAX_QUERY_CHARS = 1_000
MAX_QUERY_TERMS = 48
_HEADER = u64(0)  # page numbers start at 1: key suffix 0 is the term's header
_ENTRY_FORMAT = 2
_COMPOUND = re.compile(r"\w+(?:[./\\:@#-]\w+)*")
_SEPARATORS = re.compile(r"[./\\:@#-]")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_K1, _B = 1.2, 0.75  # the usual BM25 constants

Posting = tuple[int, int, int, int, int]  # page, line, sid, count, length


def terms(text: str) -> list[str]:
    """The search terms of a text, with repeats (a term's count is its frequency)."""
    out: list[str] = []
    for match in _COMPOUND.finditer(text):
        whole = match.group(0)
        variants = {whole}
        for part in _SEPARATORS.split(whole):
            variants.add(part)
            pieces = [p for p in part.split("_") if p]
            variants.update(pieces)
            for piece in pieces:
                if re.search(r"[a-z][A-Z]|[A-Z]{2}[a-z]", piece):  # camelCase / HTTPServer
                    variants.update(_CAMEL.findall(piece))
        out.extend(v.lower()[:MAX_TERM] for v in variants if v)
    return out


def query_terms(query: object) -> list[str]:
    """The distinct terms of a search query, or InvalidArgument saying what a valid query is."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgument("query is empty; give words, identifiers, paths, numbers or error codes")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument(
            f"query is {len(query):,} characters; at most {MAX_QUERY_CHARS:,} are allowed: "
            "search for the few words or identifiers that matter"
        )
    wanted = list(dict.fromkeys(terms(query)))
    if not wanted:
        raise InvalidArgument(f"query {query[:80]!r} has no searchable terms (letters, digits or identifiers)")
    if len(wanted) > MAX_QUERY_TERMS:
        raise InvalidArgument(
            f"query has {len(wanted)} distinct terms (identifiers count whole and by part); at most "
            f"{MAX_QUERY_TERMS} are allowed: search for fewer words"
        )
    return wanted


# hashing and coding ---------------------------------------------------------------------------------


class _TermHasher:
    """Keyed 8-byte hashes of terms: the keyed state is made once and copied per term."""

    def __init__(self, tx: ArchiveTxn) -> None:
        key = derive_key(tx.archive_key(), TERMS_PURPOSE)
        self._keyed = hashlib.blake2b(key=key, digest_size=HASH_BYTES, person=b"om-terms-v1")

    def __call__(self, term: str) -> bytes:
        h = self._keyed.copy()
        h.update(term.encode("utf-8", "surrogatepass"))
        return h.digest()


def _varint(n: int, out: bytearray) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _varints(data: bytes) -> list[int]:
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


def _read_varint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """The varint at `offset` of `data` and the offset after it."""
    value = shift = 0
    for end in range(offset, len(data)):
        byte = data[end]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, end + 1
        shift += 7
    raise ArchiveError("a search index value is truncated; the archive is damaged")


def _encode(postings: Iterable[Posting], previous: int, fresh: bool, out: bytearray) -> int:
    """Append sorted `postings` after one at page `previous` (or, `fresh`, at a block's start); last page."""
    for page, line, sid, count, length in postings:
        delta = page - previous
        _varint(delta, out)
        if delta or fresh:
            _varint(sid, out)
            fresh = False
        _varint(line << 1 | (count > 1), out)
        if count > 1:
            _varint(count, out)
        _varint(length, out)
        previous = page
    return previous


def _decode(first: int, value: bytes) -> list[Posting]:
    """The postings of a block whose key says `first`, in (page, line) order."""
    ints = _varints(value)
    out: list[Posting] = []
    page, sid, i, n = first, 0, 1, len(ints)
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


def _block(first: int, postings: Sequence[Posting]) -> bytes:
    body = bytearray()
    last = _encode(postings, first, True, body)
    head = bytearray()
    _varint(last - first, head)
    return bytes(head + body)


# blocks ---------------------------------------------------------------------------------------------


def _block_at(cursor: Any, h: bytes, page: int) -> tuple[int, bytes] | None:
    """(first, value) of the block of term `h` that holds page `page`'s postings, if any."""
    valid = cursor.prev() if cursor.set_range(h + u64(page + 1)) else cursor.last()
    if not valid:
        return None
    key = bytes(cursor.key())
    if key[:HASH_BYTES] != h or key[HASH_BYTES:] == _HEADER:
        return None
    return int.from_bytes(key[HASH_BYTES:], "big"), bytes(cursor.value())


def _put_blocks(tx: ArchiveTxn, h: bytes, first: int, postings: Sequence[Posting]) -> None:
    """Store sorted `postings` as blocks of about BLOCK_BYTES, the first keyed `first`; a page is never split."""
    db = tx.db(BLOCKS_DB)
    start = 0
    while start < len(postings):
        end, size = start, 0
        while end < len(postings) and (size < BLOCK_BYTES or postings[end][0] == postings[end - 1][0]):
            size += 6  # a posting's usual size; the block bound needs no precision
            end += 1
        tx.txn.put(h + u64(first), _block(first, postings[start:end]), db=db)
        start = end
        if start < len(postings):
            first = postings[start][0]


def _add_df(tx: ArchiveTxn, h: bytes, delta: int) -> None:
    db = tx.db(BLOCKS_DB)
    raw = tx.txn.get(h + _HEADER, db=db)
    df = (_read_varint(bytes(raw))[0] if raw else 0) + delta
    if df > 0:
        out = bytearray()
        _varint(df, out)
        tx.txn.put(h + _HEADER, bytes(out), db=db)
    elif raw is not None:
        tx.txn.delete(h + _HEADER, db=db)


def _post(tx: ArchiveTxn, cursor: Any, h: bytes, page: int, postings: list[Posting]) -> None:
    """Add one page's postings of term `h` (sorted by line) to its blocks."""
    db = tx.db(BLOCKS_DB)
    found = _block_at(cursor, h, page)
    if found is None:
        _put_blocks(tx, h, page, postings)
    else:
        first, value = found
        span, offset = _read_varint(value)
        last = first + span
        if page > last and len(value) >= BLOCK_BYTES:
            _put_blocks(tx, h, page, postings)  # a full block: the next one starts at this page
        elif page >= last:  # the usual case: the newest page, appended without decoding the block
            body = bytearray(value[offset:])
            _encode(postings, last, False, body)
            head = bytearray()
            _varint(page - first, head)
            tx.txn.put(h + u64(first), bytes(head + body), db=db)
        else:  # an older session's open page grew after newer pages were written: merge in order
            _put_blocks(tx, h, first, sorted(_decode(first, value) + postings))
    _add_df(tx, h, len(postings))


# page entries ---------------------------------------------------------------------------------------


def _parse_entry(raw: bytes) -> tuple[dict[int, int], list[bytes]]:
    """A page's {line: terms on it} and the hashes of its distinct terms."""
    if raw[:1] != bytes([_ENTRY_FORMAT]):
        raise ArchiveError("the search index has layout 1 here; open the archive writable once to upgrade it")
    count, offset = _read_varint(raw, 1)
    lengths: dict[int, int] = {}
    for _ in range(count):
        line, offset = _read_varint(raw, offset)
        lengths[line], offset = _read_varint(raw, offset)
    return lengths, [raw[i : i + HASH_BYTES] for i in range(offset, len(raw), HASH_BYTES)]


def _entry(lengths: dict[int, int], hashes: Iterable[bytes]) -> bytes:
    out = bytearray([_ENTRY_FORMAT])
    _varint(len(lengths), out)
    for line, length in sorted(lengths.items()):
        _varint(line, out)
        _varint(length, out)
    return bytes(out) + b"".join(hashes)


# writing --------------------------------------------------------------------------------------------


def bump_index_counts(tx: ArchiveTxn, lines: int, terms: int) -> None:
    """Add to (or, negative, take from) the index's line and term totals that BM25 averages over."""
    db = tx.db("meta")
    for key, delta in ((b"index_lines", lines), (b"index_terms", terms)):
        raw = tx.txn.get(key, db=db)
        tx.txn.put(key, u64(max(0, (int.from_bytes(raw, "big") if raw else 0) + delta)), db=db)


def index_lines(tx: ArchiveTxn, sid: int, page: int, first_line: int, pieces: Sequence[str]) -> None:
    """Post the terms of lines `first_line`, `first_line + 1`, ... of a page (inside its write)."""
    upgrade_index(tx)
    hashed = _TermHasher(tx)
    page_terms = tx.db(TERMS_DB)
    raw = tx.txn.get(u64(page), db=page_terms)
    lengths, known = _parse_entry(bytes(raw)) if raw else ({}, [])
    seen = set(known)
    by_hash: dict[bytes, list[Posting]] = {}
    added_terms = 0
    for offset, piece in enumerate(pieces):
        line = first_line + offset
        counts = Counter(terms(piece))
        length = sum(counts.values())
        for term, count in counts.items():
            by_hash.setdefault(hashed(term), []).append((page, line, sid, count, length))
        lengths[line] = length
        added_terms += length
    with tx.txn.cursor(db=tx.db(BLOCKS_DB)) as cursor:
        for h, postings in by_hash.items():
            _post(tx, cursor, h, page, postings)
            if h not in seen:
                seen.add(h)
                known.append(h)
    tx.txn.put(u64(page), _entry(lengths, known), db=page_terms)
    bump_index_counts(tx, len(pieces), added_terms)


def unindex_page(tx: ArchiveTxn, page: int) -> None:
    """Remove every posting of a page (inside the write that forgets it)."""
    upgrade_index(tx)
    raw = tx.txn.get(u64(page), db=tx.db(TERMS_DB))
    if raw is None:
        return
    lengths, hashes = _parse_entry(bytes(raw))
    db = tx.db(BLOCKS_DB)
    with tx.txn.cursor(db=db) as cursor:
        for h in hashes:
            found = _block_at(cursor, h, page)
            if found is None:
                continue
            first, value = found
            postings = _decode(first, value)
            kept = [p for p in postings if p[0] != page]
            if kept:
                tx.txn.put(h + u64(first), _block(first, kept), db=db)  # the key stays: blocks still partition
            else:
                tx.txn.delete(h + u64(first), db=db)
            _add_df(tx, h, len(kept) - len(postings))
    tx.txn.delete(u64(page), db=tx.db(TERMS_DB))
    bump_index_counts(tx, -len(lengths), -sum(lengths.values()))


def upgrade_index(tx: ArchiveTxn) -> bool:
    """Move a layout-1 index (plain terms) into layout 2 (keyed hashes, blocks); True if it did.

    Call inside a write transaction (the archive's first write after opening does). The old
    postings hold every (term, page, line, sid, count, length), so no page text is needed; the
    plain-term databases are emptied in the same transaction.
    """
    meta = tx.db("meta")
    if tx.txn.get(b"index_layout", db=meta) == LAYOUT:
        return False
    hashed = _TermHasher(tx)
    legacy = tx.db(LEGACY_DB)
    with tx.txn.cursor(db=legacy) as cursor:
        for key in list(cursor.iternext_nodup(keys=True, values=False)):
            cursor.set_key(key)
            postings = [_legacy_posting(bytes(value)) for value in cursor.iternext_dup()]
            h = hashed(bytes(key).decode("utf-8", "surrogatepass"))
            _put_blocks(tx, h, postings[0][0], postings)  # dupsort kept them in (page, line) order
            _add_df(tx, h, len(postings))
    page_terms = tx.db(TERMS_DB)
    for key, raw in list(tx.txn.cursor(db=page_terms)):
        if bytes(raw[:1]) == b"{":
            entry = json.loads(bytes(raw))
            lengths = {int(line): int(n) for line, n in entry["lengths"].items()}
            tx.txn.put(bytes(key), _entry(lengths, (hashed(t) for t in entry["terms"])), db=page_terms)
    tx.txn.drop(legacy, delete=False)
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


# ranking --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineHit:
    page: int
    line: int
    score: float
    terms: int = 0  # distinct query terms on the line


def _newest_first(cursor: Any, h: bytes) -> Iterator[Posting]:
    """A term's postings from the newest page back."""
    valid = cursor.prev() if cursor.set_range(h + b"\xff" * 8) else cursor.last()
    while valid:
        key = bytes(cursor.key())
        if key[:HASH_BYTES] != h or key[HASH_BYTES:] == _HEADER:
            return
        block = _decode(int.from_bytes(key[HASH_BYTES:], "big"), bytes(cursor.value()))
        yield from reversed(block)
        valid = cursor.prev()


def _check_layout(tx: ArchiveTxn) -> None:
    if tx.txn.get(b"index_layout", db=tx.db("meta")) != LAYOUT and tx.txn.stat(tx.db(LEGACY_DB))["entries"]:
        raise ArchiveError(
            "this archive's search index has layout 1 (plain terms); open it writable once "
            "(any write, or `optical-memory check`) to upgrade it to keyed hashes"
        )


def _bm25(counts: dict[str, int], length: int, idf: dict[str, float], average: float) -> float:
    norm = _K1 * (1 - _B + _B * length / average)
    return sum(idf[t] * tf * (_K1 + 1) / (tf + norm) for t, tf in counts.items())


def rank(tx: ArchiveTxn, query_terms: Iterable[str], sid: int | None, limit: int) -> list[LineHit]:
    """The best `limit` lines for the query, newest page first on ties.

    A line scores BM25 times its coverage: the share of the query's weight (the idf of every query
    term the index knows) that the line holds. So a long line with every word of the query beats a
    short one with a single rare word, which plain BM25 (rewarding short lines) would put first.
    """
    _check_layout(tx)
    meta, db = tx.db("meta"), tx.db(BLOCKS_DB)
    raw_lines, raw_terms = tx.txn.get(b"index_lines", db=meta), tx.txn.get(b"index_terms", db=meta)
    total_lines = int.from_bytes(raw_lines, "big") if raw_lines else 0
    if not total_lines:
        return []
    average = (int.from_bytes(raw_terms, "big") if raw_terms else 0) / total_lines or 1.0
    hashed = _TermHasher(tx)
    known: list[tuple[int, str, bytes]] = []
    for term in dict.fromkeys(query_terms):
        h = hashed(term)
        raw = tx.txn.get(h + _HEADER, db=db)
        if raw is not None:
            known.append((_read_varint(bytes(raw))[0], term, h))
    idf: dict[str, float] = {}
    found: dict[tuple[int, int], dict[str, int]] = {}  # (page, line) -> {term: count on that line}
    lengths: dict[tuple[int, int], int] = {}  # (page, line) -> terms on that line
    scanned = 0
    with tx.txn.cursor(db=db) as cursor:
        for df, term, h in sorted(known):  # rarest first: they decide which lines are candidates
            idf[term] = math.log(1 + (total_lines - df + 0.5) / (df + 0.5))
            if not found or (df <= MAX_SCAN and scanned + df <= MAX_SCAN_TOTAL):
                # newest first, at most MAX_SCAN postings: time and memory stay bounded however common
                for page, line, posted_sid, count, length in islice(_newest_first(cursor, h), MAX_SCAN):
                    if sid is None or posted_sid == sid:
                        found.setdefault((page, line), {})[term] = count
                        lengths[(page, line)] = length
                scanned += min(df, MAX_SCAN)
            else:  # too common to enumerate: look it up on the best lines the rarer terms found
                best = sorted(found, key=lambda at: -_bm25(found[at], lengths[at], idf, average))
                _look_up(cursor, h, term, best[:MAX_LOOKUP], found)
    weight = sum(idf.values()) or 1.0
    scores: dict[tuple[int, int], float] = {}
    for at, counts in found.items():
        coverage = sum(idf[t] for t in counts) / weight
        scores[at] = _bm25(counts, lengths[at], idf, average) * coverage
    ordered = sorted(scores.items(), key=lambda item: (-item[1], -item[0][0], item[0][1]))
    return [LineHit(page, line, round(score, 4), len(found[(page, line)])) for (page, line), score in ordered[:limit]]


def _look_up(cursor: Any, h: bytes, term: str, lines: list[tuple[int, int]], found: dict[Any, dict[str, int]]) -> None:
    """Add term `h`'s count on each of `lines` that holds it; each block is decoded once."""
    blocks: dict[int, dict[tuple[int, int], int]] = {}
    for page, line in sorted(lines):
        located = _block_at(cursor, h, page)
        if located is None:
            continue
        first, value = located
        if first not in blocks:
            blocks[first] = {(p, n): count for p, n, _, count, _ in _decode(first, value)}
        count = blocks[first].get((page, line))
        if count:
            found[(page, line)][term] = count


# Until transfer.py re-indexes imported pages through `index_lines` (its owner is moving it), these
# layout-1 names keep it importable; nothing in this module uses them.
POSTING_DB = LEGACY_DB
parse_posting = _legacy_posting


def posting(page: int, line: int, sid: int, count: int, length: int) -> bytes:
    """Layout 1's posting value (transfer.py's old import path only)."""
    return (
        u64(page)
        + line.to_bytes(2, "big")
        + sid.to_bytes(4, "big")
        + count.to_bytes(2, "big")
        + length.to_bytes(2, "big")
    )
