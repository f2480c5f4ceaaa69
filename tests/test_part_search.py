"""Part codes: a short keyed code per run of a line's cells, and the part-by-part search they allow.

The top-k arrays are built by hand, as in tests/test_verify.py: each test states exactly what the
reader "saw". What must hold: a line misread in many places verifies when each place is within reach
of its run's search (the plain search alone cannot reach it), what lies past the line's last run is
blank, and a part code never marks a line verified on its own: only the line code does.
"""

from __future__ import annotations

import random
import string

import numpy as np
import pytest

from optical_memory.alphabet import ALPHABET
from optical_memory.checkcode import (
    PART_BITS,
    PART_CELLS,
    LineHasher,
    PartHasher,
    line_code,
    line_key,
    pack_parts,
    part_codes_for,
    unpack_parts,
)
from optical_memory.pages import encode_piece
from optical_memory.part_search import WIDE_PAGE_CANDIDATES, PartSearch
from optical_memory.verify import _CODE_POINTS, MAX_CANDIDATES, PAGE_PART_CANDIDATES, verify_lines

KEY = line_key(bytes(range(32)))
HASHER = LineHasher(KEY)
PARTS = PartHasher(KEY)
INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
COLUMNS = 100
K = 4


class CountingHasher(LineHasher):
    """A line hasher that counts the line codes it made: the false-verify bound is a count of these."""

    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.made = 0

    def code(self, text: str) -> bytes:
        self.made += 1
        return super().code(text)


