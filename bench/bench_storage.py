"""Image bytes by tier, before and after the grey-level encodings of issue 13, with the reader's CER.

    python bench/bench_storage.py                        # 16 held-out pages, realistic mix
    python bench/bench_storage.py --mix identifiers      # keys, hex, UUIDs, paths, accented names
    python bench/bench_storage.py --before-model old.onnx   # read "before" with another reader
    python bench/bench_storage.py --colder 0.18          # also one tier colder than the coldest
    python bench/bench_storage.py --tier cold=0.32/12    # "after" with cold changed (frost faded from it)

"Before" is the lossless chain that archives written before issue 13 hold (8-bit PNG at hot, then
8-bit lossless WebP: `generate.LOSSLESS_TIERS`); "after" is config/default.toml's [[tiers]]. Both
fade the same held-out pages with the archive's own code (`tiers.demote`, each tier made from the
tier above's stored image). Per tier: bytes per stored character (image bytes / characters of
text on the page), KiB per page, character error rate and logical lines read exactly. The check
that no tier stores more than the tier above it is printed per tier and over every page.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_verify import changed_tiers
from optical_memory.readers.trained import TrainedReader
from optical_memory.tiers import Tier
from optical_memory.training.evaluate import (
    CHAINS,
    HELDOUT_SEED,
    MIXES,
    TierScore,
    codec_label,
    figures,
    sample,
    score,
)
from optical_memory.training.generate import Page, TierImage


def colder(chain: Sequence[Tier], scale: float) -> tuple[Tier, ...]:
    """`chain` and one more tier below its coldest, at `scale`, encoded as the coldest is."""
    last = chain[-1]
    after = (last.after_pages or 512) * 4
    return (*chain, last.by_scale(name="colder", scale=scale, after_pages=after, after_days=None))


def larger_than_above(pages: Sequence[tuple[Page, list[TierImage]]]) -> list[str]:
    """Each (page, tier) whose stored image is larger than the same page's image one tier up."""
    found = []
    for index, (_, faded) in enumerate(pages):
        for upper, lower in itertools.pairwise(faded):
            if lower.nbytes > upper.nbytes:
                found.append(f"page {index}: {lower.tier.name} {lower.nbytes} B > {upper.tier.name} {upper.nbytes} B")
    return found


def table(title: str, scores: Sequence[TierScore], pages: int) -> None:
    print(f"\n{title}")
    print(
        f"{'tier':>7} {'scale':>5} {'codec':<22} {'px/char':>7} {'B/char':>7} {'KiB/page':>8} "
        f"{'CER %':>8} {'errors':>12} {'lines ok %':>10}"
    )
    for s in scores:
        print(
            f"{s.tier.name:>7} {s.tier.scale:5.2f} {codec_label(s.tier):<22} {s.px_per_char:7.1f} "
            f"{s.nbytes / s.chars:7.2f} {s.nbytes / pages / 1024:8.1f} {100 * s.cer:8.4f} "
            f"{f'{s.errors}/{s.chars}':>12} {100 * s.line_rate:10.2f}"
        )


def main(argv: Sequence[str] | None = None) -> dict[str, list[TierScore]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=16, help="held-out pages (16 is about 55,000 characters)")
    parser.add_argument("--mix", choices=sorted(MIXES), default="realistic")
    parser.add_argument("--seed", type=int, default=HELDOUT_SEED + 5000)
    parser.add_argument("--model", default=None, help="reader.onnx for both chains (default: the shipped one)")
    parser.add_argument(
        "--before",
        choices=("lossless", "previous"),
        default="lossless",
        help="the chain to compare with: the lossless one of archives from before issue 13, or the previous "
        "defaults (scales alone: cold 0.35 / 20 levels, frost 0.21 / 24)",
    )
    parser.add_argument(
        "--cells-model", default=None, help="reader_cells.onnx for pages of whole-pixel cells (default: shipped)"
    )
    parser.add_argument("--before-model", default=None, help="reader.onnx for the before chain (default: --model)")
    parser.add_argument(
        "--tier",
        action="append",
        default=[],
        metavar="NAME=SCALE/LEVELS",
        help="'after' with that tier's scale and grey levels changed, e.g. cold=0.32/12 (repeatable)",
    )
    parser.add_argument("--colder", type=float, default=None, help="also measure a tier at this scale below the last")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write {'evaluation': ...} here (for training.export --meta)")
    args = parser.parse_args(argv)
    try:
        after_chain = changed_tiers(CHAINS["config"], args.tier)
    except ValueError as exc:
        parser.error(str(exc))

    after_reader = TrainedReader(args.model, threads=args.threads, cells_model_path=args.cells_model)
    before_reader = TrainedReader(args.before_model, threads=args.threads) if args.before_model else after_reader
    print(
        f"{platform.machine()}, {os.cpu_count()} cores; mix {args.mix}; {args.pages} pages from seed {args.seed}; "
        f"reader {after_reader.model_path.name}"
        + (f", before: {before_reader.model_path}" if before_reader is not after_reader else "")
    )
    results: dict[str, list[TierScore]] = {}
    for label, reader in ((args.before, before_reader), ("config", after_reader)):
        chain = after_chain if label == "config" else CHAINS[label]
        chain = chain if args.colder is None else colder(chain, args.colder)
        pages = sample(args.pages, chain, args.seed, mix=MIXES[args.mix])
        results[label] = score(reader, pages)
        name = {
            "lossless": "before: lossless chain (archives from before issue 13)",
            "previous": "before: the previous defaults (tiers by scale alone)",
        }.get(label, "after: config")
        name += " with " + ", ".join(args.tier) if label == "config" and args.tier else ""
        table(name, results[label], args.pages)
        larger = larger_than_above(pages)
        print(f"  pages where a tier is larger than the tier above: {len(larger)}", *larger[:5], sep="\n    ")
    print("\nbytes per character, before -> after:")
    old = results[args.before]
    for at, after in enumerate(results["config"]):
        if at >= len(old):  # a tier below the old chain's last (ice): nothing to compare it with
            shown = f"{after.nbytes / after.chars:6.2f}"
            print(f"{after.tier.name:>7}    new -> {shown}             CER {100 * after.cer:.4f} %")
            continue
        before = old[at]
        ratio = (after.nbytes / after.chars) / (before.nbytes / before.chars)
        print(
            f"{after.tier.name:>7} {before.nbytes / before.chars:6.2f} -> {after.nbytes / after.chars:6.2f}"
            f" ({100 * ratio:5.1f} %)   CER {100 * before.cer:.4f} % -> {100 * after.cer:.4f} %"
        )
    if args.json:
        record = {
            "command": "python bench/bench_storage.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
            "pages": args.pages,
            "seed": args.seed,
            "mix": args.mix,
            **{f"{label}_chain": storage_figures(scores, args.pages) for label, scores in results.items()},
        }
        Path(args.json).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return results


def storage_figures(scores: Sequence[TierScore], pages: int) -> dict[str, dict[str, object]]:
    """`evaluate.figures` plus bytes per character and KiB per page."""
    out = figures(scores)
    for s in scores:
        out[s.tier.name].update(
            bytes_per_char=round(s.nbytes / s.chars, 2), kib_per_page=round(s.nbytes / pages / 1024, 1)
        )
    return out


if __name__ == "__main__":
    main()
