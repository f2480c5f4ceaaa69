"""Full-page read time, verification included, of several reader exports timed side by side.

    python -m bench.bench_read_speed                                   # the shipped reader alone
    python -m bench.bench_read_speed --model runs/a/reader.onnx --model runs/b/reader.onnx --pin
    python -m bench.bench_read_speed --pin --without-parts             # part codes against line codes alone

What `read_lines` does for a whole page: `transcribe.transcribe_lines` with the page's check codes
and its search-index entry (bench_verify's held-out pages, both mixes, faded through the default
tiers). The readers take turns on the same page and tier, rep after rep, so a shared or noisy
machine slows them alike and the ratio between them holds; `--pin` keeps the process on CPUs 0
and 1 (2 cores, the reader's 2 onnxruntime threads). Prints p50 / p95 ms per tier and reader, each
reader's p50 over the first's, and the first reader's p50 per tier for each mix apart (identifier
pages fail their first reading more often at frost, and search longer). `--breakdown` also times
the first reader's steps apart, p50 ms per tier: decoding the stored image, resampling its rows onto
the cell grid, the model call, and the rest (verification: checking codes and searching lines that
fail their first reading). `--without-parts` also reads each page with the first reader as a page
written before part codes (`PageRecord.parts` None: line codes alone), taking turns with the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from pathlib import Path

from bench.bench_verify import KEY, MIXES, make_page
from bench.common import percentile
from optical_memory.readers.trained import TrainedReader, default_model_path, row_strips
from optical_memory.records import PageRecord
from optical_memory.tiers import decode_image
from optical_memory.transcribe import rows_of_lines, transcribe_lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", action="append", default=[], help="reader.onnx to time (repeatable)")
    parser.add_argument("--no-shipped", action="store_true", help="leave the shipped reader out")
    parser.add_argument("--pages", type=int, default=4, help="pages per mix")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7011000)
    parser.add_argument("--pin", action="store_true", help="run on CPUs 0 and 1 only (2 cores)")
    parser.add_argument("--breakdown", action="store_true", help="also time the first reader's steps apart")
    parser.add_argument("--without-parts", action="store_true", help="also the first reader without part codes")
    args = parser.parse_args()
    paths = ([] if args.no_shipped else [default_model_path()]) + [Path(m) for m in args.model]
    if not paths:
        parser.error("nothing to time: give --model, or leave out --no-shipped")
    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0, 1})
    # the shipped reader as serving builds it (its cells model reads pages of whole-pixel cells); --model alone
    readers = [TrainedReader() if path == default_model_path() else TrainedReader(path) for path in paths]
    labels = [f"{path.parent.name}/{path.name}" for path in paths]
    plain = [False] * len(readers)  # read as a page without part codes
    if args.without_parts:
        readers, labels, plain = [*readers, readers[0]], [*labels, f"{labels[0]} without part codes"], [*plain, True]
    times: dict[tuple[int, str], list[float]] = {}
    parts: dict[tuple[str, str], list[float]] = {}
    by_mix: dict[tuple[str, str], list[float]] = {}  # the first reader's reads, per tier and mix
    for mix in MIXES:
        for n in range(args.pages):
            page = make_page(mix, args.seed + n)
            numbers = range(1, len(page.truth) + 1)
            for tier, data, record in page.images:
                for reader in readers:  # warm: the first call loads the model
                    transcribe_lines(reader, record, data, numbers, key=KEY, terms=page.terms())
                for _ in range(args.reps):
                    for index, reader in enumerate(readers):
                        read_as = dataclasses.replace(record, parts=None) if plain[index] else record
                        time.sleep(SETTLE_S)
                        started = time.perf_counter_ns()
                        transcribe_lines(reader, read_as, data, numbers, key=KEY, terms=page.terms())
                        spent = (time.perf_counter_ns() - started) / 1e6
                        times.setdefault((index, tier.name), []).append(spent)
                        if index == 0:
                            by_mix.setdefault((tier.name, mix), []).append(spent)
                    if args.breakdown:
                        for step, ms in steps(readers[0], record, data, numbers).items():
                            parts.setdefault((step, tier.name), []).append(ms)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{platform.machine()}, {cores} cores in use, load average {os.getloadavg()[0]:.1f}; "
        f"{args.pages} pages per mix ({', '.join(MIXES)}), {args.reps} reads each, readers taking turns"
    )
    tiers = list(dict.fromkeys(tier for _, tier in times))
    for index, label in enumerate(labels):
        cells = []
        for tier in tiers:
            values = times[(index, tier)]
            base = statistics.median(times[(0, tier)])
            cells.append(
                f"{tier} {statistics.median(values):5.1f}/{percentile(values, 0.95):5.1f}"
                + ("" if index == 0 else f" ({statistics.median(values) / base:.2f}x)")
            )
        print(f"{label:44s} p50/p95 ms: " + "  ".join(cells))
    print(f"{labels[0]} p50 ms per mix (a target met over both mixes can miss on one):")
    for tier in tiers:
        print(f"  {tier:6s} " + "  ".join(f"{mix} {statistics.median(by_mix[(tier, mix)]):5.1f}" for mix in MIXES))
    if parts:
        print(f"{labels[0]} steps, p50 ms (the rest: the full read's p50 less the three):")
        for tier in tiers:
            medians = {step: statistics.median(parts[(step, tier)]) for step in STEPS}
            rest = statistics.median(times[(0, tier)]) - sum(medians.values())
            shown = "  ".join(f"{step} {ms:5.1f}" for step, ms in medians.items())
            print(f"  {tier:6s} {shown}  rest {rest:5.1f}")


STEPS = ("decode", "resample", "model")
# Pause before each timed read: long enough for the last session's worker thread to stop spinning
# (at 20 ms reads still ran up to 1.4x slower beside it, at 50 ms no longer).
SETTLE_S = 0.1


def steps(reader: TrainedReader, record: PageRecord, data: bytes, numbers: range) -> dict[str, float]:
    """The first three steps of a full-page read, timed apart (ms): as `transcribe_lines` does them."""
    rows_of = rows_of_lines(record.rows, numbers)
    wanted = list(dict.fromkeys(row for number in numbers for row in rows_of[number]))
    loaded = reader.load()
    time.sleep(SETTLE_S)
    marks = [time.perf_counter_ns()]
    picture = decode_image(data)
    picture.load()
    marks.append(time.perf_counter_ns())
    strips = row_strips(picture, record.geometry, wanted, loaded.cell_height, loaded.cell_width)
    marks.append(time.perf_counter_ns())
    loaded.session.run(["topk_classes", "topk_probs"], {"strips": strips})
    marks.append(time.perf_counter_ns())
    return {step: (marks[i + 1] - marks[i]) / 1e6 for i, step in enumerate(STEPS)}


if __name__ == "__main__":
    main()
