"""The facade the server and the CLI call: remember, list_pages, view_page, read_lines, search, forget.

Each method validates its arguments, runs one logical read or write against the archive, and returns a
typed result (`results`). Page records are described in `records`; fading in `fading`.

`remember` appends to the session's open page by drawing new rows onto its hot image (no text is
kept even for the open page), so the page's image is the only copy of what it says.
"""

from __future__ import annotations

import logging
import os
import threading
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from optical_memory.archive import Archive, ArchiveTxn, page_number
from optical_memory.config import Config
from optical_memory.errors import InvalidArgument, OpticalMemoryError, PageNotFound, SessionNotFound, TextTooLarge
from optical_memory.fading import fade
from optical_memory.pages import plan_entry
from optical_memory.readers.base import Reader
from optical_memory.records import apply_plan, new_record, new_session, page_info
from optical_memory.render import Renderer
from optical_memory.results import (
    ForgetResult,
    Line,
    LinesRead,
    PageImage,
    PageInfo,
    PageList,
    RememberResult,
    SearchHit,
    SearchResult,
    SessionInfo,
    SessionList,
    Span,
)
from optical_memory.search import LineHit, index_lines, rank, terms, unindex_page
from optical_memory.tiers import Tier, decode_image, encode_image
from optical_memory.tokens import estimate_text_tokens
from optical_memory.transcribe import transcribe_lines
from optical_memory.transfer import export_pages, import_pages

__all__ = ["Memory"]

log = logging.getLogger(__name__)

