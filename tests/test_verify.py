"""Verified decoding on made-up reader outputs: exact when it says so, honest when it cannot be.

The top-k arrays here are built by hand (a chosen argmax reading, chosen alternatives), so each test
states exactly what the reader "saw"; tests/test_verify_pages.py runs the real reader on faded pages.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from optical_memory.alphabet import ALPHABET
from optical_memory.checkcode import LineHasher, line_code, line_key
from optical_memory.pages import encode_piece
from optical_memory.verify import (
    _ranked_assignments,
    text_columns,
    verify_line,
    verify_lines,
    verify_reading,
)

KEY = line_key(bytes(range(32)))
HASHER = LineHasher(KEY)
INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
COLUMNS = 40


def reading(
    cells: str, alternatives: dict[int, list[tuple[str, float]]] | None = None, best: float = 0.999
) -> tuple[np.ndarray, np.ndarray]:
    """(classes, probs) of one line laid out in COLUMNS-cell rows, the argmax reading `cells`.

    `alternatives` gives, for a cell position in the line, its full ranked list [(char, prob), ...];
    every other cell is sure (`best`) with unlikely alternatives.
    """
    rows = max(1, -(-len(cells) // COLUMNS))
    flat = cells.ljust(rows * COLUMNS)
    classes = np.zeros((rows * COLUMNS, 4), dtype=np.int64)
    probs = np.zeros((rows * COLUMNS, 4), dtype=np.float32)
    fillers = list("qzjx")
    for i, ch in enumerate(flat):
        sure = [(ch, best), *[(f, (1 - best) / 3) for f in fillers if f != ch][:3]]
        ranked = (alternatives or {}).get(i) or sure
        for r, (alt, p) in enumerate(ranked[:4]):
            classes[i, r], probs[i, r] = INDEX[alt], p
    return classes.reshape(rows, COLUMNS, 4), probs.reshape(rows, COLUMNS, 4)


def test_an_exact_reading_is_verified_and_says_nothing_more() -> None:
    classes, probs = reading("DEPLOY_KEY=sk-4f9Qx")
    line = verify_line(classes, probs, line_code(KEY, "DEPLOY_KEY=sk-4f9Qx"), HASHER)
    assert (line.text, line.verified, line.uncertain, line.alternative) == ("DEPLOY_KEY=sk-4f9Qx", True, [], None)


def test_a_misread_cell_is_corrected_by_its_second_choice() -> None:
    truth = "user Dröge at host:8443"
    misread = truth.replace("ö", "õ")
    at = truth.index("ö")
    classes, probs = reading(misread, {at: [("õ", 0.55), ("ö", 0.4), ("o", 0.04), ("ò", 0.01)]})
    line = verify_line(classes, probs, line_code(KEY, truth), HASHER)
    assert line.verified is True
    assert line.text == truth


def test_two_misread_cells_are_corrected_together() -> None:
    truth = "production 0x1f3a"
    misread = "preduction 0x1f8a"
    alternatives = {
        2: [("e", 0.6), ("o", 0.35), ("c", 0.04), ("a", 0.01)],
        15: [("8", 0.5), ("3", 0.45), ("B", 0.04), ("6", 0.01)],
    }
    classes, probs = reading(misread, alternatives)
    line = verify_line(classes, probs, line_code(KEY, truth), HASHER)
    assert (line.text, line.verified) == (truth, True)


def test_when_no_candidate_matches_the_best_guess_is_marked_with_its_doubtful_columns() -> None:
    truth = "key=ABC123"
    misread = "key=ABC12S"  # the truth '3' is not among the cell's choices
    classes, probs = reading(misread, {9: [("S", 0.5), ("5", 0.3), ("8", 0.15), ("B", 0.05)]})
    line = verify_line(classes, probs, line_code(KEY, truth), HASHER)
    assert line.verified is False
    assert line.text == misread  # the most probable reading, not a guess that merely differs
    assert 9 in line.uncertain
    assert line.alternative == "key=ABC125"  # the runner-up: the doubtful cell's second choice


def test_a_wrong_reading_of_sure_cells_is_still_never_verified() -> None:
    truth = "token ghp_xY12"
    misread = "token ghp_xYl2"  # the reader was sure, and wrong
    classes, probs = reading(misread)
    line = verify_line(classes, probs, line_code(KEY, truth), HASHER)
    assert line.verified is False
    assert line.text == misread
    assert len(line.uncertain) == 3  # nothing below the doubt threshold: the three least certain cells


def test_without_a_code_the_reading_is_returned_unverified() -> None:
    classes, probs = reading("anything at all")
    line = verify_line(classes, probs, None, HASHER)
    assert (line.text, line.verified, line.uncertain, line.alternative) == ("anything at all", None, [], None)


def test_without_a_code_the_characters_the_reader_is_unsure_of_are_named() -> None:
    """A page remembered before codes existed cannot be verified, but it still says where it may be wrong."""
    text = "kůň at 70 km"
    classes, probs = reading(text, {2: [("ň", 0.6), ("ñ", 0.4)], 7: [("7", 0.9), ("Θ", 0.1)]})
    for hasher in (HASHER, None):
        line = verify_line(classes, probs, None, hasher)
        assert (line.text, line.verified, line.alternative) == (text, None, None)
        assert line.uncertain == [2, 7]  # least certain first in the search, reported in text order
    sure = verify_line(*reading(text), None, HASHER)
    assert sure.uncertain == []  # sure of every cell: nothing named (no fallback, unlike a failing line)


def test_escapes_are_decoded_as_a_unit_and_verified() -> None:
    truth = "a\tb 日本 e\u0301!"
    cells = encode_piece(truth)
    assert "¤9;" in cells
    at = cells.index("9;")  # the reader doubts the tab's hex digit: 8 or 9
    misread = cells[:at] + "8" + cells[at + 1 :]
    classes, probs = reading(misread, {at: [("8", 0.6), ("9", 0.38), ("B", 0.01), ("0", 0.01)]})
    line = verify_line(classes, probs, line_code(KEY, truth), HASHER)
    assert (line.text, line.verified) == (truth, True)


def test_a_literal_escape_mark_in_the_text_verifies() -> None:
    truth = "price ¤5 and a trailing space "
    cells = encode_piece(truth)
    classes, probs = reading(cells)
    line = verify_line(classes, probs, line_code(KEY, truth), HASHER)
    assert (line.text, line.verified) == (truth, True)


def test_candidates_that_are_not_a_page_encoding_are_never_returned() -> None:
    # The cell after the escape mark could be ';' (malformed: "¤;41;"), or 'A' (¤A4; = a literal ¤).
    truth = "x¤y"
    cells = encode_piece(truth)  # x¤A4;y
    alternatives = {2: [(";", 0.5), ("A", 0.3), ("4", 0.15), ("B", 0.05)]}
    classes, probs = reading(cells[:2] + ";" + cells[3:], alternatives)
    line = verify_line(classes, probs, line_code(KEY, truth), HASHER)
    assert (line.text, line.verified) == (truth, True)


def test_columns_in_a_line_with_escapes_name_characters_of_the_text() -> None:
    cells = encode_piece("a\tbc")  # a¤9;bc
    assert cells == "a¤9;bc"
    assert text_columns(cells, [0]) == [0]
    assert text_columns(cells, [2, 3]) == [1]  # inside the escape: the tab, character 1
    assert text_columns(cells, [4, 5]) == [2, 3]
    assert text_columns(cells, [8]) == [6]  # a blank cell past the end: where a character may be missing


def test_a_wrapped_line_verifies_across_its_rows() -> None:
    truth = "".join(random.Random(1).choice("0123456789abcdef") for _ in range(95))
    at = 67  # second row, column 27
    wrong = "0" if truth[at] != "0" else "1"
    misread = truth[:at] + wrong + truth[at + 1 :]
    classes, probs = reading(misread, {at: [(wrong, 0.7), (truth[at], 0.25), ("B", 0.03), ("D", 0.02)]})
    assert classes.shape[0] == 3
    line = verify_line(classes, probs, line_code(KEY, truth), HASHER)
    assert (line.text, line.verified) == (truth, True)
    unsure = verify_line(classes, probs, line_code(KEY, truth + "!"), HASHER)
    assert unsure.verified is False and at in unsure.uncertain


def test_a_reader_without_alternatives_has_its_one_reading_checked() -> None:
    code = line_code(KEY, "row one" + " " * 33 + "row two")
    assert verify_reading(["row one", "row two"], COLUMNS, code, HASHER).verified is True
    wrong = verify_reading(["row one", "r0w two"], COLUMNS, code, HASHER)
    assert (wrong.verified, wrong.uncertain, wrong.alternative) == (False, [], None)
    assert verify_reading(["row one"], COLUMNS, None, HASHER).verified is None


def test_ranked_assignments_are_the_cheapest_first_exactly() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        costs = np.sort(rng.exponential(1.0, size=(6, 3)), axis=1)
        costs[:, 0] = 0.0
        costs[rng.random(costs.shape) < 0.1] = np.inf
        costs[:, 0] = 0.0
        every = [c for c in itertools.product(range(3), repeat=6) if any(c)]
        total = {c: sum(costs[i, r] for i, r in enumerate(c)) for c in every}
        finite = sorted(t for t in total.values() if t <= 12.0)
        for budget in (1, 7, 50, 400):
            ranked = _ranked_assignments(costs, budget)
            got = [total[tuple(int(r) for r in row)] for row in ranked]
            assert got == sorted(got)
            assert got == pytest.approx(finite[:budget])


class CountingHasher(LineHasher):
    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.calls = 0

    def code(self, text: str) -> bytes:
        self.calls += 1
        return super().code(text)


def test_a_page_of_hopeless_lines_tries_a_bounded_number_of_candidates() -> None:
    rng = random.Random(2)
    lines = []
    for _ in range(30):
        misread = "".join(rng.choice("0123456789abcdef") for _ in range(40))
        doubtful = {i: [(misread[i], 0.4), ("B", 0.3), ("D", 0.2), ("E", 0.1)] for i in range(0, 40, 2)}
        classes, probs = reading(misread, doubtful)
        lines.append((classes, probs, line_code(KEY, "not what the page shows")))
    hasher = CountingHasher(KEY)
    results = verify_lines(lines, hasher, budget=4096, page_budget=5000)
    assert all(line.verified is False for line in results)
    assert hasher.calls <= 5000 + len(lines)  # the page budget, plus each line's argmax reading


def test_random_readings_are_never_wrong_and_verified() -> None:
    """Thousands of lines where the truth may or may not be among the reader's choices."""
    rng = random.Random(11)
    pool = "0123456789abcdefABCDEF_-/.:öõÐDłtŠŜ’\"`'"
    verified = 0
    for _ in range(3000):
        truth = "".join(rng.choice(pool) for _ in range(rng.randint(1, 60)))
        misread = list(truth)
        alternatives: dict[int, list[tuple[str, float]]] = {}
        for i in rng.sample(range(len(truth)), k=min(len(truth), rng.randint(0, 4))):
            options = rng.sample([ch for ch in pool if ch != truth[i]], 4)
            if rng.random() < 0.7:  # the truth is among the choices, at some rank
                options[rng.randrange(4)] = truth[i]
            misread[i] = options[0]
            alternatives[i] = list(zip(options, (0.5, 0.25, 0.15, 0.1), strict=True))
        cells = encode_piece("".join(misread))
        if len(cells) != len(misread):
            continue
        classes, probs = reading(cells, alternatives)
        line = verify_line(classes, probs, line_code(KEY, truth), HASHER, budget=256)
        assert line.verified is not True or line.text == truth
        verified += line.verified is True
    assert verified > 1500  # the search does recover most lines whose truth was among the choices


def test_the_fast_well_formed_check_agrees_with_the_page_encoding() -> None:
    from optical_memory.pages import decode
    from optical_memory.verify import _canonical_text, _well_formed

    rng = random.Random(4)
    pieces = ["¤", "A4;", "9;", "20;", "41;", "09;", "301;", "110000;", "D800;", ";", "A", "z", " ", "ö", "F"]
    samples = [encode_piece(t) for t in ("a\tb", "x ", "¤", "日本 ", "\ud800", "e\u0301")]
    samples += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))).rstrip(" ") for _ in range(20000)]
    for cells in samples:
        assert _well_formed(cells) == (encode_piece(decode(cells)) == cells), cells
        assert _canonical_text(cells) == (decode(cells) if _well_formed(cells) else None)
