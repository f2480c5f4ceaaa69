"""The trained reader, tier by tier: accuracy, speed and compression on held-out pages.

    python -m bench.bench_reader                      # config/default.toml's tiers, realistic mix
    python -m bench.bench_reader --chain lossless     # the 8-bit lossless chain of older archives
    python -m bench.bench_reader --mix stress         # random runs over the whole alphabet too
    python -m bench.bench_reader --mix identifiers    # keys, hex, UUIDs, paths, accented names
    python -m bench.bench_reader --scan 0.25,0.23,0.22,0.21,0.2   # how small can the coldest tier be
    python -m bench.bench_reader --rapidocr           # RapidOCR on the same full-page rows, for the ratio

Per tier: px per character (stored pixels per cell), CER (cells read wrong / text cells), logical
lines read exactly, read_rows over all rows of a full page (ms, p50/p95, onnxruntime on `--threads`
cores, one batched call), and compression = text tokens / image tokens in DeepSeek-OCR vision tokens
(one per 4,096 px) and Claude image tokens (w*h/750). Text tokens are the project's estimate
(UTF-8 bytes / 4, `optical_memory.tokens`). Pages come from the held-out corpus split and seeds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable (bench.common)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from optical_memory.readers.base import Reader
from optical_memory.readers.trained import TrainedReader
from optical_memory.tiers import Tier
from optical_memory.training.corpus import Mix
from optical_memory.training.evaluate import (
    CHAINS,
    HELDOUT_SEED,
    MIXES,
    TierImage,
    TierScore,
    codec_label,
    sample,
    score,
    top_confusions,
)
from optical_memory.training.generate import Page


def time_full_page(reader: Reader, faded: TierImage, reps: int) -> tuple[float, float]:
    """read_rows over every row of the page, one call: (p50, p95) in ms after a warm-up."""
    rows = list(range(faded.geometry.rows))
    reader.read_rows(faded.image, faded.geometry, rows)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        reader.read_rows(faded.image, faded.geometry, rows)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times), percentile(times, 0.95)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="reader.onnx (default: the shipped one)")
    parser.add_argument("--chain", choices=sorted(CHAINS), default="config")
    parser.add_argument("--mix", choices=sorted(MIXES), default="realistic")
    parser.add_argument("--pages", type=int, default=16, help="held-out pages (16 is about 53,000 characters)")
    parser.add_argument("--seed", type=int, default=HELDOUT_SEED + 5000)
    parser.add_argument("--reps", type=int, default=30, help="timed full-page reads per tier")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scan", default=None, help="comma-separated scales for the coldest tier, encoded as it is")
    parser.add_argument("--rapidocr", action="store_true", help="also time RapidOCR on the same rows")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    reader = TrainedReader(args.model, threads=args.threads)
    tiers = CHAINS[args.chain]
    mix = MIXES[args.mix]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, onnxruntime threads {args.threads}; "
        f"model {reader.model_path.name}; chain {args.chain}; mix {args.mix}; {args.pages} pages, seed {args.seed}"
    )
    if args.scan:
        scan_coldest(reader, tiers, mix, args)
        return
    pages = sample(args.pages, tiers, args.seed, mix=mix)
    scores = score(reader, pages)
    rapid = None
    if args.rapidocr:
        from optical_memory.readers import load_reader

        rapid = load_reader("rapidocr")
    print_tiers(reader, pages, scores, rapid, args)


def scan_coldest(reader: TrainedReader, tiers: tuple[Tier, ...], mix: Mix, args: argparse.Namespace) -> None:
    """--scan: the coldest tier at each given scale, encoded as it is."""
    above = tiers[:-1]
    for scale in (float(s) for s in args.scan.split(",")):
        chain = (*above, tiers[-1].by_scale(name="scan", scale=scale))
        s = score(reader, sample(args.pages, chain, args.seed, mix=mix))[-1]
        print(s.row(), f"{s.nbytes / args.pages / 1024:6.1f} KiB/page |", top_confusions(s, 5))


def print_tiers(
    reader: TrainedReader,
    pages: list[tuple[Page, list[TierImage]]],
    scores: list[TierScore],
    rapid: Reader | None,
    args: argparse.Namespace,
) -> None:
    """One row per tier: fidelity, size, compression and full-page read time (and RapidOCR's, if asked)."""
    print(
        f"{'tier':>6} {'scale':>5} {'codec':<14} {'px/char':>7} {'CER %':>8} {'errors':>11} {'lines ok %':>10} "
        f"{'KiB/page':>8} {'text/DS':>7} {'text/Cl':>7} {'p50 ms':>7} {'p95 ms':>7}"
        + ("  rapid p50 ms" if rapid else "")
    )
    for index, s in enumerate(scores):
        faded = pages[0][1][index]
        p50, p95 = time_full_page(reader, faded, args.reps)
        line = (
            f"{s.tier.name:>6} {s.tier.scale:5.3f} {codec_label(s.tier):<14} {s.px_per_char:7.2f} "
            f"{100 * s.cer:8.4f} {f'{s.errors}/{s.chars}':>11} {100 * s.line_rate:10.2f} "
            f"{s.nbytes / args.pages / 1024:8.1f} {s.text_tokens / s.deepseek_tokens:7.1f} "
            f"{s.text_tokens / s.claude_tokens:7.2f} {p50:7.1f} {p95:7.1f}"
        )
        if rapid is not None:
            r50, _ = time_full_page(rapid, faded, 2)
            line += f"  {r50:10.0f} ({r50 / p50:.0f}x)"
        print(line)
        if s.errors:
            print("         confusions:", top_confusions(s, 6))
    ds = pages[0][1][-1].geometry
    print(
        f"coldest page: {ds.width}x{ds.height} px = {ds.width * ds.height / 4096:.1f} DeepSeek vision tokens, "
        f"{ds.width * ds.height / 750:.0f} Claude tokens, for 100x64 cells"
    )


if __name__ == "__main__":
    main()
