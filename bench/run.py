"""The benchmark, in one run: fidelity per tier and reader, speed, storage, scale; a markdown report and plots.

    python -m bench.run                       # full run (the lead's numbers; several minutes)
    python -m bench.run --quick               # a reduced run to check that everything works
    python -m bench.run --corpus ~/notes --readers trained,rapidocr,tesseract,deepseek --scale-pages 100000

Writes OUT/results.md (every table, naming the machine) and OUT/*.png (bench/README.md explains each
figure). Every number comes from this run on this machine; nothing is copied in except DeepSeek-OCR's
published Fox points, which the plot labels as such.

How it measures:
* pages: the corpus is remembered into a fresh archive (hot tier only, LMDB sync on), timing
  `remember`; the text of each line of each sealed page is known from the same page planning the
  facade uses (`pages.plan_entry`), never kept in the archive.
* fidelity: each sealed page's stored image goes down the configured tier chain with `tiers.demote`,
  as fading does, and every line is read at every tier by each reader (`transcribe_lines`, as
  `read_lines` does). CER: edit distance / characters over each line's joined text.
* scale: an archive of N pages written directly through `Archive` (records, images, indexes,
  sessions, search postings via `search.index_lines`) reusing the measured pages, each at the tier
  its rank in its session gives it; then probed in a fresh process (open, list_pages, search, RSS).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import corpus_entries, machine
from bench.fidelity import SLOW_READERS, measure_fidelity, open_readers
from bench.pages import fade_pages, remember_pages
from bench.results import Fidelity, Results
from bench.scale import generate_archive, measure_scale, measure_storage
from bench.speed import measure_speed, search_queries
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.trained import TrainedReader

# the phases, importable from here as before (bench_web builds on them)
__all__ = [
    "Fidelity",
    "Results",
    "fade_pages",
    "generate_archive",
    "load_config",
    "main",
    "open_readers",
    "remember_pages",
    "run",
]


def run(args: argparse.Namespace, workdir: Path) -> Results:
    config = load_config(args.config, archive=workdir / "archive", environ={})
    results = Results(" ".join(["python bench/run.py", *map(shlex.quote, args.argv)]), machine(), "", config.tiers)
    entries, results.corpus = corpus_entries(
        args.corpus, args.pages + 1, stress=args.stress
    )  # +1: the last page stays open

    print(f"remembering {len(entries)} entries ...", flush=True)
    memory = Memory(replace(config, tiers=config.tiers[:1]), reader=TrainedReader())  # no fading while timing
    truth = remember_pages(memory, entries, "bench", results)
    results.pages = fade_pages(memory, truth, config.tiers)[: args.pages]
    if not results.pages:
        raise SystemExit("the corpus filled no page: give more text")

    print(f"fidelity on {len(results.pages)} pages x {len(config.tiers)} tiers ...", flush=True)
    for name, reader in open_readers(args.readers, config).items():
        if isinstance(reader, str):
            results.fidelity += [Fidelity(name, tier, status=reader) for tier in config.tiers]
            continue
        sample = results.pages[: args.slow_pages] if name in SLOW_READERS else results.pages
        print(f"  {name} on {len(sample)} pages", flush=True)
        results.fidelity += measure_fidelity(reader, name, sample, config.tiers)

    print("speed ...", flush=True)
    queries = search_queries(results.pages, args.queries)
    results.speed = measure_speed(memory, results.pages, queries, reps=3 if args.quick else 10)
    measure_storage(results, workdir)
    memory.close()

    print(f"scale: writing {args.scale_pages:,} pages ...", flush=True)
    measure_scale(results, workdir, args.scale_pages, args.config, queries)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=None, help="a folder of text files (default: built-in mix)")
    parser.add_argument(
        "--stress", action="store_true", help="built-in corpus with uniform random runs over the whole alphabet"
    )
    parser.add_argument("--quick", action="store_true", help="a reduced run: fewer pages, reads and scale pages")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--readers", default="trained,rapidocr,tesseract,deepseek")
    parser.add_argument("--scale-pages", type=int, default=None, help="pages of the scale archive (100,000)")
    parser.add_argument("--pages", type=int, default=None, help="sealed pages measured (12; --quick 3)")
    parser.add_argument("--slow-pages", type=int, default=None, help="pages read by slow readers (2; --quick 1)")
    parser.add_argument("--queries", type=int, default=None, help="search queries timed (40; --quick 10)")
    parser.add_argument("--config", default=None, help="a config TOML (tiers, reader options); default: defaults")
    parser.add_argument("--workdir", type=Path, default=None, help="where the archives go (default: a temp dir)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.readers = [name for name in args.readers.split(",") if name]
    quick = args.quick
    args.pages = args.pages or (3 if quick else 12)
    args.slow_pages = args.slow_pages or (1 if quick else 2)
    args.queries = args.queries or (10 if quick else 40)
    args.scale_pages = args.scale_pages or (2_000 if quick else 100_000)
    return args


def main(argv: list[str] | None = None) -> Results:
    args = parse_args(argv)
    from bench.report import write_report

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = run(args, Path(tmp))
    args.out.mkdir(parents=True, exist_ok=True)
    markdown = write_report(results, args.out)
    print(markdown)
    print(f"written: {args.out / 'results.md'} and its plots ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    return results


if __name__ == "__main__":
    main()
