"""The facade over a real archive: remember, list, view, read, fade; errors; no text kept."""

from __future__ import annotations

import io
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from optical_memory.config import Config, load_config
from optical_memory.errors import InvalidArgument, PageNotFound, SessionNotFound, TextTooLarge
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.results import RememberResult
from optical_memory.tiers import Tier
from tests.file_text import readable_file

TIERS = (
    Tier("hot", 1.0),
    Tier("warm", 0.75, "webp", 90, after_pages=2, after_days=1),
    Tier("cold", 0.4, "webp", 70, after_pages=4, after_days=3),
)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return replace(load_config(archive=tmp_path / "archive", environ={}), tiers=TIERS)


@pytest.fixture
def memory(config: Config) -> Memory:
    mem = Memory(config, reader=TemplateReader())
    yield mem
    mem.close()


@pytest.fixture
def hot_memory(config: Config) -> Memory:
    """Pages never fade: the template reader is exact only at the hot tier."""
    mem = Memory(replace(config, tiers=TIERS[:1]), reader=TemplateReader())
    yield mem
    mem.close()


def read_back(memory: Memory, result: RememberResult) -> str:
    parts: list[str] = []
    for index, span in enumerate(result.spans):
        if index:
            parts.append("" if result.spans[index - 1].continues else "\n")
        lines = memory.read_lines(span.page_id, span.start, span.end).lines
        parts.append("\n".join(line.text for line in lines))
    return "".join(parts)


def page_text(n: int) -> str:
    return "\n".join(f"page {n} line {i}: {'#' * (i % 30)}" for i in range(70))


def test_remember_then_read_back_exactly(memory: Memory) -> None:
    text = "def f(x):\n\treturn x  # tab, trailing space \n| a | b |\n\r\nnaïve café 中文 😀 ¤\n\n"
    result = memory.remember(text, session="s", role="user", title="mixed")
    assert result.characters == len(text)
    assert result.spans[0].page_id == "p1" and result.spans[0].start == 1
    assert read_back(memory, result) == text


def test_entries_share_the_open_page_and_continue_line_numbers(memory: Memory) -> None:
    first = memory.remember("one\ntwo")
    second = memory.remember("three")
    assert first.spans[0].page_id == second.spans[0].page_id
    assert (second.spans[0].start, second.spans[0].end) == (3, 3)
    assert [line.text for line in memory.read_lines("p1").lines] == ["one", "two", "three"]


def test_sessions_fill_their_own_pages(memory: Memory) -> None:
    a = memory.remember("alpha", session="a")
    b = memory.remember("beta", session="b")
    assert a.spans[0].page_id != b.spans[0].page_id
    assert [p.id for p in memory.list_pages(session="a").pages] == [a.spans[0].page_id]


def test_a_line_longer_than_a_page_round_trips(hot_memory: Memory) -> None:
    text = "start\n" + ("0123456789abcdef " * 900) + "\nend"
    result = hot_memory.remember(text)
    assert len(result.spans) >= 3 and result.spans[0].continues
    assert read_back(hot_memory, result) == text


