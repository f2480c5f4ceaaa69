"""Search: locate lines by their terms (an index kept beside the pages), then transcribe them.

The index holds no words: at `remember` time each line piece is cut into terms (`terms`), each term
becomes an 8-byte keyed hash (`terms.TermHasher`), and the hash posts (page, line, session, count,
terms on the line) into compact blocks, in the same transaction that stores the page. A search cuts
and hashes the query the same way, ranks lines over those postings (BM25 times the share of the
query's words a line holds), and the caller (`passages`) reads the winning lines and their context
from the page images with the reader, so a hit shows exactly what memory still holds at the page's
tier - fading included.

The index's layout (keyed hashes in compact blocks of varint-coded postings; the page entries
that forgetting unposts) is `postings`'s. Layout 1 (plain terms) is moved into it by
`index_upgrade.upgrade_index`. What the index still reveals is in the README (Search).
Term cutting, query limits and the upgrade are importable from here too, as before.

    meta        b"index_lines", b"index_terms" -> u64 (BM25's average line length)
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from optical_memory.archive import ArchiveTxn, u64
from optical_memory.index_upgrade import LAYOUT, LEGACY_DB, IndexNeedsUpgrade, has_index, upgrade_index
from optical_memory.postings import (
    BLOCKS_DB,
    TERMS_DB,
    Posting,
    block_at,
    decode_block,
    document_frequency,
    families,
    newest_first,
    page_entry,
    parse_page_entry,
    post_pages,
    unpost,
)
from optical_memory.terms import (
    MAX_QUERY_CHARS,
    MAX_QUERY_TERMS,
    MAX_TERM,
    TERMS_PURPOSE,
    TermHasher,
    query_terms,
    query_words,
    terms,
)

__all__ = [
    "LAYOUT",
    "LEGACY_DB",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TERMS",
    "MAX_TERM",
    "TERMS_PURPOSE",
    "IndexBatch",
    "IndexNeedsUpgrade",
    "LineHit",
    "TermHasher",
    "bump_index_counts",
    "index_lines",
    "query_terms",
    "query_words",
    "rank",
    "terms",
    "unindex_page",
    "upgrade_index",
]

_TermHasher = TermHasher  # the name it had here

# Postings read per query: the rarest terms are read whole while they fit SCAN_BUDGET, and they
# decide which lines are candidates; a commoner term (think "the" in a 100,000-page archive) is only
# looked up on the MAX_LOOKUP best of those. If even the rarest term is over budget, its newest
# MAX_SCAN postings are read. Search stays bounded in time and memory at any archive size.
MAX_SCAN = 20_000
SCAN_BUDGET = 10_000
MAX_LOOKUP = 1_000
_K1, _B = 1.2, 0.75  # the usual BM25 constants
COVERAGE_POWER = 2  # coverage squared: a line missing a third of the query keeps under half its score


# writing --------------------------------------------------------------------------------------------


def bump_index_counts(tx: ArchiveTxn, lines: int, terms: int) -> None:
    """Add to (or, negative, take from) the index's line and term totals that BM25 averages over."""
    db = tx.db("meta")
    for key, delta in ((b"index_lines", lines), (b"index_terms", terms)):
        raw = tx.txn.get(key, db=db)
        tx.txn.put(key, u64(max(0, (int.from_bytes(raw, "big") if raw else 0) + delta)), db=db)


