"""The write path: batches commit whole, and the open-page pixel cache can never outlive a failed write."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import lmdb
import numpy as np
import pytest

from optical_memory.archive import ArchiveTxn
from optical_memory.config import load_config
from optical_memory.errors import ArchiveFull, InvalidArgument
from optical_memory.memory import Memory, NewEntry
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
from optical_memory.writing import CanvasCache


def hot_only(path: Path) -> Memory:
    config = load_config(archive=path, environ={})
    return Memory(replace(config, tiers=(Tier("hot", 1.0),)), reader=TemplateReader())


def texts(memory: Memory, page_id: str) -> list[str]:
    return [line.text for line in memory.read_lines(page_id).lines]


def test_a_failed_write_never_replaces_what_another_writer_was_acknowledged_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #12.1: A fails on a full disk, B writes, A writes again: B's lines stay B's.

    A and B are two facades over one archive, as two server processes are: each has its own cache of
    the open page's pixels. A's cache held the page as A last wrote it, and the old cache was changed
    inside A's failed transaction and trusted by row count alone.
    """
    a = hot_only(tmp_path / "archive")
    b = Memory(a.config, archive=a.archive, reader=TemplateReader())
    a.remember("first entry, by A", session="S")
    with monkeypatch.context() as patch:
        original = ArchiveTxn.put_image

        def full(self: ArchiveTxn, page_id: str, data: bytes) -> None:
            raise lmdb.DiskError("mdb_put: No space left on device")

        patch.setattr(ArchiveTxn, "put_image", full)
        with pytest.raises(ArchiveFull, match="nothing was written"):
            a.remember("\n".join(f"A's failed line {i}" for i in range(30)), session="S")
        patch.setattr(ArchiveTxn, "put_image", original)
    b_lines = [f"B's acknowledged line {i}" for i in range(30)]
    span = b.remember("\n".join(b_lines), session="S").spans[0]
    a.remember("A again", session="S")
    read = texts(b, span.page_id)
    assert read[span.start - 1 : span.end] == b_lines[: span.end - span.start + 1]
    everything = [t for page in a.list_pages().pages[::-1] for t in texts(a, page.id)]
    assert everything == ["first entry, by A", *b_lines, "A again"]
    assert a.archive.check() == []


def test_the_pixel_cache_stays_bounded_however_many_sessions_are_written(tmp_path: Path) -> None:
    """Issue #12.2: about 1.3 MiB of pixels per session ever written to were kept until exit."""
    memory = hot_only(tmp_path / "archive")
    for n in range(30):
        memory.remember(f"entry in session {n}", session=f"s{n}")
    assert len(memory.writer.canvases) <= memory.writer.canvases.capacity < 30
    memory.forget(session="s29")
    assert memory.writer.canvases.get("p30", 1) is None  # forget evicts


def test_cache_hands_out_copies_and_only_for_the_version_it_holds() -> None:
    cache = CanvasCache(capacity=2)
    pixels = np.zeros((2, 2), dtype=np.uint8)
    cache.put("p1", 3, pixels)
    copy = cache.get("p1", 3)
    assert copy is not None
    copy[0, 0] = 9
    assert cache.get("p1", 3)[0, 0] == 0  # type: ignore[index]
    assert cache.get("p1", 4) is None  # a newer version was written elsewhere: decode it, never trust
    cache.put("p2", 1, pixels)
    cache.put("p3", 1, pixels)
    assert cache.get("p1", 3) is None and len(cache) == 2


def test_a_batch_commits_whole_or_not_at_all(tmp_path: Path) -> None:
    memory = hot_only(tmp_path / "archive")
    seen: list[int] = []

    def checkpoint(tx: ArchiveTxn, results: list) -> None:
        seen.append(len(results))
        raise InvalidArgument("the importer's checkpoint failed")

    entries = [NewEntry(f"message {i}", session="chat", role="user") for i in range(40)]
    with pytest.raises(InvalidArgument):
        memory.remember_batch(entries, in_transaction=checkpoint)
    assert seen == [40] and memory.list_pages().pages == []
    results = memory.remember_batch(entries)
    assert [r.spans[0].start for r in results[:3]] == [1, 2, 3]
    page_lines = [t for p in memory.list_pages(limit=200).pages[::-1] for t in texts(memory, p.id)]
    assert page_lines == [f"message {i}" for i in range(40)]


def test_an_entry_reads_back_whole_across_pages_and_verified(tmp_path: Path) -> None:
    memory = hot_only(tmp_path / "archive")
    memory.remember("a note before", session="s")
    text = "start " + "abcdefghij" * 30 + " end\n" + "\n".join(f"line {i}" for i in range(90)) + "\nlast"
    spans = memory.remember(text, session="s", role="assistant", title="long").spans
    assert len(spans) >= 2
    for span in spans:  # from any line of any of its pages
        entry = memory.read_entry(span.page_id, span.end)
        assert entry.text == text and entry.role == "assistant" and entry.title == "long"
        assert [s.model_dump() for s in entry.spans] == [s.model_dump() for s in spans]
        assert entry.verified is True and entry.unverified_lines == []
    first = memory.read_entry("p1", 1)
    assert first.text == "a note before"
    with pytest.raises(InvalidArgument, match="belongs to no entry"):
        memory.read_entry("p1", 0)
