"""Faults injected at every write step of remember and of demotion leave the archive unchanged."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import pytest

from optical_memory.archive import _DATABASES, Archive, ArchiveTxn
from optical_memory.config import load_config
from optical_memory.errors import ArchiveFull
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier, decode_image

WRITE_STEPS = ("next_page_id", "next_session_id", "put_page", "put_image", "put_session", "add_page_to_indexes")
TIERS = (Tier("hot", 1.0), Tier("warm", 0.6, "webp", 80, after_pages=1))


def snapshot(archive: Archive) -> dict[str, dict[bytes, bytes]]:
    def dump(tx: ArchiveTxn) -> dict[str, dict[bytes, bytes]]:
        return {name: {bytes(k): bytes(v) for k, v in tx.txn.cursor(db=archive._dbs[name])} for name in _DATABASES}

    return archive.read(dump)


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    config = replace(load_config(archive=tmp_path / "a", environ={}), tiers=TIERS)
    mem = Memory(config, reader=TemplateReader())
    mem.remember("already stored\nand kept", session="s")
    yield mem
    mem.close()


def inject(monkeypatch: pytest.MonkeyPatch, at: int, error: Callable[[], Exception]) -> list[int]:
    """Make the `at`-th write step (counting from 1) raise `error()`; returns the live step counter."""
    count = [0]
    for name in WRITE_STEPS:
        original = getattr(ArchiveTxn, name)

        def wrapped(self: ArchiveTxn, *args: object, _original: Callable = original) -> object:
            count[0] += 1
            if count[0] == at:
                raise error()
            return _original(self, *args)

        monkeypatch.setattr(ArchiveTxn, name, wrapped)
    return count


def test_enospc_at_each_step_of_remember_changes_nothing(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "new entry\n" + "z" * 9000  # two pages: several steps of each kind
    at = 1
    while True:
        before = snapshot(memory.archive)
        with monkeypatch.context() as patch:
            count = inject(patch, at, lambda: lmdb.DiskError("mdb_put: No space left on device"))
            try:
                memory.remember(text, session="s")
            except ArchiveFull as exc:
                assert "disk" in str(exc) and "nothing was written" in str(exc)
                assert snapshot(memory.archive) == before, f"step {at} left a trace"
                at += 1
                continue
        break  # every write step of the entry's own transaction has now been failed once
    assert count[0] >= at - 1
    assert at > 6
    assert memory.archive.check() == []
    assert [line.text for line in memory.read_lines("p1", 1, 2).lines] == ["already stored", "and kept"]


class _FailingCursor:
    """A cursor whose writes count as steps (the search index appends to its blocks through cursors)."""

    def __init__(self, cursor: Any, step: Callable[[], None]) -> None:
        self._cursor, self._step = cursor, step

    def __enter__(self) -> _FailingCursor:
        self._cursor.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.__exit__(*exc)

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self._step()
        return self._cursor.put(*args, **kwargs)

    def replace(self, *args: Any, **kwargs: Any) -> Any:
        self._step()
        return self._cursor.replace(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self._step()
        return self._cursor.delete(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _FailingTxn:
    """An LMDB transaction whose every put and delete, its cursors' included, is a write step."""

    def __init__(self, txn: Any, step: Callable[[], None]) -> None:
        self._txn, self._step = txn, step

    def put(self, *args: Any, **kwargs: Any) -> Any:
        self._step()
        return self._txn.put(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        self._step()
        return self._txn.delete(*args, **kwargs)

    def cursor(self, *args: Any, **kwargs: Any) -> _FailingCursor:
        return _FailingCursor(self._txn.cursor(*args, **kwargs), self._step)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._txn, name)


def inject_raw(monkeypatch: pytest.MonkeyPatch, at: int, error: Callable[[], Exception]) -> list[int]:
    """Make the `at`-th raw LMDB write of any transaction (records, images, index blocks, counts) fail."""
    count = [0]
    original = ArchiveTxn.__init__

    def step() -> None:
        count[0] += 1
        if count[0] == at:
            raise error()

    def wrapped(self: ArchiveTxn, txn: Any, *args: Any, **kwargs: Any) -> None:
        original(self, _FailingTxn(txn, step), *args, **kwargs)

    monkeypatch.setattr(ArchiveTxn, "__init__", wrapped)
    return count


