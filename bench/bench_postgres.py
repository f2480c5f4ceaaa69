"""The PostgreSQL archive beside LMDB's on the same machine: three writers at once, then the read path.

    python bench/bench_postgres.py [--url postgresql://...] [--entries 40] [--samples 30] [--reader trained]

For each backend: three writer processes (as three servers) remember `--entries` entries each into
their own session at once, with fading inline as `remember` does by default; every entry they were
told was stored must be in the archive exactly once, in each session's order (checked against the
spans `remember` returned), and `check()` must pass. Then one process times `read_lines` (10 lines,
through the reader), `search` and `list_pages` (20 pages), p50 and p95 of `--samples` calls each.
Without `--url`, a PostgreSQL cluster is started in a temporary folder (Debian's `postgresql`
package, as the tests do: tests/pg.py) and removed after; fsync is off there, as in the tests.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optical_memory.config import Config, load_config  # noqa: E402
from optical_memory.memory import Memory  # noqa: E402

SESSIONS = ("alpha", "beta", "gamma")
WORDS = ["archive", "page", "tier", "fade", "reader", "cursor", "schema", "vacuum", "index", "posting", "session"]


def entry_text(session: str, n: int) -> str:
    """About 900 characters over 12 lines, with words search can find (and a unique marker)."""
    lines = [f"{session} entry {n} marker{session}{n}"]
    for i in range(11):
        words = [WORDS[(n * 7 + i * 3 + k) % len(WORDS)] for k in range(10)]
        lines.append(f"{i:02d} " + " ".join(words) + f" value={n * 100 + i}")
    return "\n".join(lines)


def _config(url: str | None, folder: str | None, reader: str) -> Config:
    env = {"OPTICAL_MEMORY_READER": reader}
    if url:
        env["OPTICAL_MEMORY_ARCHIVE_URL"] = url
    return load_config(archive=folder, environ=env) if folder else load_config(environ=env)


def _writer(url: str | None, folder: str | None, session: str, entries: int, start: Any, out: str) -> None:
    memory = Memory(_config(url, folder, "template"))  # writing never reads: the reader is not loaded
    start.wait()
    began = time.perf_counter()
    acknowledged = []
    for n in range(entries):
        result = memory.remember(entry_text(session, n), session=session, title=f"{session}-{n}")
        acknowledged += [[s.page_id, s.start, s.end, f"{session}-{n}"] for s in result.spans]
    Path(out).write_text(json.dumps({"seconds": time.perf_counter() - began, "spans": acknowledged}))
    memory.close()


def write_at_once(url: str | None, folder: str | None, entries: int, work: Path) -> dict[str, Any]:
    """Three writer processes at once; returns throughput and the verification's outcome."""
    Memory(_config(url, folder, "template")).close()  # the archive exists before the writers race
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(len(SESSIONS) + 1)
    outs = {s: work / f"{s}-{uuid.uuid4().hex[:6]}.json" for s in SESSIONS}
    procs = [ctx.Process(target=_writer, args=(url, folder, s, entries, start, str(outs[s]))) for s in SESSIONS]
    for proc in procs:
        proc.start()
    start.wait()
    began = time.perf_counter()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"a writer failed (exit {proc.exitcode}); see its traceback above")
    wall = time.perf_counter() - began
    memory = Memory(_config(url, folder, "template"))
    problems = memory.archive.check()
    for session in SESSIONS:
        acknowledged = json.loads(outs[session].read_text())["spans"]
        if _entry_parts(memory, session) != acknowledged:
            problems.append(f"session {session}: stored entries differ from the acknowledged ones")
    pages = memory.archive.stat()["pages"]
    memory.close()
    total = entries * len(SESSIONS)
    return {"entries": total, "seconds": wall, "entries_per_s": total / wall, "pages": pages, "problems": problems}


