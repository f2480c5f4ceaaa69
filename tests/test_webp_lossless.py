"""Stored lossless WebP pages decode through libwebp directly (a verified read's decode, 5x faster) to
exactly Pillow's pixels; anything else falls back to Pillow with its errors unchanged."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from optical_memory.config import load_config
from optical_memory.pages import PageFormat
from optical_memory.render import Renderer
from optical_memory.tiers import decode_image, demote, encode_image
from optical_memory.training.corpus import REALISTIC_MIX
from optical_memory.training.evaluate import HELDOUT_SEED
from optical_memory.training.generate import random_page
from optical_memory.webp_lossless import decode_lossless_webp, library


def pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def faded_pages() -> list[tuple[str, bytes]]:
    """A real page (hot PNG) and its image at every tier below, as fading stores them."""
    tiers = load_config().tiers
    renderer = Renderer(PageFormat())
    page = random_page(random.Random(HELDOUT_SEED + 5), renderer, "heldout", REALISTIC_MIX)
    data = encode_image(page.hot, tiers[0])
    geometry = renderer.geometry
    images = []
    for tier in tiers[1:]:
        data, geometry = demote(data, geometry, tier)
        images.append((tier.name, data))
    return images


def test_a_page_handed_over_as_a_memoryview_or_bytearray_decodes_the_same() -> None:
    _, data = faded_pages()[-1]
    for view in (memoryview(data), bytearray(data)):
        np.testing.assert_array_equal(np.asarray(decode_image(view)), pillow(data))  # type: ignore[arg-type]


def test_libwebp_is_found_where_pillow_has_it() -> None:
    assert library() is not None, "no libwebp beside Pillow nor on the system: pages below hot decode 5x slower"


def test_every_faded_tier_decodes_to_pillows_pixels_through_libwebp() -> None:
    for name, data in faded_pages():
        fast = decode_lossless_webp(data)
        assert fast is not None, name
        assert fast.mode == "L"
        np.testing.assert_array_equal(np.asarray(fast), pillow(data), err_msg=name)
        np.testing.assert_array_equal(np.asarray(decode_image(data)), pillow(data), err_msg=name)


def grey(width: int = 61, height: int = 23) -> Image.Image:
    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (height, width), dtype=np.uint8))


def translucent() -> Image.Image:
    image = grey().convert("RGBA")
    image.putalpha(128)
    return image


def webp(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", **options)
    return out.getvalue()


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("lossy", webp(grey(), quality=80)),
        ("lossless with alpha", webp(translucent(), lossless=True)),
        ("png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40),
        ("too short", b"RIFF"),
    ],
)
def test_what_is_not_a_simple_lossless_webp_is_left_to_pillow(what: str, data: bytes) -> None:
    assert decode_lossless_webp(data) is None, what


def test_lossy_and_alpha_webp_still_decode_as_pillow_decodes_them() -> None:
    for data in (webp(grey(), quality=80), webp(translucent(), lossless=True)):
        np.testing.assert_array_equal(np.asarray(decode_image(data)), pillow(data))


def test_a_damaged_lossless_webp_raises_pillows_error_not_garbage() -> None:
    data = webp(grey(), lossless=True)
    assert decode_lossless_webp(data) is not None
    damaged = data[:20] + bytes(len(data) - 20)  # header intact, bitstream zeroed
    assert decode_lossless_webp(damaged) is None
    with pytest.raises(OSError):
        pillow(damaged)
    with pytest.raises(OSError):
        decode_image(damaged).load()


def test_a_page_over_pillows_pixel_limit_is_left_to_pillows_bomb_check(monkeypatch: pytest.MonkeyPatch) -> None:
    data = webp(grey(), lossless=True)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert decode_lossless_webp(data) is None
    with pytest.raises(Image.DecompressionBombError):
        decode_image(data)
