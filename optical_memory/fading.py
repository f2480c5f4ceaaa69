"""Fading: find the sealed pages due for a colder tier and demote them, one tier at a time.

A page's due tier follows from its rank (how many newer pages its session has) and its age (see
`tiers.tier_due`). Each demotion step re-encodes the stored image outside any transaction, then
swaps it in with a write that first checks the page is still at the tier it was read at, so a
demotion racing another process's demotion or a `forget` changes nothing twice.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.errors import OpticalMemoryError, PageDamaged
from optical_memory.records import PageRecord, check_image
from optical_memory.render import Geometry
from optical_memory.tiers import Tier, demote_through, tier_due
from optical_memory.writing import encoder_pool

log = logging.getLogger(__name__)

__all__ = ["BackgroundFader", "fade"]

LOOKAHEAD = 2  # pages re-encoded ahead of their swap, per core: both cores stay busy, a few pages' bytes held


def _due_pages(tx: ArchiveTxn, tiers: Sequence[Tier], session: str | None, now: datetime) -> list[tuple[str, int, int]]:
    coldest = len(tiers) - 1
    names = [session] if session is not None else [name for name, _ in tx.sessions()]
    found: list[tuple[str, int, int]] = []
    for name in names:
        sess = tx.session(name)
        if sess is None:
            continue
        for newer, (_, page_id) in enumerate(tx.page_ids_newest_first(sess.sid)):
            record = tx.page(page_id)
            if record is None or not record.sealed or record.sealed_at is None:
                continue
            if record.tier >= coldest:
                break  # older pages are at least as cold: demotion is monotone in age and rank
            sealed_at = datetime.strptime(record.sealed_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            due = tier_due(tiers, newer, (now - sealed_at).total_seconds() / 86400)
            if due > record.tier:
                found.append((page_id, record.tier, due))
    return found


@dataclass
class _Demotion:
    """One page's demotion: read on the fading thread, re-encoded on the encoder's, swapped in on the fading one."""

    record: PageRecord
    tier: int
    due: int
    encoded: Future[tuple[bytes, Geometry] | None]


def _read(archive: Archive, tiers: Sequence[Tier], page_id: str, tier: int, due: int) -> _Demotion | None:
    """Read a page due to fade and start its re-encoding; None if it changed since it was found due."""
    record, image = archive.read(lambda tx: (tx.page(page_id), tx.image(page_id)))
    if record is None or image is None or record.tier != tier:
        return None
    steps = tiers[tier + 1 : due + 1]
    try:
        encoded = encoder_pool().submit(_reencode, record, image, steps)
    except RuntimeError:  # the interpreter is exiting and the pool takes no more work: a daemon fader re-encodes here
        encoded = Future()
        encoded.set_result(_reencode(record, image, steps))
    return _Demotion(record, tier, due, encoded)


def _reencode(record: PageRecord, image: bytes, tiers: Sequence[Tier]) -> tuple[bytes, Geometry] | None:
    try:
        image = check_image(record, image)
    except PageDamaged as exc:  # never fade a damaged image: a demotion would launder it under a new checksum
        log.warning("not fading %s: %s", record.id, exc)
        return None
    return demote_through(image, record.geometry, tiers)


def _swap(archive: Archive, tiers: Sequence[Tier], demotion: _Demotion) -> bool:
    """Store a page's re-encoded image, unless the page changed meanwhile; False then (or if damaged)."""
    encoded = demotion.encoded.result()
    if encoded is None:
        return False
    data, geometry = encoded
    record, target = demotion.record, tiers[demotion.due]

    def swap(tx: ArchiveTxn) -> bool:
        fresh = tx.page(record.id)
        if fresh is None or fresh.tier != demotion.tier or fresh.version != record.version:
            return False  # demoted, rewritten or forgotten by another process meanwhile: nothing to do
        fresh.tier, fresh.codec, fresh.geometry = demotion.due, target.codec, geometry
        fresh.stored(data)
        tx.put_image(record.id, data)
        tx.put_page(fresh)
        return True

    return archive.write(swap)


def fade(
    archive: Archive,
    tiers: Sequence[Tier],
    session: str | None,
    now: datetime,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> int:
    """Demote every sealed page (of `session`, or all) that is due; returns the steps taken.

    `stop` is asked before each page's step (a closing `BackgroundFader` says yes): fading then
    returns with the rest undone, which is still due when fading next runs (the next server start,
    or the next sealed page), since it is recomputed from the archive. `progress(steps, total)`
    is called after each page (`ingest.ProgressBar.update` fits).

    Re-encoding is most of a step (lossless WebP: tens of ms a page) and releases the GIL, so the
    next few pages are re-encoded on the encoder's threads, one a core, while this thread reads and
    swaps in, still one page at a time and oldest first.
    """
    if len(tiers) < 2:
        return 0
    due_pages = archive.read(lambda tx: _due_pages(tx, tiers, session, now))
    total = sum(due - tier for _, tier, due in due_pages)
    # Oldest first: a run cut short (by `stop`, or a kill) then leaves older pages at least as cold
    # as newer ones, which `_due_pages` relies on when it stops at the first page at the coldest tier.
    waiting = iter(reversed(due_pages))
    ahead: deque[_Demotion | None] = deque()
    depth = LOOKAHEAD * (os.cpu_count() or 1)
    steps = 0
    try:
        while True:
            for page_id, tier, due in itertools.islice(waiting, max(0, depth - len(ahead))):
                ahead.append(_read(archive, tiers, page_id, tier, due))
            if not ahead:
                return steps
            if stop is not None and stop():
                return steps
            demotion = ahead.popleft()
            if demotion is not None and _swap(archive, tiers, demotion):
                steps += demotion.due - demotion.tier  # one transaction, but every tier passed through
                if progress is not None:
                    progress(steps, total)
    finally:
        for left in ahead:  # stopped or failed: what is not started yet never runs
            if left is not None:
                left.encoded.cancel()


class BackgroundFader:
    """Fades sessions on a worker thread, so a caller that stored pages need not wait for re-encoding.

    `request(session)` queues a session (None: every session; requests coalesce); the thread calls
    `fade_session(session, stop=...)` for each (`Memory.fade` hands `stop` on to `fade`).
    `close()` lets the demotion step in progress finish (one page: well under a second), makes
    `stop` say yes so `fade` returns before its next step, and drops the queue: stopping a server
    never waits for a fading backlog. Nothing is lost by that: fading is recomputed from the
    archive whenever it next runs.
    """

    def __init__(self, fade_session: Callable[..., object]) -> None:
        self._fade = fade_session
        self._pending: dict[str | None, None] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._busy = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def request(self, session: str | None) -> bool:
        """Queue `session` (None: all) for fading; False once closed (nothing is queued then)."""
        with self._cond:
            if self._closed:
                return False
            self._pending[session] = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="optical-memory-fader", daemon=True)
                self._thread.start()
            self._cond.notify()
            return True

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive (started by the first request, ended by close)."""
        return self._thread is not None and self._thread.is_alive()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running (tests, benchmarks); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                session = next(iter(self._pending))
                del self._pending[session]
                self._busy = True
            try:
                self._fade(session, stop=self._stopping.is_set)
            except OpticalMemoryError as exc:  # retried at the next request or the next remember
                log.warning("background fading of session %r failed: %s", session, exc)
            except Exception:  # never let the thread die silently
                log.exception("background fading of session %r crashed", session)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._stopping.set()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