MAX_SEARCH_HITS = 50
MAX_NAME_CHARS = 128  # session, role and title names: shown in page headers, so kept short


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_name(kind: str, value: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{kind} must be a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise InvalidArgument(f"{kind} must not be empty")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{kind} is {len(value)} characters; at most {MAX_NAME_CHARS} are allowed")
    bad = [ch for ch in value if unicodedata.category(ch) in ("Cc", "Cs", "Cn")]
    if bad:
        raise InvalidArgument(
            f"{kind} {value!r} contains control, surrogate or unassigned characters ({bad[0]!r}); "
            "use printable characters"
        )
    return value


class Memory:
    """Optical memory over one archive. Thread-safe: tools may call it from worker threads."""

    def __init__(self, config: Config, archive: Archive | None = None, reader: Reader | None = None) -> None:
        self.config = config
        self.tiers = config.tiers
        self.archive = archive or Archive(
            config.archive.path,
            map_size_mib=config.archive.map_size_mib,
            max_map_size_mib=config.archive.max_map_size_mib,
            busy_timeout_s=config.archive.busy_timeout_s,
        )
        self.renderer = Renderer(config.page, config.font_size)
        self._reader = reader
        self._reader_lock = threading.Lock()
        # Pixels of open pages this process last wrote, keyed by page id, with the row count they
        # show: the next entry draws on them instead of decoding the stored image again. Used and
        # changed only inside write transactions, which LMDB runs one at a time.
        self._canvases: dict[str, tuple[int, np.ndarray]] = {}

    def _open_canvas(self, tx: ArchiveTxn, record: dict[str, Any]) -> np.ndarray:
        """The open page's hot pixels: from this process's last write if still current, else decoded."""
        cached = self._canvases.get(record["id"])
        if cached is not None and cached[0] == len(record["rows"]):  # no other process wrote since
            return cached[1].copy()  # a copy: a write that fails after drawing must leave no trace here
        image = tx.image(record["id"])
        assert image is not None, f"page {record['id']} has no image"
        return np.array(decode_image(image))

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

    # remember ---------------------------------------------------------------------------------
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
        if not isinstance(text, str):
            raise InvalidArgument(f"text must be a string, got {type(text).__name__}")
        if not text:
            raise InvalidArgument("text is empty; remember needs at least one character")
        limit = self.config.limits.max_text_chars
        if len(text) > limit:
            raise TextTooLarge(
                f"text is {len(text):,} characters; one remember call takes at most {limit:,} "
                "(limits.max_text_chars): split it into several calls"
            )
        _check_name("session", session)
        if role is not None:
            _check_name("role", role)
        if title is not None:
            _check_name("title", title)
        lines = text.split("\n")
        now = _now()
        stamp = _iso(now)
        said = (said_at or now).astimezone(UTC)
        header_time = said.strftime("%Y-%m-%d %H:%M:%SZ")

        def header(continued: bool) -> str:
            parts = [role or "note", session, header_time]
            if title:
                parts.append(title)
            return " · ".join(parts) + (" (cont.)" if continued else "")

        def once(tx: ArchiveTxn) -> RememberResult:
            sess = tx.session(session) or new_session(tx.next_session_id(), stamp)
            open_page = tx.page(sess["open_page"]) if sess["open_page"] else None
            plans = plan_entry(
                lines,
                header,
                self.config.page,
                open_rows=sess["open_rows"] if open_page else None,
                open_lines=sess["open_lines"] if open_page else 0,
            )
            if len(plans) > self.config.limits.max_pages_per_call:
                raise TextTooLarge(
                    f"text needs {len(plans)} pages; one remember call writes at most "
                    f"{self.config.limits.max_pages_per_call} (limits.max_pages_per_call): split it"
                )
            spans: list[Span] = []
            sealed: list[str] = []
            for plan in plans:
                if plan.new_page:
                    page_id, number = tx.next_page_id()
                    record = new_record(page_id, number, session, stamp, self.renderer.geometry, self.tiers[0])
                    canvas = self.renderer.blank()
                    tx.add_page_to_indexes(sess["sid"], number, page_id)
                    sess["pages"] += 1
                else:
                    assert open_page is not None
                    record = open_page
                    canvas = self._open_canvas(tx, record)
                self.renderer.draw_rows(canvas, plan.first_row, plan.rows)
                # An open page is rewritten at every entry: store it quickly, and well once sealed.
                data = encode_image(canvas, self.tiers[0], fast=not plan.sealed)
                if plan.sealed:
                    self._canvases.pop(record["id"], None)
                else:
                    self._canvases[record["id"]] = (len(record["rows"]) + len(plan.rows), canvas)
                apply_plan(record, plan, role, title, stamp, len(data))
                record["entries"][-1]["time"] = _iso(said)
                if recalled_from is not None:
                    record["entries"][-1]["recalled_from"] = recalled_from
                    record.setdefault("recalled_from", recalled_from)
                tx.put_image(record["id"], data)
                tx.put_page(record)
                index_lines(tx, sess["sid"], record["number"], plan.first_line, plan.pieces)
                spans.append(
                    Span(page_id=record["id"], start=plan.first_line, end=plan.last_line, continues=plan.continues)
                )
                if plan.sealed:
                    sealed.append(record["id"])
            last = record
            if last["sealed"]:
                sess.update(open_page=None, open_rows=0, open_lines=0)
            else:
                sess.update(open_page=last["id"], open_rows=len(last["rows"]), open_lines=last["lines"])
            sess["updated"] = stamp
            tx.put_session(session, sess)
            return RememberResult(
                session=session,
                spans=spans,
                characters=len(text),
                text_tokens=estimate_text_tokens(text),
                pages_sealed=sealed,
            )

        result = self.archive.write(once)
        if result.pages_sealed and fade:
            try:
                self.fade(session)
            except OpticalMemoryError as exc:  # the entry is stored; fading is retried on the next seal
                log.warning("fading session %r after remember failed: %s", session, exc)
        return result

    # fading -----------------------------------------------------------------------------------
    def fade(self, session: str | None = None, now: datetime | None = None) -> int:
        """Demote every sealed page that is due for a colder tier; returns how many steps were taken."""
        return fade(self.archive, self.tiers, session, now or _now())

    # reading ----------------------------------------------------------------------------------
    def _record(self, tx: ArchiveTxn, page_id: str) -> dict[str, Any]:
        if not isinstance(page_id, str) or page_number(page_id) is None:
            raise PageNotFound(f"{page_id!r} is not a page id; page ids look like 'p12' (see list_pages)")
        record = tx.page(page_id)
        if record is None:
            newest = next(tx.page_ids_newest_first(), None)
            valid = f"pages run p1..{newest[1]}" if newest else "the archive has no pages yet"
            raise PageNotFound(f"no page {page_id!r}; {valid} (some may have been forgotten)")
        return record

    def _tier(self, record: dict[str, Any]) -> Tier:
        # a page stored under a longer tier list than the current config stays at the coldest tier
        return self.tiers[min(record["tier"], len(self.tiers) - 1)]

    def page_info(self, page_id: str) -> PageInfo:
        record = self.archive.read(lambda tx: self._record(tx, page_id))
        return page_info(record, self._tier(record))

    def list_pages(self, session: str | None = None, cursor: str | None = None, limit: int = 20) -> PageList:
        """Pages newest first, of one session or all; `next_cursor` continues the listing."""
        max_limit = self.config.limits.max_list_limit
        if not isinstance(limit, int) or not 1 <= limit <= max_limit:
            raise InvalidArgument(f"limit must be between 1 and {max_limit}, got {limit!r}")
        before = None
        if cursor is not None:
            before = page_number(cursor) if isinstance(cursor, str) else None
            if before is None:
                raise InvalidArgument(
                    f"cursor {cursor!r} is not one this server gave; pass a next_cursor from list_pages"
                )

        def listing(tx: ArchiveTxn) -> PageList:
            sid = self._session(tx, session)["sid"] if session is not None else None
            pages: list[PageInfo] = []
            next_cursor = None
            for _, page_id in tx.page_ids_newest_first(sid, before):
                if len(pages) == limit:
                    next_cursor = pages[-1].id
                    break
                record = tx.page(page_id)
                if record is not None:
                    pages.append(page_info(record, self._tier(record)))
            return PageList(pages=pages, next_cursor=next_cursor)

        return self.archive.read(listing)

    def view_page(self, page_id: str) -> PageImage:
        """The stored image of a page, as it is at its current tier."""
        record, data = self.archive.read(lambda tx: (self._record(tx, page_id), tx.image(page_id)))
        assert data is not None, f"page {page_id} has no image"
        info = page_info(record, self._tier(record))
        tier = self._tier(record)
        caption = (
            f"{info.id} · session {info.session} · tier {info.tier} ({tier.scale:.0%} scale) · "
            f"lines 1-{info.lines} · {info.image_width}x{info.image_height} {info.image_format}, "
            f"{info.image_bytes:,} bytes · {info.created[:16].replace('T', ' ')}" + ("" if info.sealed else " · open")
        )
        return PageImage(page_id=info.id, mime_type=tier.mime_type, data=data, caption=caption, info=info)

    def read_lines(self, page_id: str, start: int = 1, end: int | None = None) -> LinesRead:
        """Read lines `start`..`end` (inclusive, 1-based; end defaults to the page's last) with the reader."""
        record, data = self.archive.read(lambda tx: (self._record(tx, page_id), tx.image(page_id)))
        assert data is not None, f"page {page_id} has no image"
        total = record["lines"]
        last = total if end is None else end
        if not isinstance(start, int) or not isinstance(last, int) or start < 1 or last < start or start > total:
            asked = f"{start}..{end if end is not None else 'end'}"
            raise InvalidArgument(
                f"lines {asked} are not on page {page_id}, which has lines 1..{total}; start must be >= 1 and <= end"
            )
        last = min(last, total)
        lines = transcribe_lines(self.reader, record, data, range(start, last + 1))
        recalled: list[Span] = []
        if self.config.recall_reconsolidates and record["tier"] > 0:
            # Recall strengthens memory: what was just read from a faded page is written again,
            # sharp, as a new entry linked to the original (which keeps fading).
            text = "\n".join(line.text for line in lines)
            title = f"recalled from {page_id} lines {start}-{last}"
            recalled = self.remember(
                text, session=record["session"], role="recall", title=title, recalled_from=page_id
            ).spans
        return LinesRead(
            page_id=page_id,
            tier=self._tier(record).name,
            lines=lines,
            total_lines=total,
            continued=record["continued"],
            continues=record["continues"],
            reader=self.reader.name,
            recalled_into=recalled,
        )

    # recall beyond the four tools -------------------------------------------------------------
    def search(self, query: str, session: str | None = None, limit: int = 10) -> SearchResult:
        """Lines whose terms match `query` (BM25), each read from its page as it is now."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgument("query is empty; give words, identifiers, paths, numbers or error codes")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH_HITS:
            raise InvalidArgument(f"limit must be between 1 and {MAX_SEARCH_HITS}, got {limit!r}")
        wanted = list(dict.fromkeys(terms(query)))
        if not wanted:
            raise InvalidArgument(f"query {query!r} has no searchable terms (letters, digits or identifiers)")

        def locate(tx: ArchiveTxn) -> list[tuple[LineHit, dict[str, Any], bytes]]:
            sid = self._session(tx, session)["sid"] if session is not None else None
            found = []
            for hit in rank(tx, wanted, sid, limit):
                record, image = tx.page(f"p{hit.page}"), tx.image(f"p{hit.page}")
                if record is not None and image is not None:
                    found.append((hit, record, image))
            return found

        located = self.archive.read(locate)
        by_page: dict[str, list[int]] = {}
        for hit, record, _ in located:
            by_page.setdefault(record["id"], []).append(hit.line)
        texts: dict[tuple[str, int], Line] = {}
        for hit, record, image in located:
            if (record["id"], hit.line) not in texts:
                numbers = sorted(set(by_page[record["id"]]))
                for line in transcribe_lines(self.reader, record, image, numbers):
                    texts[(record["id"], line.number)] = line
        hits = [
            SearchHit(
                page_id=record["id"],
                session=record["session"],
                tier=self._tier(record).name,
                score=hit.score,
                start=hit.line,
                end=hit.line,
                lines=[texts[(record["id"], hit.line)]],
            )
            for hit, record, _ in located
        ]
        return SearchResult(query=query, terms=wanted, hits=hits)

    def _session(self, tx: ArchiveTxn, name: str) -> dict[str, Any]:
        sess = tx.session(name) if isinstance(name, str) else None
        if sess is None:
            known = sorted(n for n, _ in tx.sessions())
            shown = ", ".join(repr(n) for n in known[:20]) or "none yet"
            raise SessionNotFound(f"no session {name!r}; sessions: {shown}")
        return sess

    def list_sessions(self) -> SessionList:
        """Every session with its page count and times."""
        return SessionList(
            sessions=[
                SessionInfo(
                    name=name,
                    pages=s["pages"],
                    created=s["created"],
                    updated=s.get("updated", s["created"]),
                    open_page=s["open_page"],
                )
                for name, s in self.archive.read(lambda tx: list(tx.sessions()))
            ]
        )

    def forget(self, page_id: str | None = None, session: str | None = None) -> ForgetResult:
        """Remove one page, or every page of a session and the session itself: images, records, postings."""
        if page_id is None and session is None:
            raise InvalidArgument("forget needs page_id (one page) or session (all its pages)")

        def once(tx: ArchiveTxn) -> ForgetResult:
            if page_id is not None:
                record = self._record(tx, page_id)
                if session is not None and record["session"] != session:
                    raise InvalidArgument(f"page {page_id} belongs to session {record['session']!r}, not {session!r}")
                sess = self._session(tx, record["session"])
                self._delete(tx, sess, record)
                tx.put_session(record["session"], sess)
                return ForgetResult(forgotten=[page_id])
            assert session is not None
            sess = self._session(tx, session)
            ids = [pid for _, pid in tx.page_ids_newest_first(sess["sid"])]
            for pid in ids:
                stored = tx.page(pid)
                if stored is not None:
                    self._delete(tx, sess, stored)
            tx.delete_session(session)
            return ForgetResult(forgotten=ids[::-1], sessions_removed=[session])

        return self.archive.write(once)

    @staticmethod
    def _delete(tx: ArchiveTxn, sess: dict[str, Any], record: dict[str, Any]) -> None:
        unindex_page(tx, record["number"])
        tx.delete_page(sess["sid"], record["number"], record["id"])
        sess["pages"] -= 1
        if sess["open_page"] == record["id"]:
            sess.update(open_page=None, open_rows=0, open_lines=0)

    # export and import ------------------------------------------------------------------------
    def export_pages(self, destination: str | os.PathLike[str], session: str | None = None) -> dict[str, int]:
        """Write every page (of `session`, or all) to a folder or a .zip (see `transfer`)."""
        return export_pages(self.archive, Path(destination), session)

    def import_pages(self, source: str | os.PathLike[str]) -> dict[str, Any]:
        """Add the pages of an export to this archive under new page ids; returns the id mapping."""
        return import_pages(self.archive, Path(source))
