"""Joining what `remember` returned: its spans' lines back into the exact text that was remembered."""

from __future__ import annotations

from collections.abc import Sequence

from optical_memory.results import Span

__all__ = ["join_spans"]


def join_spans(parts: Sequence[tuple[Span, Sequence[str]]]) -> str:
    """The text of consecutive spans, each given with its lines as read.

    A span's lines join with "\\n"; a span joins the next one with "" when it `continues` (one long line
    carried over to the next page) and with "\\n" otherwise. That reproduces a remembered text exactly.
    """
    out: list[str] = []
    for index, (span, lines) in enumerate(parts):
        out.append("\n".join(lines))
        if index + 1 < len(parts):
            out.append("" if span.continues else "\n")
    return "".join(out)
