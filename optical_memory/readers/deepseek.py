"""DeepSeek-OCR as a reader: locate the requested rows with the page geometry, transcribe only that band.

A page needs no layout analysis: `Geometry.row_box` says where every row is. The requested rows are
grouped into bands (runs of consecutive rows that have ink; rows without ink read as blank and
cost nothing), each band is cut out of the stored image, and the model transcribes it with its
plain OCR prompt. The answer's lines are mapped back to the band's rows:

* as many non-empty lines as rows: line i is row i;
* any other count (a line the model split in two, two it ran together, one it dropped): the band
  is read again row by row, so no text is ever put on the wrong row; a single row's lines are
  joined with a space.

A model writes text, not cells: indentation and runs of spaces come back however it writes them.
So cells are placed from pixels where possible: the geometry says which cells of the row have ink,
and when the line has exactly as many non-space characters as the row has inked cells, character k
goes into inked cell k, which restores every space exactly. Otherwise the line is indented by the
row's leading blank cells and kept as written (blurred cold cells can bleed ink into a neighbour).

Two ways to run the model, chosen by the checkpoint's config.json:

* DeepSeek-OCR 2 through transformers' own class (`model_type: deepseek_ocr2`,
  `DeepseekOcr2ForConditionalGeneration`, e.g. ``deepseek-community/DeepSeek-OCR-2``).
* DeepSeek-OCR (v1) and the original DeepSeek-OCR 2 release through the code shipped with the
  checkpoint (`auto_map` in config.json; ``deepseek-ai/DeepSeek-OCR``), called as
  ``model.infer(..., eval_mode=True)``, which returns the text. That code runs only with
  ``trust_remote_code = true``, was written for transformers 4.46 and calls ``.cuda()`` itself.

The model loads on the first read, once, under a lock that also serialises inference (one model on
one device: concurrent generate calls would only contend for it). CUDA is used when present, in
bfloat16; on CPU it runs in float32 and a warning says it will be slow.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from optical_memory.errors import ReaderError, ReaderUnavailable
from optical_memory.readers.base import check_rows
from optical_memory.render import Geometry

__all__ = ["OCR_PROMPT", "BandReader", "DeepSeekReader", "lines_to_rows", "place_cells"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'optical-memory[deepseek]'"
DEFAULT_MODEL = "deepseek-community/DeepSeek-OCR-2"
# The plain-text prompt of the model card ("<image>\nFree OCR."); the grounding prompt would add
# layout boxes and markdown, which a row of dialogue does not need.
OCR_PROMPT = "Free OCR."

# A cell has ink where its darkest pixel is this far below the row's background (its median):
# 255 - 20 = 235 is the level the RapidOCR reader measured for blank rows of the coldest tier (248 at
# their darkest), and header rows, drawn on a grey band, get the same margin below their grey.
_INK_MARGIN = 20
# Only the middle of a cell is looked at: resampling bleeds a glyph's edge into the next cell.
_CELL_INSET = 0.15
# White round a band, in cells: OCR models are trained on pages, whose text never touches the edge.
_BAND_MARGIN_CELLS = 1.0
# A one-row band of a hot 100-column page is 1020 x 39 px with its margin (26:1). DeepSeek-OCR 2's
# processor tiles an image on the grid of at most 6 tiles of 768 px whose aspect is closest (6 x 1)
# and stretches it to fit: 4.5x across, 19.7x down, glyphs 4.4 times too tall. Padded with white
# below to 3:1 (1020 x 340) it tiles 3 x 1 undistorted, each row at 2.26x its hot size.
_MAX_BAND_ASPECT = 3.0


def _ink_cells(pixels: np.ndarray, geometry: Geometry, row: int) -> list[bool]:
    """Which of the row's cells have ink, from the stored image (`pixels`: uint8 [height, width])."""
    left, top, right, bottom = geometry.row_box(row)
    band = pixels[max(0, int(top)) : max(int(top) + 1, round(bottom)), :]
    if band.size == 0:
        return [False] * geometry.columns
    background = float(np.median(band[:, int(left) : max(int(left) + 1, round(right))]))
    pitch = (right - left) / geometry.columns
    inset = pitch * _CELL_INSET
    ink = []
    for cell in range(geometry.columns):
        x0 = int(left + cell * pitch + inset)
        x1 = max(x0 + 1, int(np.ceil(left + (cell + 1) * pitch - inset)))
        ink.append(bool(band[:, x0:x1].size) and float(band[:, x0:x1].min()) < background - _INK_MARGIN)
    return ink


