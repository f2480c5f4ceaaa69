"""Tier encodings (issue 13): fewer grey levels, exact round trips, old images still decode, bytes shrink by tier."""

from __future__ import annotations

import io
import random
import struct
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from optical_memory.config import load_config
from optical_memory.errors import InvalidArgument
from optical_memory.pages import PageFormat
from optical_memory.render import Renderer
from optical_memory.tiers import Tier, decode_image, demote, encode_image, quantize
from optical_memory.training.corpus import REALISTIC_MIX
from optical_memory.training.evaluate import HELDOUT_SEED
from optical_memory.training.generate import LOSSLESS_TIERS, configured_tiers, random_page


def noise(height: int = 37, width: int = 53, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def nearest_levels(pixels: np.ndarray, levels: int) -> np.ndarray:
    """The reference: each pixel moved to the nearest of `levels` evenly spread greys, in floats."""
    step = 255 / (levels - 1)
    return np.round(np.round(pixels / step) * step).astype(np.uint8)


@pytest.mark.parametrize(("codec", "levels"), [("png", 2), ("png", 4), ("png", 16), ("webp", 3), ("webp", 12)])
def test_fewer_levels_round_trip_to_the_nearest_level(codec: str, levels: int) -> None:
    pixels = noise(width=53 if levels != 2 else 61)  # widths that do not fill the last byte of a row
    tier = Tier("t", 1.0, codec, lossless=codec == "webp", levels=levels)  # type: ignore[arg-type]
    decoded = np.asarray(decode_image(encode_image(pixels, tier)))
    assert decoded.shape == pixels.shape
    assert len(np.unique(decoded)) == levels
    np.testing.assert_array_equal(decoded, nearest_levels(pixels, levels))


@pytest.mark.parametrize("levels", [2, 4, 16])
def test_png_of_few_levels_is_a_low_bit_depth_greyscale_png(levels: int) -> None:
    data = encode_image(noise(), Tier("t", 1.0, "png", levels=levels))
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (width, height, colour) == (53, 37, 0)
    assert 1 << depth == levels
    assert Image.open(io.BytesIO(data)).size == (53, 37)  # any decoder reads it, not only ours


def test_quantize_is_idempotent_so_repeated_fading_adds_no_new_error() -> None:
    pixels = noise()
    for levels in (4, 8, 12, 16, 24):
        once = nearest_levels(pixels, levels)
        again = (quantize(once, levels).astype(np.uint16) * 255 + (levels - 1) // 2) // (levels - 1)
        np.testing.assert_array_equal(again, once)


def _old_png(pixels: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG as the writer made them before levels existed (filter None, one IDAT)."""
    height, width = pixels.shape
    raw = np.concatenate([np.zeros((height, 1), np.uint8), pixels], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_old_lossless_images_still_decode_exactly() -> None:
    pixels = noise(seed=1)
    webp = io.BytesIO()
    Image.fromarray(pixels).save(webp, "WEBP", lossless=True, quality=100, method=2)
    for data in (_old_png(pixels), webp.getvalue()):
        decoded = decode_image(data)
        assert decoded.mode == "L"
        np.testing.assert_array_equal(np.asarray(decoded), pixels)
    # the default tier settings still write 8-bit images exactly, as before
    np.testing.assert_array_equal(np.asarray(decode_image(encode_image(pixels, Tier("hot", 1.0)))), pixels)


def test_an_old_image_demotes_into_the_new_encoding() -> None:
    """A page stored 8-bit by an older archive fades into the configured encoding of the next tier."""
    renderer = Renderer(PageFormat())
    page = random_page(random.Random(HELDOUT_SEED + 11), renderer, "heldout", REALISTIC_MIX)
    old = encode_image(page.hot, LOSSLESS_TIERS[0])
    warm = configured_tiers()[1]
    data, geometry = demote(old, renderer.geometry, warm)
    image = np.asarray(decode_image(data))
    assert image.shape == (geometry.height, geometry.width)
    assert len(np.unique(image)) <= warm.levels


@cache
def _faded_bytes() -> list[list[int]]:
    """Bytes of each configured tier's image, for a few held-out pages, each tier demoted from the one above."""
    tiers = configured_tiers()
    renderer = Renderer(PageFormat())
    out = []
    for i in range(3):
        page = random_page(random.Random(HELDOUT_SEED + 20 + i), renderer, "heldout", REALISTIC_MIX)
        data, geometry = encode_image(page.hot, tiers[0]), renderer.geometry
        sizes = [len(data)]
        for tier in tiers[1:]:
            data, geometry = demote(data, geometry, tier)
            sizes.append(len(data))
        out.append(sizes)
    return out


@pytest.mark.slow
def test_no_configured_tier_stores_more_than_the_tier_above() -> None:
    for sizes in _faded_bytes():
        assert sizes == sorted(sizes, reverse=True), sizes


@pytest.mark.slow
def test_configured_tiers_are_smaller_than_the_lossless_chain() -> None:
    """Each configured tier stores fewer bytes than the 8-bit lossless chain did at the same tier."""
    renderer = Renderer(PageFormat())
    page = random_page(random.Random(HELDOUT_SEED + 20), renderer, "heldout", REALISTIC_MIX)
    data, geometry = encode_image(page.hot, LOSSLESS_TIERS[0]), renderer.geometry
    old = [len(data)]
    for tier in LOSSLESS_TIERS[1:]:
        data, geometry = demote(data, geometry, tier)
        old.append(len(data))
    new = _faded_bytes()[0]
    assert len(new) == len(old)
    assert all(n < o for n, o in zip(new, old, strict=True)), (new, old)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": 1}, "levels must be an integer in 2..256"),
        ({"levels": 300}, "levels must be an integer in 2..256"),
        ({"levels": True}, "levels must be an integer in 2..256"),
        ({"levels": 8}, "a png stores 2, 4, 16, 256 grey levels"),
        ({"codec": "webp", "levels": 16}, "levels < 256 needs an exact codec"),
        ({"codec": "jpeg", "levels": 16}, "levels < 256 needs an exact codec"),
        ({"lossless": True}, "lossless applies to codec 'webp' only"),
    ],
)
def test_bad_tier_settings_say_what_is_valid(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tier("t", 0.5, **kwargs)  # type: ignore[arg-type]


def test_config_rejects_bad_levels_with_a_clear_error(tmp_path: Path) -> None:
    user = tmp_path / "config.toml"
    user.write_text('[[tiers]]\nname = "hot"\nscale = 1.0\ncodec = "png"\nlevels = 12\n', encoding="utf-8")
    with pytest.raises(InvalidArgument, match="a png stores 2, 4, 16, 256 grey levels, got 12"):
        load_config(user, environ={})


def test_training_takes_its_tiers_from_the_config() -> None:
    assert configured_tiers() == load_config(environ={}).tiers


@pytest.mark.parametrize(
    "chain",
    [
        configured_tiers(),
        (
            Tier("hot", 1.0),
            Tier("a", 0.8, "png", levels=16, after_pages=1),
            Tier("b", 0.6, "webp", quality=70, after_pages=2),
            Tier("c", 0.4, "webp", lossless=True, levels=20, after_pages=3),
        ),
    ],
    ids=["configured", "png-lossy-mix"],
)
def test_a_jump_of_several_tiers_stores_what_steps_one_at_a_time_store(chain: tuple[Tier, ...]) -> None:
    """Fading a page due several tiers at once encodes only the last; the bytes must be the same."""
    from optical_memory.tiers import demote_through

    renderer = Renderer(PageFormat())
    page = random_page(random.Random(HELDOUT_SEED + 40), renderer, "heldout", REALISTIC_MIX)
    hot = encode_image(page.hot, chain[0])
    for last in range(1, len(chain)):
        data, geometry = hot, renderer.geometry
        for tier in chain[1 : last + 1]:
            data, geometry = demote(data, geometry, tier)
        assert demote_through(hot, renderer.geometry, chain[1 : last + 1]) == (data, geometry), chain[last].name
