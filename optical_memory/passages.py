"""Search results as passages: the matching lines with the lines around them, read as they are now.

`search.rank` gives the best lines; here they become what an agent can use as context:

* each matching line with `context` lines before and after it, clipped to its page; hits whose
  windows overlap or touch on one page are merged into one passage (scored by its best line);
* a passage whose matching lines are identical to a better one's (the same check codes, or, on pages
  from before check codes, the same text read back) is folded into it: `also_on` names the other
  pages and `duplicates` counts them, so one repeated line does not take several of the slots;
* each line carries the role, time and title of the entry it belongs to; the hit carries those of
  its best line;
* a page whose image fails its checksum is skipped (and logged): one damaged page never fails a search.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.checkcode import stored_code
from optical_memory.errors import InvalidArgument, PageDamaged, PageNotFound
from optical_memory.readers.base import Reader
from optical_memory.reading import Pages, find_session
from optical_memory.records import PageRecord
from optical_memory.results import Line, SearchHit, SearchResult
from optical_memory.search import IndexNeedsUpgrade, LineHit, query_terms, query_words, rank, upgrade_index
from optical_memory.validation import check_limit

__all__ = ["DEFAULT_CONTEXT", "MAX_CONTEXT", "MAX_SEARCH_HITS", "search_passages"]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_SEARCH_HITS = 50
DEFAULT_CONTEXT = 2
MAX_CONTEXT = 10  # 50 hits x 21 lines is the most one search reads
CANDIDATES_PER_HIT = 3  # ranked lines asked for per hit wanted: merging and folding use some up


@dataclass
class _Passage:
    record: PageRecord
    start: int
    end: int
    score: float
    matches: list[int]  # the matching lines, best first
    also_on: list[str] = field(default_factory=list)
    duplicates: int = 0


def _check_context(context: object) -> int:
    if not isinstance(context, int) or isinstance(context, bool) or not 0 <= context <= MAX_CONTEXT:
        raise InvalidArgument(f"context must be a whole number between 0 and {MAX_CONTEXT}, got {context!r}")
    return context


def _merge(ranked: Sequence[LineHit], records: dict[int, PageRecord], context: int) -> list[_Passage]:
    """Each ranked line widened by `context` lines; windows on one page that overlap or touch merged."""
    by_page: dict[int, list[LineHit]] = {}
    for hit in ranked:
        if hit.page in records:
            by_page.setdefault(hit.page, []).append(hit)
    passages: list[_Passage] = []
    for page, hits in by_page.items():
        record = records[page]
        current: _Passage | None = None
        for hit in sorted(hits, key=lambda h: h.line):
            start, end = max(1, hit.line - context), min(record.lines, hit.line + context)
            if current is not None and start <= current.end + 1:
                current.end = max(current.end, end)
                current.matches.append(hit.line)
                current.score = max(current.score, hit.score)
            else:
                current = _Passage(record, start, end, hit.score, [hit.line])
                passages.append(current)
    scores = {(hit.page, hit.line): hit.score for hit in ranked}
    for passage in passages:  # best line first, as `rank` orders them
        passage.matches.sort(key=lambda n: (-scores[(passage.record.number, n)], n))
    # best first; newest page first on ties, as `rank` orders lines
    return sorted(passages, key=lambda p: (-p.score, -p.record.number, p.start))


def _code_identity(passage: _Passage) -> Hashable | None:
    """What the matching lines are, by their check codes (None where the page has none)."""
    codes = passage.record.codes
    found = tuple(stored_code(codes, n - 1) for n in passage.matches)
    if any(code is None for code in found):
        return None
    return passage.record.codes_key, found


def _read_upgrading(archive: Archive, locate: Callable[[ArchiveTxn], T]) -> T:
    """`locate` in a read; an index from before keyed hashes (never written since) is upgraded first."""
    try:
        return archive.read(locate)
    except IndexNeedsUpgrade as exc:
        reason = getattr(archive, "read_only_reason", None)
        if reason is not None:  # say why search cannot run here, not only that a write was refused
            message = f"{exc}; this archive is read-only ({reason}), so it cannot be upgraded here"
            raise IndexNeedsUpgrade(message) from None
        archive.write(upgrade_index)
        return archive.read(locate)


def search_passages(
    archive: Archive,
    pages: Pages,
    reader: Reader,
    query: str,
    session: str | None = None,
    limit: int = 10,
    context: int = DEFAULT_CONTEXT,
) -> SearchResult:
    """The best `limit` passages for `query` (see the module docstring), each read from its page now."""
    wanted = query_terms(query)
    check_limit("limit", limit, MAX_SEARCH_HITS)
    _check_context(context)

    def locate(tx: ArchiveTxn) -> tuple[list[LineHit], dict[int, PageRecord]]:
        sid = find_session(tx, session).sid if session is not None else None
        ranked = rank(tx, wanted, sid, limit * CANDIDATES_PER_HIT, query_words(query))
        records = {hit.page: record for hit in ranked if (record := tx.page(f"p{hit.page}")) is not None}
        return ranked, records

    ranked, records = _read_upgrading(archive, locate)
    stored: dict[str, Any] = {}  # page id -> what Pages.stored gave, or None for a damaged page

    def page(passage: _Passage) -> Any:
        page_id = passage.record.id
        if page_id not in stored:
            try:
                stored[page_id] = pages.stored(page_id)
            except PageDamaged as exc:  # one damaged page must not fail every search that ranks it
                log.warning("search skips a damaged page: %s", exc)
                stored[page_id] = None
            except PageNotFound:  # forgotten since it was ranked
                stored[page_id] = None
        return stored[page_id]

    chosen: list[_Passage] = []
    seen: dict[Hashable, _Passage] = {}
    for passage in _merge(ranked, records, context):
        identity = _code_identity(passage)
        if identity is None and len(chosen) == limit:
            continue  # only a reading would tell; not worth one for a count
        found = page(passage)
        if found is None:
            continue
        if identity is None:
            identity = tuple(line.text for line in pages.transcribe(reader, found, passage.matches))
        if identity in seen:
            first = seen[identity]
            first.duplicates += 1
            if passage.record.id != first.record.id and passage.record.id not in first.also_on:
                first.also_on.append(passage.record.id)
        elif len(chosen) < limit:
            seen[identity] = passage
            chosen.append(passage)
    return SearchResult(query=query, terms=wanted, hits=_read(pages, reader, chosen, stored), context=context)


def _read(pages: Pages, reader: Reader, chosen: list[_Passage], stored: dict[str, Any]) -> list[SearchHit]:
    """Read every chosen passage's lines, one reader call per page, and make the hits."""
    wanted: dict[str, set[int]] = {}
    for passage in chosen:
        wanted.setdefault(passage.record.id, set()).update(range(passage.start, passage.end + 1))
    texts: dict[tuple[str, int], Line] = {}
    for page_id, numbers in wanted.items():
        for line in pages.transcribe(reader, stored[page_id], sorted(numbers)):
            texts[(page_id, line.number)] = line
    hits = []
    for passage in chosen:
        record = passage.record
        lines = [texts[(record.id, n)] for n in range(passage.start, passage.end + 1)]
        best = texts[(record.id, passage.matches[0])]
        hits.append(
            SearchHit(
                page_id=record.id,
                session=record.session,
                tier=pages.tier(record).name,
                score=passage.score,
                start=passage.start,
                end=passage.end,
                lines=lines,
                matches=passage.matches,
                role=best.role,
                time=best.time,
                title=best.title,
                also_on=passage.also_on,
                duplicates=passage.duplicates,
            )
        )
    return hits
