"""The tier policy, and re-encoding a stored page image one tier down ("soft memory fading").

Tiers are ordered from sharpest (index 0, where every page starts) to coldest. Each names the scale
of the hot rendering it keeps and the codec its images are stored in. A sealed page moves down
when enough newer pages exist in its session or when it is old enough, whichever comes first.

Demotion never re-renders from text (sealed pages keep none): it decodes the stored image, resizes
it by the ratio of the two scales and encodes it with the next tier's codec and grey levels. A page that skips
tiers still passes through each one, so its image at tier k is always the same function of its
hot image: the fading is real, cumulative, and reproducible (the training data uses this code).

Fewer grey levels (`Tier.levels`) are most of the saving (issue 13): a page is dark glyphs on white,
and with an exact codec (PNG at 1, 2 or 4 bits a pixel, or lossless WebP, which stores few levels
as a palette of several pixels a byte) the reader gets exactly what was stored, so it can be trained
through it. Decoding reads any PNG or WebP, so images stored with other settings (8-bit, from
archives older than the levels) keep reading.
"""

from __future__ import annotations

import functools
import io
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from PIL import Image

from optical_memory.render import Geometry
from optical_memory.webp_lossless import decode_lossless_webp

__all__ = [
    "MIME_TYPES",
    "PNG_BIT_DEPTHS",
    "Tier",
    "decode_image",
    "demote",
    "encode_image",
    "png_from_scanlines",
    "png_scanlines",
    "quantize",
    "tier_due",
]

Codec = Literal["png", "webp", "jpeg"]
MIME_TYPES: dict[str, str] = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
PNG_BIT_DEPTHS = (1, 2, 4, 8)  # greyscale PNG: 2, 4, 16 or 256 levels; fewer levels pack more pixels a byte
PNG_LEVELS = tuple(1 << depth for depth in PNG_BIT_DEPTHS)


@dataclass(frozen=True)
class Tier:
    name: str
    scale: float  # of the hot rendering, 0 < scale <= 1
    codec: Codec = "png"
    quality: int = 90  # lossy codecs only
    lossless: bool = False  # webp only
    levels: int = 256  # grey levels kept (2..256), evenly spread: fewer levels, fewer bytes (exact codecs only)
    after_pages: int | None = None  # move here once this many newer pages exist in the session
    after_days: float | None = None  # ... or once the page was sealed this many days ago
    # Whole pixels (width, height) of a character cell at this tier, instead of `scale` alone: every
    # glyph then lands on the same sub-pixel phase, so equal characters store equal pixels, which the
    # codec finds again and the reader sees one way (Geometry.with_cells). `scale` orders the tiers.
    cell: tuple[int, int] | None = None
    # With `cell`: the grey levels a page stored by scale alone (an older archive's) keeps when it moves
    # here; it moves by `scale`, as it would have before (`applied`). Default: `levels`.
    scale_levels: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise ValueError(f"tier {self.name!r}: scale must be in (0, 1], got {self.scale}")
        if self.cell is not None:
            cell = tuple(self.cell)
            if len(cell) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in cell):
                raise ValueError(
                    f"tier {self.name!r}: cell must be two whole numbers of pixels [width, height], "
                    f"each 1 or more, got {self.cell!r}"
                )
            object.__setattr__(self, "cell", cell)  # a TOML array arrives as a list
        if self.scale_levels is not None:
            if self.cell is None:
                raise ValueError(f"tier {self.name!r}: scale_levels applies to a tier with cell only")
            if isinstance(self.scale_levels, bool) or not 2 <= self.scale_levels <= 256:
                raise ValueError(
                    f"tier {self.name!r}: scale_levels must be an integer in 2..256, got {self.scale_levels!r}"
                )
        if self.codec not in MIME_TYPES:
            raise ValueError(f"tier {self.name!r}: codec must be one of {sorted(MIME_TYPES)}, got {self.codec!r}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"tier {self.name!r}: quality must be 1..100, got {self.quality}")
        if self.lossless and self.codec != "webp":
            raise ValueError(f"tier {self.name!r}: lossless applies to codec 'webp' only, got codec {self.codec!r}")
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or not 2 <= self.levels <= 256:
            raise ValueError(f"tier {self.name!r}: levels must be an integer in 2..256, got {self.levels!r}")
        if self.levels != 256 and not self.exact:
            raise ValueError(
                f"tier {self.name!r}: levels < 256 needs an exact codec (png, or webp with lossless = true); "
                f"a lossy {self.codec} encode would bring other grey levels back"
            )
        if self.codec == "png" and self.levels not in PNG_LEVELS:
            raise ValueError(
                f"tier {self.name!r}: a png stores {', '.join(map(str, PNG_LEVELS))} grey levels, got {self.levels}; "
                "other counts need codec 'webp' with lossless = true"
            )

    def by_scale(self, **changes: object) -> Tier:
        """This tier sized by scale alone (no `cell`, so no `scale_levels`), with `changes` made."""
        return replace(self, cell=None, scale_levels=None, **changes)  # type: ignore[arg-type]

    @property
    def exact(self) -> bool:
        """Whether the codec stores the pixels it is given (after any grey-level reduction)."""
        return self.codec == "png" or (self.codec == "webp" and self.lossless)

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.codec]


