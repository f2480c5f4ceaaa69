"""The benchmark, in one run: fidelity per tier and reader, speed, storage, scale; a markdown report and plots.

    python bench/run.py                       # full run (the lead's numbers; several minutes)
    python bench/run.py --quick               # a reduced run to check that everything works
    python bench/run.py --corpus ~/notes --readers trained,rapidocr,tesseract,deepseek --scale-pages 100000

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
import multiprocessing
import random
import resource
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import TesseractReader, corpus_entries, machine, percentile, text_tokens
from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.checkcode import line_key
from optical_memory.config import Config, load_config
from optical_memory.errors import OpticalMemoryError
from optical_memory.memory import Memory
from optical_memory.metrics import edit_distance
from optical_memory.pages import plan_entry
from optical_memory.readers import load_reader
from optical_memory.readers.base import Reader
from optical_memory.readers.trained import TrainedReader
from optical_memory.records import PageRecord, SessionRecord
from optical_memory.render import Geometry
from optical_memory.search import index_lines, rank, terms
from optical_memory.tiers import Tier, demote, tier_due
from optical_memory.tokens import claude_image_tokens, deepseek_vision_tokens
from optical_memory.transcribe import transcribe_lines

SLOW_READERS = ("rapidocr", "tesseract", "deepseek")  # read on a few pages only (RapidOCR ~0.1 s a row)


@dataclass
class Page:
    """A sealed page of the run: its hot record, and its image and geometry at every tier."""

    record: PageRecord
    truth: dict[int, str]  # line number -> the line's text on this page
    images: list[tuple[bytes, Geometry]]  # per tier, hot first
    tokens: int  # BPE tokens of the page's text

    @property
    def characters(self) -> int:
        return sum(len(text) for text in self.truth.values())


@dataclass
class Fidelity:
    reader: str
    tier: Tier
    status: str = ""  # why the reader was not run ("not installed", "unavailable"); empty when it was
    pages: int = 0
    lines: int = 0
    exact: int = 0
    chars: int = 0
    edits: int = 0
    tokens: int = 0
    deepseek: int = 0
    claude: int = 0
    px_per_char: float = 0.0
    read_ms: dict[int, float] = field(default_factory=dict)  # page index -> ms to read all its lines

    @property
    def cer(self) -> float:
        return self.edits / max(1, self.chars)

    @property
    def exact_rate(self) -> float:
        return self.exact / max(1, self.lines)


@dataclass
class Results:
    command: str
    machine: dict[str, str]
    corpus: str
    tiers: tuple[Tier, ...]
    pages: list[Page] = field(default_factory=list)
    fidelity: list[Fidelity] = field(default_factory=list)
    speed: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # name -> (p50 ms, p95 ms, n)
    remember: dict[str, float] = field(default_factory=dict)
    storage: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)


# pages ----------------------------------------------------------------------------------------------


def remember_pages(memory: Memory, entries: list[str], session: str, results: Results) -> dict[str, dict[int, str]]:
    """Remember every entry (timed) and return each page's line texts, from the facade's own planning."""
    truth: dict[str, dict[int, str]] = {}
    elapsed = 0.0
    for entry in entries:
        state = memory.archive.read(lambda tx: tx.session(session))
        open_page = state is not None and state.open_page is not None
        plans = plan_entry(
            entry.split("\n"),
            lambda continued: "",  # the header's text does not move any line: it is one row either way
            memory.config.page,
            open_rows=state.open_rows if open_page and state else None,
            open_lines=state.open_lines if open_page and state else 0,
        )
        start = time.perf_counter()
        result = memory.remember(entry, session=session, role="user")
        elapsed += time.perf_counter() - start
        for span, plan in zip(result.spans, plans, strict=True):
            lines = truth.setdefault(span.page_id, {})
            lines.update(zip(range(span.start, span.end + 1), plan.pieces, strict=False))
    stat = memory.archive.stat()
    results.remember = {
        "pages": stat["pages"],
        "seconds": elapsed,
        "pages_per_s": stat["pages"] / elapsed,
        "bytes_on_disk": stat["bytes_on_disk"],
    }
    return truth


def _stored(tx: ArchiveTxn, page_id: str) -> tuple[PageRecord, bytes]:
    record, data = tx.page(page_id), tx.image(page_id)
    assert record is not None and data is not None, f"page {page_id} is incomplete"
    return record, data


def fade_pages(memory: Memory, truth: dict[str, dict[int, str]], tiers: tuple[Tier, ...]) -> list[Page]:
    """Each sealed page's image at every tier, made by `tiers.demote` one step at a time as fading does."""
    pages = []
    ids = memory.archive.read(lambda tx: [page_id for _, page_id in tx.page_ids_newest_first()])
    # the check codes were made with this archive's key: copies written into other archives carry it
    source_key = memory.archive.read(lambda tx: line_key(tx.archive_key()))
    for page_id in reversed(ids):
        record, data = memory.archive.read(partial(_stored, page_id=page_id))
        if not record.sealed:
            continue
        record.codes_key = source_key
        geometry = record.geometry
        images = [(data, geometry)]
        for tier in tiers[1:]:
            data, geometry = demote(data, geometry, tier)
            images.append((data, geometry))
        lines = truth[page_id]
        text = "\n".join(lines[n] for n in sorted(lines))
        pages.append(Page(record, lines, images, text_tokens(text)))
    return pages