class IndexBatch:
    """The index writes of one write transaction: lines gathered as they are laid out, stored by `flush`.

    A batch of many pages posts each term once (`postings.post_pages`: one write per block it
    touches), hashes each distinct term once, and writes each page's entry and the totals once;
    what it stores is what posting the same lines page by page would. Nothing reaches the archive
    before `flush`, which runs in the same transaction, so a batch is indexed whole or not at all.
    """

    def __init__(self, tx: ArchiveTxn) -> None:
        upgrade_index(tx)
        self.tx = tx
        self._hash = TermHasher(tx)
        self._hashes: dict[str, bytes] = {}
        self._postings: dict[bytes, list[Posting]] = {}  # term hash -> its postings, in the order added
        self._pages: dict[int, tuple[dict[int, int], dict[bytes, None]]] = {}  # page -> line lengths, hashes
        self._lines = self._terms = 0

    def add(self, sid: int, page: int, first_line: int, pieces: Sequence[str]) -> None:
        """Index lines `first_line`, `first_line + 1`, ... of page `page` of session `sid`."""
        entry = self._pages.get(page)
        if entry is None:
            raw = self.tx.txn.get(u64(page), db=self.tx.db(TERMS_DB))
            lengths, known = parse_page_entry(bytes(raw)) if raw else ({}, [])
            entry = self._pages[page] = (lengths, dict.fromkeys(known))
        lengths, hashes = entry
        for line, piece in enumerate(pieces, first_line):
            counts = Counter(terms(piece))
            length = sum(counts.values())
            for term, count in counts.items():
                if (h := self._hashes.get(term)) is None:
                    h = self._hashes[term] = self._hash(term)
                found = self._postings.get(h)
                if found is None:
                    found = self._postings[h] = []
                found.append((page, line, sid, count, length))
                hashes[h] = None
            lengths[line] = length
            self._terms += length
        self._lines += len(pieces)

    def flush(self) -> None:
        """Store what was added (inside the same write transaction), and start empty."""
        tx = self.tx
        with tx.txn.cursor(db=tx.db(BLOCKS_DB)) as cursor:
            for h, found in self._postings.items():
                found.sort()  # pages of several sessions interleave; within a page, lines are in order
                post_pages(tx, cursor, h, found)
        page_terms = tx.db(TERMS_DB)
        for page, (lengths, hashes) in sorted(self._pages.items()):
            key, value = u64(page), page_entry(lengths, hashes)
            # a new page is the highest key yet: appended, LMDB leaves the leaf before it full instead
            # of splitting it in half (entries of ~1 KB: three a leaf, not two)
            if not tx.txn.put(key, value, append=True, db=page_terms):
                tx.txn.put(key, value, db=page_terms)
        if self._lines:
            bump_index_counts(tx, self._lines, self._terms)
        self._postings, self._pages, self._lines, self._terms = {}, {}, 0, 0


def index_lines(tx: ArchiveTxn, sid: int, page: int, first_line: int, pieces: Sequence[str]) -> None:
    """Post the terms of lines `first_line`, `first_line + 1`, ... of a page (inside its write)."""
    batch = IndexBatch(tx)
    batch.add(sid, page, first_line, pieces)
    batch.flush()


def unindex_page(tx: ArchiveTxn, page: int) -> None:
    """Remove every posting of a page (inside the write that forgets it)."""
    upgrade_index(tx)
    raw = tx.txn.get(u64(page), db=tx.db(TERMS_DB))
    if raw is None:
        return
    lengths, prefixes = parse_page_entry(bytes(raw))
    with tx.txn.cursor(db=tx.db(BLOCKS_DB)) as cursor:
        for prefix in prefixes:
            # every term whose hash starts so: the page's own, and rarely another, which unposts nothing
            for h in list(families(cursor, prefix)):
                unpost(tx, cursor, h, page)
    tx.txn.delete(u64(page), db=tx.db(TERMS_DB))
    bump_index_counts(tx, -len(lengths), -sum(lengths.values()))


# ranking --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineHit:
    page: int
    line: int
    score: float
    terms: int = 0  # distinct query terms on the line


def _scores(
    found: dict[tuple[int, int], dict[str, int]],
    lengths: dict[tuple[int, int], int],
    idf: dict[str, float],
    average: float,
    words: Sequence[Sequence[str]],
) -> dict[tuple[int, int], float]:
    """Each line's score: per query word, the best BM25 term of its forms; times the line's coverage.

    Coverage is the share of the query's words the line holds, each word weighted by its rarest
    known form: whole (``eu-west``, ``sendgrid``) or by all its parts (``EU_WEST``, ``SENDGRID``
    hold them). Counting each word once keeps the parts of a compound (``send``, ``grid``) from
    outweighing the words around it.
    """
    shapes = []  # per word the index knows: (whole form or None, its known parts, weight)
    for word in words:
        whole = word[0] if word[0] in idf else None
        parts = [t for t in word[1:] if t in idf]
        if whole or parts:
            shapes.append((whole, parts, max(idf[t] for t in [*parts, *([whole] if whole else [])])))
    boost = {t: w * (_K1 + 1) for t, w in idf.items()}
    base, slope, total = _K1 * (1 - _B), _K1 * _B / average, sum(weight for *_, weight in shapes) or 1.0
    out = {}
    for at, counts in found.items():
        norm = base + slope * lengths[at]
        bm25 = covered = 0.0
        for whole, parts, weight in shapes:
            forms = [t for t in ([whole, *parts] if whole else parts) if t in counts]
            if not forms:
                continue
            bm25 += max(boost[t] * counts[t] / (counts[t] + norm) for t in forms)
            if whole in counts:
                covered += weight
            else:
                covered += weight * sum(idf[t] for t in parts if t in counts) / sum(idf[t] for t in parts)
        out[at] = bm25 * (covered / total) ** COVERAGE_POWER
    return out


