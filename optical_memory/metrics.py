"""How reading is scored, one definition each, used by training, the benchmarks and the tests.

* `edit_distance`: Levenshtein distance between two strings.
* `cer_per_line` (the CER the README and the benchmarks report): the summed edit distance of each
  line read against its truth, over the characters of the truth. Insertions and deletions count, so
  a reader that invents text can pass 1.0.
* `cer_per_cell`: cells read as another class, over the cells that hold a character; what the
  reader's training optimises (a cell grid has no insertions or deletions).

The two differ on the same page (a dropped trailing character is one cell error but shifts
nothing; a line's escape sequence `¤HEX;` is several cells but one character of the line), so every
figure names which one it is.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["cer", "cer_per_cell", "cer_per_line", "edit_distance"]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest single-character insertions, deletions and substitutions."""
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(truth: str, read: str) -> float:
    """Edit distance per character of `truth` for one string (0.0: exact)."""
    if not truth:
        return 0.0 if not read else 1.0
    return edit_distance(truth, read) / len(truth)


def cer_per_line(pairs: Iterable[tuple[str, str]]) -> float:
    """Summed edit distance of (truth, read) lines over the truth's characters."""
    edits = chars = 0
    for truth, read in pairs:
        edits += edit_distance(truth, read)
        chars += len(truth)
    return edits / chars if chars else 0.0


def cer_per_cell(pairs: Iterable[tuple[str, str]]) -> float:
    """Cells read wrong over cells holding a character, for (truth, read) rows of equal layout."""
    wrong = cells = 0
    for truth, read in pairs:
        width = max(len(truth), len(read))
        padded_truth, padded_read = truth.ljust(width), read.ljust(width)
        cells += sum(1 for ch in padded_truth if ch != " ")
        wrong += sum(1 for t, r in zip(padded_truth, padded_read, strict=True) if t != r)
    return wrong / cells if cells else 0.0
