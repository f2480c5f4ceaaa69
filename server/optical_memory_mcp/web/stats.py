"""Figures the pages show that the facade gives only page by page: tiers per session, the archive by tier.

Everything is read through the facade's `list_pages` (newest first, by cursor), so the cost is in
records read:

* Pages per tier of one session (`TierCounts`): a session's pages are walked newest first only until
  the first sealed page at the coldest tier; every older page is at the coldest tier too (fading
  demotes by rank and age, both monotone along a session: `fading` relies on the same order), so
  the rest of the count is the session's page count minus the pages walked. The walk is bounded by
  the coldest tier's `after_pages` (512 by default) plus the pages it takes to fill the list's
  last batch, whatever the session's size. Results are cached per session, keyed by its page count
  and update time, for `ttl_s` (fading moves pages without touching the session's record).
* The whole archive by tier and by creation day (`ArchiveFigures`): every record is read, on a
  worker thread (15 s at 100,000 pages on 2 busy cores); views show the last count meanwhile, and
  a count is redone when the sessions changed or it is older than `ttl_s`.
* The page after a given one in its session (`newer_page`): a binary search over page numbers with
  `list_pages(cursor=..., limit=1)`, about 2 log2(N) one-record reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from optical_memory.archive import page_number
from optical_memory.memory import Memory
from optical_memory.results import PageInfo, SessionInfo

__all__ = ["ArchiveFigures", "TierCounts", "TierTotals", "newer_page", "walk_pages"]

log = logging.getLogger(__name__)


def walk_pages(memory: Memory, session: str | None, first_batch: int = 16) -> Iterator[PageInfo]:
    """Pages newest first, in batches that grow from `first_batch` to the list limit."""
    cursor: str | None = None
    limit = first_batch
    most = memory.config.limits.max_list_limit
    while True:
        listing = memory.list_pages(session=session, cursor=cursor, limit=min(limit, most))
        yield from listing.pages
        if listing.next_cursor is None:
            return
        cursor = listing.next_cursor
        limit *= 2


def session_tier_counts(memory: Memory, session: SessionInfo) -> list[int]:
    """Pages of `session` per tier index (see the module docstring for why the walk stops early)."""
    coldest = len(memory.tiers) - 1
    counts = [0] * (coldest + 1)
    for walked, info in enumerate(walk_pages(memory, session.name)):
        if info.sealed and info.tier_index >= coldest:
            counts[coldest] += max(session.pages - walked, 1)
            return counts
        counts[min(info.tier_index, coldest)] += 1
    return counts


class TierCounts:
    """Per-session tier counts, cached (thread-safe)."""

    def __init__(self, memory: Memory, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.memory = memory
        self.ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, str], float, list[int]]] = {}

    def of(self, session: SessionInfo) -> list[int]:
        key = (session.pages, session.updated)
        with self._lock:
            cached = self._cache.get(session.name)
        if cached is not None and cached[0] == key and self._clock() - cached[1] < self.ttl_s:
            return cached[2]
        counts = session_tier_counts(self.memory, session)
        with self._lock:
            if len(self._cache) > 10_000:  # sessions come and go: never let the cache outgrow a few MB
                self._cache.clear()
            self._cache[session.name] = (key, self._clock(), counts)
        return counts

    def forget(self, session: str | None = None) -> None:
        with self._lock:
            if session is None:
                self._cache.clear()
            else:
                self._cache.pop(session, None)


@dataclass
class TierTotals:
    """The archive summed per tier index, and pages per creation day per tier index."""

    pages: list[int]
    image_bytes: list[int]
    text_tokens: list[int]
    image_tokens: list[int]  # Claude units
    vision_tokens: list[int]  # DeepSeek-OCR units
    days: dict[str, list[int]] = field(default_factory=dict)  # 'YYYY-MM-DD' -> pages per tier index
    computed_s: float = 0.0

    @classmethod
    def empty(cls, tiers: int) -> TierTotals:
        return cls([0] * tiers, [0] * tiers, [0] * tiers, [0] * tiers, [0] * tiers)


def archive_totals(memory: Memory, session: str | None = None) -> TierTotals:
    start = time.perf_counter()
    tiers = len(memory.tiers)
    totals = TierTotals.empty(tiers)
    for info in walk_pages(memory, session, first_batch=memory.config.limits.max_list_limit):
        t = min(info.tier_index, tiers - 1)
        totals.pages[t] += 1
        totals.image_bytes[t] += info.image_bytes
        totals.text_tokens[t] += info.text_tokens
        totals.image_tokens[t] += info.image_tokens
        totals.vision_tokens[t] += info.vision_tokens
        totals.days.setdefault(info.created[:10], [0] * tiers)[t] += 1
    totals.computed_s = time.perf_counter() - start
    return totals


class ArchiveFigures:
    """`archive_totals` counted on a worker thread, so no view waits for a whole archive (thread-safe).

    `totals()` answers at once with the last count, starting a recount when the sessions changed or
    the count is older than `ttl_s`; only the very first count is waited for, up to `wait_s` (a
    small archive's figures show on the first view; a large one's view says it is counting).
    """

    def __init__(self, memory: Memory, ttl_s: float = 60.0, wait_s: float = 2.0) -> None:
        self.memory = memory
        self.ttl_s = ttl_s
        self.wait_s = wait_s
        self._cond = threading.Condition()
        self._cached: tuple[object, float, TierTotals] | None = None
        self._counting = False

    def totals(self) -> TierTotals | None:
        key = tuple((s.name, s.pages, s.updated) for s in self.memory.list_sessions().sessions)
        with self._cond:
            cached = self._cached
            fresh = cached is not None and cached[0] == key and time.monotonic() - cached[1] < self.ttl_s
            if not fresh and not self._counting:
                self._counting = True
                threading.Thread(target=self._count, args=(key,), name="optical-memory-web-count", daemon=True).start()
            if self._cached is None:
                self._cond.wait_for(lambda: self._cached is not None, timeout=self.wait_s)
            return self._cached[2] if self._cached is not None else None

    def _count(self, key: object) -> None:
        totals = None
        try:
            totals = archive_totals(self.memory)
        except Exception:  # the archive closed under it (shutdown), or a damaged page: logged, tried again later
            log.exception("counting the archive for the fading plot failed")
        with self._cond:
            self._counting = False
            if totals is not None:
                self._cached = (key, time.monotonic(), totals)
            self._cond.notify_all()

    def forget(self) -> None:
        with self._cond:
            self._cached = None


def newer_page(memory: Memory, session: str, page_id: str) -> str | None:
    """The page right after `page_id` in its session, or None for the newest."""
    number = page_number(page_id)
    newest = memory.list_pages(session=session, limit=1).pages
    if number is None or not newest or newest[0].id == page_id:
        return None
    low, high = number + 1, page_number(newest[0].id) or number + 1  # answer's number lies in [low, high]
    # invariant: the newest session page below `high + 1` is newer than `page_id`
    while low < high:
        mid = (low + high) // 2
        below = memory.list_pages(session=session, cursor=f"p{mid + 1}", limit=1).pages
        if below and (page_number(below[0].id) or 0) > number:
            high = page_number(below[0].id) or mid
        else:
            low = mid + 1
    return f"p{high}"