def place_cells(line: str, ink: Sequence[bool]) -> str:
    """A transcribed line as the row's cells: characters into inked cells when the counts agree.

    Otherwise the line (stripped) starts at the row's first inked cell. Cut at the row's width;
    trailing blanks omitted.
    """
    chars = [ch for ch in line if not ch.isspace()]
    inked = [cell for cell, has_ink in enumerate(ink) if has_ink]
    if chars and len(chars) == len(inked):
        cells = [" "] * len(ink)
        for cell, ch in zip(inked, chars, strict=True):
            cells[cell] = ch
        return "".join(cells).rstrip(" ")
    lead = inked[0] if inked else 0
    return (" " * lead + line.strip())[: len(ink)].rstrip(" ")


def lines_to_rows(text: str, rows: int) -> list[str] | None:
    """The model's answer for a band of `rows` rows as one line per row, or None if the count is off.

    Empty lines are dropped: a band holds only rows with ink, and models put blank lines between
    paragraphs. A one-row band always maps: its lines are joined with a space.
    """
    if rows == 1:
        return [_one_line(text)]
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines if len(lines) == rows else None


def _one_line(text: str) -> str:
    """A one-row answer: its lines, stripped, joined with a space."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _runs(rows: Sequence[int]) -> list[list[int]]:
    """Sorted distinct rows as runs of consecutive rows."""
    runs: list[list[int]] = []
    for row in sorted(set(rows)):
        if runs and row == runs[-1][-1] + 1:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def band_image(image: Image.Image, geometry: Geometry, first_row: int, last_row: int) -> Image.Image:
    """The rows first_row..last_row (text cells only, no gutter) on white, padded to a page-like shape."""
    left, top, right, _ = geometry.row_box(first_row)
    bottom = geometry.row_box(last_row)[3]
    box = (int(left), int(top), int(np.ceil(right)), int(np.ceil(bottom)))
    band = image.crop(box)
    margin = max(2, round((right - left) / geometry.columns * _BAND_MARGIN_CELLS))
    width = band.width + 2 * margin
    height = max(band.height + 2 * margin, int(np.ceil(width / _MAX_BAND_ASPECT)))
    canvas = Image.new("L", (width, height), 255)
    canvas.paste(band, (margin, margin))
    return canvas.convert("RGB")


def _token_budget(rows: int, columns: int) -> int:
    """Enough new tokens for any real answer: a row holds at most `columns` characters, and a
    byte-level tokenizer spends at most two tokens on one outside ASCII; plus a newline a row. It
    only bounds a model that loops (DeepSeek-OCR can repeat a line until stopped)."""
    return 16 + rows * (2 * columns + 1)


class BandReader:
    """Locate-then-transcribe: the shared read path of readers that OCR a band of rows as one image.

    A subclass implements `_transcribe(band, rows, columns) -> str`: the model's text for one band
    image of `rows` rows of `columns` cells.
    """

    name = "band"

    def _transcribe(self, band: Image.Image, rows: int, columns: int) -> str:
        raise NotImplementedError

    def read_rows(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> list[str]:
        """Return the cell text of each physical row in `rows` (0-based), in the same order."""
        check_rows(geometry, rows)
        gray = image if image.mode == "L" else image.convert("L")
        pixels = np.asarray(gray)
        ink = {row: _ink_cells(pixels, geometry, row) for row in set(rows)}
        text: dict[int, str] = {row: "" for row in ink}
        for run in _runs([row for row in ink if any(ink[row])]):
            lines = lines_to_rows(self._read_band(gray, geometry, run[0], run[-1]), len(run))
            if lines is None:  # the line count is off: read each row alone rather than guess
                lines = [_one_line(self._read_band(gray, geometry, row, row)) for row in run]
            for row, line in zip(run, lines, strict=True):
                text[row] = place_cells(line, ink[row])
        return [text[row] for row in rows]

    def _read_band(self, gray: Image.Image, geometry: Geometry, first_row: int, last_row: int) -> str:
        band = band_image(gray, geometry, first_row, last_row)
        return self._transcribe(band, last_row - first_row + 1, geometry.columns)


class DeepSeekReader(BandReader):
    """Transcribes bands of page rows with DeepSeek-OCR (2) on CUDA or, slowly, on CPU."""

    name = "deepseek"

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        device: str | None = None,
        prompt: str = OCR_PROMPT,
        trust_remote_code: bool = False,
        local_files_only: bool = False,
        max_new_tokens: int | None = None,
    ) -> None:
        """`model`: a local checkpoint folder or a Hugging Face id. `device`: "cuda", "cuda:1", "cpu";
        default CUDA when present. `trust_remote_code`: allow v1's own code to run. `max_new_tokens`:
        a cap per band; default two per cell plus one per row, more than any real answer needs."""
        self.model = str(Path(model).expanduser()) if model.startswith("~") else model
        self.device = device
        self.prompt = prompt
        self.trust_remote_code = trust_remote_code
        self.local_files_only = local_files_only
        self.max_new_tokens = max_new_tokens
        self.variant: str | None = None  # "native" or "remote", once loaded
        self._model: Any = None
        self._processor: Any = None  # processor (native) or tokenizer (remote)
        self._device: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model now rather than on the first read; raises ReaderUnavailable."""
        with self._lock:
            self._load_locked()

    def read_rows(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> list[str]:
        """Return the cell text of each physical row in `rows` (0-based), in the same order."""
        with self._lock:
            return super().read_rows(image, geometry, rows)

    # -- loading --------------------------------------------------------------------------------

    def _load_locked(self) -> None:
        if self._model is not None:
            return
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise ReaderUnavailable(
                f"the 'deepseek' reader needs torch and transformers ({exc}); install them with {INSTALL_HINT}"
            ) from exc
        transformers.utils.logging.disable_progress_bar()  # bars would go to the server's stderr per load
        config = self._read_config(transformers)
        device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type == "cpu":
            log.warning(
                "DeepSeek-OCR runs on the CPU: a 3B-parameter model, expect each band of rows to be slow; "
                "a CUDA GPU (or the 'endpoint' reader with a vLLM server) is what it is made for"
            )
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        if config.get("model_type") == "deepseek_ocr2":
            self._load_native(transformers, device, dtype)
        elif config.get("auto_map"):
            self._load_remote(transformers, config, device, dtype)
        else:
            raise ReaderUnavailable(
                f"{self.model} is not a DeepSeek-OCR checkpoint (model_type {config.get('model_type')!r}); "
                f"use {DEFAULT_MODEL} or deepseek-ai/DeepSeek-OCR"
            )
        self._device = device

    def _read_config(self, transformers: Any) -> dict[str, Any]:
        try:
            config, _ = transformers.PretrainedConfig.get_config_dict(
                self.model, local_files_only=self.local_files_only
            )
        except (OSError, ValueError) as exc:
            raise ReaderUnavailable(
                f"no DeepSeek-OCR checkpoint at {self.model!r} ({exc}); download one, e.g. "
                f"`hf download {DEFAULT_MODEL} --local-dir ~/models/DeepSeek-OCR-2`, and set "
                f'[reader.options] model = "~/models/DeepSeek-OCR-2"'
            ) from exc
        return dict(config)

    def _load_native(self, transformers: Any, device: Any, dtype: Any) -> None:
        try:
            processor = transformers.AutoProcessor.from_pretrained(self.model, local_files_only=self.local_files_only)
            model = transformers.AutoModelForImageTextToText.from_pretrained(
                self.model, dtype=dtype, local_files_only=self.local_files_only
            )
        except Exception as exc:
            raise ReaderUnavailable(
                f"DeepSeek-OCR 2 could not be loaded from {self.model!r} ({type(exc).__name__}: {exc}); "
                f"it needs transformers with DeepseekOcr2ForConditionalGeneration ({INSTALL_HINT}) and a "
                "complete checkpoint (config, weights, processor and tokenizer files)"
            ) from exc
        if type(model).__name__ != "DeepseekOcr2ForConditionalGeneration":
            raise ReaderUnavailable(f"{self.model!r} loaded as {type(model).__name__}, not DeepSeek-OCR 2")
        self._model = model.to(device).eval()
        self._processor = processor
        self.variant = "native"

    def _load_remote(self, transformers: Any, config: dict[str, Any], device: Any, dtype: Any) -> None:
        folder = Path(self.model).expanduser()
        if folder.is_dir():
            missing = sorted(
                f"{module}.py"
                for module in {str(ref).split("--")[-1].rsplit(".", 1)[0] for ref in config["auto_map"].values()}
                if not (folder / f"{module}.py").is_file()
            )
            if missing:
                raise ReaderUnavailable(
                    f"{folder} names remote code in config.json's auto_map that is not there "
                    f"({', '.join(missing)}): download the whole model repository, not only the weights"
                )
        if not self.trust_remote_code:
            raise ReaderUnavailable(
                f"{self.model!r} is DeepSeek-OCR with its own model code, which runs only if you trust it: set "
                f"trust_remote_code = true in [reader.options], or use {DEFAULT_MODEL}, which needs no remote code"
            )
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                self.model, trust_remote_code=True, local_files_only=self.local_files_only
            )
            model = transformers.AutoModel.from_pretrained(
                self.model, trust_remote_code=True, use_safetensors=True, local_files_only=self.local_files_only
            )
        except Exception as exc:
            raise ReaderUnavailable(
                f"DeepSeek-OCR's remote code could not be loaded from {self.model!r} ({type(exc).__name__}: {exc}); "
                "its model card pins transformers==4.46.3 and needs einops, addict and easydict: run it in an "
                "environment of its own behind the 'endpoint' reader (vLLM), or use DeepSeek-OCR 2"
            ) from exc
        if not callable(getattr(model, "infer", None)):
            raise ReaderUnavailable(f"{self.model!r} has no infer() method: not DeepSeek-OCR's remote code")
        self._model = model.to(device=device, dtype=dtype).eval()
        self._processor = tokenizer
        self.variant = "remote"

    # -- transcription --------------------------------------------------------------------------

    def _transcribe(self, band: Image.Image, rows: int, columns: int) -> str:
        self._load_locked()
        try:
            if self.variant == "native":
                return self._generate_native(band, self.max_new_tokens or _token_budget(rows, columns))
            return self._infer_remote(band)
        except ReaderError:
            raise
        except Exception as exc:
            hint = " (the remote code calls .cuda(): it needs a CUDA GPU)" if "cuda" in str(exc).lower() else ""
            raise ReaderError(f"DeepSeek-OCR failed on a {band.width}x{band.height} band{hint}: {exc}") from exc

    def _generate_native(self, band: Image.Image, max_new_tokens: int) -> str:
        import torch

        inputs = self._processor(images=band, text=f"<image>\n{self.prompt}", return_tensors="pt")
        inputs = inputs.to(self._device, dtype=self._model.dtype)
        with torch.inference_mode():
            output = self._model.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens)
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return str(self._processor.decode(new_tokens, skip_special_tokens=True))

    def _infer_remote(self, band: Image.Image) -> str:
        with tempfile.TemporaryDirectory(prefix="optical-memory-deepseek-") as tmp:
            path = Path(tmp) / "band.png"
            band.save(path)
            # eval_mode=True makes infer return the text instead of printing it.
            text = self._model.infer(
                self._processor,
                prompt=f"<image>\n{self.prompt}",
                image_file=str(path),
                output_path=tmp,
                base_size=1024,
                image_size=640,
                crop_mode=True,
                save_results=False,
                eval_mode=True,
            )
        if not isinstance(text, str):
            raise ReaderError(f"DeepSeek-OCR's infer() returned {type(text).__name__}, not text")
        return text
