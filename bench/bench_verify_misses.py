"""Why lines do not verify: each unverified line at a tier, classified by where its truth sits.

    python -m bench.bench_verify_misses                                  # realistic mix, frost, 40 pages
    python -m bench.bench_verify_misses --mix identifiers --pages 120 --seed 7300000
    python -m bench.bench_verify_misses --budget 16384                   # a larger search budget a line

bench_verify's held-out pages, read as `read_lines` reads them (`transcribe_lines` with the line-code
key and the page's index entry). For every line that comes back `verified: false`, the truth's cells
(`pages.encode_piece` of what was remembered) are compared with the reader's top 8 per cell:

- *truth not in the top 8*: some wrong cell's truth is not among its 8 classes; no search finds it.
- *over the cost cap*: the truth is less probable than the argmax by more than `verify.MAX_COST` nats
  (on a page with part codes a run's wide pass still reaches one or two such cells, `part_search`: the
  lines left here mostly have three or more wrong cells in one run).
- *a wrong cell not searched*: a wrong cell is not among the `verify.SEARCH_CELLS` least certain.
- *in reach, past the budget*: none of those; the truth is among the candidates the search ranks, but
  behind more of them than the line's (or the page's) budget let it try.

What each kind needs is different: a better reader, a wider search, or fewer candidates to try (for
instance check codes over parts of a line, so that the parts are searched one by one). Prints the
counts, the wrong cells per missed line, and the read time p50 of the tier's pages.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import time
from collections.abc import Sequence

import numpy as np

from bench.bench_verify import KEY, MIXES, make_page
from optical_memory import verify
from optical_memory.alphabet import ALPHABET
from optical_memory.pages import encode_piece
from optical_memory.readers.trained import TrainedReader
from optical_memory.tiers import decode_image
from optical_memory.transcribe import rows_of_lines, transcribe_lines

KINDS = ("truth not in the top 8", "over the cost cap", "a wrong cell not searched", "in reach, past the budget")
_CLASS = {ch: i for i, ch in enumerate(ALPHABET)}


def classify(truth: str, classes: np.ndarray, probs: np.ndarray) -> tuple[str, int]:
    """(kind, wrong cells) of an unverified line from its rows' top K, each (rows, columns, K)."""
    rows, columns, k = classes.shape
    cells = encode_piece(truth).ljust(rows * columns)
    want = np.array([_CLASS.get(ch, -1) for ch in cells])
    top = classes.reshape(-1, k)
    p = probs.reshape(-1, k).astype(np.float64)
    wrong = np.nonzero(top[:, 0] != want)[0]
    cost = 0.0
    for cell in wrong:
        rank = np.nonzero(top[cell] == want[cell])[0]
        if len(rank) == 0:
            return KINDS[0], len(wrong)
        cost += float(np.log(p[cell, 0] / max(p[cell, rank[0]], 1e-300)))
    if cost > verify.MAX_COST:
        return KINDS[1], len(wrong)
    searched = set(np.argsort(p[:, 0], kind="stable")[: verify.SEARCH_CELLS].tolist())
    if not searched.issuperset(wrong.tolist()):
        return KINDS[2], len(wrong)
    return KINDS[3], len(wrong)


def misses(
    mix: str, tier: str, pages: int, seed: int, reader: TrainedReader
) -> tuple[int, list[str], list[int], list[float]]:
    """Lines read, the kind of each unverified line, its wrong cells, and each page's read time (ms)."""
    kinds: list[str] = []
    wrong: list[int] = []
    spent: list[float] = []
    lines = 0
    for n in range(pages):
        page = make_page(mix, seed + n)
        numbers = range(1, len(page.truth) + 1)
        _, data, record = next(image for image in page.images if image[0].name == tier)
        started = time.perf_counter()
        read = transcribe_lines(reader, record, data, numbers, key=KEY, terms=page.terms())
        spent.append((time.perf_counter() - started) * 1e3)
        lines += len(read)
        failed = [(n, line) for n, line in zip(numbers, read, strict=True) if line.verified is False]
        if not failed:
            continue
        rows_of = rows_of_lines(record.rows, numbers)
        classes, probs = reader.read_rows_topk(decode_image(data), record.geometry, range(record.geometry.rows))
        for number, _ in failed:
            at = rows_of[number]
            kind, cells = classify(page.truth[number - 1], classes[at], probs[at])
            kinds.append(kind)
            wrong.append(cells)
    return lines, kinds, wrong, spent


def report(mix: str, tier: str, lines: int, kinds: Sequence[str], wrong: Sequence[int], spent: Sequence[float]) -> None:
    missed = len(kinds)
    print(f"{mix} at {tier}: {lines} lines, {missed} unverified ({100 * (1 - missed / max(lines, 1)):.2f} % verified)")
    counts = collections.Counter(kinds)
    for kind in KINDS:
        cells = [w for k, w in zip(kinds, wrong, strict=True) if k == kind]
        median = f", wrong cells p50 {statistics.median(cells):.0f} (max {max(cells)})" if cells else ""
        print(f"  {counts[kind]:5d}  {kind}{median}")
    print(f"  read time of a page p50 {statistics.median(spent):.1f} ms, p90 {np.percentile(spent, 90):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mix", choices=[*MIXES, "both"], default="realistic")
    parser.add_argument("--tier", default="frost")
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7011000)
    parser.add_argument("--budget", type=int, default=verify.MAX_CANDIDATES, help="candidates a line")
    parser.add_argument("--pin", action="store_true", help="run on CPUs 0 and 1 only (2 cores)")
    args = parser.parse_args()
    if args.budget < 1:
        parser.error(f"--budget must be at least 1, got {args.budget}")
    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0, 1})
    if args.budget != verify.MAX_CANDIDATES:  # a line's budget, and the page's three times it, as shipped
        verify.verify_lines.__defaults__ = (args.budget, None, None)
        verify.PAGE_CANDIDATES = 3 * args.budget
    reader = TrainedReader()
    print(f"search: {args.budget} candidates a line, {verify.PAGE_CANDIDATES} a page; seed {args.seed}")
    for mix in MIXES if args.mix == "both" else (args.mix,):
        report(mix, args.tier, *misses(mix, args.tier, args.pages, args.seed, reader))


if __name__ == "__main__":
    main()