def quantize(pixels: np.ndarray, levels: int) -> np.ndarray:
    """Round grey values to the nearest of `levels` evenly spaced levels: level indices 0 .. levels - 1 (uint8)."""
    if levels == 256:
        return pixels
    return _quantize_table(levels)[pixels]  # a 256-entry table: one gather, not three array passes


@functools.cache
def _quantize_table(levels: int) -> np.ndarray:
    grey = np.arange(256, dtype=np.uint16)
    return ((grey * (levels - 1) + 127) // 255).astype(np.uint8)


def _grey(indices: np.ndarray, levels: int) -> np.ndarray:
    """Level indices -> grey values 0 .. 255, rounded to the nearest (what a PNG decoder gives for 2**k levels)."""
    if levels == 256:
        return indices
    return ((indices.astype(np.uint16) * 255 + (levels - 1) // 2) // (levels - 1)).astype(np.uint8)


def _pack(levels: np.ndarray, bits: int) -> np.ndarray:
    """Level indices (height, width) -> PNG scanline bytes at `bits` per pixel, leftmost pixel highest."""
    if bits == 8:
        return levels
    per_byte = 8 // bits
    height, width = levels.shape
    padded = np.zeros((height, -(-width // per_byte) * per_byte), dtype=np.uint8)
    padded[:, :width] = levels
    packed = np.zeros((height, padded.shape[1] // per_byte), dtype=np.uint8)
    for k in range(per_byte):  # the k-th pixel of every byte, shifted into place: a few strided passes
        packed |= padded[:, k::per_byte] << np.uint8(bits * (per_byte - 1 - k))
    return packed


def _png(pixels: np.ndarray, level: int = 6, levels: int = 256) -> bytes:
    """Greyscale PNG of `levels` grey levels, every row with filter None, one zlib stream at level 6.

    Pages are mostly white with sparse glyphs: PNG's adaptive filters buy nothing there, and this
    writes both faster (about 7 ms against Pillow's 12 for a hot page) and smaller (59 KB vs 63 KB).
    Fewer grey levels (rounded to the nearest) take the smallest bit depth that holds them, several
    pixels a byte.
    """
    return png_from_scanlines(png_scanlines(pixels, levels), pixels.shape[1], levels, level)


def png_scanlines(pixels: np.ndarray, levels: int) -> np.ndarray:
    """What a PNG of `levels` grey levels stores of grey `pixels`: each row a filter byte (0: None)
    and the row's level indices packed at the bit depth that holds them (uint8, height x (1 + row bytes))."""
    bits = PNG_BIT_DEPTHS[PNG_LEVELS.index(levels)]
    height, width = pixels.shape
    raw = np.empty((height, -(-width * bits // 8) + 1), dtype=np.uint8)
    raw[:, 0] = 0  # filter type None
    if bits < 8 and width % 2 == 0:  # two pixels a lookup: a third of the time of quantize and _pack
        raw[:, 1:] = _pack(np.take(_pair_table(levels, bits), pixels.view("<u2")), 2 * bits)
    else:
        raw[:, 1:] = _pack(quantize(pixels, levels), bits)
    return raw


def png_from_scanlines(raw: np.ndarray, width: int, levels: int, level: int) -> bytes:
    """The greyscale PNG of `png_scanlines` rows (C-contiguous) of an image `width` pixels wide: one zlib
    stream at `level`. The writer keeps open pages in this form (`scanlines`), so it only compresses."""
    bits = PNG_BIT_DEPTHS[PNG_LEVELS.index(levels)]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))

    header = struct.pack(">IIBBBBB", width, raw.shape[0], bits, 0, 0, 0, 0)  # greyscale, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.data, level))  # the array's own buffer: no copy
        + chunk(b"IEND", b"")
    )


@functools.cache
def _pair_table(levels: int, bits: int) -> np.ndarray:
    """Two neighbouring grey pixels (read as one little-endian uint16) -> their two level indices,
    the left one's `bits` above the right one's: what `_pack` makes of them, at `2 * bits` a value."""
    pair = np.arange(1 << 16, dtype=np.uint32)
    table = _quantize_table(levels).astype(np.uint32)
    return ((table[pair & 0xFF] << bits) | table[pair >> 8]).astype(np.uint8)


def encode_image(pixels: np.ndarray | Image.Image, tier: Tier, fast: bool = False) -> bytes:
    """Encode a grayscale page image with a tier's codec; `fast` trades size for speed (PNG: zlib level 1)."""
    if tier.codec == "png":
        array = np.asarray(pixels.convert("L")) if isinstance(pixels, Image.Image) else pixels
        return _png(np.ascontiguousarray(array, dtype=np.uint8), level=1 if fast else 6, levels=tier.levels)
    if tier.levels != 256:  # lossless WebP of few levels: a small palette, several pixels a byte
        array = np.asarray(pixels.convert("L")) if isinstance(pixels, Image.Image) else pixels
        pixels = _grey(quantize(np.ascontiguousarray(array, dtype=np.uint8), tier.levels), tier.levels)
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))
    out = io.BytesIO()
    if tier.codec == "webp":
        # method 2: within 3 % of method 4's size at half its time (demotion cost dominates fading)
        if tier.lossless:
            image.save(out, "WEBP", lossless=True, quality=100, method=2)
        else:
            image.save(out, "WEBP", quality=tier.quality, method=2)
    else:
        image.save(out, "JPEG", quality=tier.quality, optimize=True)
    return out.getvalue()


def decode_image(data: bytes) -> Image.Image:
    """Decode a stored page image into grayscale (lossless WebP straight through libwebp: `webp_lossless`)."""
    fast = decode_lossless_webp(data)
    if fast is not None:
        return fast
    image = Image.open(io.BytesIO(data))
    return image.convert("L") if image.mode != "L" else image


def applied(tier: Tier, geometry: Geometry) -> Tier:
    """`tier` as a page stored with `geometry` enters it. A tier of whole-pixel cells takes the hot image and
    pages of cells onto its cells; a page stored by scale alone (an older archive's, below hot) keeps
    fading by scale, at the tier's scale and scale_levels, as it would have before cells: its glyphs
    already sit at many phases, and a frost of cells made from such a cold reads about twice the errors."""
    if tier.cell is None or geometry.scale_y is not None or geometry.scale >= 1.0:
        return tier
    return tier.by_scale(levels=tier.scale_levels or tier.levels)


def geometry_at(geometry: Geometry, tier: Tier) -> Geometry:
    """Where a page stored with `geometry` lands at `tier` (already `applied` to it): its cells or its scale."""
    return geometry.with_cells(tier.cell) if tier.cell is not None else geometry.scaled(tier.scale)


def resample(image: Image.Image, source: Geometry, target: Geometry) -> Image.Image:
    """The stored image of `source` resampled (Lanczos) to `target`'s size. A target of whole-pixel cells
    takes exactly its part of the hot page from the source's corner, so its scale is exact (a source
    that ends a fraction of a pixel short is taken as white there: the page's margin)."""
    if target.scale_y is None:
        if (target.width, target.height) == image.size:
            return image
        return image.resize((target.width, target.height), Image.Resampling.LANCZOS)
    (fx, fy), (tx, ty) = source.factors, target.factors
    box = (0.0, 0.0, target.width / tx * fx, target.height / ty * fy)
    return pad_white(image, box).resize((target.width, target.height), Image.Resampling.LANCZOS, box=box)


def pad_white(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """`image`, widened with white to hold `box` (PIL refuses a box past the image) by the fraction of a pixel
    or two that whole-pixel cells leave; ValueError if the box asks for more (a geometry not of its image)."""
    width, height = max(image.width, math.ceil(box[2])), max(image.height, math.ceil(box[3]))
    if (width, height) == image.size:
        return image
    if width > image.width + 2 or height > image.height + 2:
        raise ValueError(
            f"the page geometry asks for {box[2]:.1f} x {box[3]:.1f} pixels of a {image.width} x {image.height} "
            "image: geometry and image do not match"
        )
    padded = Image.new("L", (width, height), 255)
    padded.paste(image if image.mode == "L" else image.convert("L"), (0, 0))
    return padded


def demote(data: bytes, geometry: Geometry, tier: Tier) -> tuple[bytes, Geometry]:
    """Re-encode a stored image at `tier` (scale and codec): the next step of fading."""
    tier = applied(tier, geometry)
    target = geometry_at(geometry, tier)
    image = resample(decode_image(data), geometry, target)
    return encode_image(image, tier), target


def demote_through(data: bytes, geometry: Geometry, tiers: Sequence[Tier]) -> tuple[bytes, Geometry]:
    """`demote` through each of `tiers` in turn, encoding only the last: the same bytes, a fraction of the work.

    A page due several tiers at once (an import of old conversations, a server that was off for
    weeks) still passes through every tier: each step starts from what the tier before would have
    stored. An exact tier stores its pixels with their grey levels reduced, so that is all an
    intermediate step needs; a lossy one is encoded and decoded.
    """
    image = decode_image(data)
    for index, tier in enumerate(tiers):
        tier = applied(tier, geometry)
        source, geometry = geometry, geometry_at(geometry, tier)
        image = resample(image, source, geometry)
        if index == len(tiers) - 1:
            return encode_image(image, tier), geometry
        if tier.exact and tier.codec == "webp":
            if tier.levels != 256:
                image = Image.fromarray(_grey(quantize(np.asarray(image), tier.levels), tier.levels))
        else:  # PNG of fewer levels stores samples of its bit depth; lossy codecs change pixels: round-trip
            image = decode_image(encode_image(image, tier, fast=True))
    raise ValueError("demote_through needs at least one tier")


def tier_due(tiers: Sequence[Tier], newer_pages: int, age_days: float) -> int:
    """The coldest tier index a sealed page is due for, given its newer pages and its age."""
    due = 0
    for index, tier in enumerate(tiers[1:], start=1):
        by_count = tier.after_pages is not None and newer_pages >= tier.after_pages
        by_age = tier.after_days is not None and age_days >= tier.after_days
        if by_count or by_age:
            due = index
    return due
