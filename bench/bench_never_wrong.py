"""Never silently wrong: many held-out pages read back verified at every tier; count lines wrong but verified.

    python -m bench.bench_never_wrong --pages 40 --workers 2                       # a quick look
    python -m bench.bench_never_wrong --pages 4000 --workers 16 --max-seconds 420  # the big run (#16)

Pages of both held-out mixes (`bench_verify`'s realistic and identifier-heavy mixes, seeds from
`--seed` on, apart from bench_verify's) are made as `remember` makes them, with their check codes and
their search-index entries (`bench_verify.index_entry`), faded through the default tiers, and every
line of every tier is read once the way `read_lines` reads it (`transcribe_lines` with the line-code
key and the page's index entry: term-guided verified decoding). Only the verified reading is made
(no argmax-only pass), so hot and warm pages cost one reader call and a hash per line.

A line counts as *wrong but verified* when it comes back `verified: true` with text that differs from
what was remembered: the figure the issue wants at 0 over at least 1M lines. The run stops starting
pages after `--max-seconds` and reports what it checked; pages are spread over `--workers`
processes (one onnxruntime thread each).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable (bench.common)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_verify import CHAINS, KEY, MIXES, make_page, tiers_label
from optical_memory.checkcode import CODE_BYTES
from optical_memory.readers.trained import TrainedReader
from optical_memory.training.evaluate import HELDOUT_SEED
from optical_memory.transcribe import transcribe_lines
from optical_memory.verify import MAX_CANDIDATES

DEFAULT_SEED = HELDOUT_SEED + 100_000  # held out, and apart from bench_verify's pages (its seeds + pages)


@dataclass
class Count:
    lines: int = 0
    verified: int = 0
    wrong_verified: int = 0
    unverified: int = 0
    exact: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)  # wrong but verified: what and where

    def add(self, other: Count) -> None:
        self.lines += other.lines
        self.verified += other.verified
        self.wrong_verified += other.wrong_verified
        self.unverified += other.unverified
        self.exact += other.exact
        self.examples += other.examples


_READER: list[TrainedReader] = []


def check_page(job: tuple[str, int, str | None, str]) -> dict[str, Count]:
    """One page at every tier of the chain: {tier: counts} (the reader is loaded once per process)."""
    mix, seed, model, chain = job
    if not _READER:
        _READER.append(TrainedReader(model, threads=1))
    page = make_page(mix, seed, CHAINS[chain])
    numbers = range(1, len(page.truth) + 1)
    out: dict[str, Count] = {}
    for tier, data, record in page.images:
        count = out[tier.name] = Count(lines=len(page.truth))
        for truth, line in zip(
            page.truth, transcribe_lines(_READER[0], record, data, numbers, key=KEY, terms=page.terms()), strict=True
        ):
            count.verified += line.verified is True
            count.unverified += line.verified is False
            count.exact += line.text == truth
            if line.verified is True and line.text != truth:
                count.wrong_verified += 1
                count.examples.append(
                    {"mix": mix, "seed": str(seed), "tier": tier.name, "truth": truth, "read": line.text}
                )
    return out


def jobs(args: argparse.Namespace) -> Iterator[tuple[str, int, str | None, str]]:
    """Pages of the mixes taken in turn, seed after seed."""
    for i in range(args.pages):
        for mix in MIXES:
            yield mix, args.seed + i, args.model, args.chain


def run(args: argparse.Namespace) -> tuple[dict[str, dict[str, Count]], int, float]:
    """Check pages until all are done or `--max-seconds` pass: ({mix: {tier: counts}}, pages, seconds)."""
    totals: dict[str, dict[str, Count]] = {mix: {t.name: Count() for t in CHAINS[args.chain]} for mix in MIXES}
    start = time.monotonic()
    done = 0
    pending: dict[Future[dict[str, Count]], str] = {}
    queue = jobs(args)
    with ProcessPoolExecutor(args.workers) as pool:
        while True:
            while len(pending) < 2 * args.workers and time.monotonic() - start < args.max_seconds:
                job = next(queue, None)
                if job is None:
                    break
                pending[pool.submit(check_page, job)] = job[0]
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                mix = pending.pop(future)
                for tier, count in future.result().items():
                    totals[mix][tier].add(count)
                done += 1
                if done % args.report_every == 0:
                    lines = sum(c.lines for tiers in totals.values() for c in tiers.values())
                    wrong = sum(c.wrong_verified for tiers in totals.values() for c in tiers.values())
                    print(f"  {done} pages, {lines:,} lines, wrong+verified {wrong}, {time.monotonic() - start:.0f} s",
                          flush=True)  # fmt: skip
    return totals, done, time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=40, help="pages per mix (at most; see --max-seconds)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-seconds", type=float, default=float("inf"), help="start no page after this")
    parser.add_argument("--model", default=None, help="reader.onnx (default: the shipped one)")
    parser.add_argument("--chain", choices=sorted(CHAINS), default="config")
    parser.add_argument("--report-every", type=int, default=200, help="print progress every N pages")
    parser.add_argument("--json", type=Path, default=None, help="also write the counts here")
    args = parser.parse_args()
    model = TrainedReader(args.model).model_path
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.workers} workers; model "
        f"{model} ({model.stat().st_size:,} bytes); seeds {args.seed}.. ; chain {args.chain}: "
        f"{tiers_label(CHAINS[args.chain])}",
        flush=True,
    )
    totals, pages, seconds = run(args)
    checked = wrong = 0
    for mix, tiers in totals.items():
        print(f"{mix} mix:")
        for tier, c in tiers.items():
            share = 100 * c.verified / max(1, c.lines)
            print(f"  {tier:>6}  lines {c.lines:9,}  verified {share:6.2f} %  unverified {c.unverified:7,}  "
                  f"exact {100 * c.exact / max(1, c.lines):6.2f} %  wrong+verified {c.wrong_verified}")  # fmt: skip
            checked += c.lines
            wrong += c.wrong_verified
            for example in c.examples:
                print(f"    WRONG BUT VERIFIED: {example}")
    bound = checked * (MAX_CANDIDATES + 1) / 2.0 ** (8 * CODE_BYTES)
    print(
        f"{pages:,} pages in {seconds:.0f} s: lines checked {checked:,}; wrong but marked verified: {wrong} "
        f"(hash bound: expected false verifications <= {bound:.2e})"
    )
    if args.json is not None:
        summary = {mix: {tier: asdict(c) for tier, c in tiers.items()} for mix, tiers in totals.items()}
        args.json.write_text(json.dumps({"pages": pages, "seconds": seconds, "checked": checked, "wrong": wrong,
                                         "model": str(model), "counts": summary}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
