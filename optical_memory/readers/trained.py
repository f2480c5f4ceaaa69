"""The trained reader: our own cell classifier (optical_memory.training), served with onnxruntime.

Rows are cropped by the page geometry (float boxes, `Geometry.row_box`) and resampled to a canonical
strip of hot-sized cells (`row_strips`), so one model reads every tier: a hot row is its own pixels,
a cold row is upsampled back onto the same grid. All requested rows go through the model in one
call. The weights ship in `optical_memory/models/` as `reader.onnx` with `reader.json` beside it
(model arguments, alphabet hash, how they were trained and what they measured); training and
`training/export.py` write both. Serving needs neither torch nor the training package.

Besides the argmax, the model gives each cell's K most probable classes with their probabilities
(`read_rows_topk`), which verified decoding (`optical_memory.verify`) searches when a line's reading
fails its check code. Weights exported before the top K existed still serve, with K = 1.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from optical_memory.alphabet import ALPHABET
from optical_memory.errors import ReaderUnavailable
from optical_memory.render import Geometry
from optical_memory.tiers import pad_white

__all__ = ["TrainedReader", "alphabet_hash", "cells_text", "default_model_path", "row_strips"]

MODEL_FILE = "reader.onnx"
# The reader of pages stored with whole-pixel cells (`Tier.cell`) at small scales (the shipped one: cool,
# cold and frost): trained on exactly those (`train.py --cells-share --max-scale`); its metadata's max_scale
# says which pages are its.
CELLS_MODEL_FILE = "reader_cells.onnx"
REBUILD = (
    "rebuild it with `python -m optical_memory.training.train` then `python -m optical_memory.training.export` "
    "(see optical_memory/training/README.md), or reinstall optical-memory"
)


def alphabet_hash(alphabet: str = ALPHABET) -> str:
    """What the class indices mean: a model is only valid for the alphabet it was trained on."""
    return hashlib.sha256(alphabet.encode("utf-8")).hexdigest()[:16]


def default_model_path(name: str = MODEL_FILE) -> Path:
    return Path(str(resources.files("optical_memory") / "models" / name))


def row_strips(
    image: Image.Image, geometry: Geometry, rows: Sequence[int], cell_height: int, cell_width: int
) -> np.ndarray:
    """Rows of a stored page resampled onto the canonical cell grid: (len(rows), cell_height, columns*cell_width).

    One resize covers the span of the requested rows (rows are evenly spaced, so the span maps onto
    whole canonical rows); at the hot scale the box is whole pixels and the strip is the page's own.
    """
    if not rows:
        return np.zeros((0, cell_height, geometry.columns * cell_width), dtype=np.uint8)
    first, last = min(rows), max(rows)
    left, top, right, _ = geometry.row_box(first)
    _, _, _, bottom = geometry.row_box(last)
    span = last - first + 1
    size = (geometry.columns * cell_width, span * cell_height)
    image = image if image.mode == "L" else image.convert("L")
    if right > image.width or bottom > image.height:  # whole-pixel cells: the last pixel may end inside a cell
        image = pad_white(image, (left, top, right, bottom))
    pixels = np.asarray(image.resize(size, Image.Resampling.BICUBIC, box=(left, top, right, bottom)))
    grid = pixels.reshape(span, cell_height, size[0])
    return grid[[row - first for row in rows]]


_CODE_POINTS = np.array([ord(ch) for ch in ALPHABET], dtype="<u4")


def cells_text(classes: np.ndarray) -> list[str]:
    """Class indices (rows, columns) -> each row's text, trailing blanks dropped (vectorised: 6,400 cells a page)."""
    if classes.size == 0:
        return [""] * len(classes)
    code_points = np.ascontiguousarray(_CODE_POINTS[classes])  # (rows, columns) UTF-32
    return [text.rstrip(" ") for text in code_points.view(f"<U{classes.shape[1]}")[:, 0].tolist()]


@dataclass(frozen=True)
class _Loaded:
    session: Any  # onnxruntime.InferenceSession
    cell_height: int
    cell_width: int
    has_topk: bool  # exported with topk_classes / topk_probs


