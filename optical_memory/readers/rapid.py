"""RapidOCR as a reader: its text recogniser alone, run on the row boxes the page geometry gives.

A page needs no text detection: `Geometry.row_box` says where every row is. Each requested row is
cut out of the stored image and resampled to hot-size cells; where the cells are sharp enough they
are spaced apart a little (so touching glyphs such as "----" come apart); the row is padded with
white (never with its neighbours' ink); and the crops go through RapidOCR's recogniser (PP-OCR,
CTC, onnxruntime; the model ships inside the `rapidocr` wheel, so this works offline) in batches.
The classifier and the detector are never loaded.

A recogniser returns a string, and strings lose spaces: runs of blanks shrink to one, indentation
goes. So the reader does not trust the string's spaces. It asks for the CTC time step at which each
character was emitted (`return_word_box`), turns that into an x position in the row, and
puts the character into the cell under it; cells nothing lands in are blanks. Indentation and
aligned columns survive exactly as far as the positions are right.

The engine is built on the first read (about 0.3 s), under a lock that also serialises inference:
onnxruntime already uses every core for one batch, so letting threads in at once would only make
each wait longer.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from optical_memory.errors import ReaderError, ReaderUnavailable
from optical_memory.readers.base import check_rows
from optical_memory.render import Geometry

__all__ = ["RapidOcrReader"]

INSTALL_HINT = "pip install 'optical-memory[rapidocr]'"

# Each row is first resampled to the hot rendering's cell size (bicubic), so every tier reaches the
# recogniser at one scale and a cell is a whole number of pixels.
_RESAMPLE = Image.Resampling.BICUBIC
# Where the stored cells are sharp, a white gap of 0.3 cell is put between every two cells, so that
# glyphs blurred into each other ("------" at warm) come apart: CTC needs a blank between two equal
# characters to emit both. Measured on the test sample (CER with gaps / without): warm 0.025 / 0.033,
# the dash row being the difference; hot 0.014 / 0.010, a few characters either way. On blurred
# cells the gaps cut glyphs instead (cool, 5 px: 0.094 / 0.054; cold, 3.5 px: 0.62 / 0.17), so they
# are used only from 7 stored pixels a cell up (warm is 7.5).
_GAP_FRACTION = 0.3
_GAP_MIN_STORED_CELL_PX = 7.0
# White added above and below a row, as a fraction of its height, and left and right, in cells. A
# tight crop reads best (sample CER at hot: 0.014 with 0.1 of the height, 0.027 with 0.25, 0.036
# with 0.4; with none, cool fails). White, not the stored margin: the neighbours' ink stays out.
_PAD_FRACTION = 0.1
_PAD_X_CELLS = 0.5
# A CTC spike lands a little right of the glyph's centre. Measured on the test sample, in cells
# (pitches) from the centre: +0.13 (sd 0.12) without gaps (cool), +0.03 (sd 0.09) with them (hot,
# warm). A bias of 0.1 keeps every measured spike within 0.4 of its cell's centre.
_SPIKE_BIAS_CELLS = 0.1
# A row with nothing darker than this is blank and skips the recogniser. Measured: blank rows of the
# coldest tier are 248 at their darkest, a lone '`' there 191, header bands 204.
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
            # RapidOCR builds the recogniser on its first call: make that call here, on a blank
            # strip, so a missing or corrupt model is this error rather than a failed read.
            engine.recognize_txt([np.full((48, 192, 3), 255, dtype=np.uint8)])
        except Exception as exc:
            raise ReaderUnavailable(
                f"RapidOCR's recogniser could not be loaded ({type(exc).__name__}: {exc}); "
                f"reinstall it with {INSTALL_HINT}"
            ) from exc
        self._engine = engine
        return engine

    def read_rows(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> list[str]:
        """Return the cell text of each physical row in `rows` (0-based), in the same order."""
        check_rows(geometry, rows)
        gray = image if image.mode == "L" else image.convert("L")
        crops = [_crop_row(gray, geometry, row) for row in rows]
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


@dataclass(frozen=True, slots=True)
class _Crop:
    """A row as the recogniser gets it, and where its cells are in it."""

    pixels: np.ndarray  # uint8 [height, width]: resampled, cells spaced, white padded
    first_centre_x: float  # centre of the row's first cell's glyph area, in crop pixels
    cell_pitch: float  # from one cell's left edge to the next one's (cell plus gap), in crop pixels


def _crop_row(image: Image.Image, geometry: Geometry, row: int) -> _Crop:
    """Resample a row to hot-size cells, then space the cells apart and pad the row with white."""
    box = geometry.row_box(row)
    cell_width, cell_height = geometry.cell_width, geometry.cell_height
    band = np.asarray(image.resize((geometry.columns * cell_width, cell_height), _RESAMPLE, box=box))
    stored_cell_px = (box[2] - box[0]) / geometry.columns
    gap = round(cell_width * _GAP_FRACTION) if stored_cell_px >= _GAP_MIN_STORED_CELL_PX else 0
    if gap:
        cells = band.reshape(cell_height, geometry.columns, cell_width)
        band = np.pad(cells, ((0, 0), (0, 0), (0, gap)), constant_values=255).reshape(cell_height, -1)
    pad_y = round(cell_height * _PAD_FRACTION)
    pad_x = round(cell_width * _PAD_X_CELLS)
    padded = np.pad(band, ((pad_y, pad_y), (pad_x, pad_x)), constant_values=255)
    return _Crop(padded, pad_x + cell_width / 2, float(cell_width + gap))


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
        cell = round((x - crop.first_centre_x) / crop.cell_pitch - _SPIKE_BIAS_CELLS)
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
