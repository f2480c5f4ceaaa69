"""The verification search's faster code returns exactly what the code it replaced did.

Each reference below is the replaced code, kept as it was; the tests draw many inputs (with ties,
impossible choices and budgets that cut through ties) and compare outputs exactly, not approximately:
the search must try the same candidates in the same order, so its results and the false-verify bound
stay what they were (bench/bench_search_same.py shows the same on the bench pages).
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from optical_memory.alphabet import ALPHABET, ESCAPE
from optical_memory.escapes import canonical_text, canonical_with
from optical_memory.verify import _CODE_POINTS, MAX_COST, _candidates, _ranked_assignments
from optical_memory.word_search import (
    SEGMENT_BUDGET,
    SEGMENT_COST,
    _grown_spellings,
    _mixed_script,
    _one_script,
    _script,
    spellings,
)


def ranked_assignments_before(costs: np.ndarray, budget: int, max_cost: float = MAX_COST) -> np.ndarray:
    """`verify._ranked_assignments` as of 1963f6f (numpy scalars, a filled array a part)."""
    n, k = costs.shape
    scores = np.zeros(1)
    steps: list[tuple[np.ndarray, np.ndarray] | None] = []
    for i in range(n):
        limit = min(max_cost, scores[-1]) if len(scores) > budget else max_cost
        parts = [(scores, np.arange(len(scores)), 0)]
        for rank in range(1, k):
            cost = costs[i, rank]
            head = int(np.searchsorted(scores, limit - cost, side="right")) if cost <= limit else 0
            if head:
                parts.append((scores[:head] + cost, np.arange(head), rank))
        if len(parts) == 1:
            steps.append(None)
            continue
        total = np.concatenate([part[0] for part in parts])
        order = np.argsort(total, kind="stable")[: budget + 1]
        parents = np.concatenate([part[1] for part in parts])[order]
        ranks = np.concatenate([np.full(len(part[1]), part[2]) for part in parts])[order]
        steps.append((parents, ranks))
        scores = total[order]
    choices = np.zeros((len(scores), n), dtype=np.int64)
    at = np.arange(len(scores))
    for i in range(n - 1, -1, -1):
        step = steps[i]
        if step is not None:
            choices[:, i] = step[1][at]
            at = step[0][at]
    return choices[choices.any(axis=1)][:budget]


def search_costs(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Costs as `verify._Search` makes them: -log p relative to the best, from float32 probabilities
    (quantised, so cells tie), with impossible ranks (inf)."""
    probs = rng.dirichlet(np.full(k, rng.choice([0.05, 0.3, 1.0])), size=n).astype(np.float32)
    probs = -np.sort(-probs, axis=1)
    probs[rng.random(probs.shape) < 0.15] = 0.0
    probs[:, 0] = np.maximum(probs[:, 0], 1e-3)
    if n > 2:
        probs[1] = probs[0]  # two cells alike: their choices tie
    if n and k > 2:
        probs[-1, 1:] = probs[-1, 1]  # a cell whose alternatives tie
    p = probs.astype(np.float64)
    with np.errstate(divide="ignore"):
        costs = np.log(p[:, :1]) - np.log(p)
    costs[~np.isfinite(costs)] = np.inf
    return costs


def test_ranked_assignments_are_the_replaced_codes_exactly() -> None:
    rng = np.random.default_rng(16)
    for trial in range(400):
        n, k = int(rng.integers(0, 25)), int(rng.choice([1, 2, 3, 8]))
        costs = search_costs(rng, n, k)
        for budget in (1, 3, 64, 512, 4096) if trial % 4 == 0 else (int(rng.integers(1, 600)),):
            max_cost = MAX_COST if trial % 3 else float(rng.choice([0.5, 3.0, 40.0]))
            got = _ranked_assignments(costs, budget, max_cost)
            want = ranked_assignments_before(costs, budget, max_cost)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got, want), (trial, budget)


def candidates_before(flat: np.ndarray, topk: np.ndarray, cells: np.ndarray, ranks: np.ndarray) -> list[str]:
    """`verify._candidates` as of 9fe0d61 (class indices copied per candidate, every cell then looked up)."""
    length = len(flat)
    grid = np.broadcast_to(flat, (len(ranks), length)).copy()
    grid[:, cells] = topk[cells[None, :], ranks]
    strings: list[str] = _CODE_POINTS[grid].view(f"<U{length}")[:, 0].tolist()
    return strings


def test_candidate_strings_are_the_replaced_codes_exactly() -> None:
    """Lines of one cell or many, blanks at the end, searched cells anywhere, choices of every rank."""
    rng = np.random.default_rng(16)
    for _ in range(300):
        length, k = int(rng.integers(1, 120)), int(rng.choice([1, 2, 8]))
        topk = rng.integers(0, len(ALPHABET), size=(length, k))
        topk[rng.random(length) < 0.3, 0] = 0  # blank cells: the strings keep them, as before
        cells = rng.choice(length, size=int(rng.integers(1, min(length, 24) + 1)), replace=False)
        ranks = rng.integers(0, k, size=(int(rng.integers(1, 200)), len(cells)))
        end = int(rng.integers(int(cells.max()) + 1, length + 1))
        got = _candidates(topk[:end, 0], topk, cells, ranks)
        assert got == candidates_before(topk[:end, 0], topk, cells, ranks)
        assert all(len(text) == end for text in got)


