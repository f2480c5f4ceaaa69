"""Does the verification search return the same as another commit's, line by line, and how long does it take?

    python -m bench.bench_search_same record /tmp/inputs.pkl --pages 12          # the reader's output, saved
    PYTHONPATH=/tmp/old python bench/bench_search_same.py search /tmp/inputs.pkl /tmp/old.pkl  # worktree
    python -m bench.bench_search_same search /tmp/inputs.pkl /tmp/new.pkl
    python -m bench.bench_search_same compare /tmp/old.pkl /tmp/new.pkl
    python -m bench.bench_search_same reads --against 1404233 --pin           # full reads, old and new in turn
    python -m bench.bench_search_same searches /tmp/inputs.pkl --against 1963f6f --pin  # the search alone, in turn

`record` reads bench_verify's held-out pages (both mixes, the cold and frost tiers by default, and
one colder, where budgets run out) with the shipped reader and saves what `transcribe_lines` hands
`verify_lines`: each line's top-K classes, probabilities and check code, and the page's search-index
entry. `search` runs `verify_lines` of the code it is run from (a git worktree of the commit before,
`PYTHONPATH=...`) on those inputs, as `transcribe_lines` calls it (guided by the page's index entry,
then without, as an older page reads), and saves every line's result and every text whose line code
was computed, in order; it prints how long the searches took (median of --reps, per page).
`compare` says whether two such runs agree exactly: the same `verified`, text, `uncertain` and
`alternative` for every line, and the same candidates hashed in the same order (so the same budgets
were spent on the same readings, and the false-verify bound and the accuracy figures still hold).
`searches` times only `verify_lines` on recorded inputs, `--against`'s code and this checkout's alternating
page by page (guided as `transcribe_lines` calls it; `--plain`: as a page without an index entry): at cold
the reader's time is many times the search's, and a full read's noise on a shared machine hides a change
to the search. `reads` times full page reads (reader and verification); bench_read_speed times whole reads.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import pickle
import re
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, cast

from optical_memory.archive import ArchiveTxn
from optical_memory.checkcode import LineHasher, stored_code
from optical_memory.term_guide import PageTerms
from optical_memory.terms import TermHasher
from optical_memory.verify import verify_lines

ARCHIVE_KEY = bytes(range(32))  # bench_verify's


class _Archive:
    def archive_key(self) -> bytes:
        return ARCHIVE_KEY


class _Recording:
    """A line hasher that remembers every text it hashed (the search's candidates, in order)."""

    def __init__(self, hasher: LineHasher) -> None:
        self._hasher = hasher
        self.digest = hashlib.sha256()
        self.count = 0

    def code(self, text: str) -> bytes:
        self.count += 1
        self.digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
        return self._hasher.code(text)


def record(args: argparse.Namespace) -> None:
    from bench.bench_verify import CHAINS, KEY, MIXES, extra_tier, make_page
    from optical_memory.readers.trained import TrainedReader
    from optical_memory.tiers import decode_image
    from optical_memory.transcribe import rows_of_lines

    reader = TrainedReader()
    chain = CHAINS["config"]
    extras = [extra_tier(spec, chain) for spec in args.extra_tier]
    pages = []
    for mix in MIXES:
        for n in range(args.pages):
            page = make_page(mix, args.seed + n, chain, extras)
            numbers = range(1, len(page.truth) + 1)
            for tier, data, record in page.images:
                if tier.name not in args.tiers and tier not in extras:
                    continue
                rows_of = rows_of_lines(record.rows, numbers)
                wanted = list(dict.fromkeys(row for number in numbers for row in rows_of[number]))
                classes, probs = reader.read_rows_topk(decode_image(data), record.geometry, wanted)
                index = {row: i for i, row in enumerate(wanted)}
                lines = [n for n in numbers if rows_of[n]]
                items = []
                for number in lines:
                    at = [index[row] for row in rows_of[number]]
                    items.append((classes[at], probs[at], stored_code(record.codes, number - 1)))
                pages.append({"page": f"{mix} {args.seed + n} {tier.name}", "items": items, "lines": lines,
                              "entry": page.entry, "key": KEY})  # fmt: skip
    Path(args.inputs).write_bytes(pickle.dumps(pages))
    print(f"{len(pages)} page readings saved to {args.inputs}")


def _search_page(page: dict[str, Any], hasher: _Recording) -> list[tuple[str, bool | None, list[int], str | None]]:
    terms = PageTerms.of(page["entry"], TermHasher(cast(ArchiveTxn, _Archive())))
    lines = page["lines"]
    guides = partial(lambda t, i: t.line(lines[i]), terms.new_reading()) if terms is not None else None
    read = verify_lines(page["items"], cast(LineHasher, hasher), guides=guides)
    if terms is not None:  # and as a page without an index entry reads (plain search only)
        read += verify_lines(page["items"], cast(LineHasher, hasher))
    return [(r.text, r.verified, list(r.uncertain), r.alternative) for r in read]


def search(args: argparse.Namespace) -> None:
    import optical_memory.verify

    pages = pickle.loads(Path(args.inputs).read_bytes())
    out, times = [], []
    for page in pages:
        hasher = _Recording(LineHasher(page["key"]))
        lines = _search_page(page, hasher)
        out.append({"page": page["page"], "lines": lines, "hashed": hasher.count, "digest": hasher.digest.hexdigest()})
        spans = []
        for _ in range(args.reps):
            started = time.perf_counter_ns()
            _search_page(page, _Recording(LineHasher(page["key"])))
            spans.append((time.perf_counter_ns() - started) / 1e6)
        times.append((page["page"], statistics.median(spans)))
    Path(args.results).write_bytes(pickle.dumps(out))
    print(f"code from {Path(optical_memory.verify.__file__).parent}")
    for tier in dict.fromkeys(name.split()[-1] for name, _ in times):
        for mix in dict.fromkeys(name.split()[0] for name, _ in times):
            spent = [ms for name, ms in times if name.split()[0] == mix and name.split()[-1] == tier]
            print(f"{tier:6s} {mix:12s} search ms a page: median {statistics.median(spent):6.2f}  "
                  f"total {sum(spent):7.1f} over {len(spent)} pages")  # fmt: skip


_MODULES = ("verify", "term_guide", "word_search", "escapes", "transcribe", "postings", "page_entries")


def _load_commit(commit: str, folder: Path) -> Any:
    """`commit`'s verification modules as `old_verify`, ... (imports among them renamed); its transcribe.
    A module the commit does not have (escapes before it was split from verify) its modules do not import."""
    pattern = re.compile(r"optical_memory\.(" + "|".join(_MODULES) + r")\b")
    for name in _MODULES:
        shown = subprocess.run(["git", "show", f"{commit}:optical_memory/{name}.py"], capture_output=True, text=True)
        if shown.returncode == 0:
            (folder / f"old_{name}.py").write_text(pattern.sub(r"old_\1", shown.stdout))
        elif name == "verify":
            sys.exit(f"no verification code at {commit}: {shown.stderr.strip()}")
    sys.path.insert(0, str(folder))
    return importlib.import_module("old_transcribe")


def reads(args: argparse.Namespace) -> None:
    """Full page reads (the reader's call and the verification) with `--against`'s code and this checkout's,
    alternating page by page in one process, so a shared machine's load falls on both alike."""
    from bench.bench_verify import CHAINS, KEY, MIXES, TERM_HASHER, make_page
    from optical_memory.readers.trained import TrainedReader
    from optical_memory.transcribe import transcribe_lines

    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0, 1})
    with tempfile.TemporaryDirectory() as folder:
        old = _load_commit(args.against, Path(folder))
        reader = TrainedReader()
        # each way reads with its own PageTerms (the term check is part of what is timed)
        ways = {
            args.against[:7]: (old.transcribe_lines, sys.modules["old_term_guide"].PageTerms),
            "this checkout": (transcribe_lines, PageTerms),
        }
        times: dict[tuple[str, str, str], list[float]] = {}
        for mix in MIXES:
            for n in range(args.pages):
                page = make_page(mix, args.seed + n, CHAINS["config"])
                numbers = range(1, len(page.truth) + 1)
                for tier, data, record in page.images:
                    if tier.name not in args.tiers:
                        continue
                    for read, terms in ways.values():  # warm
                        read(reader, record, data, numbers, key=KEY, terms=terms.of(page.entry, TERM_HASHER))
                    for rep in range(args.reps):
                        for label, (read, terms) in list(ways.items())[:: 1 if rep % 2 else -1]:
                            started = time.perf_counter_ns()
                            read(reader, record, data, numbers, key=KEY, terms=terms.of(page.entry, TERM_HASHER))
                            spent = (time.perf_counter_ns() - started) / 1e6
                            times.setdefault((label, tier.name, mix), []).append(spent)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores, load average {os.getloadavg()[0]:.1f}; {args.pages} pages per mix, {args.reps} reads each")
    for tier in args.tiers:
        for mix in MIXES:
            cells = []
            for label in ways:
                values = sorted(times[(label, tier, mix)])
                p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
                cells.append(f"{label} {statistics.median(values):5.1f}/{p95:5.1f}")
            print(f"{tier:6s} {mix:12s} full read p50/p95 ms: " + "   ".join(cells))


