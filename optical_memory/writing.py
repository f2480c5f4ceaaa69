"""Text -> pages in the archive: the write path of `remember` and of batched imports.

A batch of entries is laid out and stored in ONE write transaction: it commits whole or not at all.
Each entry appends to its session's open page by drawing new rows onto the page's hot pixels (no
text is kept even for the open page: the image is the only copy of what it says), starting new
pages as they fill. Every page touched by the batch is encoded once and stored at the end of the
batch, with its checksum, its lines' check codes (`checkcode`) and its search terms (`search`,
gathered for the whole batch and posted once per term).

Encoding runs on a small thread pool while the batch goes on laying out (zlib and WebP release the
GIL). A sealed page that already has as many newer pages in its session as the next tier waits for
(a bulk import writes many) is due to fade: its hot image is transient, so it is encoded quickly
(zlib level 1) as soon as that is known; the newest pages of each session, which stay hot, are
encoded well at the end of the batch. Where the hot tier allows (the default 4-bit PNG), pages are
drawn straight into the rows their PNG compresses (`scanlines`): encoding one is zlib alone. A page's
rows are drawn together just before it is encoded (one gather of tiles a page, not four numpy calls
a row).

The pixels of open pages this process wrote last are kept in a small LRU (`CanvasCache`), keyed by
the page's stored version, so the next entry draws on them instead of decoding the stored image.
The cache is changed only after a commit, from copies: a write that fails leaves no trace in it, and
a page another process wrote since (a newer version) is decoded from the archive, never trusted.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.checkcode import codes_for, line_key, part_codes_for
from optical_memory.config import Config
from optical_memory.errors import TextTooLarge
from optical_memory.pages import PagePlan, PlannedRow, plan_entry
from optical_memory.records import EntryRecord, PageRecord, SessionRecord, apply_plan, check_image
from optical_memory.render import Renderer
from optical_memory.results import RememberResult, Span
from optical_memory.scanlines import PageCanvases, page_canvases
from optical_memory.search import IndexBatch
from optical_memory.tiers import decode_image
from optical_memory.tokens import estimate_text_tokens
from optical_memory.validation import check_name, check_text

__all__ = ["CanvasCache", "NewEntry", "Writer", "encoder_pool", "iso", "now"]

_RELEASED = np.zeros((0, 0), dtype=np.uint8)  # the canvas of a sealed page handed to its encoding
CANVAS_CACHE_PAGES = 8  # open pages whose pixels stay decoded: about 1.3 MB each at the hot scale


_ENCODER: list[ThreadPoolExecutor] = []  # one pool for every writer of the process, made at its first write
_ENCODER_LOCK = threading.Lock()


def encoder_pool() -> ThreadPoolExecutor:
    """The process's encoding threads, one a core: page encodes of imports and demotions of fading."""
    with _ENCODER_LOCK:
        if not _ENCODER:
            _ENCODER.append(ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="encode"))
        return _ENCODER[0]


os.register_at_fork(after_in_child=_ENCODER.clear)  # a forked child has none of the parent's threads


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _said_texts(moment: datetime) -> tuple[str, str]:
    """How an entry's time is written: in its header ("2026-11-27 03:00:00Z") and in its record (`iso`).

    Formatted from the fields: 1.3 us an entry instead of 3.7 for two strftime calls. A year before 1000
    is left to strftime, whose leading zeros there differ between platforms (glibc writes none).
    """
    utc = moment.astimezone(UTC)
    if utc.year < 1000:
        return utc.strftime("%Y-%m-%d %H:%M:%SZ"), iso(utc)
    day = f"{utc.year}-{utc.month:02}-{utc.day:02}"
    time = f"{utc.hour:02}:{utc.minute:02}:{utc.second:02}Z"
    return f"{day} {time}", f"{day}T{time}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class NewEntry:
    """One text to remember: what `remember` takes, and what importers pass in batches."""

    text: str
    session: str = "default"
    role: str | None = None
    title: str | None = None
    said_at: datetime | None = None  # when it was said, if not now (imported conversations keep their times)
    recalled_from: str | None = None  # the faded page its text was read from (reconsolidation)


