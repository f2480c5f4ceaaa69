"""Which cell strings the page encoding could have written: the verification search's well-formedness test."""

from __future__ import annotations

import random
import re

from optical_memory.alphabet import ALPHABET, ESCAPE
from optical_memory.pages import encode_piece
from optical_memory.verify import _canonical_text

_DRAWN = frozenset(ALPHABET) - {ESCAPE}
_ESCAPE_HEX = re.compile(ESCAPE + "([0-9A-F]{1,6});")


def by_regex(cells: str) -> str | None:
    """The test as it was written first, escape by escape with a regex (kept here to compare with)."""
    if ESCAPE not in cells:
        return cells
    parts: list[str] = []
    at = count = 0
    for match in _ESCAPE_HEX.finditer(cells):
        count += 1
        digits = match.group(1)
        value = int(digits, 16)
        if (digits[0] == "0" and len(digits) > 1) or value > 0x10FFFF:
            return None
        char = chr(value)
        if char in _DRAWN and not (value == 0x20 and match.end() == len(cells)):
            return None
        parts += (cells[at : match.start()], char)
        at = match.end()
    if count != cells.count(ESCAPE):
        return None
    parts.append(cells[at:])
    return "".join(parts)


def test_written_pieces_decode_to_their_text() -> None:
    for text in ["plain", "Dröge ", "a ", "x\u0301y", "tab\there", "\u2028 end ", "emoji \U0001f600;", "¤ mark"]:
        cells = encode_piece(text)
        assert _canonical_text(cells) == text


def test_misread_escapes_agree_with_the_regex_test() -> None:
    rng = random.Random(8)
    pieces = ["¤", ";", "0", "1", "2", "9", "A", "F", "a", "f", "G", " ", "x", "é", "¤20;", "¤301;", "¤41;", "¤110000;"]
    seen = {None: 0, "text": 0}
    for _ in range(20000):
        cells = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        got = _canonical_text(cells)
        assert got == by_regex(cells), cells
        seen["text" if got is not None and ESCAPE in cells else None] += 1
    assert seen[None] > 1000 and seen["text"] > 100  # both kinds were tried