def _line_guide(terms: Any, lines: list[int], index: int) -> Any:
    return terms.line(lines[index])  # as transcribe's: the guide of the index-th line read


def searches(args: argparse.Namespace) -> None:
    """`verify_lines` alone on recorded inputs with `--against`'s code and this checkout's, alternating page by
    page in one process (each way with its own PageTerms: the term check is part of the search)."""
    if args.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0, 1})
    pages = pickle.loads(Path(args.inputs).read_bytes())
    term_hasher = TermHasher(cast(ArchiveTxn, _Archive()))
    times: dict[tuple[str, str], list[float]] = {}
    # the search is one thread: its CPU time is its cost where others share the cores (wall time counts waits)
    clock = time.thread_time_ns if args.cpu else time.perf_counter_ns
    with tempfile.TemporaryDirectory() as folder:
        _load_commit(args.against, Path(folder))
        ways = {
            args.against[:7]: (sys.modules["old_verify"].verify_lines, sys.modules["old_term_guide"].PageTerms),
            "this checkout": (verify_lines, PageTerms),
        }
        for rep in range(args.reps + 1):  # the first round warms (caches, imports) and is not timed
            for page in pages:
                for label, (verify, page_terms) in list(ways.items())[:: 1 if rep % 2 else -1]:
                    terms = None if args.plain else page_terms.of(page["entry"], term_hasher)
                    lines = page["lines"]
                    guides = partial(_line_guide, terms.new_reading(), lines) if terms is not None else None
                    started = clock()
                    verify(page["items"], LineHasher(page["key"]), guides=guides)
                    if rep:
                        times.setdefault((label, page["page"]), []).append((clock() - started) / 1e6)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores, load average {os.getloadavg()[0]:.1f}; {'plain' if args.plain else 'guided'} search, "
          f"{'CPU' if args.cpu else 'wall'} time, median of {args.reps} a page")  # fmt: skip
    old_label, new_label = ways
    names = [page["page"] for page in pages]
    for tier in dict.fromkeys(name.split()[-1] for name in names):
        for mix in dict.fromkeys(name.split()[0] for name in names):
            chosen = [name for name in names if name.split()[0] == mix and name.split()[-1] == tier]
            old = [statistics.median(times[(old_label, name)]) for name in chosen]
            new = [statistics.median(times[(new_label, name)]) for name in chosen]
            print(f"{tier:6s} {mix:12s} search ms a page, median / total: {old_label} {statistics.median(old):6.2f} / "
                  f"{sum(old):7.1f}   this checkout {statistics.median(new):6.2f} / {sum(new):7.1f}   "
                  f"total {sum(new) / sum(old):.2f}x")  # fmt: skip


