"""A line's cells and the text they stand for: the page encoding's escapes decoded, and checked well formed.

A page draws each character of the alphabet as itself and any other as an escape ``¤HEX;`` (`pages`).
The verification search (`verify`, `word_search`, `term_guide`) asks of thousands of candidate cell
strings a line whether the page encoding could have written them and, if so, what text they hold:
only that text is hashed against the line's check code.
"""

from __future__ import annotations

from itertools import islice

from optical_memory.alphabet import ALPHABET, ESCAPE

__all__ = ["canonical_text", "canonical_with"]

_DRAWN = frozenset(ALPHABET) - {ESCAPE}  # characters a cell shows as themselves
_HEX_DIGITS = "0123456789ABCDEF"  # an escape's, upper case only (`pages`)


def canonical_text(cells: str) -> str | None:
    """The text of `cells` if the page encoding could have written them (`encode_piece(text) == cells`), else None.

    Checked on the escapes alone, decoding as it goes (the search asks this of thousands of
    candidates): every escape mark starts an escape, its hex has no leading zero and names a
    character that is not drawn as itself, and ``¤20;`` (a space) only ends the piece.
    """
    return canonical_with(cells, {}) if ESCAPE in cells else cells


def _escape_text(piece: str) -> str:
    """What one piece after an escape mark (up to the next) decodes to: the escaped character and the text
    after it, or "" where the escape is not well formed (a last piece ``20;`` is `canonical_with`'s case)."""
    end = piece.find(";")
    digits = piece[:end]
    if not 1 <= end <= 6 or digits.strip(_HEX_DIGITS) or (digits[0] == "0" and end > 1):
        return ""
    value = int(digits, 16)
    if value > 0x10FFFF or chr(value) in _DRAWN:
        return ""
    return chr(value) + piece[end + 1 :]


def canonical_with(cells: str, pieces: dict[str, str]) -> str | None:
    """`canonical_text(cells)`, each piece after a mark decoded once and kept in `pieces` (a line's candidates
    share all but a piece or two: decoding every escape of every candidate was most of a plain search's
    time on lines with escapes). A last piece ``20;`` is the space that may end a line."""
    if ESCAPE not in cells:
        return cells
    split = cells.split(ESCAPE)
    last = split.pop()
    parts = [split[0]]
    for piece in islice(split, 1, None):
        text = pieces.get(piece)
        if text is None:
            text = pieces[piece] = _escape_text(piece)
        if not text:
            return None
        parts.append(text)
    text = pieces.get(last)
    if text is None:
        text = pieces[last] = _escape_text(last)
    if not text:
        if last != "20;":
            return None
        text = " "
    parts.append(text)
    return "".join(parts)