class CanvasCache:
    """A bounded LRU of open pages' hot pixels, keyed by page id and the page's stored version."""

    def __init__(self, capacity: int = CANVAS_CACHE_PAGES) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[int, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, page_id: str, version: int) -> np.ndarray | None:
        """A copy of the pixels of `page_id` at `version`, or None (never cached, evicted, or since rewritten)."""
        with self._lock:
            item = self._items.get(page_id)
            if item is None or item[0] != version:
                return None
            self._items.move_to_end(page_id)
            return item[1].copy()

    def put(self, page_id: str, version: int, pixels: np.ndarray) -> None:
        with self._lock:
            self._items[page_id] = (version, pixels)
            self._items.move_to_end(page_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def evict(self, page_id: str) -> None:
        with self._lock:
            self._items.pop(page_id, None)

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class _Touched:
    """A page the batch in progress writes on: its record and its pixels, stored once at the end."""

    record: PageRecord
    canvas: np.ndarray
    first_row: int = 0  # of the rows laid out on it and not drawn yet: drawn together, before it is encoded
    rows: list[PlannedRow] = field(default_factory=list)

    def lay(self, first_row: int, rows: Sequence[PlannedRow], pages: PageCanvases) -> None:
        """Note rows to draw from `first_row` on (drawing what was noted first unless they follow it)."""
        if self.rows and first_row != self.first_row + len(self.rows):
            self.draw(pages)
        if not self.rows:
            self.first_row = first_row
        self.rows.extend(rows)

    def draw(self, pages: PageCanvases) -> None:
        pages.draw_rows(self.canvas, self.first_row, self.rows)
        self.rows = []


@dataclass
class _Batch:
    """What one run of the batch's transaction has done so far (it may run again from the start)."""

    tx: ArchiveTxn
    key: bytes
    stamp: str
    index: IndexBatch
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    pages: dict[str, _Touched] = field(default_factory=dict)
    by_session: dict[str, list[_Touched]] = field(default_factory=dict)  # each session's pages, oldest first
    encoding: dict[str, Future[bytes]] = field(default_factory=dict)  # page id -> its image, being encoded


class Writer:
    """Lays entries onto pages and stores them; shared by every call of one `Memory` (thread-safe)."""

    def __init__(self, archive: Archive, config: Config, renderer: Renderer) -> None:
        self.archive = archive
        self.config = config
        self.renderer = renderer
        self.pages = page_canvases(renderer, config.tiers[0])  # how open pages are drawn and encoded
        self.canvases = CanvasCache()

    def validate(self, entry: NewEntry) -> None:
        check_text(entry.text, self.config.limits.max_text_chars)
        check_name("session", entry.session)
        if entry.role is not None:
            check_name("role", entry.role)
        if entry.title is not None:
            check_name("title", entry.title)

    def write(
        self,
        entries: Sequence[NewEntry],
        in_transaction: Callable[[ArchiveTxn, list[RememberResult]], None] | None = None,
    ) -> list[RememberResult]:
        """Store `entries` in one transaction; `in_transaction` runs inside it after they are written."""
        for entry in entries:
            self.validate(entry)
        stamp = iso(now())

        def once(tx: ArchiveTxn) -> tuple[list[RememberResult], dict[str, _Touched]]:
            batch = _Batch(tx, line_key(tx.archive_key()), stamp, IndexBatch(tx))
            results = [self._lay_out(batch, entry) for entry in entries]
            self._store(batch)
            for name, sess in batch.sessions.items():
                tx.put_session(name, sess)
            if in_transaction is not None:
                in_transaction(tx, results)
            return results, batch.pages

        results, touched = self.archive.write(once)
        for page in touched.values():  # committed: only now may the cache hold these pixels
            if page.record.sealed:
                self.canvases.evict(page.record.id)
            else:
                self.canvases.put(page.record.id, page.record.version, page.canvas)
        return results

    def _session(self, batch: _Batch, name: str) -> SessionRecord:
        sess = batch.sessions.get(name)
        if sess is None:
            sess = batch.tx.session(name) or SessionRecord(
                sid=batch.tx.next_session_id(), created=batch.stamp, updated=batch.stamp
            )
            batch.sessions[name] = sess
        return sess

    def _open_page(self, batch: _Batch, page_id: str) -> _Touched:
        touched = batch.pages.get(page_id)
        if touched is not None:
            return touched
        record = batch.tx.page(page_id)
        assert record is not None, f"session's open page {page_id} has no record"
        canvas = self.canvases.get(page_id, record.version)
        if canvas is None:  # written by another process since, evicted, or never seen by this one
            image = check_image(record, batch.tx.image(page_id))
            canvas = self.pages.from_image(decode_image(image))
        touched = _Touched(record, canvas)
        batch.pages[page_id] = touched
        self._added(batch, touched)
        return touched

    def _lay_out(self, batch: _Batch, entry: NewEntry) -> RememberResult:
        said = entry.said_at or now()
        sess = self._session(batch, entry.session)
        header_time, said_iso = _said_texts(said)
        parts = [entry.role or "note", entry.session, header_time, *([entry.title] if entry.title else [])]
        base = " · ".join(parts)
        open_page = sess.open_page
        plans = plan_entry(
            entry.text.split("\n"),
            lambda continued: base + (" (cont.)" if continued else ""),
            self.config.page,
            open_rows=sess.open_rows if open_page else None,
            open_lines=sess.open_lines if open_page else 0,
        )
        limit = self.config.limits.max_pages_per_call
        if len(plans) > limit:
            raise TextTooLarge(
                f"text needs {len(plans)} pages; one remember call writes at most {limit} "
                "(limits.max_pages_per_call): split it"
            )
        spans: list[Span] = []
        sealed: list[str] = []
        entry_id: str | None = None
        for plan in plans:
            page = self._page_for(batch, plan, sess, entry.session, open_page)
            page.lay(plan.first_row, plan.rows, self.pages)
            record = page.record
            if entry_id is None and plan.first_line:  # where its first line lies (a plan may hold a header only)
                entry_id = f"{record.id}:{plan.first_line}"
            entry_record = EntryRecord(
                entry.role, said_iso, entry.title, plan.first_line, plan.last_line, entry.recalled_from, entry_id
            )
            if entry.recalled_from is not None and record.recalled_from is None:
                record.recalled_from = entry.recalled_from
            codes = codes_for(batch.key, plan.pieces)
            apply_plan(record, plan, entry_record, codes, batch.stamp, part_codes_for(batch.key, plan.pieces))
            batch.index.add(sess.sid, record.number, plan.first_line, plan.pieces)
            spans.append(Span(page_id=record.id, start=plan.first_line, end=plan.last_line, continues=plan.continues))
            if plan.sealed:
                sealed.append(record.id)
            if record.sealed:
                sess.close_page()
            else:
                sess.open_page, sess.open_rows, sess.open_lines = record.id, len(record.rows), record.lines
            open_page = sess.open_page
        sess.updated = batch.stamp
        return RememberResult(
            session=entry.session,
            spans=spans,
            characters=len(entry.text),
            text_tokens=estimate_text_tokens(entry.text),
            pages_sealed=sealed,
        )

    def _page_for(
        self, batch: _Batch, plan: PagePlan, sess: SessionRecord, session: str, open_page: str | None
    ) -> _Touched:
        if not plan.new_page:
            assert open_page is not None
            return self._open_page(batch, open_page)
        page_id, number = batch.tx.next_page_id()
        record = PageRecord.new(page_id, number, session, batch.stamp, self.renderer.geometry, self.config.tiers[0])
        batch.tx.add_page_to_indexes(sess.sid, number, page_id)
        sess.pages += 1
        touched = _Touched(record, self.pages.blank())
        batch.pages[page_id] = touched
        self._added(batch, touched)
        return touched

    def _encode(self, batch: _Batch, page: _Touched, fast: bool) -> None:
        """Start encoding a page on the encoder's threads: zlib and WebP release the GIL, so it encodes
        on another core while this thread lays out the next entries."""
        page.draw(self.pages)
        batch.encoding[page.record.id] = encoder_pool().submit(self.pages.encode, page.canvas, fast)

    def _added(self, batch: _Batch, page: _Touched) -> None:
        """Note a page of the batch (in its session's order); a sealed page that now has as many newer
        pages as the next tier waits for is due to fade anyway: its hot image is encoded quickly, now."""
        pages = batch.by_session.setdefault(page.record.session, [])
        pages.append(page)
        due = self.config.tiers[1].after_pages if len(self.config.tiers) > 1 else None
        if due is not None and len(pages) > due:
            older = pages[-due - 1]
            if older.record.sealed and older.record.id not in batch.encoding:
                self._encode(batch, older, fast=True)
                older.canvas = _RELEASED  # its encoding holds the pixels: a long batch keeps few pages' worth

    def _store(self, batch: _Batch) -> None:
        """Store every page the batch touched, encoded once each: well if it stays hot, else quickly."""
        pages = list(batch.pages.values())
        left = [page for page in pages if page.record.id not in batch.encoding]
        if len(left) == 1 and not batch.encoding:  # a remember's one page: encoded here, no hand-off
            page = left[0]
            page.draw(self.pages)
            encoded = {page.record.id: self.pages.encode(page.canvas, fast=not page.record.sealed)}
        else:  # the newest pages of each session: sealed ones stay hot a while, encode well
            for page in left:
                self._encode(batch, page, fast=not page.record.sealed)
            encoded = {}
        batch.index.flush()  # while they encode
        for page in pages:
            data = encoded.get(page.record.id) or batch.encoding[page.record.id].result()
            page.record.stored(data)
            batch.tx.put_image(page.record.id, data)
            batch.tx.put_page(page.record)
