"""Storage and scale: archives of many pages written directly from the measured ones, then sized and probed."""

from __future__ import annotations

import multiprocessing
import random
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from bench.common import percentile
from bench.results import Page, Results
from bench.speed import timed
from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.trained import TrainedReader
from optical_memory.records import SessionRecord
from optical_memory.search import index_lines, rank, terms
from optical_memory.tiers import Tier, tier_due

__all__ = ["generate_archive", "measure_scale", "measure_storage", "probe_archive"]


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
