"""Fidelity: every line of every measured page read at every tier by each reader, scored against its text."""

from __future__ import annotations

import time
from dataclasses import replace

from bench.common import TesseractReader
from bench.results import Fidelity, Page
from optical_memory.config import Config
from optical_memory.errors import OpticalMemoryError
from optical_memory.metrics import edit_distance
from optical_memory.readers import load_reader
from optical_memory.readers.base import Reader
from optical_memory.readers.trained import TrainedReader
from optical_memory.tiers import Tier
from optical_memory.tokens import claude_image_tokens, deepseek_vision_tokens
from optical_memory.transcribe import transcribe_lines

__all__ = ["SLOW_READERS", "measure_fidelity", "open_readers"]

SLOW_READERS = ("rapidocr", "tesseract", "deepseek")  # read on a few pages only (RapidOCR ~0.1 s a row)


def open_readers(names: list[str], config: Config) -> dict[str, Reader | str]:
    """Each asked-for reader, loaded, or the reason it cannot run (which the report prints instead)."""
    readers: dict[str, Reader | str] = {}
    for name in names:
        try:
            if name == "tesseract":
                readers[name] = TesseractReader()
            elif name == "trained":
                readers[name] = TrainedReader()
            else:
                options = dict(config.reader_options) if config.reader == name else {}
                if name == "deepseek":
                    options.setdefault("local_files_only", True)  # weights present here, or unavailable
                reader = load_reader(name, **options)
                getattr(reader, "load", lambda: None)()
                readers[name] = reader
        except FileNotFoundError:
            readers[name] = "not installed"
        except (OpticalMemoryError, ImportError, OSError) as exc:
            reason = " ".join(str(exc).split())  # one line: it goes into a markdown paragraph
            readers[name] = f"unavailable ({reason[:300]}{'...' if len(reason) > 300 else ''})"
    return readers


def measure_fidelity(reader: Reader, name: str, pages: list[Page], tiers: tuple[Tier, ...]) -> list[Fidelity]:
    out = [Fidelity(name, tier) for tier in tiers]
    for index, page in enumerate(pages):
        numbers = sorted(page.truth)
        for score, (data, geometry) in zip(out, page.images, strict=True):
            record = replace(page.record, geometry=geometry)
            start = time.perf_counter()
            lines = transcribe_lines(reader, record, data, numbers)
            score.read_ms[index] = 1000 * (time.perf_counter() - start)
            for line in lines:
                truth = page.truth[line.number]
                score.lines += 1
                score.chars += len(truth)
                if line.text == truth:
                    score.exact += 1
                else:
                    score.edits += edit_distance(truth, line.text)
            score.pages += 1
            score.tokens += page.tokens
            score.deepseek += deepseek_vision_tokens(geometry.width, geometry.height)
            score.claude += claude_image_tokens(geometry.width, geometry.height)
            score.px_per_char = geometry.px_per_char
    return out
