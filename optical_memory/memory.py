"""The facade the server, the CLI and the web page call: one object over one archive.

Each method validates its arguments, runs one logical read or write against the archive, and returns a
typed result (`results`). The work lives in one module per path: `writing` (text -> pages),
`reading` (pages -> images and verified lines), `recall` (search, sessions, forget), `fading`
(demotion), `transfer` (export and import of pages). Records are described in `records`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.config import Config
from optical_memory.errors import OpticalMemoryError
from optical_memory.fading import fade
from optical_memory.passages import DEFAULT_CONTEXT
from optical_memory.postgres import open_archive
from optical_memory.readers.base import Reader
from optical_memory.reading import Pages
from optical_memory.recall import MAX_SEARCH_HITS, Recall
from optical_memory.records import PageRecord
from optical_memory.render import Renderer
from optical_memory.results import (
    EntryRead,
    ForgetResult,
    LinesRead,
    PageImage,
    PageInfo,
    PageList,
    RememberResult,
    SearchResult,
    SessionList,
    Span,
)
from optical_memory.transcribe import transcribe_lines
from optical_memory.transfer import export_pages, import_pages
from optical_memory.validation import MAX_NAME_CHARS
from optical_memory.writing import NewEntry, Writer
from optical_memory.writing import now as current_time

if TYPE_CHECKING:
    from optical_memory.spool import DrainResult

__all__ = ["MAX_NAME_CHARS", "MAX_SEARCH_HITS", "Memory", "NewEntry"]

log = logging.getLogger(__name__)


class Memory:
    """Optical memory over one archive. Thread-safe: tools may call it from worker threads."""

    def __init__(self, config: Config, archive: Archive | None = None, reader: Reader | None = None) -> None:
        self.config = config
        self.tiers = config.tiers
        self.archive = archive or open_archive(config)  # LMDB folder, or PostgreSQL when archive.url is set
        self.renderer = Renderer(config.page, config.font_size)
        self.writer = Writer(self.archive, config, self.renderer)
        self.pages = Pages(self.archive, config.tiers, config.limits.max_list_limit)
        self.recall = Recall(self.archive, self.pages, self.writer.canvases.evict)
        self._reader = reader
        self._reader_lock = threading.Lock()

    def close(self) -> None:
        self.archive.close()

    @property
    def reader(self) -> Reader:
        """The configured reader, loaded on first use."""
        with self._reader_lock:
            if self._reader is None:
                from optical_memory.readers import load_reader

                self._reader = load_reader(self.config.reader, **self.config.reader_options)
            return self._reader

    # writing ----------------------------------------------------------------------------------
    def remember(
        self,
        text: str,
        session: str = "default",
        role: str | None = None,
        title: str | None = None,
        *,
        said_at: datetime | None = None,
        recalled_from: str | None = None,
        fade: bool = True,
    ) -> RememberResult:
        """Lay `text` onto the session's pages as one entry and store their images.

        `said_at` is when the text was said, if not now (imported conversations keep their times);
        `recalled_from` links the entry to the faded page its text was read from (reconsolidation).
        With `fade` false, pages this call sealed are not demoted here: the caller fades later (the
        server does it on a background thread, so `remember` returns as soon as the entry is stored).
        """
        entry = NewEntry(text, session, role, title, said_at, recalled_from)
        return self.remember_batch([entry], fade=fade)[0]

    def remember_batch(
        self,
        entries: Sequence[NewEntry],
        *,
        fade: bool = True,
        in_transaction: Callable[[ArchiveTxn, list[RememberResult]], None] | None = None,
    ) -> list[RememberResult]:
        """Remember several entries in ONE transaction: all of them are stored, or none.

        `in_transaction(tx, results)` runs inside that transaction after the entries are written
        (importers record what they imported there, so an entry and its checkpoint commit together).
        """
        results = self.writer.write(entries, in_transaction)
        sealed_sessions = {r.session for r in results if r.pages_sealed}
        if fade:
            for session in sorted(sealed_sessions):
                try:
                    self.fade(session)
                except OpticalMemoryError as exc:  # the entries are stored; fading is retried on the next seal
                    log.warning("fading session %r after remember failed: %s", session, exc)
        return results

    def fade(self, session: str | None = None, now: datetime | None = None, **options: Any) -> int:
        """Demote every sealed page that is due for a colder tier; returns how many steps were taken."""
        return fade(self.archive, self.tiers, session, now or current_time(), **options)

    def drain(self, wait: bool = True) -> DrainResult:
        """Remember the turns capture hooks left in the spool (`spool.drain`); with `wait`, after
        the drainer that holds the spool's lock, if any, is done."""
        from optical_memory.spool import drain

        return drain(self, wait=wait)

    # reading ----------------------------------------------------------------------------------
    def page_info(self, page_id: str) -> PageInfo:
        return self.pages.info(page_id)

    def list_pages(self, session: str | None = None, cursor: str | None = None, limit: int = 20) -> PageList:
        """Pages newest first, of one session or all; `next_cursor` continues the listing."""
        return self.pages.list_pages(session, cursor, limit)

    def view_page(self, page_id: str) -> PageImage:
        """The stored image of a page, as it is at its current tier."""
        return self.pages.view(page_id)

    def read_lines(self, page_id: str, start: int = 1, end: int | None = None) -> LinesRead:
        """Read lines `start`..`end` (inclusive, 1-based; end defaults to the page's last), verified."""
        read = self.pages.read_lines(self.reader, page_id, start, end)
        if self.config.recall_reconsolidates and read.tier != self.tiers[0].name:
            # Recall strengthens memory: what was just read from a faded page is written again,
            # sharp, as a new entry linked to the original (which keeps fading).
            text = "\n".join(line.text for line in read.lines)
            title = f"recalled from {page_id} lines {read.lines[0].number}-{read.lines[-1].number}"
            session = read.session or "default"
            recalled: list[Span] = self.remember(
                text, session=session, role="recall", title=title, recalled_from=page_id
            ).spans
            read.recalled_into = recalled
        return read

    def read_entry(self, page_id: str, line: int = 1) -> EntryRead:
        """The whole entry (remember call) holding `line` of `page_id`, across its pages, joined exactly."""
        return self.pages.read_entry(self.reader, page_id, line)

    # recall -----------------------------------------------------------------------------------
    def search(
        self, query: str, session: str | None = None, limit: int = 10, context: int = DEFAULT_CONTEXT
    ) -> SearchResult:
        """Passages around the lines that best match `query`, best first, read from the pages as they are now."""
        return self.recall.search(self.reader, query, session=session, limit=limit, context=context)

    def list_sessions(self) -> SessionList:
        """Every session with its page count and times."""
        return self.recall.sessions()

    def forget(self, page_id: str | None = None, session: str | None = None) -> ForgetResult:
        """Remove one page, or every page of a session and the session itself: images, records, postings."""
        return self.recall.forget(page_id=page_id, session=session)

    # export and import ------------------------------------------------------------------------
    def export_pages(self, destination: str | os.PathLike[str], session: str | None = None) -> dict[str, int]:
        """Write every page (of `session`, or all) to a folder or a .zip (see `transfer`)."""
        return export_pages(self.archive, Path(destination), session)

    def import_pages(self, source: str | os.PathLike[str]) -> dict[str, Any]:
        """Add the pages of an export to this archive under new page ids; returns the id mapping.

        The search index holds keyed hashes that cannot move between archives, so each imported page
        is indexed from its own lines, read (and verified) by this archive's reader.
        """

        def read_all(record: PageRecord, image: bytes) -> list[str]:
            numbers = range(1, record.lines + 1)
            return [line.text for line in transcribe_lines(self.reader, record, image, numbers, key=record.codes_key)]

        return import_pages(self.archive, Path(source), read_lines=read_all)
