"""Speed: view, read and search timed through the facade on the measured pages (p50 and p95)."""

from __future__ import annotations

import random
import time
from typing import Any

from bench.common import percentile
from bench.results import Page
from optical_memory.memory import Memory
from optical_memory.search import terms

__all__ = ["measure_speed", "search_queries", "timed"]


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
