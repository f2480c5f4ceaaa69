"""Page rows -> image: the shipped font, a fixed cell grid, and the geometry that finds every cell.

Pages are drawn from a glyph atlas: every alphabet character is rasterised once into a cell-sized
tile (Pillow + FreeType, the shipped DejaVu Sans Mono), and a row is the tiles of its characters side
by side. That makes rendering deterministic, fast (array copies, no text layout per page), and exact
in geometry: cell (r, c) of a hot page is always at the same pixels, so a reader needs no text
detection. Tiers scale the stored image; `Geometry` scales with it.

Layout of a hot page (pixels)::

    margin | gutter (line numbers, 4 cells) | columns x cell_width | margin

Rows are `cell_height` tall. Header rows are drawn on a grey band; gutter digits are light grey.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from optical_memory.alphabet import ALPHABET, font_path
from optical_memory.pages import HEADER, PageFormat, PlannedRow

__all__ = ["Geometry", "Ink", "Renderer", "display_text"]

GUTTER_CELLS = 4  # "NN" line number right-aligned in three cells, then one blank cell
CONTINUATION_MARK = "»"
_HEADER_INK = 0.80  # header band: background at 80 % white, glyphs at full ink
_GUTTER_INK = 0.45  # gutter glyphs drawn at 45 % ink: visible, clearly not text


@dataclass(frozen=True)
class Geometry:
    """Where every cell of a stored page image is. Stored with the page; scaled by each tier."""

    font_size: int
    cell_width: int  # of the hot rendering, in pixels
    cell_height: int
    margin: int
    gutter: int  # cells left of the text
    columns: int
    rows: int
    width: int  # of the stored image, at its current scale
    height: int
    scale: float = 1.0

    @property
    def hot_width(self) -> int:
        return 2 * self.margin + (self.gutter + self.columns) * self.cell_width

    @property
    def hot_height(self) -> int:
        return 2 * self.margin + self.rows * self.cell_height

    def scaled(self, scale: float) -> Geometry:
        """The geometry of this page re-encoded at `scale` of the hot size."""
        width = max(1, round(self.hot_width * scale))
        height = max(1, round(self.hot_height * scale))
        return replace(self, width=width, height=height, scale=scale)

    def row_box(self, row: int) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of a row's text cells in stored-image pixels (floats)."""
        sx, sy = self.width / self.hot_width, self.height / self.hot_height
        left = (self.margin + self.gutter * self.cell_width) * sx
        top = (self.margin + row * self.cell_height) * sy
        return left, top, left + self.columns * self.cell_width * sx, top + self.cell_height * sy

    @property
    def px_per_char(self) -> float:
        """Stored-image pixels per character cell: the figure that decides readability."""
        sx, sy = self.width / self.hot_width, self.height / self.hot_height
        return self.cell_width * sx * self.cell_height * sy

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int | float]) -> Geometry:
        return cls(**data)  # type: ignore[arg-type]


def display_text(text: str) -> str:
    """Text for chrome (headers): undrawable characters shown as '?', so chrome never needs escapes."""
    drawable = _drawable()
    return "".join(ch if ch in drawable else "?" for ch in text)


@functools.cache
def _drawable() -> frozenset[str]:
    return frozenset(ALPHABET)


@functools.cache
def _atlas(font_size: int) -> tuple[np.ndarray, dict[str, int], int, int]:
    """Glyph tiles for the alphabet: (tiles[n, h, w] uint8, index of each char, cell width, height)."""
    font = ImageFont.truetype(str(font_path()), font_size)
    ascent, descent = font.getmetrics()
    # Cells are whole pixels: the advance (e.g. 9.64 px at 16 px) rounded up, so no glyph is clipped.
    cell_width = int(np.ceil(font.getlength("M")))
    cell_height = ascent + descent
    tiles = np.empty((len(ALPHABET), cell_height, cell_width), dtype=np.uint8)
    for index, ch in enumerate(ALPHABET):
        tile = Image.new("L", (cell_width, cell_height), 255)
        ImageDraw.Draw(tile).text((0, 0), ch, font=font, fill=0)
        tiles[index] = np.asarray(tile)
    return tiles, {ch: i for i, ch in enumerate(ALPHABET)}, cell_width, cell_height


