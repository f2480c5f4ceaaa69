"""Recall and cost of search on a coding agent's history with planted facts (`bench.agent_history`).

    python -m bench.bench_search                           # 1M text tokens, 200 facts, default config
    python -m bench.bench_search --tokens 100000 --facts 40 --reader template   # a quick check

Remembers the history (every turn one `remember`, pages fading by the default policy as they seal),
then searches each fact's query and prints:
* recall: the share of queries whose first hit's passage holds the fact's line, and whose top 10 do
  (a hit folded from other pages counts for them too); also whether the line is one of the hit's
  matching lines rather than its context;
* the index: its bytes in LMDB (every sub-database that holds postings or page terms) per 1M text
  tokens;
* latency: `search` p50/p95 (ranking and reading the passages' lines) and `rank` alone.

It runs on any version of the library that has `Memory.search` (older ones return one line per hit
and have no `context`), so the same command measures before and after a change: run it in a
checkout of the older commit with this file and `agent_history.py` copied in.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.agent_history import agent_history, fact_locations
from bench.common import machine, percentile
from optical_memory import search
from optical_memory.config import load_config
from optical_memory.memory import Memory

INDEX_DATABASES = ("postings", "page_terms", "term_blocks")


def remember_history(memory: Memory, history: Any) -> tuple[dict[int, list[tuple[str, int]]], float]:
    """Remember every turn; returns where each fact's line landed, and the seconds it took."""
    where: dict[int, list[tuple[str, int]]] = {}
    start = time.perf_counter()
    for index, turn in enumerate(history.turns):
        result = memory.remember(
            turn.text, session=turn.session, role=turn.role, title=turn.title, said_at=turn.said_at
        )
        for n, fact in enumerate(history.facts):
            if fact.turn == index:
                spans = [(s.page_id, s.start, s.end, s.continues) for s in result.spans]
                where[n] = fact_locations(spans, fact.line_index)
    return where, time.perf_counter() - start