def rank(
    tx: ArchiveTxn,
    query_terms: Iterable[str],
    sid: int | None,
    limit: int,
    words: Sequence[Sequence[str]] | None = None,
) -> list[LineHit]:
    """The best `limit` lines for the query, newest page first on ties.

    A line scores BM25 times its coverage: the share of the query's words (`query_words`; without
    them, each term is a word) that the line holds, weighted by rarity. So a long line with every
    word of the query beats a short one with a single rare word, which plain BM25 (rewarding short
    lines) would put first.
    """
    if not has_index(tx):
        return []
    meta = tx.db("meta")
    raw_lines, raw_terms = tx.txn.get(b"index_lines", db=meta), tx.txn.get(b"index_terms", db=meta)
    total_lines = int.from_bytes(raw_lines, "big") if raw_lines else 0
    if not total_lines:
        return []
    average = (int.from_bytes(raw_terms, "big") if raw_terms else 0) / total_lines or 1.0
    hashed = TermHasher(tx)
    idf: dict[str, float] = {}
    found: dict[tuple[int, int], dict[str, int]] = {}  # (page, line) -> {term: count on that line}
    lengths: dict[tuple[int, int], int] = {}  # (page, line) -> terms on that line
    scanned = 0
    best: list[tuple[int, int]] | None = None  # the candidates common terms are looked up on
    with tx.txn.cursor(db=tx.db(BLOCKS_DB)) as cursor:
        words = [[t] for t in dict.fromkeys(query_terms)] if words is None else words
        hashes = {term: hashed(term) for word in words for term in word}
        known = [(df, term, h) for term, h in hashes.items() if (df := document_frequency(cursor, h))]
        for df, term, h in sorted(known):  # rarest first: they decide which lines are candidates
            idf[term] = math.log(1 + (total_lines - df + 0.5) / (df + 0.5))
            if best is None and (not found or scanned + df <= SCAN_BUDGET):
                # newest first, at most MAX_SCAN postings: time and memory stay bounded however common
                for page, line, posted_sid, count, length in islice(newest_first(cursor, h), MAX_SCAN):
                    if sid is None or posted_sid == sid:
                        found.setdefault((page, line), {})[term] = count
                        lengths[(page, line)] = length
                scanned += min(df, MAX_SCAN)
                continue
            if best is None:  # too common to read whole: look it up on the best lines found so far
                partial = _scores(found, lengths, idf, average, words)
                best = heapq.nlargest(MAX_LOOKUP, partial, key=partial.__getitem__)
            _look_up(cursor, h, term, best, found)
    scores = _scores(found, lengths, idf, average, words)
    ordered = sorted(scores.items(), key=lambda item: (-item[1], -item[0][0], item[0][1]))
    return [LineHit(page, line, round(score, 4), len(found[(page, line)])) for (page, line), score in ordered[:limit]]


def _look_up(cursor: Any, h: bytes, term: str, lines: list[tuple[int, int]], found: dict[Any, dict[str, int]]) -> None:
    """Add term `h`'s count on each of `lines` that holds it; each block is decoded once."""
    blocks: dict[int, dict[tuple[int, int], int]] = {}
    for page, line in sorted(lines):
        located = block_at(cursor, h, page)
        if located is None:
            continue
        first, value = located
        if first not in blocks:
            blocks[first] = {(p, n): count for p, n, _, count, _ in decode_block(first, value)}
        count = blocks[first].get((page, line))
        if count:
            found[(page, line)][term] = count
