"""Open pages kept as the PNG rows they are stored as: drawn from packed tiles, encoded by zlib alone.

A hot page stored as a PNG of 2**bits grey levels is, before compression, one filter byte (0: None)
and the row's level indices packed `bits` a pixel for each pixel row (`tiers.png_scanlines`).
`tiers.encode_image` makes those rows from a grey page every time it encodes one (half a
millisecond a hot page, a sixth of a quick encode); the writer instead draws its pages in that
form directly, from glyph tiles quantized and packed once (`ScanlinePages`), so that encoding a
page is compressing its array. Quantizing is per pixel and every cell covers whole bytes, so the
rows are exactly what `png_scanlines` makes of the grey page drawn the usual way: the same stored
bytes (tests/test_ingest.py stores an import both ways).

That holds where a cell and the margin cover whole bytes: 8 bits a pixel, or 4 with an even cell
width and margin (the default: 10 and 8 pixels). Any other hot tier (1 or 2 bits, odd cells, WebP)
is drawn in grey pixels and encoded by `tiers.encode_image` (`GreyPages`), as before.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from optical_memory.pages import PlannedRow
from optical_memory.render import Ink, Renderer
from optical_memory.tiers import PNG_BIT_DEPTHS, PNG_LEVELS, Tier, encode_image, png_from_scanlines, png_scanlines

__all__ = ["GreyPages", "PageCanvases", "ScanlinePages", "page_canvases"]


class GreyPages:
    """Pages as grey pixels: drawn by the renderer, encoded by `tiers.encode_image` (any hot tier)."""

    def __init__(self, renderer: Renderer, tier: Tier) -> None:
        self.renderer, self.tier = renderer, tier

    def blank(self) -> np.ndarray:
        return self.renderer.blank()

    def draw_rows(self, canvas: np.ndarray, first_row: int, rows: list[PlannedRow]) -> None:
        self.renderer.draw_rows(canvas, first_row, rows)

    def from_image(self, image: Image.Image) -> np.ndarray:
        """The canvas of a stored page, decoded (an open page this process has not drawn lately)."""
        return np.array(image)

    def encode(self, canvas: np.ndarray, fast: bool) -> bytes:
        return encode_image(canvas, self.tier, fast)


class ScanlinePages:
    """Pages as the rows of their hot PNG (`png_scanlines`): drawn with packed tiles, encoded by zlib alone."""

    def __init__(self, renderer: Renderer, tier: Tier) -> None:
        self.renderer, self.levels = renderer, tier.levels
        self.bits = PNG_BIT_DEPTHS[PNG_LEVELS.index(tier.levels)]
        self.width = renderer.geometry.width
        self._blank = png_scanlines(renderer.blank(), self.levels)
        grey, per_byte = renderer.grey, 8 // self.bits
        band = self._packed(np.full((1, 1, per_byte), grey.band, dtype=np.uint8))[0, 0, 0]
        self.ink = Ink(
            text=self._packed(grey.text),
            header=self._packed(grey.header),
            gutter=self._packed(grey.gutter),
            band=int(band),
            margin=1 + grey.margin // per_byte,  # after the filter byte
            cell=grey.cell // per_byte,
        )

    @staticmethod
    def fits(renderer: Renderer, tier: Tier) -> bool:
        """Whether every cell (and the margin) of this tier's hot PNG covers whole bytes."""
        if tier.codec != "png" or tier.scale != 1.0 or tier.levels not in (16, 256):
            return False
        per_byte = 1 if tier.levels == 256 else 2  # pixels a byte
        g = renderer.geometry
        return g.margin % per_byte == 0 and g.cell_width % per_byte == 0

    def _packed(self, tiles: np.ndarray) -> np.ndarray:
        """Grey tiles (n, h, w) -> their PNG bytes (n, h, w * bits / 8), as `png_scanlines` packs a page."""
        n, height, width = tiles.shape
        rows = png_scanlines(np.ascontiguousarray(tiles.reshape(n * height, width)), self.levels)
        return np.ascontiguousarray(rows[:, 1:].reshape(n, height, -1))

    def blank(self) -> np.ndarray:
        return self._blank.copy()

    def draw_rows(self, canvas: np.ndarray, first_row: int, rows: list[PlannedRow]) -> None:
        self.renderer.draw_rows(canvas, first_row, rows, self.ink)

    def from_image(self, image: Image.Image) -> np.ndarray:
        """The rows of a stored page, decoded (an open page this process has not drawn lately)."""
        return png_scanlines(np.asarray(image), self.levels)

    def encode(self, canvas: np.ndarray, fast: bool) -> bytes:
        return png_from_scanlines(canvas, self.width, self.levels, 1 if fast else 6)


PageCanvases = GreyPages | ScanlinePages


def page_canvases(renderer: Renderer, tier: Tier) -> PageCanvases:
    """How the writer keeps its pages for a hot tier: as PNG rows where cells cover whole bytes, else grey."""
    return ScanlinePages(renderer, tier) if ScanlinePages.fits(renderer, tier) else GreyPages(renderer, tier)
