"""Drawing rows: every character of the alphabet finds its glyph, anything else is refused."""

from __future__ import annotations

import numpy as np
import pytest

from optical_memory.alphabet import ALPHABET
from optical_memory.pages import HEADER, PageFormat, PlannedRow
from optical_memory.render import Renderer


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(PageFormat(columns=100, rows=64))


def test_every_character_of_the_alphabet_maps_to_its_own_glyph(renderer: Renderer) -> None:
    assert renderer.codes("".join(ALPHABET)).tolist() == list(range(len(ALPHABET)))
    assert renderer.codes("").tolist() == []


@pytest.mark.parametrize("outside", ["\x00", "\u4e00", "\U000f0005", "\U0010ffff", "a\ufffeb"])
def test_a_character_outside_the_alphabet_is_refused(renderer: Renderer, outside: str) -> None:
    # private-use code points are where the lookup maps glyph indices: they must not pass as glyphs
    assert not set(outside) <= set(ALPHABET)
    with pytest.raises(KeyError):
        renderer.codes(outside)


def test_rows_are_drawn_glyph_by_glyph_from_the_atlas(renderer: Renderer) -> None:
    rows = [PlannedRow(HEADER, "user · default · 2026-11-26"), PlannedRow(1, "def f(x): return x  # ok")]
    rows += [PlannedRow(n, f"line {n} Ærøskøbing »") for n in range(2, 12)] + [PlannedRow(-11, "continued")]
    first = renderer.render(rows)
    again = renderer.blank()
    renderer.draw_rows(again, 0, rows[:5])
    renderer.draw_rows(again, 5, rows[5:])
    assert np.array_equal(first, again)
    g = renderer.geometry
    tiles = renderer._tiles
    top, left = g.margin + g.cell_height, g.margin + g.gutter * g.cell_width
    for k, ch in enumerate("def f(x)"):
        cell = first[top : top + g.cell_height, left + k * g.cell_width : left + (k + 1) * g.cell_width]
        assert np.array_equal(cell, tiles[ALPHABET.index(ch)]), ch
