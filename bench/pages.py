"""The measured pages: a corpus remembered through the facade (timed), each sealed page faded through every tier."""

from __future__ import annotations

import time
from functools import partial

from bench.common import text_tokens
from bench.results import Page, Results
from optical_memory.archive import ArchiveTxn
from optical_memory.checkcode import line_key
from optical_memory.memory import Memory
from optical_memory.pages import plan_entry
from optical_memory.records import PageRecord
from optical_memory.tiers import Tier, demote

__all__ = ["fade_pages", "remember_pages"]


def remember_pages(memory: Memory, entries: list[str], session: str, results: Results) -> dict[str, dict[int, str]]:
    """Remember every entry (timed) and return each page's line texts, from the facade's own planning."""
    truth: dict[str, dict[int, str]] = {}
    elapsed = 0.0
    for entry in entries:
        state = memory.archive.read(lambda tx: tx.session(session))
        open_page = state is not None and state.open_page is not None
        plans = plan_entry(
            entry.split("\n"),
            lambda continued: "",  # the header's text does not move any line: it is one row either way
            memory.config.page,
            open_rows=state.open_rows if open_page and state else None,
            open_lines=state.open_lines if open_page and state else 0,
        )
        start = time.perf_counter()
        result = memory.remember(entry, session=session, role="user")
        elapsed += time.perf_counter() - start
        for span, plan in zip(result.spans, plans, strict=True):
            lines = truth.setdefault(span.page_id, {})
            lines.update(zip(range(span.start, span.end + 1), plan.pieces, strict=False))
    stat = memory.archive.stat()
    results.remember = {
        "pages": stat["pages"],
        "seconds": elapsed,
        "pages_per_s": stat["pages"] / elapsed,
        "bytes_on_disk": stat["bytes_on_disk"],
    }
    return truth


def _stored(tx: ArchiveTxn, page_id: str) -> tuple[PageRecord, bytes]:
    record, data = tx.page(page_id), tx.image(page_id)
    assert record is not None and data is not None, f"page {page_id} is incomplete"
    return record, data


def fade_pages(memory: Memory, truth: dict[str, dict[int, str]], tiers: tuple[Tier, ...]) -> list[Page]:
    """Each sealed page's image at every tier, made by `tiers.demote` one step at a time as fading does."""
    pages = []
    ids = memory.archive.read(lambda tx: [page_id for _, page_id in tx.page_ids_newest_first()])
    # the check codes were made with this archive's key: copies written into other archives carry it
    source_key = memory.archive.read(lambda tx: line_key(tx.archive_key()))
    for page_id in reversed(ids):
        record, data = memory.archive.read(partial(_stored, page_id=page_id))
        if not record.sealed:
            continue
        record.codes_key = source_key
        geometry = record.geometry
        images = [(data, geometry)]
        for tier in tiers[1:]:
            data, geometry = demote(data, geometry, tier)
            images.append((data, geometry))
        lines = truth[page_id]
        text = "\n".join(lines[n] for n in sorted(lines))
        pages.append(Page(record, lines, images, text_tokens(text)))
    return pages