def compare(args: argparse.Namespace) -> None:
    old, new = (pickle.loads(Path(p).read_bytes()) for p in (args.old, args.new))
    if [p["page"] for p in old] != [p["page"] for p in new]:
        sys.exit("the two runs read different pages: search them from the same inputs")
    lines = hashed = differ = 0
    for a, b in zip(old, new, strict=True):
        lines += len(a["lines"])
        hashed += a["hashed"]
        for number, (x, y) in enumerate(zip(a["lines"], b["lines"], strict=True), 1):
            if x != y:
                differ += 1
                print(f"{a['page']} line {number}: {x!r} -> {y!r}")
        if (a["hashed"], a["digest"]) != (b["hashed"], b["digest"]):
            differ += 1
            print(f"{a['page']}: {a['hashed']} candidates hashed -> {b['hashed']}, or in another order")
    print(f"{len(old)} page readings, {lines} lines, {hashed} candidates hashed: "
          + ("the same results and candidates" if not differ else f"{differ} differences"))  # fmt: skip
    sys.exit(1 if differ else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    rec = sub.add_parser("record", help="read bench pages and save what verification gets")
    rec.add_argument("inputs")
    rec.add_argument("--pages", type=int, default=12, help="pages per mix")
    rec.add_argument("--seed", type=int, default=7011000)
    rec.add_argument("--tiers", nargs="*", default=["cold", "frost"], help="tiers of the chain to read")
    rec.add_argument("--extra-tier", action="append", default=["ice=0.17/16"], help="colder tiers too")
    run = sub.add_parser("search", help="verify saved readings with this checkout's code")
    run.add_argument("inputs")
    run.add_argument("results")
    run.add_argument("--reps", type=int, default=3)
    timed = sub.add_parser("reads", help="time full page reads with another commit's verification and this one's")
    timed.add_argument("--against", required=True, help="a commit (its verify, term_guide, word_search, transcribe)")
    timed.add_argument("--pages", type=int, default=4, help="pages per mix")
    timed.add_argument("--reps", type=int, default=5)
    timed.add_argument("--seed", type=int, default=7011000)
    timed.add_argument("--tiers", nargs="*", default=["cold", "frost"])
    timed.add_argument("--pin", action="store_true", help="run on CPUs 0 and 1 only (2 cores)")
    alone = sub.add_parser("searches", help="time the search alone with another commit's code and this one's")
    alone.add_argument("inputs")
    alone.add_argument("--against", required=True, help="a commit (its verify, term_guide, word_search, escapes)")
    alone.add_argument("--reps", type=int, default=3)
    alone.add_argument("--plain", action="store_true", help="search as a page without an index entry")
    alone.add_argument("--pin", action="store_true", help="run on CPUs 0 and 1 only (2 cores)")
    alone.add_argument("--cpu", action="store_true", help="time the search thread's CPU time, not the wall clock")
    cmp = sub.add_parser("compare", help="do two searches agree exactly")
    cmp.add_argument("old")
    cmp.add_argument("new")
    args = parser.parse_args()
    modes = {"record": record, "search": search, "reads": reads, "searches": searches, "compare": compare}
    modes[args.mode](args)


if __name__ == "__main__":
    main()
