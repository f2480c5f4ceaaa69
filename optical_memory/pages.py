"""Text -> logical lines -> page rows: the reversible page encoding.

A page is a grid of `columns` x `rows` character cells. A `remember` call's text becomes an *entry*:

* The text is split on "\\n" into logical lines; nothing else is a line break, so "\\r\\n" keeps its
  "\\r" (escaped, below) and a text ending in "\\n" ends with an empty line.
* The entry begins with a header row (role, session, time, title). Header rows are page chrome, not
  text: they carry no line number and `read_lines` never returns them.
* Each logical line starts on a new row and takes the next line number of its page (1, 2, ...),
  shown in the left gutter. A line longer than `columns` cells fills whole rows and wraps onto the
  following rows; a wrapped row is marked in the gutter as a continuation.
* A line longer than what is left of the page is split: the first piece fills the page, the rest
  continues as line 1 of the session's next page (whose first row repeats the entry header,
  marked "cont."). A page is sealed once it cannot take another entry.

Escape form. A cell holds one character of the alphabet (`alphabet.ALPHABET`). Every other
character - CJK, emoji, controls, tab, CR, combining marks, look-alikes of ASCII letters, lone
surrogates, the escape mark itself - is written as the escape mark, its code point in uppercase
hex, and a semicolon: TAB is ``¤9;``, "é" as e + COMBINING ACUTE is ``e¤301;``, ``¤`` is ``¤A4;``.
A trailing space is invisible, so the last character of every line piece, if it is a space, is
written ``¤20;``. Decoding replaces each ``¤HEX;`` by its code point; nothing is dropped or
normalised, so decode(encode(s)) == s for every Python string.

Reading back a line's rows: every row of a line but its last is full (exactly `columns` cells);
trailing blank cells of the last row are not text (a real trailing space would be escaped).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from optical_memory.alphabet import ALPHABET, ESCAPE

__all__ = [
    "HEADER",
    "PageFormat",
    "PagePlan",
    "PlannedRow",
    "decode",
    "encode_piece",
    "join_row_cells",
    "line_cells",
    "plan_entry",
]

HEADER = 0  # row code of a header row; +n is the first row of line n, -n a continuation row of line n

_DRAWABLE = frozenset(ALPHABET) - {ESCAPE}
_ESCAPED = re.compile(ESCAPE + "([0-9A-F]{1,6});")
# The longest escape (¤10FFFF;) must fit a row, or some characters could never be written.
_LONGEST_ESCAPE = len(ESCAPE + "10FFFF;")


@dataclass(frozen=True)
class PageFormat:
    """The cell grid of a page."""

    columns: int = 100
    rows: int = 64

    def __post_init__(self) -> None:
        if self.columns < _LONGEST_ESCAPE + 8:
            raise ValueError(f"a page needs at least {_LONGEST_ESCAPE + 8} columns, got {self.columns}")
        if self.rows < 4:
            raise ValueError(f"a page needs at least 4 rows, got {self.rows}")


def _escape_char(ch: str) -> str:
    return ch if ch in _DRAWABLE else f"{ESCAPE}{ord(ch):X};"


def encode_piece(raw: str) -> str:
    """Encode one line piece into the cells that show it (escape form, trailing space made visible)."""
    cells = raw if _DRAWABLE.issuperset(raw) else "".join(_escape_char(ch) for ch in raw)
    if cells.endswith(" "):
        cells = cells[:-1] + f"{ESCAPE}20;"
    return cells


def decode(cells: str) -> str:
    """Decode cells read from a page back into text; the inverse of `encode_piece`.

    A malformed escape (only possible when a reader misreads a page) is kept as it was read.
    """
    if ESCAPE not in cells:
        return cells
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)) if int(m.group(1), 16) <= 0x10FFFF else m.group(0), cells)


def join_row_cells(row_cells: Sequence[str], columns: int) -> str:
    """Join the cells read from one line's rows: full rows as they are, the last without trailing blanks."""
    parts = [cells[:columns].ljust(columns) for cells in row_cells[:-1]]
    parts.append(row_cells[-1][:columns].rstrip(" ") if row_cells else "")
    return "".join(parts)