def test_escapes_decoded_once_a_line_decode_as_every_time() -> None:
    """`escapes.canonical_with` and its kept pieces: a line's candidates share most pieces, some valid, some not,
    a space escape ending one candidate and inside the next."""
    rng = random.Random(16)
    marks = ["¤", ";", "0", "2", "3", "A", "F", "a", "G", " ", "x", "é", "¤20;", "¤301;", "¤41;", "¤E9;", "¤110000;"]
    outcomes = {None: 0, "text": 0, "space": 0}
    for _ in range(200):
        line = [rng.choice(marks) for _ in range(rng.randint(0, 14))]
        kept: dict[str, str] = {}
        for _ in range(100):
            cells = list(line)
            for _ in range(rng.randint(0, 3)):  # a candidate: a cell or a few changed
                if cells:
                    cells[rng.randrange(len(cells))] = rng.choice(marks)
            if rng.random() < 0.2:
                cells.append("¤20;")
            text = "".join(cells)
            got = canonical_with(text, kept)
            assert got == canonical_text(text), text
            outcomes["space" if got is not None and text.endswith("¤20;") else None if got is None else "text"] += 1
    assert min(outcomes.values()) > 200, outcomes  # each kind was met often
    assert ESCAPE not in "".join(kept)  # pieces are what follows a mark


_SCRIPT_OF = np.array([_script(ch) for ch in ALPHABET])


def mixed_script_before(topk: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """`word_search._mixed_script` as of 1963f6f (script names compared as strings)."""
    scripts = _SCRIPT_OF[topk]
    counts = Counter(script for script in scripts[:, 0].tolist() if script)
    if counts.total() < 2:
        return None
    most = max(counts.values())
    major = min(script for script, count in counts.items() if count == most)
    letters = counts.total()
    odd = np.flatnonzero((scripts[:, 0] != "") & (scripts[:, 0] != major) & (scripts[:, 1:] == major).any(axis=1))
    if not len(odd) or len(odd) * 2 > letters:
        return None
    return odd, np.where(scripts == major, costs, np.inf), SEGMENT_BUDGET


def test_mixed_script_words_get_the_replaced_codes_try() -> None:
    """Words of Latin, Greek and Cyrillic letters (and none), ties between scripts included."""
    rng = np.random.default_rng(16)
    by_script: dict[str, list[int]] = {}
    for index, ch in enumerate(ALPHABET):
        by_script.setdefault(_script(ch), []).append(index)
    names = sorted(by_script)
    tries = skipped = 0
    for _ in range(3000):
        n, k = int(rng.integers(0, 9)), int(rng.choice([1, 2, 8]))
        weights = rng.dirichlet(np.ones(len(names)))
        topk = np.array([[rng.choice(by_script[names[rng.choice(len(names), p=weights)]]) for _ in range(k)]
                         for _ in range(n)], dtype=np.int64).reshape(n, k)  # fmt: skip
        costs = np.sort(rng.exponential(3.0, size=(n, k)), axis=1)
        want, got = mixed_script_before(topk, costs), _mixed_script(topk, costs)
        assert (want is None) == (got is None)
        if _one_script("".join(ALPHABET[c] for c in topk[:, 0].tolist())):  # the look it is skipped on
            assert want is None
            skipped += 1
        if want is not None and got is not None:
            tries += 1
            assert np.array_equal(got[0], want[0]) and got[0].dtype == want[0].dtype
            assert np.array_equal(got[1], want[1]) and got[2] == want[2]
    assert tries > 100 and skipped > 100


def test_a_single_cells_spellings_are_the_heaps() -> None:
    """`spellings` of one doubtful cell (its own short path) against the heap walk every other segment takes:
    the same spellings, in the same order, with the same float costs, near the cost limit too."""
    rng = np.random.default_rng(16)
    for _ in range(2000):
        n, k = int(rng.integers(1, 12)), int(rng.choice([1, 2, 3, 8]))
        topk = rng.choice(len(ALPHABET), size=(n, k), replace=True)
        costs = np.sort(
            rng.choice([rng.exponential(4.0), SEGMENT_COST, 7.0, 19.9], size=(n, k)) * rng.random((n, k)) * 2, axis=1
        )
        costs[:, 0] = 0.0
        costs[rng.random((n, k)) < 0.2] = np.inf
        costs[:, 0] = 0.0
        chars = "".join(ALPHABET[c] for c in topk[:, 0])
        cell = int(rng.integers(0, n))
        finite = [r for r in range(k) if costs[cell, r] != np.inf]
        letters = [[ALPHABET[topk[cell, r]] for r in finite]]
        rows = [[0.0, *(float(costs[cell, r]) for r in finite[1:])]]
        want = list(_grown_spellings(chars, [cell], letters, rows, SEGMENT_COST))
        assert list(spellings(chars, topk, costs, np.array([cell]))) == want
