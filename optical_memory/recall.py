"""Recall beyond single pages: search the index and read the hits, list sessions, forget for good.

Search ranks lines by their terms (`search`), then reads the winning lines with the lines around
them from the page images as they are now (fading included), verified like every read (`passages`).
Forget deletes a page's or a session's images, records, postings and importers' content keys in one
transaction, then erases the freed space of the archive's files, so what was forgotten cannot be
carved out of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.checkpoints import forget_pages
from optical_memory.errors import InvalidArgument
from optical_memory.passages import DEFAULT_CONTEXT, MAX_SEARCH_HITS, search_passages
from optical_memory.readers.base import Reader
from optical_memory.reading import Pages, find_record, find_session
from optical_memory.records import PageRecord, SessionRecord
from optical_memory.results import ForgetResult, SearchResult, SessionInfo, SessionList
from optical_memory.search import unindex_page
from optical_memory.spool import drop_spooled

__all__ = ["MAX_SEARCH_HITS", "Recall"]

log = logging.getLogger(__name__)


class Recall:
    """Search, sessions and forget over one archive."""

    def __init__(self, archive: Archive, pages: Pages, evict: Callable[[str], None]) -> None:
        self.archive = archive
        self.pages = pages
        self._evict = evict  # drop a forgotten page's cached pixels

    def search(
        self,
        reader: Reader,
        query: str,
        session: str | None = None,
        limit: int = 10,
        context: int = DEFAULT_CONTEXT,
    ) -> SearchResult:
        """Passages around the lines that best match `query`, each read from its page as it is now."""
        return search_passages(self.archive, self.pages, reader, query, session, limit, context)

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
                forget_pages(tx, [record.number])
                return ForgetResult(forgotten=[page_id])
            assert session is not None
            if tx.session(session) is None and drop_spooled(tx, session):
                return ForgetResult(forgotten=[], sessions_removed=[session])  # captured, not yet laid out
            sess = find_session(tx, session)
            numbered = list(tx.page_ids_newest_first(sess.sid))
            ids = [pid for _, pid in numbered]
            for pid in ids:
                stored = tx.page(pid)
                if stored is not None:
                    _delete(tx, sess, stored)
            tx.delete_session(session)
            forget_pages(tx, [number for number, _ in numbered])
            drop_spooled(tx, session)  # turns a capture hook took that no drain has laid out yet
            return ForgetResult(forgotten=ids[::-1], sessions_removed=[session])

        result = self.archive.write(once)
        for forgotten in result.forgotten:
            self._evict(forgotten)
        erase = getattr(self.archive, "erase_free_space", None)
        if erase is not None:
            report = erase()
            # a backend that cannot overwrite freed space says so with "erased": None (PostgreSQL)
            result.erased = report["erased"] if "erased" in report else not report.get("pages_unreached")
        return result


def _delete(tx: ArchiveTxn, sess: SessionRecord, record: PageRecord) -> None:
    unindex_page(tx, record.number)
    tx.delete_page(sess.sid, record.number, record.id)
    sess.pages -= 1
    if sess.open_page == record.id:
        sess.close_page()
