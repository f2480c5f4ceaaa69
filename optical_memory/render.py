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
    # Set on pages stored at a tier with whole-pixel cells (`Tier.cell`): the image is the hot page
    # mapped by exactly (scale, scale_y) from its top-left corner, so every cell starts at the same
    # sub-pixel phase. Unset (older pages, tiers given by scale alone): width / hot_width and
    # height / hot_height are the factors, the whole hot page squeezed into the stored size.
    scale_y: float | None = None

    @property
    def hot_width(self) -> int:
        return 2 * self.margin + (self.gutter + self.columns) * self.cell_width

    @property
    def hot_height(self) -> int:
        return 2 * self.margin + self.rows * self.cell_height

    @property
    def factors(self) -> tuple[float, float]:
        """Stored-image pixels per hot pixel, across and down."""
        if self.scale_y is not None:
            return self.scale, self.scale_y
        return self.width / self.hot_width, self.height / self.hot_height

    def scaled(self, scale: float) -> Geometry:
        """The geometry of this page re-encoded at `scale` of the hot size."""
        width = max(1, round(self.hot_width * scale))
        height = max(1, round(self.hot_height * scale))
        return replace(self, width=width, height=height, scale=scale, scale_y=None)

    def with_cells(self, cell: tuple[int, int]) -> Geometry:
        """The geometry of this page re-encoded with cells of `cell` (width, height) whole pixels: the hot
        page mapped from its top-left corner, as many whole pixels as it covers."""
        sx, sy = cell[0] / self.cell_width, cell[1] / self.cell_height
        width, height = int(self.hot_width * sx + 1e-6), int(self.hot_height * sy + 1e-6)
        return replace(self, width=max(1, width), height=max(1, height), scale=sx, scale_y=sy)

    def row_box(self, row: int) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of a row's text cells in stored-image pixels (floats)."""
        sx, sy = self.factors
        left = (self.margin + self.gutter * self.cell_width) * sx
        top = (self.margin + row * self.cell_height) * sy
        return left, top, left + self.columns * self.cell_width * sx, top + self.cell_height * sy

    @property
    def px_per_char(self) -> float:
        """Stored-image pixels per character cell: the figure that decides readability."""
        sx, sy = self.factors
        return self.cell_width * sx * self.cell_height * sy

    def to_dict(self) -> dict[str, int | float]:
        data = asdict(self)
        if self.scale_y is None:  # pages of tiers given by scale alone store what they always stored
            del data["scale_y"]
        return data

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
    # the three tile sets one after the other, each tile's rows apart: (cell_height, 3 x characters, cell)
    atlas: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        tiles = np.concatenate([self.text, self.header, self.gutter])
        self.atlas = np.ascontiguousarray(tiles.transpose(1, 0, 2))


class Renderer:
    """Draws page rows for one page format and font size."""

    def __init__(self, fmt: PageFormat, font_size: int = 16, margin: int = 8) -> None:
        self.format = fmt
        self._tiles, self._index, cell_width, cell_height = _atlas(font_size)
        self._header_tiles = (self._tiles.astype(np.float32) * _HEADER_INK).astype(np.uint8)
        self._gutter_tiles = (255 - (255 - self._tiles.astype(np.float32)) * _GUTTER_INK).astype(np.uint8)
        # code point -> atlas index (-1: not drawable): a page's text becomes indices in three array passes
        self._lookup = np.full(max(map(ord, self._index)) + 1, -1, dtype=np.intp)
        self._lookup[[ord(ch) for ch in self._index]] = list(self._index.values())
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

    def _indices(self, text: str) -> np.ndarray:
        """`codes` of a whole page's text at once, through a code point table; KeyError as `codes`."""
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        if points.size and int(points.max()) >= self._lookup.size:
            raise KeyError(chr(int(points.max())))
        indices = self._lookup[points]
        if points.size and int(indices.min()) < 0:
            raise KeyError(text[int(np.argmin(indices))])
        return indices

    def draw_rows(self, canvas: np.ndarray, first_row: int, rows: Sequence[PlannedRow], ink: Ink | None = None) -> None:
        """Draw planned rows onto blank rows of a hot page canvas from physical row `first_row` on: in grey
        pixels, or with `ink` onto a canvas of its form.

        All the rows at once: one gather of tiles for their text and one for their gutters (a row at a
        time, the calls cost more than the copying). A row's cells past its text and a header row's
        gutter are drawn blank, as they are on a blank row.
        """
        if not rows:
            return
        ink = ink or self.grey
        g = self.geometry
        count, columns = len(rows), g.columns
        header = [n for n, planned in enumerate(rows) if planned.code == HEADER]
        text = "".join(
            (display_text(planned.cells)[:columns] if planned.code == HEADER else planned.cells).ljust(columns)
            for planned in rows
        )
        if len(text) != count * columns:
            raise ValueError(f"a row holds at most {columns} cells")
        cells = self._indices(text).reshape(count, columns)
        cells[header] += len(self._index)  # the header band's tiles
        marks = "".join("   " if planned.code == HEADER else _mark(planned.code) for planned in rows)
        if len(marks) != count * 3:
            raise ValueError(f"a page of over 999 lines has no room for its line numbers: {g.rows} rows")
        gutter = self._indices(marks).reshape(count, 3) + 2 * len(self._index)
        top, height = g.margin + first_row * g.cell_height, count * g.cell_height
        left = ink.margin + g.gutter * ink.cell
        _paste(canvas[top : top + height, left : left + columns * ink.cell], ink.atlas, cells)
        _paste(canvas[top : top + height, ink.margin : ink.margin + 3 * ink.cell], ink.atlas, gutter)

    def render(self, rows: Sequence[PlannedRow]) -> np.ndarray:
        """A hot page holding `rows` from its first row."""
        canvas = self.blank()
        self.draw_rows(canvas, 0, rows)
        return canvas


def _mark(code: int) -> str:
    """A row's gutter mark: its line number, or the continuation mark, right-aligned in three cells."""
    return f"{code:>3}" if code > 0 else f"{CONTINUATION_MARK:>3}"


def _paste(region: np.ndarray, atlas: np.ndarray, cells: np.ndarray) -> None:
    """Copy the tiles `cells` (rows x cells of atlas indices) into `region`, a block of whole canvas rows."""
    count, height = len(cells), atlas.shape[0]
    tiles = np.take(atlas, cells, axis=1)  # (tile row, row, cell, columns): each tile row's cells side by side
    view = region.reshape(count, height, -1)
    if view.flags.owndata:  # a reshape that had to copy would draw nothing
        raise AssertionError("canvas rows are not contiguous")
    view[...] = tiles.reshape(height, count, -1).transpose(1, 0, 2)