def reading(cells: str, alternatives: dict[int, list[tuple[str, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """(classes, probs) of a line read as `cells` in COLUMNS-cell rows; `alternatives` ranks some cells' classes."""
    rows = max(1, -(-len(cells) // COLUMNS))
    flat = cells.ljust(rows * COLUMNS)
    classes = np.zeros((rows * COLUMNS, K), dtype=np.int64)
    probs = np.zeros((rows * COLUMNS, K), dtype=np.float32)
    for i, ch in enumerate(flat):
        fillers = [f for f in "qzjx" if f != ch][: K - 1]
        ranked = alternatives.get(i) or [(ch, 0.999), *[(f, 0.001 / 3) for f in fillers]]
        for r, (alt, p) in enumerate(ranked):
            classes[i, r], probs[i, r] = INDEX[alt], p
    return classes.reshape(rows, COLUMNS, K), probs.reshape(rows, COLUMNS, K)


def verify(truth: str, cells: str, alternatives: dict[int, list[tuple[str, float]]], with_parts: bool = True):
    classes, probs = reading(cells, alternatives)
    hasher = CountingHasher(KEY)
    parts = part_codes_for(KEY, [truth]) if with_parts else None
    line = verify_lines([(classes, probs, line_code(KEY, truth))], hasher, parts=parts, part_hasher=PARTS)[0]
    return line, hasher.made


def test_part_codes_pack_and_unpack_for_every_count() -> None:
    rng = random.Random(3)
    for count in range(12):
        codes = [rng.randrange(1 << PART_BITS) for _ in range(count)]
        packed = pack_parts(codes)
        assert len(packed) == -(-count * PART_BITS // 8)
        assert unpack_parts(packed) == codes


def test_a_line_has_one_part_code_per_run_of_its_cells() -> None:
    lines = ["", "a", "x" * PART_CELLS, "x" * (PART_CELLS + 1), "snow \u2603\u2603 man", "trailing "]
    for line, packed in zip(lines, part_codes_for(KEY, lines), strict=True):
        cells = encode_piece(line)
        runs = -(-len(cells) // PART_CELLS)
        assert len(unpack_parts(packed)) == runs, line
        padded = cells.ljust(runs * PART_CELLS)
        runs_of = [padded[i * PART_CELLS : (i + 1) * PART_CELLS] for i in range(runs)]
        assert unpack_parts(packed) == [PARTS.code(i, run) for i, run in enumerate(runs_of)]


def test_part_codes_depend_on_the_key_and_on_where_the_run_lies() -> None:
    other = PartHasher(line_key(bytes(range(1, 33))))
    runs = ["".join(random.Random(n).choices(string.ascii_letters, k=PART_CELLS)) for n in range(200)]
    assert sum(PARTS.code(0, run) != other.code(0, run) for run in runs) > 190
    assert sum(PARTS.code(0, run) != PARTS.code(1, run) for run in runs) > 190


def misread_line(seed: int) -> tuple[str, str, dict[int, list[tuple[str, float]]]]:
    """A 90-character line read with one wrong cell in each of 8 runs, and 24 doubtful cells read right."""
    rng = random.Random(seed)
    truth = "".join(rng.choices(string.ascii_letters + string.digits, k=90))
    cells = list(truth)
    alternatives: dict[int, list[tuple[str, float]]] = {}
    for run in range(8):
        at = run * PART_CELLS + rng.randrange(PART_CELLS)
        wrong = rng.choice([c for c in "0123456789" if c != truth[at]])
        cells[at] = wrong
        alternatives[at] = [(wrong, 0.55), (truth[at], 0.40), ("q", 0.03), ("z", 0.02)]
    doubtful = rng.sample([i for i in range(90) if i not in alternatives], 24)
    for at in doubtful:
        alternatives[at] = [(truth[at], 0.55), ("q" if truth[at] != "q" else "j", 0.40), ("z", 0.03), ("x", 0.02)]
    return truth, "".join(cells), alternatives


@pytest.mark.parametrize("seed", range(4))
def test_a_line_misread_in_eight_runs_verifies_run_by_run(seed: int) -> None:
    truth, cells, alternatives = misread_line(seed)
    plain, plain_codes = verify(truth, cells, alternatives, with_parts=False)
    assert plain.verified is False  # eight wrong cells among 32 doubtful ones: past the plain search's budget
    line, codes = verify(truth, cells, alternatives)
    assert (line.text, line.verified) == (truth, True)
    assert codes < plain_codes  # and found with fewer line codes tried


def test_what_lies_past_the_last_run_is_blank() -> None:
    truth = "port 8443"  # one run; a stray sure mark read 30 cells further on
    cells = truth.ljust(40) + "."
    plain, _ = verify(truth, cells, {}, with_parts=False)
    assert plain.verified is False
    line, _ = verify(truth, cells, {})
    assert (line.text, line.verified) == (truth, True)


def test_a_truth_out_of_reach_is_never_verified_and_the_line_codes_tried_stay_bounded() -> None:
    truth, cells, alternatives = misread_line(7)
    at = next(iter(alternatives))
    alternatives[at] = [(cells[at], 0.55), ("q", 0.40), ("z", 0.03), ("x", 0.02)]  # the truth is not in the top K
    line, codes = verify(truth, cells, alternatives)
    assert line.verified is False
    assert line.text != truth
    assert codes <= MAX_CANDIDATES + 1
    # that run's every candidate within the cost cap failed its part code: no whole-line candidate can
    # be right, so the plain search (which tries its full budget without part codes) is not run
    plain, plain_codes = verify(truth, cells, alternatives, with_parts=False)
    assert plain.verified is False and plain_codes == MAX_CANDIDATES + 1
    assert codes == 1  # the argmax reading's check alone


def test_runs_that_match_as_read_are_the_settled_cells() -> None:
    truth, cells, alternatives = misread_line(2)  # one wrong cell in each of the first 8 runs, 9 runs
    classes, probs = reading(cells, alternatives)
    p = probs.reshape(-1, K).astype(np.float64)  # every choice has a probability here: no log of 0
    search = PartSearch(
        classes.reshape(-1, K), np.log(p[:, :1]) - np.log(p), (classes.shape[0] - 1) * COLUMNS,
        part_codes_for(KEY, [truth])[0], PARTS, _CODE_POINTS,
    )  # fmt: skip
    settled = search.settled()
    assert len(settled) == COLUMNS and not settled[: 8 * PART_CELLS].any()
    assert settled[8 * PART_CELLS : 9 * PART_CELLS].all()  # the ninth run was read right
    assert not settled[9 * PART_CELLS :].any()  # past the line's last run: no code, nothing settled


def colliding_run(truth_run: str, index: int) -> tuple[int, int, str, str]:
    """Two cells of `truth_run` changed so that the run's part code still matches (found by trying)."""
    want = PARTS.code(index, truth_run)
    for a in range(PART_CELLS):
        for b in range(a + 1, PART_CELLS):
            for x in string.digits + string.ascii_lowercase:
                for y in string.digits + string.ascii_lowercase:
                    run = list(truth_run)
                    run[a], run[b] = x, y
                    candidate = "".join(run)
                    if candidate != truth_run and PARTS.code(index, candidate) == want:
                        return a, b, x, y
    raise AssertionError("no collision among 58,000 two-cell changes of a 12-bit code")


@pytest.mark.parametrize("truth_in_reach", [True, False])
def test_a_wrong_run_matching_its_part_code_by_chance_never_verifies_a_line(truth_in_reach: bool) -> None:
    truth = "deploy key sk-Qx4f9Lm2 on db-7"
    a, b, x, y = colliding_run(truth[:PART_CELLS], 0)
    cells = list(truth)
    cells[a], cells[b] = x, y
    misread = "".join(cells)
    second = [(truth[a], 0.4), (truth[b], 0.4)] if truth_in_reach else [("q", 0.4), ("j", 0.4)]
    alternatives = {
        a: [(x, 0.55), second[0], ("z", 0.03), ("x", 0.02)],
        b: [(y, 0.55), second[1], ("z", 0.03), ("x", 0.02)],
    }
    line, codes = verify(truth, misread, alternatives)
    if truth_in_reach:  # the line code rejects the run's false match and the plain search finds the truth
        assert (line.text, line.verified) == (truth, True)
    else:
        assert (line.text, line.verified) == (misread, False)
        assert sorted(line.uncertain)[:2] == sorted([a, b])
    assert codes <= MAX_CANDIDATES + 1


def test_a_line_that_fails_names_every_cell_of_its_failing_run_however_sure_the_reader_was() -> None:
    """A confident misreading (the truth nowhere among the reader's choices) in the second run of cells: the
    line is not verified, and `uncertain` names exactly that run's cells, not the reader's least sure ones."""
    truth = "token = 'a1b2c3d4e5f6a7b8' # kept"
    cells = truth[:14] + "Q" + truth[15:]
    line, _ = verify(truth, cells, {3: [("e", 0.6), ("q", 0.2), ("z", 0.1), ("x", 0.1)]})
    assert line.verified is False
    assert line.uncertain == list(range(PART_CELLS, 2 * PART_CELLS))
    without, _ = verify(truth, cells, {3: [("e", 0.6), ("q", 0.2), ("z", 0.1), ("x", 0.1)]}, with_parts=False)
    assert without.verified is False and 14 not in without.uncertain  # confidence alone points elsewhere


def test_ink_read_past_the_last_run_is_named_with_the_failing_run() -> None:
    """Past its last run the line was blank: ink read there is wrong, and named beside the failing run."""
    truth = "short line"  # one run of cells
    cells = "shorT line" + " " * 12 + "~"
    line, _ = verify(truth, cells, {})
    assert line.verified is False
    assert line.uncertain == [*range(len(truth)), len(cells) - 1]


def sure_misreads(truth: str, wrong: dict[int, str], truth_p: float) -> dict[int, list[tuple[str, float]]]:
    """The reader sure of a wrong class at each cell of `wrong`, the truth second at `truth_p` (or absent: 0)."""
    alternatives = {}
    for at, read in wrong.items():
        second = (truth[at], truth_p) if truth_p else ("q" if truth[at] != "q" else "j", 1e-7)
        alternatives[at] = [(read, 1 - 2e-7 - truth_p), second, ("z", 1e-7), ("x", 1e-7)]
    return alternatives


@pytest.mark.parametrize("wrong", [{15: "n"}, {11: "n", 18: "b"}, {3: "0", 11: "n", 18: "b", 31: "e"}])
def test_cells_the_reader_was_sure_of_and_wrong_are_found_by_their_runs(wrong: dict[int, str]) -> None:
    """At frost a Cyrillic `п` reads as `n` at e^-16 of its reading, past the cost cap of any search; with the
    truth still among its choices, a run tries every change of one or two cells and the line verifies."""
    truth = "deploy on шлюз пыль-7 and ship it"
    cells = "".join(wrong.get(i, ch) for i, ch in enumerate(truth))
    alternatives = sure_misreads(truth, wrong, 1e-7)  # e^-16: past MAX_COST (12) for a cell alone
    plain, _ = verify(truth, cells, alternatives, with_parts=False)
    assert plain.verified is False
    line, codes = verify(truth, cells, alternatives)
    assert (line.text, line.verified) == (truth, True)
    assert codes <= MAX_CANDIDATES + 1


def test_three_sure_misreads_in_one_run_stay_unverified_and_named() -> None:
    """Past two cells a run is not widened (45 x 49 pairs, 120 x 343 triples): the line stays honest."""
    truth = "deploy on шлюз пыль-7 and ship it"
    wrong = {10: "w", 11: "n", 18: "b"}  # all in the second run
    cells = "".join(wrong.get(i, ch) for i, ch in enumerate(truth))
    line, codes = verify(truth, cells, sure_misreads(truth, wrong, 1e-7))
    assert line.verified is False and line.text == cells
    assert line.uncertain == list(range(PART_CELLS, 2 * PART_CELLS))
    assert codes <= MAX_CANDIDATES + 1


class CountingParts(PartHasher):
    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.made = 0

    def code(self, index: int, run: str) -> int:
        self.made += 1
        return super().code(index, run)


def test_a_page_of_hopeless_lines_hashes_a_bounded_number_of_part_codes() -> None:
    """Sure misreads whose truth is nowhere among the choices, on 40 lines of a page: each run would try
    its 2,275 wide changes, but the page's lines share WIDE_PAGE_CANDIDATES of them (and the stages their
    PAGE_PART_CANDIDATES), so reading such a page stays within a bounded time."""
    rng = random.Random(11)
    lines, truths = [], []
    for _ in range(40):
        truth = "".join(rng.choices(string.ascii_lowercase, k=60))
        wrong = {rng.randrange(60): "7", rng.randrange(60): "8"}
        cells = "".join(wrong.get(i, ch) for i, ch in enumerate(truth))
        classes, probs = reading(cells, sure_misreads(truth, wrong, 0))
        lines.append((classes, probs, line_code(KEY, truth)))
        truths.append(truth)
    parts = CountingParts(KEY)
    read = verify_lines(lines, HASHER, parts=part_codes_for(KEY, truths), part_hasher=parts)
    assert not any(line.verified for line in read)
    assert parts.made <= PAGE_PART_CANDIDATES + WIDE_PAGE_CANDIDATES + 40 * 6  # + each run's code as read
    assert parts.made > WIDE_PAGE_CANDIDATES  # the wide passes ran, until the page's share was spent


def test_a_run_of_one_glyph_misread_alike_verifies() -> None:
    """At frost `#` then a long run of `/` read as `ι` in every cell, `/` second at e^-3 to e^-4 in most and
    not among the choices of some: each run changes its equal cells together, and the line verifies."""
    truth = "    #" + "/" * 45
    cells = "    #" + "ι" * 45
    alternatives = {}
    for at in range(5, len(truth)):
        if at % 9 == 0:  # the truth not among this cell's choices
            alternatives[at] = [("ι", 0.96), ("l", 0.02), ("ı", 0.01), ("|", 0.01)]
        else:
            alternatives[at] = [("ι", 0.96), ("l", 0.02), ("/", 0.015 + 0.001 * (at % 5)), ("|", 0.005)]
    plain, _ = verify(truth, cells, alternatives, with_parts=False)
    assert plain.verified is False
    line, codes = verify(truth, cells, alternatives)
    assert (line.text, line.verified) == (truth, True)
    assert codes <= MAX_CANDIDATES + 1


def collision_of(read_run: str, truth_run: str, index: int, keep: int) -> tuple[int, int, str, str]:
    """Two cells of `read_run` (not cell `keep`) changed so that it matches `truth_run`'s part code."""
    want = PARTS.code(index, truth_run)
    for a in range(PART_CELLS):
        for b in range(a + 1, PART_CELLS):
            if keep in (a, b):
                continue
            for x in string.digits + string.ascii_lowercase:
                for y in string.digits + string.ascii_lowercase:
                    run = list(read_run)
                    run[a], run[b] = x, y
                    if "".join(run) != truth_run and PARTS.code(index, "".join(run)) == want:
                        return a, b, x, y
    raise AssertionError("no collision among 58,000 two-cell changes of a 12-bit code")


def test_a_run_whose_cheap_survivor_matched_by_chance_still_finds_its_costly_truth() -> None:
    """The ranked search keeps a wrong two-cell change that matches the run's part code by chance (cost ~2),
    while the truth is a cell the reader was sure of and wrong (cost 20): the line code rejects the first,
    the run's wide pass finds the truth, and their product is tried although it costs 18 nats more."""
    truth = "deploy key sk-Qx4f9Lm2 on db-7"
    read = truth[:3] + "1" + truth[4:]  # `l` read as `1`, sure
    a, b, x, y = collision_of(read[:PART_CELLS], truth[:PART_CELLS], 0, keep=3)
    alternatives = {
        3: [("1", 1 - 3e-9), ("l", 2e-9), ("z", 5e-10), ("x", 5e-10)],  # the truth at e^-20 of the reading
        a: [(read[a], 0.69), (x, 0.3), ("q", 0.005), ("j", 0.005)],
        b: [(read[b], 0.69), (y, 0.3), ("q", 0.005), ("j", 0.005)],
    }
    line, codes = verify(truth, read, alternatives)
    assert (line.text, line.verified) == (truth, True)
    assert codes <= MAX_CANDIDATES + 1
