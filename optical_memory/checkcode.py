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
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["CODE_BYTES", "LINE_CODES", "LineHasher", "code_at", "codes_for", "derive_key", "line_code", "line_key"]

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