@dataclass
class Ink:
    """What rows are drawn with, and which canvas columns a cell takes: grey pixels (`Renderer.grey`),
    or the same pixels in another form made once from them (`scanlines`: a PNG's packed rows)."""

    text: np.ndarray  # a tile per alphabet character: (characters, cell_height, columns a cell)
    header: np.ndarray  # ... drawn on the header band
    gutter: np.ndarray  # ... of the gutter's line numbers
    band: int  # the header band's value
    margin: int  # the canvas column where the gutter begins
    cell: int  # canvas columns a cell
    marks: dict[int, np.ndarray] = field(default_factory=dict)  # a line number's gutter (a page has a few dozen)


class Renderer:
    """Draws page rows for one page format and font size."""

    def __init__(self, fmt: PageFormat, font_size: int = 16, margin: int = 8) -> None:
        self.format = fmt
        self._tiles, self._index, cell_width, cell_height = _atlas(font_size)
        self._header_tiles = (self._tiles.astype(np.float32) * _HEADER_INK).astype(np.uint8)
        self._gutter_tiles = (255 - (255 - self._tiles.astype(np.float32)) * _GUTTER_INK).astype(np.uint8)
        hot = Geometry(font_size, cell_width, cell_height, margin, GUTTER_CELLS, fmt.columns, fmt.rows, 0, 0)
        self.geometry = hot.scaled(1.0)
        band = int(255 * _HEADER_INK)
        self.grey = Ink(self._tiles, self._header_tiles, self._gutter_tiles, band, margin, cell_width)

    def blank(self) -> np.ndarray:
        """A blank hot page: white, with the gutter rule."""
        g = self.geometry
        canvas = np.full((g.height, g.width), 255, dtype=np.uint8)
        rule_x = g.margin + g.gutter * g.cell_width - g.cell_width // 2
        canvas[g.margin : g.height - g.margin, rule_x] = 225
        return canvas

    def codes(self, cells: str) -> np.ndarray:
        """Atlas indices of a row's cells; raises KeyError for a character outside the alphabet."""
        # map with the dict's own lookup: a third of the time of a generator expression (bulk import's hot loop)
        return np.fromiter(map(self._index.__getitem__, cells), dtype=np.int32, count=len(cells))

    def _draw_cells(self, strip: np.ndarray, tiles: np.ndarray, width: int, cells: str) -> None:
        """Draw `cells` from the left of `strip` (a row's canvas from its first cell on), `width` columns a cell."""
        if not cells:
            return
        n = len(cells)
        # the row's pixels seen as (h, n, w) cells: the tiles are copied in once, with no strip in between
        cells_view = strip[:, : n * width].reshape(strip.shape[0], n, width)
        if cells_view.flags.owndata:  # a reshape that had to copy would draw nothing
            raise AssertionError("canvas rows are not contiguous")
        cells_view[...] = tiles[self.codes(cells)].transpose(1, 0, 2)

    def _gutter_mark(self, ink: Ink, code: int) -> np.ndarray:
        """The canvas of a row's gutter mark (its line number, or the continuation mark), made once per mark."""
        pixels = ink.marks.get(code)
        if pixels is None:
            mark = f"{code:>3}" if code > 0 else f"{CONTINUATION_MARK:>3}"
            strip = ink.gutter[self.codes(mark)]  # (3, h, w)
            pixels = ink.marks[code] = strip.transpose(1, 0, 2).reshape(strip.shape[1], -1)
        return pixels

    def draw_rows(self, canvas: np.ndarray, first_row: int, rows: Sequence[PlannedRow], ink: Ink | None = None) -> None:
        """Draw planned rows onto a hot page canvas, starting at physical row `first_row`: in grey pixels,
        or with `ink` onto a canvas of its form."""
        ink = ink or self.grey
        g = self.geometry
        height, text_left = g.cell_height, ink.margin + g.gutter * ink.cell
        for offset, planned in enumerate(rows):
            top = g.margin + (first_row + offset) * height
            if planned.code == HEADER:
                canvas[top : top + height, text_left : text_left + g.columns * ink.cell] = ink.band
                cells = display_text(planned.cells)[: g.columns]
                self._draw_cells(canvas[top : top + height, text_left:], ink.header, ink.cell, cells)
                continue
            gutter = self._gutter_mark(ink, planned.code)
            canvas[top : top + height, ink.margin : ink.margin + gutter.shape[1]] = gutter
            self._draw_cells(canvas[top : top + height, text_left:], ink.text, ink.cell, planned.cells)

    def render(self, rows: Sequence[PlannedRow]) -> np.ndarray:
        """A hot page holding `rows` from its first row."""
        canvas = self.blank()
        self.draw_rows(canvas, 0, rows)
        return canvas
