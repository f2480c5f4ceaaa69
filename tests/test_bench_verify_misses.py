"""bench_verify_misses names why a line failed: the figures a next step for #16 is chosen by."""

from __future__ import annotations

import numpy as np

from bench.bench_verify_misses import KINDS, classify
from optical_memory.alphabet import ALPHABET
from optical_memory.verify import MAX_COST, SEARCH_CELLS

K = 8
COLUMNS = 40


def _reading(truth: str) -> tuple[np.ndarray, np.ndarray]:
    """A one-row reading that is right and sure everywhere: top K classes and their probabilities."""
    cells = truth.ljust(COLUMNS)
    classes = np.zeros((1, COLUMNS, K), dtype=np.int64)
    probs = np.zeros((1, COLUMNS, K), dtype=np.float32)
    others = [i for i, ch in enumerate(ALPHABET) if ch not in "abcdefgh "][:K]
    for column, ch in enumerate(cells):
        classes[0, column] = [ALPHABET.index(ch), *others[: K - 1]]
        probs[0, column] = [0.99, *([0.01 / (K - 1)] * (K - 1))]
    return classes, probs


def _misread(classes: np.ndarray, probs: np.ndarray, column: int, truth_rank: int | None, truth_prob: float) -> None:
    """Cell `column` read as another class; its truth at `truth_rank` with `truth_prob` (None: not in the top K)."""
    truth = classes[0, column, 0]
    wrong = ALPHABET.index("h")
    classes[0, column] = [wrong, *[c for c in classes[0, column] if c != truth][: K - 1]]
    probs[0, column, 0] = 0.9
    if truth_rank is not None:
        classes[0, column, truth_rank] = truth
        probs[0, column, truth_rank] = truth_prob


def test_a_truth_close_behind_the_argmax_is_in_reach() -> None:
    classes, probs = _reading("abcdefg")
    _misread(classes, probs, 2, truth_rank=1, truth_prob=0.08)
    assert classify("abcdefg", classes, probs) == (KINDS[3], 1)


def test_a_truth_outside_the_top_k_cannot_be_found() -> None:
    classes, probs = _reading("abcdefg")
    _misread(classes, probs, 2, truth_rank=1, truth_prob=0.08)
    _misread(classes, probs, 4, truth_rank=None, truth_prob=0.0)
    assert classify("abcdefg", classes, probs) == (KINDS[0], 2)


def test_a_truth_too_improbable_is_over_the_cost_cap() -> None:
    classes, probs = _reading("abcdefg")
    _misread(classes, probs, 3, truth_rank=2, truth_prob=0.9 * float(np.exp(-MAX_COST - 1)))
    assert classify("abcdefg", classes, probs) == (KINDS[1], 1)


def test_a_wrong_cell_the_reader_is_sure_of_is_not_searched() -> None:
    truth = "abcdefgabcdefgabcdefgabcdefgabcdefg"
    classes, probs = _reading(truth)
    _misread(classes, probs, 0, truth_rank=1, truth_prob=0.05)
    probs[0, 0, 0] = 0.999  # surer than every other cell
    probs[0, 1 : SEARCH_CELLS + 1, 0] = 0.6  # the SEARCH_CELLS least certain cells are others
    assert classify(truth, classes, probs) == (KINDS[2], 1)
