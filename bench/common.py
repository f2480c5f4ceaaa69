"""Helpers the bench scripts share: the corpus, percentiles, the machine, BPE token counts, Tesseract.

Imported as `bench.common` (run.py, the smoke test) or `common` (the older scripts, run from bench/).
"""

from __future__ import annotations

import functools
import io
import os
import platform
import random
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from optical_memory.render import Geometry

__all__ = [
    "LINES_PER_PAGE",
    "TOKENIZER",
    "TesseractReader",
    "corpus_entries",
    "machine",
    "mixed_text",
    "percentile",
    "text_tokens",
]

LINES_PER_PAGE = 62  # a default page holds 63 rows under its header: a little less, since some lines wrap
TOKENIZER = "o200k_base"  # GPT-4o's encoding, shipped inside the bpe-openai wheel (works offline)


def mixed_text(pages: int, seed: int = 7, stress: bool = False) -> str:
    """About `pages` pages of the held-out mixed corpus: code, prose, logs, tables, non-ASCII, fixed by seed.

    `stress` uses the training mix instead, whose random runs cover the whole alphabet uniformly
    (mostly accented capitals, Greek, Cyrillic and box drawing): a worst case, not dialogue.
    """
    from optical_memory.training.corpus import REALISTIC_MIX, TRAINING_MIX, mixed_lines

    rng = random.Random(seed)
    lines: list[str] = []
    while len(lines) < pages * LINES_PER_PAGE:
        lines.extend(mixed_lines(rng, "heldout", mix=TRAINING_MIX if stress else REALISTIC_MIX))
    return "\n".join(lines[: pages * LINES_PER_PAGE])


def corpus_entries(folder: Path | None, pages: int, stress: bool = False) -> tuple[list[str], str]:
    """`remember` entries (texts split at blank lines) for about `pages` pages, and a description.

    `folder`: every UTF-8 text file under it, in path order; None: the built-in mixed corpus.
    """
    if folder is None:
        text = mixed_text(pages, stress=stress)
        described = "built-in mixed held-out corpus (code, prose, logs, tables, non-ASCII)" + (
            ", stress mix: uniform random runs over the whole alphabet" if stress else ""
        )
    else:
        lines: list[str] = []
        files = 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            try:
                lines.extend(path.read_text(encoding="utf-8").split("\n"))
            except (UnicodeDecodeError, OSError):
                continue  # binaries and unreadable files are not dialogue
            files += 1
            if len(lines) >= pages * LINES_PER_PAGE:
                break
        if not lines:
            raise SystemExit(f"--corpus {folder}: no UTF-8 text files found")
        text, described = "\n".join(lines[: pages * LINES_PER_PAGE]), f"{files} text files from {folder}"
    return [entry for entry in text.split("\n\n") if entry.strip()], described


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def machine() -> dict[str, str]:
    """CPU model, cores, Python and onnxruntime versions: what every figure depends on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "not installed"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": f"{usable} usable of {os.cpu_count()}",
        "python": platform.python_version(),
        "onnxruntime": ort,
        "os": platform.platform(terse=True),
    }


@functools.cache
def _encoding():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        # bpe-openai 0.1.4 loads its data with importlib.resources.open_binary, deprecated since 3.11
        warnings.filterwarnings("ignore", "open_binary is deprecated", DeprecationWarning)
        import bpe_openai

        return bpe_openai.get_encoding(TOKENIZER)


def text_tokens(text: str) -> int:
    """Tokens of `text` under o200k_base: a real BPE count, not the archive's bytes/4 estimate."""
    return len(_encoding().encode(text))


class TesseractReader:
    """Tesseract as a reader, for comparison: one `tesseract --psm 7` (single text line) call per row.

    Each row is cut from the stored image by the page geometry, resampled to hot-size cells (as the
    other readers do) and padded with white. Tesseract returns a string, so runs of spaces and
    indentation come back however it writes them: that is part of what is measured.
    """

    name = "tesseract"

    def __init__(self, binary: str | None = None) -> None:
        found = binary or shutil.which("tesseract")
        if found is None:
            raise FileNotFoundError("tesseract is not installed (apt-get install tesseract-ocr)")
        self.binary = found

    def read_rows(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> list[str]:
        out = []
        for row in rows:
            left, top, right, bottom = geometry.row_box(row)
            size = (geometry.columns * geometry.cell_width, geometry.cell_height)
            crop = image.resize(size, Image.Resampling.BICUBIC, box=(left, top, right, bottom))
            padded = Image.new("L", (size[0] + 2 * geometry.cell_width, size[1] * 2), 255)
            padded.paste(crop, (geometry.cell_width, size[1] // 2))
            png = io.BytesIO()
            padded.save(png, "PNG")
            done = subprocess.run(
                [self.binary, "stdin", "stdout", "--psm", "7"], input=png.getvalue(), capture_output=True, check=False
            )
            out.append(done.stdout.decode("utf-8", "replace").rstrip("\n\f ") if done.returncode == 0 else "")
        return out
