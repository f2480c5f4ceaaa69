"""Search: locate lines by their terms (an index kept beside the pages), then transcribe them.

The index holds terms, never text: at `remember` time each line piece is cut into terms and every
term posts (session, page, line, count) in the archive's `postings` database, in the same transaction
that stores the page. A search ranks lines with BM25 over those postings and reads the winning lines
from the page images with the reader, so a hit shows exactly what memory still holds at the page's
tier - fading included.

Terms are cut for how agents search: words; identifiers whole and in parts (``snake_case`` ->
``snake_case``, ``snake``, ``case``; ``camelCase`` -> ``camelcase``, ``camel``, ``case``); dotted
names and paths whole and by component (``os.path.join``, ``src/app/main.py``); numbers, hex ids
and error codes whole (``0x1f3a``, ``E1234``, ``HTTP-503``). Everything is lower-cased.

Layouts (integers big-endian)::

    postings    term (UTF-8, <= 64 chars) -> u64 page | u16 line | u32 sid | u16 count | u16 terms
                on the line (BM25's length, kept here so ranking reads nothing else) (dupsort:
                each term's postings sort by page, i.e. oldest first across every session)
    page_terms  u64 page -> JSON {"terms": [distinct terms], "lengths": {line: terms on it}}
    meta        b"index_lines" -> u64, b"index_terms" -> u64   (for BM25's average line length)
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from optical_memory.archive import ArchiveTxn, u32, u64

__all__ = [
    "LineHit",
    "bump_index_counts",
    "index_lines",
    "parse_posting",
    "posting",
    "rank",
    "terms",
    "unindex_page",
]

POSTING_DB, TERMS_DB = "postings", "page_terms"
MAX_TERM = 64
# Postings read per query term. A term on more lines than this (think "the" in a 100,000-page
# archive) is only looked up on the lines rarer terms found, or, if every term is that common,
# read from the newest pages back: search stays bounded in time and memory at any archive size.
MAX_SCAN = 20_000  # longer runs (base64 blobs, minified code) are indexed by their first 64 characters
_COMPOUND = re.compile(r"\w+(?:[./\\:@#-]\w+)*")
_SEPARATORS = re.compile(r"[./\\:@#-]")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_K1, _B = 1.2, 0.75  # the usual BM25 constants


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


def posting(page: int, line: int, sid: int, count: int, length: int) -> bytes:
    """One posting value: where a term occurs, how often on that line, and how many terms the line has."""
    return (
        u64(page)
        + line.to_bytes(2, "big")
        + u32(sid)
        + min(count, 0xFFFF).to_bytes(2, "big")
        + min(length, 0xFFFF).to_bytes(2, "big")
    )


def parse_posting(value: bytes) -> tuple[int, int, int, int, int]:
    """(page, line, sid, count, length) of a posting value."""
    return (
        int.from_bytes(value[:8], "big"),
        int.from_bytes(value[8:10], "big"),
        int.from_bytes(value[10:14], "big"),
        int.from_bytes(value[14:16], "big"),
        int.from_bytes(value[16:18], "big"),
    )


def _key(term: str) -> bytes:
    return term.encode("utf-8", "surrogatepass")


def bump_index_counts(tx: ArchiveTxn, lines: int, terms: int) -> None:
    """Add to (or, negative, take from) the index's line and term totals that BM25 averages over."""
    db = tx.db("meta")
    for key, delta in ((b"index_lines", lines), (b"index_terms", terms)):
        raw = tx.txn.get(key, db=db)
        tx.txn.put(key, u64(max(0, (int.from_bytes(raw, "big") if raw else 0) + delta)), db=db)


def index_lines(tx: ArchiveTxn, sid: int, page: int, first_line: int, pieces: Sequence[str]) -> None:
    """Post the terms of lines `first_line`, `first_line + 1`, ... of a page (inside its write)."""
    postings, page_terms = tx.db(POSTING_DB), tx.db(TERMS_DB)
    raw = tx.txn.get(u64(page), db=page_terms)
    entry: dict[str, Any] = json.loads(bytes(raw)) if raw else {"terms": [], "lengths": {}}
    known = set(entry["terms"])
    added_terms = 0
    for offset, piece in enumerate(pieces):
        line = first_line + offset
        counts = Counter(terms(piece))
        length = sum(counts.values())
        for term, count in counts.items():
            tx.txn.put(_key(term), posting(page, line, sid, count, length), db=postings, dupdata=True)
            if term not in known:
                known.add(term)
                entry["terms"].append(term)
        entry["lengths"][str(line)] = sum(counts.values())
        added_terms += sum(counts.values())
    tx.txn.put(u64(page), json.dumps(entry, separators=(",", ":")).encode(), db=page_terms)
    bump_index_counts(tx, len(pieces), added_terms)


