"""The page encoding is exact for any string: escape form, wrapping and page splits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory.alphabet import ALPHABET, ESCAPE, compute_alphabet
from optical_memory.pages import HEADER, PageFormat, decode, encode_piece, join_row_cells, plan_entry

FMT = PageFormat(columns=40, rows=12)

# Every code point Python strings can hold, lone surrogates included, weighted towards the hard ones.
any_char = st.one_of(
    st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF),
    st.sampled_from(
        [" ", "\t", "\r", "\x00", "\x7f", "\x85", "\u200f", "\u0301", ESCAPE, "\ud800", "\udfff", "中", "😀"]
    ),
    st.sampled_from(ALPHABET),
)
any_text = st.text(any_char, max_size=400)


def _read_back(plans: list, columns: int) -> str:
    """Rebuild the text from planned rows the way read_lines does, joining spans across pages."""
    pieces: list[str] = []
    for index, plan in enumerate(plans):
        assert plan.first_row + len(plan.rows) <= FMT.rows, "a plan overflows its page"
        lines: dict[int, list[str]] = {}
        for row in plan.rows:
            if row.code != HEADER:
                lines.setdefault(abs(row.code), []).append(row.cells)
        text = "\n".join(decode(join_row_cells(lines[n], columns)) for n in sorted(lines))
        if index:
            pieces.append("" if plans[index - 1].continues else "\n")
        pieces.append(text)
    return "".join(pieces)


@given(any_text)
def test_encode_decode_is_identity(text: str) -> None:
    assert decode(encode_piece(text)) == text


@given(any_text)
def test_encoded_cells_are_drawable_and_never_end_in_a_space(text: str) -> None:
    cells = encode_piece(text)
    assert set(cells) <= set(ALPHABET)
    assert not cells.endswith(" ")


@settings(max_examples=300)
@given(st.lists(any_text, min_size=1, max_size=8).map("\n".join))
def test_layout_round_trips_any_text(text: str) -> None:
    plans = plan_entry(text.split("\n"), lambda continued: "hdr", FMT, open_rows=None)
    assert _read_back(plans, FMT.columns) == text
    for plan in plans:
        assert all(len(row.cells) <= FMT.columns for row in plan.rows)
        assert plan.rows[0].code == HEADER  # every page of an entry starts with its header


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=FMT.rows), st.text(st.sampled_from("ab  \t"), min_size=1, max_size=900))
def test_layout_after_an_open_page_round_trips(open_rows: int, text: str) -> None:
    plans = plan_entry(text.split("\n"), lambda continued: "hdr", FMT, open_rows=open_rows, open_lines=0)
    assert _read_back(plans, FMT.columns) == text
    if FMT.rows - open_rows >= 2:
        assert not plans[0].new_page and plans[0].first_row == open_rows
    else:
        assert plans[0].new_page


def test_long_line_wraps_with_continuation_rows_and_splits_across_pages() -> None:
    line = "x" * (FMT.columns * FMT.rows * 2)
    plans = plan_entry([line], lambda continued: "hdr", FMT, open_rows=None)
    assert len(plans) >= 3
    assert plans[0].continues and plans[1].continued
    codes = [row.code for row in plans[0].rows]
    assert codes[:3] == [HEADER, 1, -1]  # the line's first row, then its continuation rows
    assert all(plan.sealed for plan in plans[:-1])
    assert _read_back(plans, FMT.columns) == line


def test_split_never_cuts_an_escape_or_loses_a_space_at_the_page_edge() -> None:
    line = ("ab \t" * 200) + "😀" * 50 + "   "
    plans = plan_entry([line], lambda continued: "hdr", FMT, open_rows=None)
    assert len(plans) > 1
    for plan in plans:
        for piece in plan.pieces:
            assert decode(encode_piece(piece)) == piece
    assert _read_back(plans, FMT.columns) == line


def test_known_escape_forms() -> None:
    assert encode_piece("a\tb") == "a¤9;b"
    assert encode_piece("crlf\r") == "crlf¤D;"
    assert encode_piece("trailing  ") == "trailing ¤20;"
    assert encode_piece("¤") == "¤A4;"
    assert encode_piece("e\u0301") == "e¤301;"
    assert encode_piece("Α") == "¤391;"  # Greek capital alpha looks like Latin A, so it is escaped
    assert decode("¤D800;") == "\ud800"


def test_shipped_alphabet_matches_the_font() -> None:
    assert compute_alphabet() == ALPHABET


def test_spaces_at_a_page_split_never_overflow_the_page() -> None:
    # Ten short lines leave one free row; the next line has a run of spaces exactly at the row's end.
    lines = ["x"] * 10 + ["a" * 37 + "   " + "b" * 50]
    plans = plan_entry(lines, lambda continued: "hdr", FMT, open_rows=None)
    assert plans[0].continues
    assert _read_back(plans, FMT.columns) == "\n".join(lines)
