"""Pages -> what a caller sees: listings, stored images, and lines read back (verified) by the reader.

Every read is one read transaction for the records and images, then OCR outside it. An image is
checked against the checksum kept with it before anything reads it (`records.check_image`), and each
line read is checked against the check code kept when it was remembered (`transcribe`, `verify`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.checkcode import line_key
from optical_memory.errors import InvalidArgument, PageNotFound, SessionNotFound
from optical_memory.readers.base import Reader
from optical_memory.records import EntryRecord, PageRecord, SessionRecord, check_image, page_info
from optical_memory.results import EntryRead, Line, LinesRead, PageImage, PageInfo, PageList, Span
from optical_memory.spans import join_spans
from optical_memory.term_guide import PageTerms, page_terms
from optical_memory.tiers import Tier
from optical_memory.transcribe import transcribe_lines
from optical_memory.validation import check_limit, check_page_id

__all__ = ["Pages", "find_record", "find_session"]


def find_record(tx: ArchiveTxn, page_id: str) -> PageRecord:
    """The record of `page_id`, or PageNotFound naming the ids that exist."""
    check_page_id(page_id)
    record = tx.page(page_id)
    if record is None:
        newest = next(tx.page_ids_newest_first(), None)
        valid = f"pages run p1..{newest[1]}" if newest else "the archive has no pages yet"
        raise PageNotFound(f"no page {page_id!r}; {valid} (some may have been forgotten)")
    return record


def find_session(tx: ArchiveTxn, name: str) -> SessionRecord:
    """The record of session `name`, or SessionNotFound naming the sessions that exist."""
    sess = tx.session(name) if isinstance(name, str) and name else None
    if sess is None:
        known = sorted(n for n, _ in tx.sessions())
        shown = ", ".join(repr(n) for n in known[:20]) or "none yet"
        more = f" and {len(known) - 20} more" if len(known) > 20 else ""
        raise SessionNotFound(f"no session {name!r}; sessions: {shown}{more}")
    return sess


@dataclass(frozen=True)
class _Stored:
    """What one read transaction gives the OCR that follows it."""

    record: PageRecord
    image: bytes
    key: bytes | None
    previous_page: str | None
    next_page: str | None
    terms: PageTerms | None = None  # the page's search-index entry: lines that fail their code are searched by word


class Pages:
    """The read path over one archive, its tiers and (lazily) its reader."""

    def __init__(self, archive: Archive, tiers: Sequence[Tier], max_list_limit: int) -> None:
        self.archive = archive
        self.tiers = tuple(tiers)
        self.max_list_limit = max_list_limit

    def tier(self, record: PageRecord) -> Tier:
        # a page stored under a longer tier list than the current config stays at the coldest tier
        return self.tiers[min(record.tier, len(self.tiers) - 1)]

    def info(self, page_id: str) -> PageInfo:
        record = self.archive.read(lambda tx: find_record(tx, page_id))
        return page_info(record, self.tier(record))

    def list_pages(self, session: str | None, cursor: str | None, limit: int) -> PageList:
        """Pages newest first, of one session or all; `next_cursor` continues the listing."""
        check_limit("limit", limit, self.max_list_limit)
        before = None
        if cursor is not None:
            try:
                before = check_page_id(cursor)
            except PageNotFound:
                raise InvalidArgument(
                    f"cursor {str(cursor)[:40]!r} is not one this server gave; pass a next_cursor from list_pages"
                ) from None

        def listing(tx: ArchiveTxn) -> PageList:
            sid = find_session(tx, session).sid if session is not None else None
            pages: list[PageInfo] = []
            next_cursor = None
            for _, page_id in tx.page_ids_newest_first(sid, before):
                if len(pages) == limit:
                    next_cursor = pages[-1].id
                    break
                record = tx.page(page_id)
                if record is not None:
                    pages.append(page_info(record, self.tier(record)))
            return PageList(pages=pages, next_cursor=next_cursor)

        return self.archive.read(listing)

    def view(self, page_id: str) -> PageImage:
        """The stored image of a page, as it is at its current tier, checked against its checksum."""
        record, data = self.archive.read(lambda tx: (find_record(tx, page_id), tx.image(page_id)))
        data = check_image(record, data)
        info = page_info(record, self.tier(record))
        tier = self.tier(record)
        verifiable = "lines verifiable" if record.codes is not None else "no check codes (older page)"
        caption = (
            f"{info.id} · session {info.session} · tier {info.tier} ({tier.scale:.0%} scale) · "
            f"lines 1-{info.lines} · {info.image_width}x{info.image_height} {info.image_format}, "
            f"{info.image_bytes:,} bytes · {info.created[:16].replace('T', ' ')} · {verifiable}"
            + ("" if info.sealed else " · open")
        )
        return PageImage(page_id=info.id, mime_type=tier.mime_type, data=data, caption=caption, info=info)

    def stored(self, page_id: str) -> _Stored:
        def run(tx: ArchiveTxn) -> _Stored:
            record = find_record(tx, page_id)
            image = check_image(record, tx.image(page_id))
            key = (record.codes_key or line_key(tx.archive_key())) if record.codes is not None else None
            sess = tx.session(record.session)
            before, after = tx.neighbour_pages(sess.sid, record.number) if sess is not None else (None, None)
            terms = page_terms(tx, record.number) if key is not None else None
            return _Stored(record, image, key, before, after, terms)

        return self.archive.read(run)

    def read_lines(self, reader: Reader, page_id: str, start: int, end: int | None) -> LinesRead:
        """Lines `start`..`end` (inclusive, 1-based; end defaults to the page's last), read and verified."""
        stored = self.stored(page_id)
        record = stored.record
        total = record.lines
        last = total if end is None else end
        valid = isinstance(start, int) and isinstance(last, int) and not isinstance(start, bool)
        if not valid or start < 1 or last < start or start > total:
            asked = f"{start}..{end if end is not None else 'end'}"
            raise InvalidArgument(
                f"lines {asked} are not on page {page_id}, which has lines 1..{total}; start must be >= 1 and <= end"
            )
        last = min(last, total)
        lines = self.transcribe(reader, stored, range(start, last + 1))
        return LinesRead(
            page_id=page_id,
            tier=self.tier(record).name,
            lines=lines,
            total_lines=total,
            continued=record.continued,
            continues=record.continues,
            reader=reader.name,
            previous_page=stored.previous_page,
            next_page=stored.next_page,
            session=record.session,
        )

    def transcribe(self, reader: Reader, stored: _Stored, numbers: Sequence[int]) -> list[Line]:
        """Read lines `numbers` of a stored page, each with its verification and its entry's role, time, title."""
        lines = transcribe_lines(reader, stored.record, stored.image, numbers, key=stored.key, terms=stored.terms)
        for line in lines:
            entry = stored.record.entry_of(line.number)
            if entry is not None:
                line.role, line.time, line.title = entry.role, entry.time, entry.title
        return lines

    def read_entry(self, reader: Reader, page_id: str, line: int) -> EntryRead:
        """The whole remember call that holds `line` of `page_id`, read across every page it spans and joined."""
        stored = self.stored(page_id)
        entry = stored.record.entry_of(line) if isinstance(line, int) and not isinstance(line, bool) else None
        if entry is None:
            raise InvalidArgument(
                f"line {line!r} of page {page_id} belongs to no entry; the page has lines 1..{stored.record.lines}"
            )
        parts = self._entry_parts(entry.entry, stored) if entry.entry is not None else [(stored, entry)]
        pieces: list[tuple[Span, list[Line]]] = []
        for part, piece in parts:
            lines = self.transcribe(reader, part, range(piece.first_line, piece.last_line + 1))
            continues = part.record.continues and piece.last_line == part.record.lines
            span = Span(page_id=part.record.id, start=piece.first_line, end=piece.last_line, continues=continues)
            pieces.append((span, lines))
        verified = [line.verified for _, lines in pieces for line in lines]
        return EntryRead(
            entry=entry.entry or f"{page_id}:{entry.first_line}",
            session=stored.record.session,
            role=entry.role,
            time=entry.time,
            title=entry.title,
            text=join_spans([(span, [line.text for line in lines]) for span, lines in pieces]),
            spans=[span for span, _ in pieces],
            verified=None if None in verified else all(verified),
            unverified_lines=[
                f"{span.page_id}:{line.number}" for span, lines in pieces for line in lines if line.verified is False
            ],
            reader=reader.name,
        )

    def _entry_parts(self, entry_id: str, start: _Stored) -> list[tuple[_Stored, EntryRecord]]:
        """Each page's part of entry `entry_id`, from the page where it began, following the session's pages."""
        first_page = entry_id.split(":", 1)[0]
        current = start if start.record.id == first_page else self.stored(first_page)
        parts: list[tuple[_Stored, EntryRecord]] = []
        while True:
            piece = next((e for e in current.record.entries if e.entry == entry_id), None)
            if piece is None:
                break
            parts.append((current, piece))
            ends_page = piece.last_line == current.record.lines and current.record.sealed
            if not ends_page or current.next_page is None:
                break
            current = self.stored(current.next_page)
        return parts