class TrainedReader:
    """Reads rows with the shipped cell classifier. Loaded on first use; safe to share between threads."""

    name = "trained"

    def __init__(
        self, model_path: str | Path | None = None, threads: int = 2, cells_model_path: str | Path | None = None
    ) -> None:
        """`model_path` reads every page, unless a cells model reads pages of whole-pixel cells at its scales:
        `cells_model_path`, or, when neither path is given, the shipped one (`CELLS_MODEL_FILE`)."""
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.threads = threads
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        self._max_scale: float | None = None
        if cells_model_path is None and model_path is None:
            cells_model_path = default_model_path(CELLS_MODEL_FILE)
        self.cells: TrainedReader | None = None
        if cells_model_path is not None and Path(cells_model_path).is_file():
            self.cells = TrainedReader(cells_model_path, threads, cells_model_path=None)

    def reader_for(self, geometry: Geometry) -> TrainedReader:
        """The model that reads a page stored with `geometry`: the cells model for its pages, else this one."""
        if self.cells is not None and geometry.scale_y is not None and geometry.scale <= self.cells.max_scale():
            return self.cells
        return self

    def max_scale(self) -> float:
        """The largest tier scale this model was trained for (its metadata's max_scale; 1 when not given)."""
        if self._max_scale is None:  # asked at every page read: the metadata file is read once
            self._max_scale = self._read_max_scale()
        return self._max_scale

    def _read_max_scale(self) -> float:
        value = self.metadata().get("max_scale", 1.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise ReaderUnavailable(
                f"trained reader: {self.meta_path} gives max_scale {value!r}; it must be the largest tier "
                f"scale the model reads, a number in (0, 1]; {REBUILD}"
            )
        return float(value)

    @property
    def meta_path(self) -> Path:
        return self.model_path.with_suffix(".json")

    def metadata(self) -> dict[str, Any]:
        """The JSON beside the weights: model args, alphabet hash, training command, seed, evaluation."""
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReaderUnavailable(f"trained reader: cannot read {self.meta_path} ({exc}); {REBUILD}") from exc
        if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
            raise ReaderUnavailable(f"trained reader: {self.meta_path} has no 'model' arguments; {REBUILD}")
        return meta

    def load(self) -> _Loaded:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _load(self) -> _Loaded:
        if not self.model_path.is_file():
            raise ReaderUnavailable(f"trained reader: the weights file {self.model_path} is missing; {REBUILD}")
        meta = self.metadata()
        if meta.get("alphabet_sha256") != alphabet_hash():
            raise ReaderUnavailable(
                f"trained reader: {self.model_path} was trained for another alphabet "
                f"({meta.get('alphabet_sha256')} != {alphabet_hash()}); {REBUILD}"
            )
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ReaderUnavailable("trained reader: onnxruntime is not installed (pip install onnxruntime)") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for missing and corrupt files
            raise ReaderUnavailable(f"trained reader: cannot load {self.model_path} ({exc}); {REBUILD}") from exc
        model = meta["model"]
        outputs = {output.name for output in session.get_outputs()}
        has_topk = {"topk_classes", "topk_probs"} <= outputs
        return _Loaded(session, int(model["cell_height"]), int(model["cell_width"]), has_topk)

    def read_rows(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> list[str]:
        classes, _ = self.classify(image, geometry, rows)
        return cells_text(classes)

    def classify(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Class index and confidence of every cell of `rows`: two (len(rows), columns) arrays."""
        loaded = self.reader_for(geometry).load()
        strips = row_strips(image, geometry, rows, loaded.cell_height, loaded.cell_width)
        if not len(strips):
            return np.zeros((0, geometry.columns), np.int64), np.zeros((0, geometry.columns), np.float32)
        classes, confidence = loaded.session.run(["classes", "confidence"], {"strips": strips})
        return classes, confidence

    def read_rows_topk(
        self, image: Image.Image, geometry: Geometry, rows: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The K most probable classes of every cell of `rows` and their probabilities, most probable first.

        Two (len(rows), columns, K) arrays: int64 class indices into `ALPHABET`, float32 softmax
        probabilities. One model call, as `read_rows`; `[..., 0]` is what `read_rows` reads.
        """
        loaded = self.reader_for(geometry).load()
        strips = row_strips(image, geometry, rows, loaded.cell_height, loaded.cell_width)
        if not len(strips):
            return np.zeros((0, geometry.columns, 1), np.int64), np.zeros((0, geometry.columns, 1), np.float32)
        if not loaded.has_topk:  # weights exported before the top K: the argmax alone, K = 1
            classes, confidence = loaded.session.run(["classes", "confidence"], {"strips": strips})
            return classes[..., None], confidence[..., None]
        classes, probs = loaded.session.run(["topk_classes", "topk_probs"], {"strips": strips})
        return classes, probs
