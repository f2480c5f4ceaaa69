"""The facade the server and the CLI call: remember, list_pages, view_page, read_lines, fade.

A page record (JSON in the archive's `pages` database) holds layout and bookkeeping, never text::

    id, number, session, created, updated, sealed, sealed_at, tier (index), codec, image_bytes,
    geometry (render.Geometry at the current tier), rows (one code per used row: 0 header,
    +n first row of line n, -n continuation of line n), lines, continued, continues,
    characters, text_tokens, title, entries [{role, time, title, first_line, last_line}]

`remember` appends to the session's open page by drawing new rows onto its hot image (no text is
kept even for the open page), so the page's image is the only copy of what it says.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from optical_memory.archive import Archive, ArchiveTxn, page_number
from optical_memory.config import Config
from optical_memory.errors import InvalidArgument, OpticalMemoryError, PageNotFound, SessionNotFound, TextTooLarge
from optical_memory.pages import HEADER, decode, join_row_cells, plan_entry
from optical_memory.readers.base import Reader
from optical_memory.render import Geometry, Renderer
from optical_memory.results import Line, LinesRead, PageImage, PageInfo, PageList, RememberResult, Span
from optical_memory.tiers import decode_image, demote, encode_image, tier_due
from optical_memory.tokens import claude_image_tokens, deepseek_vision_tokens, estimate_text_tokens

__all__ = ["Memory"]

log = logging.getLogger(__name__)

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
        self, text: str, session: str = "default", role: str | None = None, title: str | None = None
    ) -> RememberResult:
        """Lay `text` onto the session's pages as one entry and store their images."""
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
        header_time = now.strftime("%Y-%m-%d %H:%M:%SZ")

        def header(continued: bool) -> str:
            parts = [role or "note", session, header_time]
            if title:
                parts.append(title)
            return " · ".join(parts) + (" (cont.)" if continued else "")

        def once(tx: ArchiveTxn) -> RememberResult:
            sess = tx.session(session)
            if sess is None:
                sess = {
                    "sid": tx.next_session_id(),
                    "open_page": None,
                    "open_rows": 0,
                    "open_lines": 0,
                    "pages": 0,
                    "created": stamp,
                }
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
                    record = self._new_record(page_id, number, session, stamp)
                    canvas = self.renderer.blank()
                    tx.add_page_to_indexes(sess["sid"], number, page_id)
                    sess["pages"] += 1
                else:
                    assert open_page is not None
                    record = open_page
                    image = tx.image(record["id"])
                    assert image is not None, f"page {record['id']} has no image"
                    canvas = np.array(decode_image(image))
                self.renderer.draw_rows(canvas, plan.first_row, plan.rows)
                data = encode_image(canvas, self.tiers[0])
                self._apply_plan(record, plan, role, title, stamp, len(data))
                tx.put_image(record["id"], data)
                tx.put_page(record)
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
        if result.pages_sealed:
            try:
                self.fade(session)
            except OpticalMemoryError as exc:  # the entry is stored; fading is retried on the next seal
                log.warning("fading session %r after remember failed: %s", session, exc)
        return result

    def _new_record(self, page_id: str, number: int, session: str, stamp: str) -> dict[str, Any]:
        geometry = self.renderer.geometry
        return {
            "id": page_id,
            "number": number,
            "session": session,
            "created": stamp,
            "updated": stamp,
            "sealed": False,
            "sealed_at": None,
            "tier": 0,
            "codec": self.tiers[0].codec,
            "image_bytes": 0,
            "geometry": geometry.to_dict(),
            "rows": [],
            "lines": 0,
            "continued": False,
            "continues": False,
            "characters": 0,
            "text_tokens": 0,
            "title": None,
            "entries": [],
        }

    @staticmethod
    def _apply_plan(
        record: dict[str, Any], plan: Any, role: str | None, title: str | None, stamp: str, size: int
    ) -> None:
        if record["lines"] == 0 and plan.continued:
            record["continued"] = True
        record["rows"].extend(row.code for row in plan.rows)
        record["lines"] = plan.last_line or record["lines"]
        record["continues"] = plan.continues
        record["characters"] += sum(len(piece) for piece in plan.pieces)
        record["text_tokens"] += estimate_text_tokens("\n".join(plan.pieces))
        record["entries"].append(
            {"role": role, "time": stamp, "title": title, "first_line": plan.first_line, "last_line": plan.last_line}
        )
        if record["title"] is None and title:
            record["title"] = title
        record["updated"] = stamp
        record["image_bytes"] = size
        if plan.sealed:
            record["sealed"] = True
            record["sealed_at"] = stamp

    # fading -----------------------------------------------------------------------------------
    def fade(self, session: str | None = None, now: datetime | None = None) -> int:
        """Demote every sealed page that is due for a colder tier; returns how many steps were taken."""
        moment = now or _now()
        coldest = len(self.tiers) - 1
        if coldest == 0:
            return 0

        def due_pages(tx: ArchiveTxn) -> list[tuple[str, int, int]]:
            names = [session] if session is not None else [name for name, _ in tx.sessions()]
            found: list[tuple[str, int, int]] = []
            for name in names:
                sess = tx.session(name)
                if sess is None:
                    continue
                for newer, (_, page_id) in enumerate(tx.page_ids_newest_first(sess["sid"])):
                    record = tx.page(page_id)
                    if record is None or not record["sealed"]:
                        continue
                    if record["tier"] >= coldest:
                        break  # older pages are at least as cold: demotion is monotone in age and rank
                    sealed_at = datetime.strptime(record["sealed_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                    due = tier_due(self.tiers, newer, (moment - sealed_at).total_seconds() / 86400)
                    if due > record["tier"]:
                        found.append((page_id, record["tier"], due))
            return found

        steps = 0
        for page_id, tier, due in self.archive.read(due_pages):
            while tier < due:
                if not self._demote_once(page_id, tier):
                    break
                tier += 1
                steps += 1
        return steps

    def _demote_once(self, page_id: str, tier: int) -> bool:
        """Re-encode one page from `tier` to `tier + 1`; False if someone else changed it first."""
        current = self.archive.read(lambda tx: (tx.page(page_id), tx.image(page_id)))
        record, image = current
        if record is None or image is None or record["tier"] != tier:
            return False
        next_tier = self.tiers[tier + 1]
        data, geometry = demote(image, Geometry.from_dict(record["geometry"]), next_tier)

        def swap(tx: ArchiveTxn) -> bool:
            fresh = tx.page(page_id)
            if fresh is None or fresh["tier"] != tier:
                return False  # demoted or forgotten by another process meanwhile: nothing to do
            fresh.update(tier=tier + 1, codec=next_tier.codec, image_bytes=len(data), geometry=geometry.to_dict())
            tx.put_image(page_id, data)
            tx.put_page(fresh)
            return True

        return self.archive.write(swap)

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

    def _info(self, record: dict[str, Any]) -> PageInfo:
        geometry = Geometry.from_dict(record["geometry"])
        tier = self.tiers[min(record["tier"], len(self.tiers) - 1)]
        return PageInfo(
            id=record["id"],
            session=record["session"],
            created=record["created"],
            updated=record["updated"],
            tier=tier.name,
            tier_index=record["tier"],
            sealed=record["sealed"],
            lines=record["lines"],
            characters=record["characters"],
            text_tokens=record["text_tokens"],
            image_width=geometry.width,
            image_height=geometry.height,
            image_bytes=record["image_bytes"],
            image_format=record["codec"],
            image_tokens=claude_image_tokens(geometry.width, geometry.height),
            vision_tokens=deepseek_vision_tokens(geometry.width, geometry.height),
            px_per_char=round(geometry.px_per_char, 2),
            title=record["title"],
        )

    def page_info(self, page_id: str) -> PageInfo:
        return self._info(self.archive.read(lambda tx: self._record(tx, page_id)))

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
            sid = None
            if session is not None:
                sess = tx.session(session)
                if sess is None:
                    known = sorted(name for name, _ in tx.sessions())
                    shown = ", ".join(repr(n) for n in known[:20]) or "none yet"
                    raise SessionNotFound(f"no session {session!r}; sessions: {shown}")
                sid = sess["sid"]
            pages: list[PageInfo] = []
            next_cursor = None
            for _, page_id in tx.page_ids_newest_first(sid, before):
                if len(pages) == limit:
                    next_cursor = pages[-1].id
                    break
                record = tx.page(page_id)
                if record is not None:
                    pages.append(self._info(record))
            return PageList(pages=pages, next_cursor=next_cursor)

        return self.archive.read(listing)

    def view_page(self, page_id: str) -> PageImage:
        """The stored image of a page, as it is at its current tier."""
        record, data = self.archive.read(lambda tx: (self._record(tx, page_id), tx.image(page_id)))
        assert data is not None, f"page {page_id} has no image"
        info = self._info(record)
        tier = self.tiers[min(record["tier"], len(self.tiers) - 1)]
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
        rows_of = self._rows_of_lines(record["rows"], start, last)
        wanted = [row for rows in rows_of for row in rows]
        geometry = Geometry.from_dict(record["geometry"])
        cells = self.reader.read_rows(decode_image(data), geometry, wanted)
        by_row = dict(zip(wanted, cells, strict=True))
        lines = [
            Line(number=number, text=decode(join_row_cells([by_row[r] for r in rows], geometry.columns)))
            for number, rows in zip(range(start, last + 1), rows_of, strict=True)
        ]
        return LinesRead(
            page_id=page_id,
            tier=self.tiers[min(record["tier"], len(self.tiers) - 1)].name,
            lines=lines,
            total_lines=total,
            continued=record["continued"],
            continues=record["continues"],
            reader=self.reader.name,
        )

    @staticmethod
    def _rows_of_lines(codes: Sequence[int], start: int, end: int) -> list[list[int]]:
        rows: list[list[int]] = [[] for _ in range(end - start + 1)]
        for row, code in enumerate(codes):
            if code != HEADER and start <= abs(code) <= end:
                rows[abs(code) - start].append(row)
        return rows
