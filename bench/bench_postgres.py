"""The PostgreSQL archive beside LMDB's on the same machine: three writers at once, then the read path.

    python bench/bench_postgres.py [--url postgresql://...] [--entries 40] [--samples 30] [--reader trained]

For each backend: three writer processes (as three servers) remember `--entries` entries each into
their own session at once, with fading inline as `remember` does by default; every entry they were
told was stored must be in the archive exactly once, in each session's order (checked against the
spans `remember` returned), and `check()` must pass. Then one process times `read_lines` (10 lines,
through the reader), `search` and `list_pages` (20 pages), p50 and p95 of `--samples` calls each,
the two backends' calls interleaved so both meet the same load on a shared machine.
Without `--url`, a PostgreSQL cluster is started in a temporary folder (Debian's `postgresql`
package, as the tests do: `optical_memory.postgres.local_server`) and removed after; fsync is off there,
as in the tests.
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


def _operations(memory: Memory) -> dict[str, Callable[[int], object]]:
    """The timed read calls over one archive; the n-th call of each asks the same on every backend."""
    pages = memory.list_pages(limit=200).pages
    hot = [p.id for p in pages if p.tier == "hot"] or [p.id for p in pages]
    queries = ["vacuum cursor", "marker{}{}", "schema posting value", "fade reader"]
    return {
        "read_lines": lambda n: memory.read_lines(hot[n % len(hot)], 1, 10),
        "search": lambda n: memory.search(queries[n % len(queries)].format(SESSIONS[n % 3], n % 10), limit=5),
        "list_pages": lambda n: memory.list_pages(limit=20),
    }


def read_paths(backends: dict[str, tuple[str | None, str | None]], reader: str, samples: int) -> dict[str, Any]:
    """p50 and p95 (ms) of each read call on each backend, the backends' calls interleaved one by one so
    both meet the same load (this machine is shared: a backend timed alone would meet other load)."""
    memories = {name: Memory(_config(url, folder, reader)) for name, (url, folder) in backends.items()}
    operations = {name: _operations(memory) for name, memory in memories.items()}
    times: dict[str, dict[str, list[float]]] = {name: {op: [] for op in operations[name]} for name in memories}
    for op in ("read_lines", "search", "list_pages"):
        for n in range(-1, samples):  # n = -1 warms: the reader's model, the pool, prepared statements
            for name in memories:
                began = time.perf_counter()
                operations[name][op](max(n, 0))
                if n >= 0:
                    times[name][op].append((time.perf_counter() - began) * 1000)
    for memory in memories.values():
        memory.close()
    return {name: {op: _percentiles(values) for op, values in ops.items()} for name, ops in times.items()}


def _percentiles(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def run(url: str, args: argparse.Namespace, work: Path) -> None:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    backends = {"lmdb": (None, str(work / "lmdb")), "postgres": (f"{url}{sep}options=-csearch_path%3D{schema}", None)}
    results: dict[str, dict[str, Any]] = {}
    for name, (backend_url, folder) in backends.items():
        results[name] = {"writes": write_at_once(backend_url, folder, args.entries, work)}
        print(f"{name}: {json.dumps(results[name]['writes'])}", flush=True)
    for name, reads in read_paths(backends, args.reader, args.samples).items():
        results[name]["reads"] = reads
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
        from optical_memory.postgres.local_server import local_server

        with local_server() as url:
            run(url, args, Path(tmp))


if __name__ == "__main__":
    main()
