"""Image -> text: read given lines of a stored page with a reader, and decode them.

A page record's `rows` say which physical rows hold each line (see `memory`); the reader
transcribes those rows' cells, the rows of a line are joined (full rows as they are, the last one
without trailing blanks) and the escape form is decoded. One reader call per page.
"""

from __future__ import annotations

from collections.abc import Sequence

from optical_memory.pages import HEADER, decode, join_row_cells
from optical_memory.readers.base import Reader
from optical_memory.records import PageRecord
from optical_memory.results import Line
from optical_memory.tiers import decode_image

__all__ = ["rows_of_lines", "transcribe_lines"]


def rows_of_lines(codes: Sequence[int], numbers: Sequence[int]) -> dict[int, list[int]]:
    """Physical rows of each wanted line number, in order."""
    wanted: dict[int, list[int]] = {number: [] for number in numbers}
    for row, code in enumerate(codes):
        if code != HEADER and abs(code) in wanted:
            wanted[abs(code)].append(row)
    return wanted


def transcribe_lines(
    reader: Reader, record: PageRecord, image: bytes, numbers: Sequence[int], key: bytes | None = None
) -> list[Line]:
    """Read lines `numbers` of the page `record` whose stored image is `image`."""
    rows_of = rows_of_lines(record.rows, numbers)
    wanted = [row for number in numbers for row in rows_of[number]]
    geometry = record.geometry
    cells = reader.read_rows(decode_image(image), geometry, wanted)
    by_row = dict(zip(wanted, cells, strict=True))
    return [
        Line(number=n, text=decode(join_row_cells([by_row[r] for r in rows_of[n]], geometry.columns))) for n in numbers
    ]
