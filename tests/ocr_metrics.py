"""Character error rate: what the OCR tests measure a reader by."""

from __future__ import annotations

__all__ = ["cer", "edit_distance"]


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest single-character insertions, deletions and substitutions."""
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
    """Edit distance per character of `truth` (0.0: exact; can pass 1.0 when a reader invents text)."""
    if not truth:
        return 0.0 if not read else 1.0
    return edit_distance(truth, read) / len(truth)
