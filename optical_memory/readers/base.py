"""The reader interface: a stored page image, its geometry and row indices in; each row's cells out.

A reader never sees text from the archive (sealed pages keep none): it gets the stored image as it
is at the page's current tier, and the page geometry, which says exactly where each row and cell
lies (`Geometry.row_box`). It returns, for each requested physical row, the characters of that
row's cells from the left: one character per cell, blank cells as spaces. Trailing blanks may be
omitted. `Memory.read_lines` joins rows into lines and decodes the escape form, so a reader only
transcribes cells.

Readers are loaded lazily (`load` on first use) and must be safe to call from several threads.

A reader may also give, per cell, its few most probable characters with their probabilities
(`TopKReader.read_rows_topk`). Verified decoding (`optical_memory.verify`) then searches those
alternatives when a line fails its check code; a reader without it still has its one reading checked
(verified true or false, no search).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from optical_memory.errors import InvalidArgument
from optical_memory.render import Geometry

__all__ = ["Reader", "TopKReader", "check_rows"]


@runtime_checkable
class Reader(Protocol):
    """Transcribes rows of a stored page image."""

    name: str

    def read_rows(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> list[str]:
        """Return the cell text of each physical row in `rows` (0-based), in the same order."""
        ...


@runtime_checkable
class TopKReader(Protocol):
    """Optional: a reader that also gives each cell's K best classes (indices into `alphabet.ALPHABET`)."""

    def read_rows_topk(
        self, image: Image.Image, geometry: Geometry, rows: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(classes, probs), each (len(rows), columns, K): int64 class indices and float32 probabilities,
        most probable first, for the physical rows `rows` in that order."""
        ...


def check_rows(geometry: Geometry, rows: Sequence[int]) -> None:
    """Refuse a row index outside the page, before any reader crops or runs a model."""
    for row in rows:
        if not 0 <= row < geometry.rows:
            raise InvalidArgument(f"row {row} is outside the page's rows 0..{geometry.rows - 1}")