def test_list_pages_newest_first_with_cursor(memory: Memory) -> None:
    for n in range(5):
        memory.remember(page_text(n))
    everything = [p.id for p in memory.list_pages(limit=200).pages]
    assert everything == sorted(everything, key=lambda pid: -int(pid[1:]))
    first = memory.list_pages(limit=3)
    second = memory.list_pages(limit=3, cursor=first.next_cursor)
    assert [p.id for p in first.pages + second.pages] == everything[:6]
    info = first.pages[0]
    assert info.image_tokens == -(-info.image_width * info.image_height // 750)


def test_view_page_returns_the_stored_image(memory: Memory) -> None:
    memory.remember("hello")
    view = memory.view_page("p1")
    image = Image.open(io.BytesIO(view.data))
    assert view.mime_type == "image/png" and image.size == (view.info.image_width, view.info.image_height)
    assert max(image.size) <= 1568 and len(view.data) < 1 << 20
    assert "p1" in view.caption and "hot" in view.caption


def test_pages_fade_tier_by_tier_and_stay_readable(memory: Memory) -> None:
    for n in range(8):
        memory.remember(page_text(n))
    pages = {p.id: p for p in memory.list_pages(limit=200).pages}
    newest_first = sorted(pages.values(), key=lambda p: -int(p.id[1:]))
    tiers = [p.tier for p in newest_first]
    assert tiers[0] == "hot" and tiers[-1] == "cold" and "warm" in tiers
    cold = newest_first[-1]
    assert cold.image_width == round(1056 * 0.4) and cold.image_format == "webp"
    assert cold.image_bytes < newest_first[1].image_bytes
    # the faded image is what view_page serves
    view = memory.view_page(cold.id)
    assert Image.open(io.BytesIO(view.data)).size == (cold.image_width, cold.image_height)


def test_fade_by_age(memory: Memory) -> None:
    memory.remember(page_text(0))  # seals p1, opens p2
    assert memory.page_info("p1").tier == "hot"
    assert memory.fade(now=datetime.now(UTC) + timedelta(days=1.5)) == 1
    assert memory.page_info("p1").tier == "warm"
    assert memory.fade(now=datetime.now(UTC) + timedelta(days=4)) == 1
    assert memory.page_info("p1").tier == "cold"
    assert memory.page_info("p2").tier == "hot"  # the open page never fades


def test_persists_across_reopen(config: Config) -> None:
    mem = Memory(config, reader=TemplateReader())
    result = mem.remember("kept\nacross reopen")
    mem.close()
    again = Memory(config, reader=TemplateReader())
    assert read_back(again, result) == "kept\nacross reopen"
    assert again.remember("more").spans[0].page_id == "p1"  # the open page stays open
    again.close()


def test_sealed_pages_keep_no_source_text(memory: Memory, config: Config) -> None:
    marker = "ZebraQuokkaMarker"
    memory.remember("\n".join(f"{marker} {i}" for i in range(80)))
    memory.remember(page_text(1))
    raw = readable_file(config.archive.path / "data.mdb")
    assert marker.encode() not in raw


def test_archive_folder_and_files_are_private(memory: Memory, config: Config) -> None:
    assert stat.S_IMODE(config.archive.path.stat().st_mode) == 0o700
    assert stat.S_IMODE((config.archive.path / "data.mdb").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("call", "error", "says"),
    [
        (lambda m: m.remember(""), InvalidArgument, "empty"),
        (lambda m: m.remember("x", session=""), InvalidArgument, "session"),
        (lambda m: m.remember("x", session="a\x00b"), InvalidArgument, "control"),
        (lambda m: m.read_lines("p99"), PageNotFound, "no page 'p99'"),
        (lambda m: m.read_lines("../etc/passwd"), PageNotFound, "page ids look like"),
        (lambda m: m.read_lines("p1", 0), InvalidArgument, "lines 1..1"),
        (lambda m: m.read_lines("p1", 3, 2), InvalidArgument, "lines 1..1"),
        (lambda m: m.read_lines("p1", 5), InvalidArgument, "lines 1..1"),
        (lambda m: m.list_pages(limit=0), InvalidArgument, "between 1 and"),
        (lambda m: m.list_pages(cursor="nope"), InvalidArgument, "cursor"),
        (lambda m: m.list_pages(session="ghost"), SessionNotFound, "sessions: 'default'"),
        (lambda m: m.view_page("p2"), PageNotFound, "p1..p1"),
    ],
)
def test_bad_input_gets_a_clear_error(memory: Memory, call, error, says) -> None:
    memory.remember("only line")
    with pytest.raises(error, match=None) as info:
        call(memory)
    assert says in str(info.value)
    assert [line.text for line in memory.read_lines("p1").lines] == ["only line"]  # nothing lost


def test_text_over_the_limit_is_refused(config: Config) -> None:
    small = replace(config, limits=replace(config.limits, max_text_chars=100))
    mem = Memory(small, reader=TemplateReader())
    with pytest.raises(TextTooLarge, match="at most 100"):
        mem.remember("x" * 101)
    mem.close()


def test_png_encoding_is_lossless_and_standard() -> None:
    import numpy as np

    from optical_memory.tiers import decode_image, encode_image

    pixels = np.random.default_rng(3).integers(0, 256, size=(37, 53), dtype=np.uint8)
    data = encode_image(pixels, Tier("hot", 1.0))
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "L"
    assert (np.asarray(decode_image(data)) == pixels).all()


def test_background_fader_fades_off_the_request_path(memory: Memory) -> None:
    from optical_memory.fading import BackgroundFader

    fader = BackgroundFader(memory.fade)
    sealed = [page for n in range(5) for page in memory.remember(page_text(n), fade=False).pages_sealed]
    assert sealed and all(p.tier == "hot" for p in memory.list_pages(limit=200).pages)  # nothing faded inline
    assert fader.request("default")
    assert fader.wait_idle(timeout=60)
    tiers = [p.tier for p in memory.list_pages(limit=200).pages]
    assert "warm" in tiers and "cold" in tiers
    fader.close()
    assert fader.request("default") is False and not fader.running  # after close: ignored, no thread left
