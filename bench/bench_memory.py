"""Foundation benchmark: remember pages/s (fsync on), view_page ms, read_lines ms per full page, bytes/char per tier.

Run:  python -m bench.bench_memory [--pages 60] [--readers template,trained,rapidocr]

Prints one table; every figure comes from this run on this machine. The corpus is the mixed,
held-out text of the training generator (code, prose, logs, markdown tables, non-ASCII), fixed by seed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable (bench.common)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import mixed_text, percentile
from optical_memory.archive import ArchiveTxn
from optical_memory.config import Config, load_config
from optical_memory.memory import Memory
from optical_memory.readers import load_reader
from optical_memory.render import Geometry
from optical_memory.results import PageInfo
from optical_memory.tiers import Tier, demote


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--readers", default="template,trained,rapidocr")
    parser.add_argument("--read-pages", type=int, default=5, help="pages read per reader")
    args = parser.parse_args()

    text = mixed_text(args.pages)
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(archive=Path(tmp) / "archive", environ={})
        hot_only = replace(base, tiers=base.tiers[:1])
        memory = Memory(hot_only)  # no fading during the write benchmark: pure remember cost
        full = time_remember(memory, text, base, hot_only)
        time_view(memory, full)
        print_tiers(memory, full, base.tiers)
        time_readers(memory, full, hot_only, [r for r in args.readers.split(",") if r], args.read_pages)
        memory.close()


def time_remember(memory: Memory, text: str, base: Config, hot_only: Config) -> list[PageInfo]:
    """remember, one call per entry, then the same text in one call; returns the sealed pages."""
    entries = text.split("\n\n")
    start = time.perf_counter()
    for entry in entries:
        if entry:
            memory.remember(entry, session="bench", role="user")
    elapsed = time.perf_counter() - start
    pages = memory.list_pages(session="bench", limit=200).pages
    full = [p for p in pages if p.sealed]
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(
        f"remember: {len(text):,} chars in {len(entries)} calls -> {len(pages)} pages in {elapsed:.2f} s "
        f"= {len(pages) / elapsed:.1f} pages/s (LMDB sync on commit)"
    )
    # the same text in one call: the cost per page when a call fills many pages; then with fading
    # inline (the library's default; the server fades on a background thread)
    for label, config, session in (
        ("the same text in 1 call", hot_only, "bulk"),
        ("same, fading inline", base, "faded"),
    ):
        start = time.perf_counter()
        pages_written = len(Memory(config, archive=memory.archive).remember(text, session=session).spans)
        elapsed = time.perf_counter() - start
        print(f"remember: {label} -> {pages_written} pages in {elapsed:.2f} s = {pages_written / elapsed:.1f} pages/s")
    return full


def time_view(memory: Memory, full: list[PageInfo]) -> None:
    view_ms = []
    for _ in range(5):
        for page in full:
            t = time.perf_counter()
            memory.view_page(page.id)
            view_ms.append((time.perf_counter() - t) * 1000)
    print(f"view_page: p50 {percentile(view_ms, 0.5):.2f} ms, p95 {percentile(view_ms, 0.95):.2f} ms")


def print_tiers(memory: Memory, full: list[PageInfo], chain: tuple[Tier, ...]) -> None:
    """Bytes per character and image size per tier: each full page walked down the default chain."""
    print("\n| tier | scale | codec | image px | px/char | bytes/page | bytes/char | Claude tok | DeepSeek tok |")
    print("|---|---|---|---|---|---|---|---|---|")
    per_tier: list[list[tuple[int, int, Geometry]]] = [[] for _ in chain]
    for page in full:
        view = memory.view_page(page.id)
        record = memory.archive.read(partial(ArchiveTxn.page, page_id=page.id))
        assert record is not None
        data, geometry = view.data, record.geometry
        per_tier[0].append((len(data), page.characters, geometry))
        for index, tier in enumerate(chain[1:], start=1):
            data, geometry = demote(data, geometry, tier)
            per_tier[index].append((len(data), page.characters, geometry))
    for tier, rows in zip(chain, per_tier, strict=True):
        size = statistics.mean(r[0] for r in rows)
        chars = sum(r[1] for r in rows)
        g = rows[0][2]
        codec = tier.codec if tier.codec == "png" or tier.lossless else f"{tier.codec} q{tier.quality}"
        codec += " lossless" if tier.lossless else ""
        print(
            f"| {tier.name} | {tier.scale} | {codec} "
            f"| {g.width}x{g.height} | {g.px_per_char:.1f} | {size:,.0f} | {sum(r[0] for r in rows) / chars:.2f} "
            f"| {g.width * g.height / 750:.0f} | {g.width * g.height / 4096:.0f} |"
        )


def time_readers(memory: Memory, full: list[PageInfo], hot_only: Config, names: list[str], read_pages: int) -> None:
    print("\n| reader | read_lines full page p50 ms | p95 ms |")
    print("|---|---|---|")
    for name in names:
        try:
            reader = load_reader(name)
        except Exception as exc:  # a reader whose extra is missing is reported, not fatal
            print(f"| {name} | unavailable: {exc} | |")
            continue
        reading = Memory(hot_only, archive=memory.archive, reader=reader)
        reading.read_lines(full[0].id)  # load the model outside the timing
        times = []
        for page in full[:read_pages]:
            t = time.perf_counter()
            reading.read_lines(page.id)
            times.append((time.perf_counter() - t) * 1000)
        print(f"| {name} | {percentile(times, 0.5):.1f} | {percentile(times, 0.95):.1f} |")


if __name__ == "__main__":
    main()
