"""Candidate tier chains side by side: bytes per character, argmax CER and how often the truth is in the top K.

    python -m bench.bench_chains --tail 0.35/20:0.21/24 --tail 0.35/8:0.28/4      # cold and frost of each
    python -m bench.bench_chains --model runs/reader/reader.onnx --pages 8 --workers 14 --tail ...

Each `--tail` is config/default.toml's chain with its last tiers changed (`generate.with_tail`:
SCALE/LEVELS of lossless WebP, joined by ':'). Pages are the held-out pages of the reader's
evaluation (realistic and identifier mixes, `training.evaluate.sample`), faded with the archive's own
code. Per tier below cool: bytes per stored character, CER of the argmax reading, the share of wrong
cells whose truth is among the reader's 2 and 8 best classes (what verified decoding searches), and
rows read exactly. It chooses encodings for issue 13: fewer bytes at an equal or better reading.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from optical_memory.alphabet import ALPHABET
from optical_memory.readers.trained import TrainedReader
from optical_memory.training.evaluate import HELDOUT_SEED, MIXES, sample
from optical_memory.training.generate import with_tail

SEEDS = {"realistic": HELDOUT_SEED + 5000, "identifiers": HELDOUT_SEED + 3000}


@dataclass
class Count:
    nbytes: int = 0
    chars: int = 0
    errors: int = 0
    top2: int = 0  # wrong cells whose truth is the second choice
    top8: int = 0  # ... among the 8 best
    rows: int = 0
    rows_exact: int = 0

    def add(self, other: Count) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def count_page(job: tuple[str | None, str, str, int]) -> list[Count]:
    """One held-out page through one chain: a Count per tier."""
    model, tail, mix, seed = job
    reader = TrainedReader(model, threads=1)
    index = {ch: i for i, ch in enumerate(ALPHABET)}
    ((page, faded),) = sample(1, with_tail(tail), seed, mix=MIXES[mix])
    rows = sorted(page.rows)
    counts = []
    for image in faded:
        c = Count(nbytes=image.nbytes)
        classes, _ = reader.read_rows_topk(image.image, image.geometry, rows)
        for r, row in enumerate(rows):
            want = page.rows[row]
            truth = np.zeros(classes.shape[1], dtype=np.int64)
            truth[: len(want)] = [index[ch] for ch in want]
            wrong = classes[r, :, 0] != truth
            hit = classes[r] == truth[:, None]
            c.chars += len(want)
            c.errors += int(wrong.sum())
            c.top2 += int((hit[:, :2].any(1) & wrong).sum())
            c.top8 += int((hit.any(1) & wrong).sum())
            c.rows += 1
            c.rows_exact += not wrong.any()
        counts.append(c)
    return counts


def measure(model: str | None, tails: Sequence[str], pages: int, workers: int) -> dict[str, dict[str, list[Count]]]:
    jobs = [(model, tail, mix, SEEDS[mix] + i) for tail in tails for mix in SEEDS for i in range(pages)]
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(count_page, jobs))
    out: dict[str, dict[str, list[Count]]] = {}
    for (_, tail, mix, _), counts in zip(jobs, results, strict=True):
        totals = out.setdefault(tail, {}).setdefault(mix, [Count() for _ in counts])
        for total, c in zip(totals, counts, strict=True):
            total.add(c)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="reader.onnx (default: the shipped one)")
    parser.add_argument("--tail", action="append", required=True, help="SCALE/LEVELS[:SCALE/LEVELS...] (repeat)")
    parser.add_argument("--pages", type=int, default=6, help="held-out pages per mix")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    results = measure(args.model, args.tail, args.pages, args.workers)
    print(f"reader {args.model or 'shipped'}; {args.pages} pages per mix")
    head = ("chain tail", "mix", "tier", "B/char", "CER %", "errors", "top2", "top8", "rows ok")
    print(f"{head[0]:<22} {head[1]:<5} " + " ".join(f"{h:>7}" for h in head[2:]))
    record = {}
    for tail, mixes in results.items():
        for mix, counts in mixes.items():
            for tier, c in zip(with_tail(tail), counts, strict=True):
                record[f"{tail} {mix} {tier.name}"] = c.__dict__
                if tier.scale > 0.5:
                    continue
                e, ok = max(1, c.errors), 100 * c.rows_exact / c.rows
                print(
                    f"{tail:<22} {mix[:5]:<5} {tier.name:>7} {c.nbytes / c.chars:7.2f} {100 * c.errors / c.chars:7.3f} "
                    f"{c.errors:7d} {100 * c.top2 / e:6.1f}% {100 * c.top8 / e:6.1f}% {ok:6.2f}%"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