def line_cells(flat: str, prefix: int) -> str:
    """`join_row_cells` of rows already concatenated at full width: the `prefix` cells of the full rows as
    they are, the last row without trailing blanks."""
    return flat[:prefix] + flat[prefix:].rstrip(" ")


def _fit(raw: str, capacity: int) -> int:
    """How many leading characters of `raw` fit in `capacity` cells once encoded (0 if none)."""
    if _DRAWABLE.issuperset(raw):
        k = min(len(raw), capacity)
        while k and raw[k - 1] == " " and k + 3 > capacity:
            k -= 1  # a trailing space would need its 4-cell escape
        return k
    used = 0
    best = 0
    for i, ch in enumerate(raw):
        cost = 1 if ch in _DRAWABLE else len(_escape_char(ch))
        used += cost
        end_cost = used + (3 if ch == " " else 0)
        if used > capacity:
            break
        if end_cost <= capacity:
            best = i + 1
    return best


@dataclass
class PlannedRow:
    code: int  # HEADER, +line (first row of a line) or -line (continuation row)
    cells: str  # what the row shows: encoded text, or the header's chrome text


@dataclass
class PagePlan:
    """What one entry writes onto one page."""

    new_page: bool  # False: rows are appended to the session's open page
    first_row: int  # index of the first row written
    rows: list[PlannedRow] = field(default_factory=list)
    first_line: int = 0  # first and last line number this entry has on this page (0: none)
    last_line: int = 0
    continued: bool = False  # the first line continues a line begun on the previous page
    continues: bool = False  # the last line continues on the next page
    sealed: bool = False  # the page cannot take another entry
    pieces: list[str] = field(default_factory=list)  # the raw text of each line piece (never stored)


def _add_piece(plan: PagePlan, piece: str, line_no: int, continued: bool, columns: int) -> int:
    """Write one line piece as line `line_no` of `plan`, in as many rows as it needs; returns that count."""
    cells = encode_piece(piece)
    plan.pieces.append(piece)
    chunks = [cells[i : i + columns] for i in range(0, len(cells), columns)] or [""]
    for index, chunk in enumerate(chunks):
        plan.rows.append(PlannedRow(line_no if index == 0 else -line_no, chunk))
    if not plan.first_line:
        plan.first_line = line_no
        plan.continued = continued
    plan.last_line = line_no
    return len(chunks)


def plan_entry(
    lines: Sequence[str],
    header: Callable[[bool], str],
    fmt: PageFormat,
    open_rows: int | None,
    open_lines: int = 0,
) -> list[PagePlan]:
    """Lay an entry's logical lines onto pages.

    `open_rows` and `open_lines` describe the session's open page (rows and lines already used),
    or `open_rows` is None when the session has none. `header(continued)` gives the header row's
    text. Returns one plan per page touched, in order.
    """
    plans: list[PagePlan] = []

    def start_page(continued: bool) -> PagePlan:
        plan = PagePlan(new_page=True, first_row=0)
        plan.rows.append(PlannedRow(HEADER, header(continued)))
        plans.append(plan)
        return plan

    if open_rows is not None and fmt.rows - open_rows >= 2:
        plan = PagePlan(new_page=False, first_row=open_rows)
        plan.rows.append(PlannedRow(HEADER, header(False)))
        plans.append(plan)
        rows_used, line_no = open_rows + 1, open_lines
    else:
        plan = start_page(False)
        rows_used, line_no = 1, 0

    for raw in lines:
        continued = False
        while True:
            free_rows = fmt.rows - rows_used
            take = _fit(raw, free_rows * fmt.columns) if free_rows else 0
            if free_rows == 0:  # a fresh page always has room: PageFormat guarantees a full escape fits a row
                plan.sealed = True
                plan = start_page(True)
                rows_used, line_no = 1, 0
                continue
            line_no += 1
            rows_used += _add_piece(plan, raw[:take], line_no, continued, fmt.columns)
            raw = raw[take:]
            if not raw:
                break
            plan.continues = True
            plan.sealed = True
            plan = start_page(True)
            rows_used, line_no = 1, 0
            continued = True
    if fmt.rows - rows_used < 2:
        plan.sealed = True
    return plans