def unindex_page(tx: ArchiveTxn, page: int) -> None:
    """Remove every posting of a page (inside the write that forgets it)."""
    postings, page_terms = tx.db(POSTING_DB), tx.db(TERMS_DB)
    raw = tx.txn.get(u64(page), db=page_terms)
    if raw is None:
        return
    entry = json.loads(bytes(raw))
    page_key = u64(page)
    with tx.txn.cursor(db=postings) as cursor:
        for term in entry["terms"]:
            # the page's postings of a term are one contiguous run of its sorted duplicates
            found = cursor.set_range_dup(_key(term), page_key)
            while found and bytes(cursor.value())[:8] == page_key:
                found = cursor.delete()  # moves to the next duplicate, if any
                found = found and bytes(cursor.key()) == _key(term)
    tx.txn.delete(u64(page), db=page_terms)
    bump_index_counts(tx, -len(entry["lengths"]), -sum(entry["lengths"].values()))


@dataclass(frozen=True)
class LineHit:
    page: int
    line: int
    score: float


def rank(tx: ArchiveTxn, query_terms: Iterable[str], sid: int | None, limit: int) -> list[LineHit]:
    """The best `limit` lines for the query by BM25, newest page first on ties."""
    meta, postings = tx.db("meta"), tx.db(POSTING_DB)
    raw_lines, raw_terms = tx.txn.get(b"index_lines", db=meta), tx.txn.get(b"index_terms", db=meta)
    total_lines = int.from_bytes(raw_lines, "big") if raw_lines else 0
    if not total_lines:
        return []
    average = (int.from_bytes(raw_terms, "big") if raw_terms else 0) / total_lines or 1.0
    idf: dict[str, float] = {}
    found: dict[tuple[int, int], dict[str, int]] = {}  # (page, line) -> {term: count on that line}
    lengths: dict[tuple[int, int], int] = {}  # (page, line) -> terms on that line
    with tx.txn.cursor(db=postings) as cursor:
        common: list[tuple[int, str]] = []
        for term in dict.fromkeys(query_terms):
            if cursor.set_key(_key(term)):
                common.append((cursor.count(), term))
        for df, term in sorted(common):  # rarest first: they decide which lines are candidates
            idf[term] = math.log(1 + (total_lines - df + 0.5) / (df + 0.5))
            cursor.set_key(_key(term))
            if df <= MAX_SCAN or not found:
                # read the postings newest first, at most MAX_SCAN of them: memory and time stay
                # bounded however common the term is
                valid = cursor.last_dup()
                for _ in range(min(df, MAX_SCAN)):
                    if not valid:
                        break
                    page, line, posted_sid, count, length = parse_posting(bytes(cursor.value()))
                    if sid is None or posted_sid == sid:
                        found.setdefault((page, line), {})[term] = count
                        lengths[(page, line)] = length
                    valid = cursor.prev_dup()
            else:
                # too common to enumerate: only look it up on the lines the rarer terms found
                for (page, line), counts in found.items():
                    at = u64(page) + line.to_bytes(2, "big")
                    if cursor.set_range_dup(_key(term), at) and bytes(cursor.value())[:10] == at:
                        counts[term] = parse_posting(bytes(cursor.value()))[3]
    scores: dict[tuple[int, int], float] = {}
    for (page, line), counts in found.items():
        norm = _K1 * (1 - _B + _B * lengths[(page, line)] / average)
        scores[(page, line)] = sum(idf[t] * tf * (_K1 + 1) / (tf + norm) for t, tf in counts.items())
    ordered = sorted(scores.items(), key=lambda item: (-item[1], -item[0][0], item[0][1]))
    return [LineHit(page, line, round(score, 4)) for (page, line), score in ordered[:limit]]
