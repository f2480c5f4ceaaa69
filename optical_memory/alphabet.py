"""The characters a page draws as themselves, and the font that draws them.

Everything else goes through the page encoding's escape form (see `pages`). A character is in the
alphabet when the shipped font has a glyph for it, it takes exactly one cell (no combining marks, no
wide CJK forms, no controls or invisible format characters), and its glyph differs from every
character earlier in the candidate order. That last rule is what makes pages readable back exactly:
Latin `A`, Greek `Α` and Cyrillic `А` are drawn alike, so only the first one (ASCII) is drawn and the
others are escaped. The same holds for NO-BREAK SPACE versus space, and so on.

The alphabet is computed once from the font (`python -m optical_memory.alphabet`) and shipped as
`fonts/alphabet.txt`, so a page means the same thing on every machine; a test checks the file still
matches the font.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources
from pathlib import Path

__all__ = ["ALPHABET", "ESCAPE", "FONT_FILE", "alphabet", "font_path"]

FONT_FILE = "DejaVuSansMono.ttf"
ALPHABET_FILE = "alphabet.txt"

# The escape mark: CURRENCY SIGN. Rare in dialogue, in Latin-1, and drawn distinctly by the font.
ESCAPE = "\u00a4"

# Candidate blocks in priority order: ASCII first, so look-alikes elsewhere are the ones escaped.
_CANDIDATE_RANGES: tuple[tuple[int, int], ...] = (
    (0x20, 0x7E),  # ASCII printable
    (0xA1, 0xFF),  # Latin-1 supplement
    (0x100, 0x17F),  # Latin Extended-A
    (0x370, 0x3FF),  # Greek
    (0x400, 0x45F),  # Cyrillic (basic)
    (0x2010, 0x2027),  # dashes, quotes, bullets, ellipsis
    (0x2030, 0x203A),  # per mille, primes, angle quotes
    (0x20AC, 0x20AC),  # euro
    (0x2122, 0x2122),  # trade mark
    (0x2190, 0x2199),  # arrows
    (0x21D0, 0x21D4),  # double arrows
    (0x2200, 0x2209),  # for all, exists, empty set, nabla, element of
    (0x2211, 0x221E),  # sum, minus, root, proportional, infinity
    (0x2227, 0x222B),  # logic and, or, intersection, union, integral
    (0x2248, 0x2248),  # almost equal
    (0x2260, 0x2265),  # not equal, identical, less/greater or equal
    (0x2282, 0x2287),  # subset and superset
    (0x2500, 0x257F),  # box drawing
    (0x2580, 0x259F),  # block elements
    (0x25A0, 0x25CF),  # geometric shapes (part)
    (0x2713, 0x2717),  # check marks and crosses
)


def font_path() -> Path:
    """Path of the shipped monospace font (DejaVu Sans Mono, Bitstream Vera license beside it)."""
    return Path(str(resources.files("optical_memory") / "fonts" / FONT_FILE))


def _is_single_cell(ch: str) -> bool:
    category = unicodedata.category(ch)
    if category[0] in ("C", "M", "Z") and ch != " ":
        return False  # controls, format, unassigned, combining marks, separators other than space
    return unicodedata.east_asian_width(ch) not in ("W", "F")


def compute_alphabet(font_size: int = 16) -> str:
    """Derive the alphabet from the font: single-cell characters with a distinct, present glyph."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path()), font_size)
    width, height = int(font.getlength("M")) + 4, sum(font.getmetrics()) + 4

    def glyph(ch: str) -> bytes:
        image = Image.new("L", (width, height), 255)
        ImageDraw.Draw(image).text((2, 2), ch, font=font, fill=0)
        return image.tobytes()

    missing = glyph("\U0010fffd")  # a private-use code point: the font draws its .notdef box
    seen: set[bytes] = set()
    chars: list[str] = []
    for first, last in _CANDIDATE_RANGES:
        for code in range(first, last + 1):
            ch = chr(code)
            if ch == ESCAPE:
                continue  # drawn only as the escape mark; a literal one is escaped
            if not _is_single_cell(ch):
                continue
            bitmap = glyph(ch)
            if bitmap == missing or (bitmap in seen and ch != " "):
                continue
            seen.add(bitmap)
            chars.append(ch)
    chars.append(ESCAPE)
    return "".join(chars)


@functools.cache
def alphabet() -> str:
    """The drawable characters, in class order (index 0 is space), escape mark last."""
    text = (resources.files("optical_memory") / "fonts" / ALPHABET_FILE).read_text(encoding="utf-8")
    return text.rstrip("\n")


ALPHABET = alphabet()


if __name__ == "__main__":
    target = Path(__file__).parent / "fonts" / ALPHABET_FILE
    target.write_text(compute_alphabet() + "\n", encoding="utf-8")
    print(f"wrote {len(compute_alphabet())} characters to {target}")