def test_enospc_at_every_raw_write_of_remember_changes_nothing(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every put and delete of the entry's transaction, the search index's blocks and counts included."""
    text = "parse_config failed at 0xdeadbeef\n" + "\n".join(f"retry {i} of HTTPServer" for i in range(70))
    at = 1
    while True:
        before = snapshot(memory.archive)
        with monkeypatch.context() as patch:
            count = inject_raw(patch, at, lambda: lmdb.DiskError("mdb_put: No space left on device"))
            try:
                memory.remember(text, session="s")
            except ArchiveFull as exc:
                assert "nothing was written" in str(exc)
                assert snapshot(memory.archive) == before, f"raw write {at} left a trace"
                at += 1
                continue
        break
    assert at > 40  # the index writes were among the steps failed: far more than the record writes
    assert count[0] >= at - 1
    assert memory.archive.check() == []
    assert memory.search("HTTPServer").hits and memory.search("0xdeadbeef").hits


def test_map_full_with_no_room_to_grow_changes_nothing(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    memory.archive.max_map_size = memory.archive.env.info()["map_size"]  # growth is impossible
    for at in range(1, 6):
        before = snapshot(memory.archive)
        with monkeypatch.context() as patch:
            inject(patch, at, lmdb.MapFullError)
            with pytest.raises(ArchiveFull, match="maximum map size"):
                memory.remember("does not fit\n" + "q" * 9000, session="s")
        assert snapshot(memory.archive) == before


def test_map_full_once_then_growth_writes_exactly_once(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    size_before = memory.archive.env.info()["map_size"]
    with monkeypatch.context() as patch:
        inject(patch, 3, lmdb.MapFullError)
        result = memory.remember("after growth", session="s")
    assert memory.archive.env.info()["map_size"] == 2 * size_before
    lines = memory.read_lines(result.spans[0].page_id).lines
    assert [line.text for line in lines].count("after growth") == 1
    assert memory.archive.check() == []


def test_enospc_at_each_step_of_demotion_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    by_age = (Tier("hot", 1.0), Tier("warm", 0.6, "webp", 80, after_days=1))
    memory = Memory(replace(load_config(archive=tmp_path / "d", environ={}), tiers=by_age), reader=TemplateReader())
    memory.remember("x\n" * 70, session="s")  # seals p1; nothing is old enough to fade yet
    later = datetime.now(UTC) + timedelta(days=2)
    at = 1
    while True:
        before = snapshot(memory.archive)
        with monkeypatch.context() as patch:
            count = inject(patch, at, lambda: lmdb.DiskError("mdb_put: No space left on device"))
            try:
                steps = memory.fade("s", now=later)
            except ArchiveFull:
                assert snapshot(memory.archive) == before, f"step {at} left a trace"
                assert memory.page_info("p1").tier == "hot"
                at += 1
                continue
        assert count[0] < at and steps == 1
        break
    assert at > 2  # demotion writes the image and the record: both steps were failed once
    assert memory.page_info("p1").tier == "warm"
    assert memory.archive.check() == []
    memory.close()


def test_a_failed_append_leaves_no_ghost_rows_on_the_open_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hot = replace(load_config(archive=tmp_path / "g", environ={}), tiers=(Tier("hot", 1.0),))
    memory = Memory(hot, reader=TemplateReader())
    memory.remember("first entry", session="s")
    with monkeypatch.context() as patch:
        inject(patch, 1, lambda: lmdb.DiskError("mdb_put: No space left on device"))
        with pytest.raises(ArchiveFull):
            memory.remember("a long failed entry\n" * 5, session="s")
    memory.remember("short", session="s")
    assert [line.text for line in memory.read_lines("p1").lines] == ["first entry", "short"]
    # below the rows in use the page is blank: nothing of the failed entry was kept
    record = memory.archive.read(lambda tx: tx.page("p1"))
    assert record is not None
    geometry = record.geometry
    pixels = np.asarray(decode_image(memory.view_page("p1").data))
    _, top, _, _ = geometry.row_box(len(record.rows))
    left, _, right, bottom = geometry.row_box(geometry.rows - 1)
    assert (pixels[round(top) : round(bottom), round(left) : round(right)] == 255).all()
    memory.close()


def test_a_failed_write_never_replaces_another_writers_acknowledged_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#12.1: A's remember fails on a full disk, B writes, A writes again: B's lines stay B's."""
    hot = replace(load_config(archive=tmp_path / "x", environ={}), tiers=(Tier("hot", 1.0),))
    at = 1
    while True:  # the failure at each write step of A's entry in turn, until the entry has none left
        archive = Archive(tmp_path / f"shared{at}")
        a = Memory(hot, archive=archive, reader=TemplateReader())  # two writers, each with its own caches
        b = Memory(hot, archive=archive, reader=TemplateReader())
        a.remember("A opens the page", session="S")
        with monkeypatch.context() as patch:
            inject(patch, at, lambda: lmdb.DiskError("mdb_put: No space left on device"))
            try:
                a.remember("\n".join(f"A FAILED {i}" for i in range(30)), session="S")
            except ArchiveFull as exc:
                assert "nothing was written" in str(exc)
            else:
                archive.close()
                break
        b_lines = [f"B acknowledged {i}" for i in range(30)]
        acknowledged = b.remember("\n".join(b_lines), session="S")
        a.remember("A again", session="S")
        read: list[str] = []
        for span in acknowledged.spans:
            read += [line.text for line in a.read_lines(span.page_id, span.start, span.end).lines]
        assert read == b_lines, f"failure at step {at}: B's acknowledged lines changed"
        pages = reversed(a.list_pages(session="S").pages)
        everything = [line.text for page in pages for line in a.read_lines(page.id).lines]
        assert everything == ["A opens the page", *b_lines, "A again"], f"failure at step {at}"
        assert archive.check() == []
        archive.close()
        at += 1
    assert at > 2  # the entry's write steps were each failed once
