"""A template-matching reader: exact on hot pages, no model, no extra dependencies.

Every cell of a hot page is a copy of one glyph tile of the renderer's atlas, so the nearest tile
(least squares, as one matrix product) names the character exactly. Below the hot tier the
cells are resampled and compressed and template matching degrades quickly: use the trained reader
there. This reader is the test seam for code whose subject is not OCR (the archive, the facade, the
server), and a dependency-free fallback for archives that never fade.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from optical_memory.alphabet import ALPHABET
from optical_memory.render import Geometry, _atlas

__all__ = ["TemplateReader"]


class TemplateReader:
    name = "template"

    def read_rows(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> list[str]:
        tiles, _, cell_width, cell_height = _atlas(geometry.font_size)
        flat = tiles.reshape(len(tiles), -1).astype(np.float32)
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
        ch = geometry.factors[1] * geometry.cell_height
        out: list[str] = []
        for row in rows:
            left, top, right, _ = geometry.row_box(row)
            band = Image.fromarray(pixels[round(top) : round(top) + max(1, round(ch)), round(left) : round(right)])
            if band.size != (geometry.columns * cell_width, cell_height):
                band = band.resize((geometry.columns * cell_width, cell_height), Image.Resampling.BILINEAR)
            grid = np.asarray(band, dtype=np.float32).reshape(cell_height, geometry.columns, cell_width)
            cells = grid.transpose(1, 0, 2).reshape(geometry.columns, -1)
            # argmin ||c - t||^2 = argmin (||t||^2 - 2 c.t)
            scores = (flat * flat).sum(axis=1)[None, :] - 2 * cells @ flat.T
            out.append("".join(ALPHABET[i] for i in scores.argmin(axis=1)).rstrip(" "))
        return out
