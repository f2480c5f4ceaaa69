"""Image -> text: read given lines of a stored page with a reader, decode them, and verify them.

A page record's `rows` say which physical rows hold each line (see `pages`); the reader
transcribes those rows' cells, the rows of a line are joined (full rows as they are, the last one
without trailing blanks) and the escape form is decoded. One reader call per page.

Verification (`verify`): given the page's line-code key, each line whose page keeps a check code
(`PageRecord.codes`) comes back `verified` true (its text is exact) or false (the reader's best
guess, with the columns it doubts and a runner-up reading). A reader with per-cell alternatives
(`TopKReader`) gets the search over them; any other reader has its one reading checked. Pages
remembered before check codes existed read as before, `verified` None.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from optical_memory.checkcode import LineHasher, PartHasher, stored_code
from optical_memory.pages import HEADER
from optical_memory.readers.base import Reader, TopKReader
from optical_memory.records import PageRecord
from optical_memory.results import Line
from optical_memory.term_guide import LineGuide, PageTerms
from optical_memory.tiers import decode_image
from optical_memory.verify import Verified, verify_lines, verify_reading

__all__ = ["rows_of_lines", "transcribe_lines"]


def rows_of_lines(codes: Sequence[int], numbers: Sequence[int]) -> dict[int, list[int]]:
    """Physical rows of each wanted line number, in order."""
    wanted: dict[int, list[int]] = {number: [] for number in numbers}
    for row, code in enumerate(codes):
        if code != HEADER and abs(code) in wanted:
            wanted[abs(code)].append(row)
    return wanted


def _code_of(codes: bytes | None, number: int) -> bytes | None:
    """The check code of line `number` (1-based), or None when the page keeps none for it."""
    return stored_code(codes, number - 1)


def _parts_of(parts: list[bytes], number: int) -> bytes | None:
    """The part codes of line `number` (1-based), or None when the page keeps none for it."""
    return parts[number - 1] or None if 0 < number <= len(parts) else None


def _guide(terms: PageTerms, lines: Sequence[int], index: int) -> LineGuide | None:
    """What the index says of the `index`-th line read (asked only of lines that fail their code)."""
    return terms.line(lines[index])


def transcribe_lines(
    reader: Reader,
    record: PageRecord,
    image: bytes,
    numbers: Sequence[int],
    key: bytes | None = None,
    terms: PageTerms | None = None,
) -> list[Line]:
    """Read lines `numbers` of the page `record` whose stored image is `image`, verified when `key` is given.

    `key` is the key the page's check codes were made with (`checkcode.line_key(archive_key)`, or
    the source archive's for an imported page); without it, or without codes on the page, every
    line has `verified` None (with a reader that gives per-cell probabilities, `uncertain` then names
    the characters it is unsure of). `terms`, the page's entry in this archive's search index, lets a line
    that fails its code be searched word by word (`term_guide`); without it the search is plain.
    """
    rows_of = rows_of_lines(record.rows, numbers)
    wanted = list(dict.fromkeys(row for number in numbers for row in rows_of[number]))
    geometry = record.geometry
    picture = decode_image(image)
    hasher = LineHasher(key) if key is not None and record.codes is not None else None
    read: dict[int, Verified] = {}
    if isinstance(reader, TopKReader):
        classes, probs = reader.read_rows_topk(picture, geometry, wanted)
        index = {row: i for i, row in enumerate(wanted)}
        lines = [n for n in numbers if rows_of[n]]
        items = []
        for n in lines:
            at = [index[row] for row in rows_of[n]]
            items.append((classes[at], probs[at], _code_of(record.codes, n)))
        guides = partial(_guide, terms.new_reading(), lines) if terms is not None else None
        parts = [_parts_of(record.parts, n) for n in lines] if record.parts is not None else None
        part_hasher = PartHasher(key) if key is not None and parts is not None else None
        verified = verify_lines(items, hasher, guides=guides, parts=parts, part_hasher=part_hasher)
        read = dict(zip(lines, verified, strict=True))
        read.update({n: Verified("", None) for n in numbers if not rows_of[n]})
    else:
        by_row = dict(zip(wanted, reader.read_rows(picture, geometry, wanted), strict=True))
        for number in numbers:
            cells = [by_row[row] for row in rows_of[number]]
            read[number] = verify_reading(cells, geometry.columns, _code_of(record.codes, number), hasher)
    return [
        Line(
            number=number,
            text=read[number].text,
            verified=read[number].verified,
            uncertain=read[number].uncertain,
            alternative=read[number].alternative,
        )
        for number in numbers
    ]