def index_bytes(memory: Memory) -> dict[str, int]:
    """Bytes of LMDB pages each index database holds."""
    archive: Any = memory.archive
    out = {}
    with archive.env.begin() as txn:
        for name in INDEX_DATABASES:
            if name in archive._dbs:
                stat = txn.stat(archive._dbs[name])
                out[name] = stat["psize"] * (stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"])
    return out


def position(hits: list[Any], places: list[tuple[str, int]], matching: bool) -> int | None:
    """0-based rank of the first hit holding one of `places` (as a matching line if `matching`)."""
    for rank, hit in enumerate(hits):
        matches = getattr(hit, "matches", None) or [hit.start]  # older hits: one line, start == end
        for page_id, line in places:
            on_page = hit.page_id == page_id or page_id in getattr(hit, "also_on", [])
            inside = line in matches if matching else hit.start <= line <= hit.end
            if on_page and (inside or hit.page_id != page_id):
                return rank
    return None


def _best_line(hit: Any) -> str:
    """The text of a hit's best matching line (older hits hold just that line)."""
    matches = getattr(hit, "matches", None)
    return next((line.text for line in hit.lines if line.number == matches[0]), "") if matches else hit.lines[0].text


def query_all(memory: Memory, history: Any, where: dict[int, list[tuple[str, int]]], context: int | None) -> dict:
    options = {} if context is None else {"context": context}
    timings, rank_ms, found, failures = [], [], [], []
    for n, fact in enumerate(history.facts):
        start = time.perf_counter()
        hits = memory.search(fact.query, limit=10, **options).hits
        timings.append(1000 * (time.perf_counter() - start))
        wanted = list(dict.fromkeys(search.terms(fact.query)))
        start = time.perf_counter()
        memory.archive.read(lambda tx, w=wanted: search.rank(tx, w, None, 30))
        rank_ms.append(1000 * (time.perf_counter() - start))
        at, matched = position(hits, where[n], False), position(hits, where[n], True)
        found.append((fact.kind, at, matched))
        if at != 0:
            first = _best_line(hits[0]) if hits else "(no hits)"
            failures.append({"query": fact.query, "fact": fact.line, "rank": at, "first": first[:120]})
    total = len(found)
    return {
        "queries": total,
        "first": sum(at == 0 for _, at, _ in found) / total,
        "top10": sum(at is not None for _, at, _ in found) / total,
        "first_matching": sum(m == 0 for _, _, m in found) / total,
        "top10_matching": sum(m is not None for _, _, m in found) / total,
        "by_kind_first": {
            kind: round(sum(at == 0 for k, at, _ in found if k == kind) / count, 3)
            for kind, count in sorted(Counter(k for k, _, _ in found).items())
        },
        "search_p50_ms": percentile(timings, 0.5),
        "search_p95_ms": percentile(timings, 0.95),
        "rank_p50_ms": percentile(rank_ms, 0.5),
        "rank_p95_ms": percentile(rank_ms, 0.95),
        "failures": failures,
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    history = agent_history(args.tokens, args.facts, args.seed)
    config = load_config(args.config, archive=workdir / "archive", environ={})
    if args.reader:
        config = replace(config, reader=args.reader)
    if args.hot_only:  # no fading: quicker, for checking ranking alone
        config = replace(config, tiers=config.tiers[:1])
    memory = Memory(config)
    print(f"remembering {len(history.turns):,} turns ({history.tokens:,} text tokens) ...", flush=True)
    where, seconds = remember_history(memory, history)
    memory.fade()
    sizes = index_bytes(memory)
    per_million = 1_000_000 / history.tokens
    try:  # versions before passages have no `context`
        memory.search(history.facts[0].query, context=args.context)
        context: int | None = args.context
    except TypeError:
        context = None
    print(f"searching {len(history.facts)} facts (context {context}) ...", flush=True)
    memory.read_lines(f"p{memory.archive.stat()['pages']}", 1, 1)  # the reader loads outside the timing
    recall = query_all(memory, history, where, context)
    if context:  # the same queries for bare lines: what passages cost over the lines alone
        bare = query_all(memory, history, where, 0)
        recall |= {f"context0_{key}": bare[key] for key in ("first", "top10", "search_p50_ms", "search_p95_ms")}
    stat = memory.archive.stat()
    memory.close()
    return {
        "machine": machine(),
        "command": " ".join(["python -m bench.bench_search", *sys.argv[1:]]),
        "tokens": history.tokens,
        "characters": history.characters,
        "turns": len(history.turns),
        "pages": stat["pages"],
        "remember_s": round(seconds, 1),
        "archive_bytes": stat["bytes_on_disk"],
        "index_bytes": sizes,
        "index_bytes_per_1m_tokens": round(sum(sizes.values()) * per_million),
        "context": context,
        **recall,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="text tokens of history (UTF-8 bytes / 4)")
    parser.add_argument("--facts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--context", type=int, default=2, help="lines around each hit, where search has it")
    parser.add_argument("--reader", default=None, help="reader name (default: the config's, the trained reader)")
    parser.add_argument("--hot-only", action="store_true", help="keep every page hot (no fading): quicker")
    parser.add_argument("--config", default=None, help="a config TOML (default: the defaults)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the archive goes (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = run(args, Path(tmp))
    failures = results.pop("failures")
    for failure in failures[:20]:
        print(f"  not first ({failure['rank']}): {failure['query']!r}\n    fact:  {failure['fact']}")
        print(f"    first: {failure['first']}")
    print(json.dumps(results, indent=1))
    print(
        f"recall: first {results['first']:.1%}, top 10 {results['top10']:.1%} of {results['queries']} queries; "
        f"index {results['index_bytes_per_1m_tokens'] / 2**20:.1f} MiB per 1M tokens; search p50/p95 "
        f"{results['search_p50_ms']:.1f} / {results['search_p95_ms']:.1f} ms, rank {results['rank_p50_ms']:.1f} / "
        f"{results['rank_p95_ms']:.1f} ms"
    )
    if args.json:
        args.json.write_text(json.dumps({**results, "failures": failures}, indent=1), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