def _entry_parts(memory: Memory, session: str) -> list[list[object]]:
    def collect(tx: Any) -> list[Any]:
        sess = tx.session(session)
        return [tx.page(pid) for _, pid in tx.page_ids_newest_first(sess.sid)]

    records = reversed(memory.archive.read(collect))
    return [[r.id, e.first_line, e.last_line, e.title] for r in records for e in r.entries]


def _timed(call: Callable[[], object], samples: int) -> tuple[float, float]:
    call()  # warm: the reader's model, the pool's connections, prepared statements
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def read_path(url: str | None, folder: str | None, reader: str, samples: int) -> dict[str, tuple[float, float]]:
    memory = Memory(_config(url, folder, reader))
    pages = [p.id for p in memory.list_pages(limit=200).pages]
    hot = [p.id for p in memory.list_pages(limit=200).pages if p.tier == "hot"] or pages
    turn = iter(range(10**9))
    queries = ["vacuum cursor", "marker{}{}", "schema posting value", "fade reader"]

    def read() -> object:
        return memory.read_lines(hot[next(turn) % len(hot)], 1, 10)

    def search() -> object:
        n = next(turn)
        query = queries[n % len(queries)].format(SESSIONS[n % 3], n % 10)
        return memory.search(query, limit=5)

    figures = {
        "read_lines": _timed(read, samples),
        "search": _timed(search, samples),
        "list_pages": _timed(lambda: memory.list_pages(limit=20), samples),
    }
    memory.close()
    return figures


def run(url: str, args: argparse.Namespace, work: Path) -> None:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    backends = {"lmdb": (None, str(work / "lmdb")), "postgres": (f"{url}{sep}options=-csearch_path%3D{schema}", None)}
    results: dict[str, dict[str, Any]] = {}
    for name, (backend_url, folder) in backends.items():
        writes = write_at_once(backend_url, folder, args.entries, work)
        reads = read_path(backend_url, folder, args.reader, args.samples)
        results[name] = {"writes": writes, "reads": reads}
        print(f"{name}: {json.dumps(writes)}", flush=True)
    _print_table(results, args)


def _print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    lmdb, pg = results["lmdb"], results["postgres"]
    print(f"\n3 writer processes x {args.entries} entries (~900 chars, 12 lines each), fading inline;")
    print(f"reads with the {args.reader!r} reader, {args.samples} samples each (ms):\n")
    print("| | LMDB | PostgreSQL | PostgreSQL / LMDB |")
    print("|---|---|---|---|")
    w_l, w_p = lmdb["writes"], pg["writes"]
    rates = w_l["entries_per_s"], w_p["entries_per_s"]
    print(f"| remember, 3 writers at once (entries/s) | {rates[0]:.1f} | {rates[1]:.1f} | {rates[1] / rates[0]:.2f} |")
    for op in ("read_lines", "search", "list_pages"):
        (l50, l95), (p50, p95) = lmdb["reads"][op], pg["reads"][op]
        print(f"| {op} p50 / p95 | {l50:.1f} / {l95:.1f} | {p50:.1f} / {p95:.1f} | {p50 / l50:.2f} / {p95 / l95:.2f} |")
    for name, result in results.items():
        problems = result["writes"]["problems"]
        verdict = "none lost or duplicated, order kept, check() clean" if not problems else "; ".join(problems)
        print(f"\n{name}: {result['writes']['entries']} entries on {result['writes']['pages']} pages: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL to use (default: start one in a temporary folder)")
    parser.add_argument("--entries", type=int, default=40, help="entries per writer (default 40)")
    parser.add_argument("--samples", type=int, default=30, help="timed calls per read operation (default 30)")
    parser.add_argument("--reader", default="trained", help="reader for read_lines and search (default trained)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp:
        if args.url:
            run(args.url, args, Path(tmp))
            return
        from tests.pg import local_server

        with local_server() as url:
            run(url, args, Path(tmp))


if __name__ == "__main__":
    main()
