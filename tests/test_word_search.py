"""A segment's spellings come in `best_first`'s order, with its costs, whatever the cells' choices."""

from __future__ import annotations

import math
import random

import numpy as np

from optical_memory.alphabet import ALPHABET
from optical_memory.word_search import SEGMENT_COST, best_first, spellings


def joined(chars: str, topk: np.ndarray, costs: np.ndarray, cells: np.ndarray) -> list[tuple[float, str]]:
    """The spellings as `best_first` orders them, each joined from the reading and its changes."""
    at = cells.tolist()
    letters, rows = [], []
    for cell in at:
        ranks = [0, *(r for r in range(1, costs.shape[1]) if costs[cell, r] != math.inf)]
        letters.append([ALPHABET[topk[cell, r]] for r in ranks])
        rows.append([0.0, *(float(costs[cell, r]) for r in ranks[1:])])
    out = []
    for cost, changes in best_first(rows, SEGMENT_COST):
        spelled = list(chars)
        for slot, rank in changes:
            spelled[at[slot]] = letters[slot][rank]
        out.append((cost, "".join(spelled)))
    return out


def segment(rng: random.Random, length: int, k: int = 4) -> tuple[str, np.ndarray, np.ndarray]:
    topk = np.array([rng.sample(range(1, 60), k) for _ in range(length)], dtype=np.int64)
    costs = np.sort(
        np.array([[rng.choice([0.5, 1.0, 2.5]) * rng.random() * 12 for _ in range(k)] for _ in range(length)])
    )
    costs[:, 0] = 0.0
    costs[:, 1][::3] = costs[:, 2][::3]  # ties between a cell's ranks and across cells
    costs[rng.random() < 0.3] = np.array([0.0, *[math.inf] * (k - 1)])  # a cell with no choice left
    costs[:, -1][::2] = math.inf
    return "".join(ALPHABET[c] for c in topk[:, 0]), topk, costs


def test_spellings_are_best_firsts_in_its_order_with_its_costs() -> None:
    rng = random.Random(11)
    for _ in range(300):
        length = rng.randint(1, 14)
        chars, topk, costs = segment(rng, length)
        cells = np.sort(np.array(rng.sample(range(length), rng.randint(0, length)), dtype=np.int64))
        got = list(spellings(chars, topk, costs, cells))
        assert got == joined(chars, topk, costs, cells)  # costs equal as floats, not approximately
        assert len({spelled for _, spelled in got}) == len(got)


def test_spellings_of_a_cell_named_twice_apply_changes_in_order() -> None:
    rng = random.Random(3)
    chars, topk, costs = segment(rng, 6)
    costs[2] = [0.0, 1.0, 2.0, 3.0]
    cells = np.array([1, 2, 2, 4])
    assert list(spellings(chars, topk, costs, cells)) == joined(chars, topk, costs, cells)
