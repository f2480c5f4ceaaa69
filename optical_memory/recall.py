"""Recall beyond single pages: search the index and read the hits, list sessions, forget for good.

Search ranks lines by their terms (`search`), then reads the winning lines from the page images as
they are now (fading included), verified like every read. Forget deletes a page's or a session's
images, records and postings in one transaction, then erases the freed space of the archive's
files, so what was forgotten cannot be carved out of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.errors import InvalidArgument, PageDamaged
from optical_memory.readers.base import Reader
from optical_memory.reading import Pages, find_record, find_session
from optical_memory.records import PageRecord, SessionRecord
from optical_memory.results import ForgetResult, Line, SearchHit, SearchResult, SessionInfo, SessionList
from optical_memory.search import LineHit, rank, terms, unindex_page
from optical_memory.validation import check_limit

__all__ = ["MAX_SEARCH_HITS", "Recall"]

log = logging.getLogger(__name__)

MAX_SEARCH_HITS = 50


class Recall:
    """Search, sessions and forget over one archive."""

    def __init__(self, archive: Archive, pages: Pages, evict: Callable[[str], None]) -> None:
        self.archive = archive
        self.pages = pages
        self._evict = evict  # drop a forgotten page's cached pixels

    def search(self, reader: Reader, query: str, session: str | None = None, limit: int = 10) -> SearchResult:
        """Lines whose terms match `query` (BM25), each read from its page as it is now."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgument("query is empty; give words, identifiers, paths, numbers or error codes")
        check_limit("limit", limit, MAX_SEARCH_HITS)
        wanted = list(dict.fromkeys(terms(query)))
        if not wanted:
            raise InvalidArgument(f"query {query!r} has no searchable terms (letters, digits or identifiers)")

        def locate(tx: ArchiveTxn) -> list[tuple[LineHit, PageRecord]]:
            sid = find_session(tx, session).sid if session is not None else None
            return [(hit, record) for hit in rank(tx, wanted, sid, limit) if (record := tx.page(f"p{hit.page}"))]

        located = self.archive.read(locate)
        wanted_lines: dict[str, list[int]] = {}
        for hit, record in located:
            wanted_lines.setdefault(record.id, []).append(hit.line)
        texts: dict[tuple[str, int], Line] = {}
        for page_id, numbers in wanted_lines.items():
            try:
                stored = self.pages.stored(page_id)
            except PageDamaged as exc:  # one damaged page must not fail every search that ranks it
                log.warning("search skips a damaged page: %s", exc)
                continue
            for line in self.pages.transcribe(reader, stored, sorted(set(numbers))):
                texts[(page_id, line.number)] = line
        hits = [
            SearchHit(
                page_id=record.id,
                session=record.session,
                tier=self.pages.tier(record).name,
                score=hit.score,
                start=hit.line,
                end=hit.line,
                lines=[texts[(record.id, hit.line)]],
            )
            for hit, record in located
            if (record.id, hit.line) in texts
        ]
        return SearchResult(query=query, terms=wanted, hits=hits)

    def sessions(self) -> SessionList:
        """Every session with its page count and times."""
        return SessionList(
            sessions=[
                SessionInfo(name=name, pages=s.pages, created=s.created, updated=s.updated, open_page=s.open_page)
                for name, s in self.archive.read(lambda tx: list(tx.sessions()))
            ]
        )

    def forget(self, page_id: str | None = None, session: str | None = None) -> ForgetResult:
        """Remove one page, or every page of a session and the session itself; then erase the freed space."""
        if page_id is None and session is None:
            raise InvalidArgument("forget needs page_id (one page) or session (all its pages)")

        def once(tx: ArchiveTxn) -> ForgetResult:
            if page_id is not None:
                record = find_record(tx, page_id)
                if session is not None and record.session != session:
                    raise InvalidArgument(f"page {page_id} belongs to session {record.session!r}, not {session!r}")
                sess = find_session(tx, record.session)
                _delete(tx, sess, record)
                tx.put_session(record.session, sess)
                return ForgetResult(forgotten=[page_id])
            assert session is not None
            sess = find_session(tx, session)
            ids = [pid for _, pid in tx.page_ids_newest_first(sess.sid)]
            for pid in ids:
                stored = tx.page(pid)
                if stored is not None:
                    _delete(tx, sess, stored)
            tx.delete_session(session)
            return ForgetResult(forgotten=ids[::-1], sessions_removed=[session])

        result = self.archive.write(once)
        for forgotten in result.forgotten:
            self._evict(forgotten)
        erase = getattr(self.archive, "erase_free_space", None)
        if erase is not None:
            erase()
        return result


def _delete(tx: ArchiveTxn, sess: SessionRecord, record: PageRecord) -> None:
    unindex_page(tx, record.number)
    tx.delete_page(sess.sid, record.number, record.id)
    sess.pages -= 1
    if sess.open_page == record.id:
        sess.close_page()

