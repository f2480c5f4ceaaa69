"""RapidOCR as a reader: its text recogniser alone, run on the row boxes the page geometry gives.

A page needs no text detection: `Geometry.row_box` says where every row is. Each requested row is
cut out of the stored image, padded with white (never with its neighbours' ink), and the crops go
through RapidOCR's recogniser (PP-OCR, CTC, onnxruntime; the model ships inside the `rapidocr`
wheel, so this works offline) in batches. The classifier and the detector are never loaded.

A recogniser returns a string, and strings lose spaces: runs of blanks shrink to one, indentation
goes. So the reader does not trust the string's spaces. It asks for the CTC time step at which each
character was emitted (`return_word_box`), turns that into an x position in the stored image, and
puts the character into the cell under it; cells nothing lands in are blanks. Indentation and
aligned columns survive exactly as far as the positions are right.

The engine is built on the first read (about 0.3 s), under a lock that also serialises inference:
onnxruntime already uses every core for one batch, so letting threads in at once would only make
each wait longer.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from optical_memory.errors import ReaderError, ReaderUnavailable
from optical_memory.render import Geometry

__all__ = ["RapidOcrReader"]

INSTALL_HINT = "pip install 'optical-memory[rapidocr]'"

# White added above and below a row, as a fraction of its height: PP-OCR recognisers are trained on
# detector crops, which keep a margin round the text. Left and right get the same number of pixels.
_PAD_FRACTION = 0.25
# A CTC spike lands a little right of the glyph's centre: measured over the hot, warm and cool
# tiers of the test sample, the time step's centre falls 0.58..0.61 of a cell past the cell's left
# edge (sd 0.15), where the glyph centre is 0.5. Subtracting the bias centres the rounding window.
_SPIKE_BIAS_CELLS = 0.1
# A crop with nothing darker than this is blank: it is not sent to the recogniser at all.
# (Measured: a blank row of the coldest tier is 248 at its darkest, a lone '`' there 191; header bands are 204.)
_BLANK_LEVEL = 235


class RapidOcrReader:
    """Transcribes page rows with RapidOCR's recogniser, placing each character by its position."""

    name = "rapidocr"

    def __init__(self, *, batch_size: int = 16, threads: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.threads = threads  # onnxruntime intra-op threads; None: every core
        self._engine: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Build the recogniser now rather than on the first read; raises ReaderUnavailable."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> Any:
        if self._engine is not None:
            return self._engine
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise ReaderUnavailable(
                f"the 'rapidocr' reader needs the rapidocr package ({exc}); install it with {INSTALL_HINT}"
            ) from exc
        _quiet_rapidocr_logger()
        params: dict[str, Any] = {
            "Global.use_det": False,
            "Global.use_cls": False,
            "Global.return_word_box": True,  # per-character CTC time steps, used to place characters
            "Global.log_level": "error",  # RapidOCR logs each model load at info level
            "Rec.rec_batch_num": self.batch_size,
        }
        if self.threads is not None:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = self.threads
        try:
            engine = RapidOCR(params=params)
            # The recogniser is otherwise built on the first call; building it here puts a missing
            # or corrupt model in this error rather than in the middle of a read.
            engine._load_rec_model()
        except Exception as exc:
            raise ReaderUnavailable(
                f"RapidOCR's recogniser could not be loaded ({type(exc).__name__}: {exc}); "
                f"reinstall it with {INSTALL_HINT}"
            ) from exc
        self._engine = engine
        return engine

    def read_rows(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> list[str]:
        """Return the cell text of each physical row in `rows` (0-based), in the same order."""
        for row in rows:
            if not 0 <= row < geometry.rows:
                raise ValueError(f"row {row} is outside the page's rows 0..{geometry.rows - 1}")
        pixels = np.asarray(image if image.mode == "L" else image.convert("L"))
        crops = [_crop_row(pixels, geometry, row) for row in rows]
        inked = [i for i, crop in enumerate(crops) if crop.pixels.min() < _BLANK_LEVEL]
        result = [""] * len(rows)
        if not inked:
            return result
        batch = [np.repeat(crops[i].pixels[:, :, None], 3, axis=2) for i in inked]  # the model wants BGR
        with self._lock:
            engine = self._load_locked()
            try:
                output = engine.recognize_txt(batch)
            except Exception as exc:
                raise ReaderError(f"RapidOCR failed on {len(batch)} rows: {type(exc).__name__}: {exc}") from exc
        for i, text, info in zip(inked, output.txts, output.word_results, strict=True):
            result[i] = _place(text, info, crops[i], geometry.columns)
        return result


class _Crop:
    """A row cut out of the stored image, and where its cells are within the cut."""

    __slots__ = ("cell_width", "first_cell_x", "pixels")

    def __init__(self, pixels: np.ndarray, first_cell_x: float, cell_width: float) -> None:
        self.pixels = pixels  # uint8 [height, width], white padded
        self.first_cell_x = first_cell_x  # x of the row's first cell's left edge, in crop pixels
        self.cell_width = cell_width  # in crop pixels


def _crop_row(pixels: np.ndarray, geometry: Geometry, row: int) -> _Crop:
    left, top, right, bottom = geometry.row_box(row)
    height, width = pixels.shape
    x0, x1 = max(0, math.floor(left)), min(width, math.ceil(right))
    y0, y1 = max(0, math.floor(top)), min(height, math.ceil(bottom))
    band = pixels[y0:y1, x0:x1]
    pad = max(2, round((y1 - y0) * _PAD_FRACTION))
    padded = np.pad(band, ((pad, pad), (pad, pad)), constant_values=255)
    return _Crop(padded, left - x0 + pad, (right - left) / geometry.columns)


def _place(text: str, info: Any, crop: _Crop, columns: int) -> str:
    """Put each recognised character into the cell under its CTC time step; the rest are blanks.

    `info` is RapidOCR's WordInfo: `word_cols` holds, word by word, the time step of each non-space
    character of `text`, and `line_txt_len` how many time steps span the crop's width.
    """
    chars = [ch for ch in text if not ch.isspace()]
    steps = [step for word in info.word_cols for step in word]
    if not chars or len(steps) != len(chars) or not info.line_txt_len:
        return text.strip()  # no positions to go by (never seen): the string is the best there is
    px_per_step = crop.pixels.shape[1] / info.line_txt_len
    cells = [" "] * columns
    previous = -1
    for ch, step in zip(chars, steps, strict=True):
        x = (step + 0.5) * px_per_step
        cell = round((x - crop.first_cell_x) / crop.cell_width - 0.5 - _SPIKE_BIAS_CELLS)
        # Characters come out left to right and each owns a cell: a spike that lands on a cell already
        # taken (two glyphs read close together) goes to the next free one.
        cell = max(cell, previous + 1, 0)
        if cell >= columns:
            break
        cells[cell] = ch
        previous = cell
    return "".join(cells).rstrip(" ")


def _quiet_rapidocr_logger() -> None:
    """Keep RapidOCR's log off stdout (the stdio MCP transport) and below warnings."""
    log = logging.getLogger("RapidOCR")
    log.setLevel(logging.ERROR)
    for handler in log.handlers:
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            handler.setStream(sys.stderr)
