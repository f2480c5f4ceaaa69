"""Fading stores exactly what it stored before it ran on several cores, and the hot PNG is the same bytes.

The references here are the code as it was before the speed work (one page at a time; quantize then
pack): real pages of an import at the default tiers must come out byte for byte the same.
"""

from __future__ import annotations

import json
import struct
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from optical_memory.config import load_config
from optical_memory.ingest import import_conversations
from optical_memory.memory import Memory
from optical_memory.tiers import _pack, decode_image, demote_through, encode_image, quantize

WORDS = ["the", "deploy", "failed", "because", "migration", "locked", "orders", "table", "ninety", "ÿ", "漢字"]


def _chat(path: Path, messages: int) -> None:
    rng = np.random.default_rng(5)
    with path.open("w", encoding="utf-8") as file:
        for n in range(messages):
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(10, 70))))
            role = "user" if n % 2 else "assistant"
            file.write(json.dumps({"role": role, "content": text, "timestamp": 1_767_000_000 + n}) + "\n")


@pytest.fixture
def imported(tmp_path: Path) -> tuple[Memory, dict[str, bytes]]:
    """An import of chat messages at the default tiers, not faded yet: (memory, page id -> hot image)."""
    source = tmp_path / "chat.jsonl"
    _chat(source, 700)
    memory = Memory(load_config(None, tmp_path / "archive", environ={}))
    result = import_conversations(memory, source, fade=False)
    hot = memory.archive.read(lambda tx: {page_id: tx.image(page_id) for page_id in result.pages})
    assert len(hot) > 40 and all(image is not None for image in hot.values())
    return memory, {page_id: image for page_id, image in hot.items() if image is not None}


def _reference_png(pixels: np.ndarray, level: int, levels: int) -> bytes:
    """`tiers._png` as it was: quantize, then pack, then one zlib stream."""
    bits = {2: 1, 4: 2, 16: 4, 256: 8}[levels]
    packed = _pack(quantize(pixels, levels), bits)
    raw = np.empty((pixels.shape[0], packed.shape[1] + 1), dtype=np.uint8)
    raw[:, 0] = 0
    raw[:, 1:] = packed

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], bits, 0, 0, 0, 0)
    idat = zlib.compress(raw.tobytes(), level)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("levels", [2, 4, 16, 256])
@pytest.mark.parametrize("fast", [False, True])
def test_hot_png_is_the_same_bytes_as_before(
    imported: tuple[Memory, dict[str, bytes]], levels: int, fast: bool
) -> None:
    memory, hot = imported
    tier = memory.config.tiers[0].__class__(name="t", scale=1.0, codec="png", levels=levels)
    page = np.array(decode_image(next(iter(hot.values()))))
    rng = np.random.default_rng(levels)
    noise = rng.integers(0, 256, size=(37, 53), dtype=np.uint8)  # an odd width: the other path
    for pixels in (page, page[:, :-2], page[:, :-5], noise, noise[:, :-1]):
        pixels = np.ascontiguousarray(pixels)
        assert encode_image(pixels, tier, fast=fast) == _reference_png(pixels, 1 if fast else 6, levels)
    memory.close()


def test_fading_on_several_threads_stores_the_same_bytes(imported: tuple[Memory, dict[str, bytes]]) -> None:
    """Faded by rank (warm, cool), then by age to cold and to frost: each stage the bytes a serial demotion gives."""
    memory, hot = imported
    tiers = memory.config.tiers
    stored = {page_id: (0, image) for page_id, image in hot.items()}
    geometries = memory.archive.read(lambda tx: {page_id: tx.page(page_id).geometry for page_id in hot})  # type: ignore[union-attr]
    try:
        for days, reached in ((0, {0, 1, 2}), (70, {0, 3}), (200, {0, 4})):
            seen: list[tuple[int, int | None]] = []
            moment = datetime.now(UTC) + timedelta(days=days)
            steps = memory.fade(now=moment, progress=lambda *shown, seen=seen: seen.append(shown))
            after = memory.archive.read(lambda tx: {page_id: (tx.page(page_id), tx.image(page_id)) for page_id in hot})
            for page_id, (record, image) in after.items():
                assert record is not None and image is not None
                tier, before = stored[page_id]
                if record.tier != tier:
                    expected, geometry = demote_through(before, geometries[page_id], tiers[tier + 1 : record.tier + 1])
                    assert image == expected, f"{page_id} at {tiers[record.tier].name} differs from a serial demotion"
                    assert record.geometry == geometry and record.codec == tiers[record.tier].codec
                    geometries[page_id] = geometry
                else:
                    assert image == before
                stored[page_id] = (record.tier, image)
            assert {tier for tier, _ in stored.values()} == reached
            assert steps > 0 and seen[-1] == (steps, steps)
            assert [done for done, _ in seen] == sorted(done for done, _ in seen)
            assert memory.fade(now=moment) == 0  # nothing left due
    finally:
        memory.close()


def test_fading_stopped_leaves_the_rest_due_and_older_pages_colder(imported: tuple[Memory, dict[str, bytes]]) -> None:
    memory, _ = imported
    try:
        asked = 0

        def after_three_pages() -> bool:
            nonlocal asked
            asked += 1
            return asked > 3

        first = memory.fade(stop=after_three_pages)
        assert first > 0 and asked == 4  # asked before each page, once: three swapped, then stopped
        rest = memory.fade()
        assert rest > 0 and memory.fade() == 0
        tiers = [page.tier for page in reversed(memory.list_pages(limit=200).pages)]  # oldest first
        order = [t.name for t in memory.config.tiers]
        assert [order.index(name) for name in tiers] == sorted((order.index(name) for name in tiers), reverse=True)
    finally:
        memory.close()


def test_fading_while_the_interpreter_exits_re_encodes_on_its_own_thread(
    imported: tuple[Memory, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon fader still running at exit finds the encoder pool shut: it fades the same, without it."""
    from concurrent.futures import ThreadPoolExecutor

    memory, hot = imported
    closed = ThreadPoolExecutor(max_workers=1)
    closed.shutdown()
    monkeypatch.setattr("optical_memory.fading.encoder_pool", lambda: closed)
    try:
        assert memory.fade() > 0
        after = memory.archive.read(lambda tx: {page_id: tx.page(page_id) for page_id in hot})
        assert any(record is not None and record.tier > 0 for record in after.values())
    finally:
        memory.close()
