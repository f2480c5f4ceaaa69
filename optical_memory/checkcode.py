"""Check codes: a few keyed-hash bytes per line piece, kept with the page, that tell an exact reading.

When a line is remembered, the writer stores `line_code(key, piece)` for every line piece on the page
(the exact text of that line as it lies on that page: a line split across two pages has one piece on
each). When the page is read back, a reading whose code matches is the text that was written, up to
the chance of a collision; one that does not match is certainly wrong (`optical_memory.verify`).

Why keyed (blake2b with a per-archive secret): a code is not the text and, without the key, not even
a test of a guess at the text, so exported codes leak nothing that can be checked offline. Why
`CODE_BYTES` = 6: a wrong candidate matches with probability 2^-48, so verified decoding, which tries
at most `verify.MAX_CANDIDATES` (+1 for the argmax reading) candidates per line, marks a wrong line
verified with probability at most 4,097 / 2^48 = 1.5e-11 per line: under one in 10^4 over a billion
lines read. Six bytes on a 64-row page of 60 lines is 360 bytes, about 1 % of a frost page's image.

    key = line_key(tx.archive_key())           # once per archive
    record.codes = codes_for(key, plan.pieces)  # per page, in line order
    code_at(record.codes, number - 1)           # the code of line `number`
    record.parts = part_codes_for(key, plan.pieces)  # per line: a PART_BITS code per PART_CELLS cells

Part codes (below) let a failing line be searched run by run (`part_search`); they never mark a line
verified: the line code does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from optical_memory.pages import encode_piece

__all__ = [
    "CODE_BYTES",
    "LINE_CODES",
    "PART_BITS",
    "PART_CELLS",
    "LineHasher",
    "PartHasher",
    "code_at",
    "codes_for",
    "derive_key",
    "line_code",
    "line_key",
    "pack_parts",
    "part_codes_for",
    "unpack_parts",
]

CODE_BYTES = 6
LINE_CODES = "line-codes"  # the purpose of the key line codes are made with
_DERIVE_PERSON = b"om-derive-v1"  # blake2b personalisation: derived keys never collide with line codes
_LINE_PERSON = b"om-line-v1"


def _check_key(key: object, what: str) -> bytes:
    if not isinstance(key, bytes | bytearray) or not 16 <= len(key) <= 64:
        shown = f"{len(key)} bytes" if isinstance(key, bytes | bytearray) else type(key).__name__
        raise ValueError(f"{what} must be 16 to 64 bytes, got {shown}")
    return bytes(key)


def derive_key(archive_key: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose (e.g. `LINE_CODES`), derived from the archive's secret key."""
    archive_key = _check_key(archive_key, "the archive key")
    if not isinstance(purpose, str) or not purpose:
        raise ValueError(f"purpose must be a non-empty string, got {purpose!r}")
    return hashlib.blake2b(purpose.encode("utf-8"), key=archive_key, digest_size=32, person=_DERIVE_PERSON).digest()


def line_key(archive_key: bytes) -> bytes:
    """The key line codes are made with: `derive_key(archive_key, LINE_CODES)`."""
    return derive_key(archive_key, LINE_CODES)


def _text_bytes(text: str) -> bytes:
    # surrogatepass: a lone surrogate is valid text in a page (it is written escaped) and must hash too
    return text.encode("utf-8", "surrogatepass")


def line_code(key: bytes, text: str) -> bytes:
    """`CODE_BYTES` bytes: keyed blake2b of the exact UTF-8 of one line piece as it lies on one page."""
    key = _check_key(key, "a line-code key")
    return hashlib.blake2b(_text_bytes(text), key=key, digest_size=CODE_BYTES, person=_LINE_PERSON).digest()


class LineHasher:
    """`line_code` for many texts under one key: the keyed state is made once and copied (verify's hot loop)."""

    def __init__(self, key: bytes) -> None:
        key = _check_key(key, "a line-code key")
        self._keyed = hashlib.blake2b(key=key, digest_size=CODE_BYTES, person=_LINE_PERSON)

    def code(self, text: str) -> bytes:
        h = self._keyed.copy()
        h.update(text.encode("utf-8", "surrogatepass"))  # `_text_bytes`, inlined: verify calls this per candidate
        return h.digest()