# fidelity -------------------------------------------------------------------------------------------


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


# speed ----------------------------------------------------------------------------------------------


def timed(fn: Any, args: list[Any]) -> list[float]:
    times = []
    for arg in args:
        start = time.perf_counter()
        fn(arg)
        times.append(1000 * (time.perf_counter() - start))
    return times


def search_queries(pages: list[Page], count: int, seed: int = 11) -> list[str]:
    """Queries an agent might send: one or two terms (identifiers, words, numbers) from remembered lines."""
    rng = random.Random(seed)
    lines = [text for page in pages for text in page.truth.values()]
    queries: list[str] = []
    while len(queries) < count and lines:
        found = [t for t in dict.fromkeys(terms(rng.choice(lines))) if len(t) >= 4 and not t.isdigit()]
        if found:
            queries.append(" ".join(rng.sample(found, min(len(found), rng.choice((1, 2))))))
    return queries


def measure_speed(
    memory: Memory, pages: list[Page], queries: list[str], reps: int
) -> dict[str, tuple[float, float, int]]:
    ids = [page.record.id for page in pages]
    memory.read_lines(ids[0])  # the model loads outside the timing
    measured = {
        "view_page (full page)": timed(memory.view_page, ids * reps),
        "read_lines, trained (full page)": timed(memory.read_lines, ids * max(1, reps // 2)),
        "search, trained (top 10, lines read)": timed(lambda q: memory.search(q, limit=10), queries),
    }
    return {name: (percentile(t, 0.5), percentile(t, 0.95), len(t)) for name, t in measured.items()}


# storage --------------------------------------------------------------------------------------------


def measure_storage(results: Results, workdir: Path) -> None:
    """Bytes per character and per token at each tier; then 1M text tokens of history written and measured."""
    pages, tiers = results.pages, results.tiers
    chars = sum(page.characters for page in pages)
    tokens = sum(page.tokens for page in pages)
    for index, tier in enumerate(tiers):
        size = sum(len(page.images[index][0]) for page in pages)
        results.storage[f"{tier.name}.bytes_per_char"] = size / chars
        results.storage[f"{tier.name}.bytes_per_token"] = size / tokens
        results.storage[f"{tier.name}.kib_per_page"] = size / len(pages) / 1024
    # One session long enough for 1M tokens, each page at the tier its rank gives (as if every page were
    # younger than any after_days), written with its records, indexes and search postings, then measured.
    n_pages = -(-1_000_000 * len(pages) // tokens)
    path = workdir / "one-million-tokens"
    generate_archive(path, pages, n_pages, n_pages, tiers)
    images = sum(len(pages[k % len(pages)].images[tier_due(tiers, n_pages - 1 - k, 0.0)][0]) for k in range(n_pages))
    on_disk = sum(f.stat().st_size for f in path.glob("*.mdb"))
    results.storage.update(
        tokens_per_page=tokens / len(pages), pages_1m=n_pages, bytes_1m=on_disk, image_bytes_1m=images
    )


# scale ----------------------------------------------------------------------------------------------


def generate_archive(
    path: Path, pages: list[Page], n_pages: int, per_session: int, tiers: tuple[Tier, ...], progress: bool = False
) -> float:
    """Write `n_pages` sealed pages (copies of `pages`, each at the tier its rank gives) directly; seconds."""
    archive = Archive(path)  # the default map (a sparse reservation): no growth retries on the way
    stamp = "2026-01-01T00:00:00Z"
    start = time.perf_counter()
    batch = 500  # pages per write transaction: one fsync per batch, not per page
    done = 0
    while done < n_pages:

        def write(tx: ArchiveTxn, first: int = done) -> int:
            written = 0
            for k in range(first, min(first + batch, n_pages)):
                session, position = f"s{k // per_session}", k % per_session
                sess = tx.session(session) or SessionRecord(sid=tx.next_session_id(), created=stamp, updated=stamp)
                in_session = min(per_session, n_pages - (k - position))
                tier = tier_due(tiers, in_session - 1 - position, 0.0)
                template = pages[k % len(pages)]
                data, geometry = template.images[tier]
                page_id, number = tx.next_page_id()
                record = replace(
                    template.record, id=page_id, number=number, session=session, tier=tier,
                    codec=tiers[tier].codec, geometry=geometry,
                )  # fmt: skip
                record.stored(data)
                tx.put_page(record)
                tx.put_image(page_id, data)
                tx.add_page_to_indexes(sess.sid, number, page_id)
                index_lines(tx, sess.sid, number, 1, [template.truth[n] for n in sorted(template.truth)])
                sess.pages += 1
                tx.put_session(session, sess)
                written += 1
            return written

        done += archive.write(write)
        if progress and done % 10_000 < batch:
            print(f"  scale: {done:,} / {n_pages:,} pages, {time.perf_counter() - start:.0f} s", flush=True)
    archive.close()
    return time.perf_counter() - start


def status_mib(field: str) -> float | None:
    """A memory figure of this process from /proc/self/status (Linux), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """This process's peak RSS. Linux keeps ru_maxrss across fork and exec (a child would report its
    parent's peak), so VmHWM, the peak of this process's own memory map, is read where it exists."""
    peak = status_mib("VmHWM")
    if peak is not None:
        return peak
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20


def probe_archive(path: str, config_path: str | None, queries: list[str], reps: int) -> dict[str, float]:
    """Open an archive in this (fresh) process and time what a server does first: runs in a child."""
    before = peak_rss_mib()
    start = time.perf_counter()
    config = load_config(config_path, archive=path, environ={})
    archive = Archive(path, config.archive.map_size_mib, config.archive.max_map_size_mib)
    memory = Memory(config, archive=archive, reader=TrainedReader())
    opened = 1000 * (time.perf_counter() - start)
    total = archive.stat()["pages"]
    rng = random.Random(5)
    cursors = [None] + [f"p{rng.randint(2, total)}" for _ in range(reps - 1)]
    listing = timed(lambda cursor: memory.list_pages(cursor=cursor, limit=20), cursors)
    memory.read_lines(f"p{total}")  # the model loads outside the timing
    searching = timed(lambda q: memory.search(q, limit=10), queries)
    ranking = timed(lambda q: archive.read(lambda tx: rank(tx, list(dict.fromkeys(terms(q))), None, 10)), queries)
    peak = peak_rss_mib()
    # RSS counts the archive's memory-mapped file pages a query touched; they are the OS's page
    # cache, shared and reclaimable. RssAnon is the process's own memory.
    anon = status_mib("RssAnon")
    files = list(Path(path).glob("*.mdb"))
    memory.close()
    return {
        "pages": total,
        "open_ms": opened,
        "list_p50_ms": percentile(listing, 0.5),
        "list_p95_ms": percentile(listing, 0.95),
        "search_p50_ms": percentile(searching, 0.5),
        "search_p95_ms": percentile(searching, 0.95),
        "rank_p50_ms": percentile(ranking, 0.5),
        "rank_p95_ms": percentile(ranking, 0.95),
        "rss_mib": peak,
        "rss_before_mib": before,
        "rss_anon_mib": anon if anon is not None else float("nan"),
        "bytes_on_disk": sum(f.stat().st_blocks * 512 for f in files),
        "file_bytes": sum(f.stat().st_size for f in files),
    }


def measure_scale(results: Results, workdir: Path, n_pages: int, config_path: str | None, queries: list[str]) -> None:
    path = workdir / "scale"
    per_session = 1000  # a long-running agent's session; ranks past 128 are cold under the default tiers
    seconds = generate_archive(path, results.pages, n_pages, per_session, results.tiers, progress=True)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        probe = pool.submit(probe_archive, str(path), config_path, queries, 30).result()
    results.scale = {
        **probe,
        "generate_s": seconds,
        "sessions": -(-n_pages // per_session),
        "templates": len(results.pages),
    }


# the run --------------------------------------------------------------------------------------------


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