def codes_for(key: bytes, pieces: Iterable[str]) -> bytes:
    """The codes of a page's line pieces, concatenated in line order (`CODE_BYTES` each)."""
    hasher = LineHasher(key)
    return b"".join(hasher.code(piece) for piece in pieces)


def code_at(codes: bytes, index: int) -> bytes:
    """The code of the line at 0-based `index` (line number - 1) in concatenated `codes`."""
    count = len(codes) // CODE_BYTES
    if len(codes) % CODE_BYTES:
        raise ValueError(f"check codes are {CODE_BYTES} bytes each; got {len(codes)} bytes, not a multiple")
    if not 0 <= index < count:
        raise IndexError(f"no check code at index {index}: the page has codes for indices 0..{count - 1}")
    return codes[index * CODE_BYTES : (index + 1) * CODE_BYTES]


NO_CODE = bytes(CODE_BYTES)  # stored for a line written before codes existed; read as "no code"


def stored_code(codes: bytes | None, index: int) -> bytes | None:
    """The code of the line at 0-based `index`, or None where the page keeps none for it.

    A real code is all zeros with probability 2^-48; such a line reads as unverifiable, never wrong.
    """
    if codes is None or not 0 <= index < len(codes) // CODE_BYTES:
        return None
    code = code_at(codes, index)
    return None if code == NO_CODE else code


# Part codes: PART_BITS of a keyed hash over each run of PART_CELLS cells of a line as laid out (its escape form,
# `pages.encode_piece`, padded with blanks to whole runs). A frost line the reader misreads in a few places fails
# its line code, and the search must then find every wrong cell at once among the products of their
# alternatives; with a code per run each run is searched alone and the runs' few survivors combined (`part_search`).
# 12 bits over 10 cells is 1.2 bits a character: far below what a key, a hash or a name carries (4-6 bits a
# character), so the codes cannot rebuild one; prose carries about as much under a strong language model, so
# with the key (kept in the archive, beside the page images that hold the text anyway) they could help guess
# a prose line. With the page's image they pick among the reader's few alternatives. The line code alone
# still marks a line verified.
PART_CELLS = 10  # both part of the stored format: other values need another record key than `parts`
PART_BITS = 12
_PART_PERSON = b"om-part-v1"
_PART_SHIFT = 32 - PART_BITS


class PartHasher:
    """The part codes of runs of a line's cells under one key (`line_key`'s key, another personalisation)."""

    def __init__(self, key: bytes) -> None:
        key = _check_key(key, "a line-code key")
        self._keyed = hashlib.blake2b(key=key, digest_size=4, person=_PART_PERSON)

    def code(self, index: int, run: str) -> int:
        """The code of the `index`-th run (0-based) whose PART_CELLS cells are `run`: PART_BITS bits."""
        h = self._keyed.copy()
        h.update(index.to_bytes(2, "little") + run.encode("utf-8", "surrogatepass"))
        return int.from_bytes(h.digest(), "big") >> _PART_SHIFT


def _runs(cells: str) -> list[str]:
    count = -(-len(cells) // PART_CELLS)
    padded = cells.ljust(count * PART_CELLS)
    return [padded[i * PART_CELLS : (i + 1) * PART_CELLS] for i in range(count)]


def pack_parts(codes: list[int]) -> bytes:
    """PART_BITS-bit codes -> bytes, big-endian bit order, the last byte padded with zero bits."""
    value = 0
    for code in codes:
        value = value << PART_BITS | code
    bits = len(codes) * PART_BITS
    size = -(-bits // 8)
    return (value << (size * 8 - bits)).to_bytes(size, "big")


def unpack_parts(data: bytes) -> list[int]:
    """`pack_parts`'s inverse: the count is the whole codes the bytes hold (padding is under 8 bits)."""
    count = len(data) * 8 // PART_BITS
    value = int.from_bytes(data, "big") >> (len(data) * 8 - count * PART_BITS)
    mask = (1 << PART_BITS) - 1
    return [value >> (PART_BITS * (count - 1 - i)) & mask for i in range(count)]


def part_codes_for(key: bytes, pieces: Iterable[str]) -> list[bytes]:
    """Each line piece's part codes, packed (`pack_parts`): one run of PART_CELLS cells after another."""
    hasher = PartHasher(key)
    return [pack_parts([hasher.code(i, run) for i, run in enumerate(_runs(encode_piece(piece)))]) for piece in pieces]
