"""Verified decoding: read a line, and know whether the reading is exact.

Each line piece on a page has a check code (`checkcode.line_code`) written with it. A reading is
*verified* when its text matches that code. The reader gives each cell its K most probable classes
(`TopKReader.read_rows_topk`); decoding takes the most probable string and, when it fails its code,
tries the next most probable strings: a best-first search over the alternatives of the line's
`SEARCH_CELLS` least certain cells, most probable first, until one matches or `MAX_CANDIDATES` were
tried. The candidate's probability is the product of its cells' probabilities, so the first match is
also the most probable reading that is consistent with the code.

Where the page keeps part codes (`checkcode.part_codes_for`), a failing line is first searched run by
run (`part_search`): each run of cells that fails its part code alone, then the products of the runs'
matches against the line code; the line codes it checks count in the line's MAX_CANDIDATES.

Where the page has an entry in the search index (`term_guide`), a failing line then tries the
candidates whose words are all on the page, found word by word (a search per word over more
doubtful cells than the plain search takes, then the words' spellings combined most probable first),
and only then the plain search with what is left of its MAX_CANDIDATES. The index only orders what
is tried; the line code alone accepts. When nothing matches, the best guess returned is the most
probable term-consistent candidate where there is one (its words are at least on the page).

A line is laid out as `pages` lays it: its rows' cells joined (every row but the last full, the last
without trailing blanks), then the escape form decoded. Escapes are decoded as a unit: a candidate
whose cells are not a well-formed page encoding (a stray escape mark, lower-case or over-long hex, an
escape for a character that is drawn as itself) cannot be what was written, so it is dropped unhashed.

Columns. `uncertain` holds 0-based indices into the returned `text`: the characters whose cells the
reader doubts: for a line that fails its code, the cells below DOUBT (else the three least certain:
one of its cells is wrong), and on a page with part codes instead every cell of the runs that fail
theirs (`PartSearch.doubted`: the wrong cell is there, however sure the reader was); for a line with no
code to check (verified None: a page remembered before codes existed), the cells below DOUBT alone,
none where the reader is sure of every cell, so an old page still says where its reading may be wrong.
A doubted cell inside an escape (``¤301;``) names the one character the escape decodes to; a doubted
blank cell past the end of the text names where a character may be missing (len(text) and beyond). For
lines without escapes, this is the cell's column in the line as laid out: row offset x columns + cell.

The chance that a wrong reading is marked verified is at most (candidates tried) / 2^(8 x CODE_BYTES):
(MAX_CANDIDATES + 1) / 2^48 = 1.5e-11 per line (see `checkcode`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from optical_memory.alphabet import ALPHABET, ESCAPE
from optical_memory.checkcode import LineHasher, PartHasher
from optical_memory.escapes import canonical_text as _canonical_text
from optical_memory.escapes import canonical_with as _canonical_with
from optical_memory.pages import decode, join_row_cells, line_cells
from optical_memory.part_search import PART_STAGES, PartSearch, WideBudget

if TYPE_CHECKING:
    from optical_memory.term_guide import LineGuide

__all__ = [
    "DOUBT",
    "MAX_CANDIDATES",
    "PAGE_CANDIDATES",
    "SEARCH_CELLS",
    "Verified",
    "cells_of_rows",
    "text_columns",
    "verify_line",
    "verify_lines",
    "verify_reading",
]

MAX_CANDIDATES = 4096  # per failing line: 4,096 x ~1.5 us of hashing, and the false-verify bound above
SEARCH_CELLS = 24  # least certain cells whose alternatives are searched (a frost line rarely doubts more)
# A candidate this much less probable than the argmax (e^-12 = 6e-6 of it) is not tried: on held-out
# frost pages every line that verified by search did so within 6 nats, and the cap ends hopeless
# searches early (a line of sure cells has few candidates under it).
MAX_COST = 12.0
# A page's lines together try at most this many: a page of hopeless lines (say random keys at frost)
# reads in bounded time; ~1.5 us each, 12,288 is under 20 ms on one core.
PAGE_CANDIDATES = 12288
# The part-by-part search (`part_search`) hashes at most this many part codes a page, ~1 us each.
PAGE_PART_CANDIDATES = 16384
# Most failing lines match within their first few candidates (on held-out frost pages 84 % of the
# lines that verify by search do within 64, 93 % within 512): rank those before ranking 4,096.
_STAGES = (64, 512)
# Of a line's MAX_CANDIDATES, at most this many go to term-consistent candidates (`term_guide`),
# tried before the plain search, which gets the rest.
TERM_CANDIDATES = 1024
DOUBT = 0.99  # a cell whose best class is below this probability is reported as doubtful
_MAX_UNCERTAIN = 16
_MIN_UNCERTAIN = 3  # a line that fails its code has a wrong cell: name the least certain even if all look sure

_CODE_POINTS = np.array([ord(ch) for ch in ALPHABET], dtype="<u4")
_ESCAPED = re.compile(ESCAPE + "[0-9A-F]{1,6};")


@dataclass(frozen=True)
class Verified:
    """One line read back: its text and how far it can be trusted (the fields of `results.Line`)."""

    text: str
    verified: bool | None  # None: no check code to compare with
    uncertain: list[int] = field(default_factory=list)  # indices into `text`: verified False, or None and unsure
    alternative: str | None = None  # the runner-up reading; only when verified is False


def _well_formed(cells: str) -> bool:
    """Could `cells` be what the page encoding wrote, i.e. `encode_piece(decode(cells)) == cells`?"""
    return _canonical_text(cells) is not None


def cells_of_rows(classes: np.ndarray) -> str:
    """Class indices of a line's rows (rows, columns) -> the line's cells as `join_row_cells` joins them."""
    rows, columns = classes.shape
    flat = _CODE_POINTS[classes.reshape(-1)].view(f"<U{rows * columns}")[0] if classes.size else ""
    return line_cells(str(flat), (rows - 1) * columns)


def text_columns(cells: str, positions: Sequence[int]) -> list[int]:
    """Cell positions in a line's cells -> indices into its decoded text (sorted, distinct); see the module doc."""
    if ESCAPE in cells:
        to_char: list[int] = []
        index, at = 0, 0
        for match in _ESCAPED.finditer(cells):
            for _ in range(at, match.start()):
                to_char.append(index)
                index += 1
            to_char.extend([index] * (match.end() - match.start()))
            index += 1
            at = match.end()
        for _ in range(at, len(cells)):
            to_char.append(index)
            index += 1
    else:
        to_char, index = list(range(len(cells))), len(cells)
    end = len(cells)
    return sorted({to_char[p] if p < end else index + (p - end) for p in positions})


def _doubtful(confidence: np.ndarray, at_least: int = _MIN_UNCERTAIN) -> np.ndarray:
    """Positions of the cells to report: below DOUBT (the least certain first, at most 16), else the
    `at_least` least certain (3 for a line that fails its code: one of its cells is wrong; 0 for a line
    with no code, where a reader sure of every cell names none)."""
    order = np.argsort(confidence, kind="stable")
    below = order[confidence[order] < DOUBT][:_MAX_UNCERTAIN]
    return below if len(below) else order[:at_least]


def _ranked_assignments(costs: np.ndarray, budget: int, max_cost: float = MAX_COST) -> np.ndarray:
    """The `budget` cheapest choices of one rank per searched cell, cheapest first, without the all-argmax one.

    `costs` (n, K): -log of each rank's probability relative to the best (0 for rank 0, inf if
    impossible); choices costing more than `max_cost` are left out. Cells are added one at a time,
    keeping the `budget + 1` cheapest partial choices, sorted: a choice that is among the cheapest
    overall has a prefix among the cheapest partial ones (the remaining cells at rank 0 add nothing),
    so the pruning is exact. Rank r of a cell shifts the sorted list by its cost; only the head of
    that shifted list that can still beat the worst kept choice is merged in (a stable sort of a few
    sorted runs). Each step keeps (parent, rank) pointers; the choices are traced back at the end.
    """
    n, k = costs.shape
    scores = np.zeros(1)
    steps: list[tuple[np.ndarray, np.ndarray] | None] = []
    # costs as Python floats (the same doubles; numpy's scalars cost more than this loop's work), and each
    # step's ranks as one repeat of the parts' ranks instead of a filled array a part
    for row in costs.tolist():
        limit = min(max_cost, float(scores[-1])) if len(scores) > budget else max_cost
        parts = [scores]
        kept = [len(scores)]
        ranks_of = [0]
        for rank in range(1, k):
            cost = row[rank]
            head = int(scores.searchsorted(limit - cost, side="right")) if cost <= limit else 0
            if head:
                parts.append(scores[:head] + cost)
                kept.append(head)
                ranks_of.append(rank)
        if len(parts) == 1:
            steps.append(None)  # no alternative of this cell fits: every kept choice takes rank 0 here
            continue
        total = np.concatenate(parts)
        order = np.argsort(total, kind="stable")[: budget + 1]
        parents = np.concatenate([np.arange(count) for count in kept])[order]
        ranks = np.repeat(np.array(ranks_of), kept)[order]
        steps.append((parents, ranks))
        scores = total[order]
    choices = np.zeros((len(scores), n), dtype=np.int64)
    at = np.arange(len(scores))
    for i in range(n - 1, -1, -1):
        step = steps[i]
        if step is not None:
            choices[:, i] = step[1][at]
            at = step[0][at]
    return choices[choices.any(axis=1)][:budget]


def _candidates(flat: np.ndarray, topk: np.ndarray, cells: np.ndarray, ranks: np.ndarray) -> list[str]:
    """Each row of `ranks` applied to the argmax classes `flat` at `cells` -> the candidate's flat cell string."""
    length = len(flat)
    # code points, not class indices, copied per candidate: 4 bytes a cell, and only the changed cells looked up
    grid = np.broadcast_to(_CODE_POINTS[flat], (len(ranks), length)).copy()
    grid[:, cells] = _CODE_POINTS[topk[cells[None, :], ranks]]
    strings: list[str] = grid.view(f"<U{length}")[:, 0].tolist()  # Python strings already
    return strings


class _Search:
    """Best-first search of one line for a reading that matches its code, resumable with a larger budget."""

    def __init__(
        self, classes: np.ndarray, probs: np.ndarray, code: bytes, hasher: LineHasher, guide: LineGuide | None = None
    ) -> None:
        self.code, self.hasher, self.guide = code, hasher, guide
        self.prefix = (classes.shape[0] - 1) * classes.shape[1]  # cells of the line's full rows
        self.topk = classes.reshape(-1, classes.shape[-1])  # (L, K)
        self.p = probs.reshape(-1, probs.shape[-1]).astype(np.float64)
        # the plain search's cells and costs, made at its first `run`: most failing lines verify before it
        self.cells, self.costs, self.end = np.zeros(0, dtype=np.intp), np.zeros((0, 0)), 0
        self._plain_ready = False
        self.tried = 0  # candidates taken from the ranked list so far (tried or dropped as malformed)
        self.exhausted = False  # every candidate within MAX_COST was tried
        self.found: str | None = None
        self.runner_up: str | None = None
        self.guess: str | None = None  # the most probable term-consistent candidate, if any
        self.guess_runner_up: str | None = None
        self.term_tried = 0  # line codes checked in the term phase: the plain search gets the rest
        self._terms: Iterator[str] | None = None
        self._pieces: dict[str, str] = {}  # `_canonical_with`'s decoded escape pieces of this line's candidates
        self.parts: PartSearch | None = None  # set by `verify_lines` where the page keeps the line's part codes
        self._line_costs: np.ndarray | None = None

    def line_costs(self) -> np.ndarray:
        """(L, K): each choice's -log probability relative to its cell's best (inf if impossible); made once
        a line, for whichever searches it needs (parts, terms, plain; none may change it)."""
        if self._line_costs is None:
            with np.errstate(divide="ignore"):
                costs = np.log(self.p[:, :1]) - np.log(self.p)  # rank 0 costs nothing
            costs[~np.isfinite(costs)] = np.inf
            self._line_costs = costs
        return self._line_costs

    def _set_up_plain(self) -> None:
        """The plain search's SEARCH_CELLS least certain cells, their choices' costs, and the cells it changes."""
        p = self.p
        n = min(SEARCH_CELLS, len(p))
        cells = np.argpartition(p[:, 0], n - 1)[:n] if n < len(p) else np.arange(len(p))
        self.cells, self.costs, self._plain_ready = cells, self.line_costs()[cells], True
        # Cells past the last non-blank of every candidate are blank in all of them: left out of the strings.
        nonblank = np.flatnonzero(self.topk[:, 0])
        last = int(nonblank[-1]) + 1 if len(nonblank) else 0
        self.end = max(last, int(cells.max()) + 1, self.prefix)

    def run_terms(self, budget: int) -> None:
        """Check term-consistent candidates (`term_guide`) against the line code, most probable first, until
        `budget` of them were checked in all (resumable: a later call goes on where this one stopped)."""
        if self.guide is None or self.guide.count == 0 or self.found is not None or budget <= self.term_tried:
            return  # a line without terms (symbols, a blank line) has nothing to check words against
        if self._terms is None:
            from optical_memory.term_guide import term_candidates

            costs = self.line_costs()
            if self.parts is not None:  # a run that matched its part code as read is (almost surely) right
                costs = costs.copy()
                costs[self.parts.settled(), 1:] = np.inf
            self._terms = term_candidates(self.topk, costs, self.prefix, self.guide)
        code, code_of = self.code, self.hasher.code
        while self.term_tried < budget:
            cells = next(self._terms, None)
            if cells is None:
                self.guide = None  # every term-consistent candidate was tried
                return
            if self.guess is None:
                self.guess = cells
            elif self.guess_runner_up is None:
                self.guess_runner_up = cells
            self.term_tried += 1
            text = _canonical_with(cells, self._pieces)
            if text is not None and code_of(text) == code:
                self.found = cells
                return

    def waiting(self, kind: str) -> bool:
        """Whether a search of this kind ("terms" or "plain") can still find this line's reading."""
        if self.found is not None:
            return False
        return bool(self.guide is not None and self.guide.count) if kind == "terms" else not self.exhausted

    def spent(self) -> int:
        """Line codes this line has checked so far (part products, term-consistent and plain candidates; the
        plain search counts the malformed ones it dropped too): at most the line's budget."""
        return self.term_tried + self.tried + (self.parts.tried_codes if self.parts is not None else 0)

    def run_parts(self, stage: int, cap: int, budget: int) -> int:
        """The part-by-part search (`part_search`) to `stage`, at most `cap` part codes and `budget` line codes;
        returns the part codes it checked."""
        if self.parts is None or self.found is not None:
            return 0
        before = self.parts.hashed
        self.parts.run(stage, cap, self.code, self.hasher, budget - self.spent(), self._pieces)
        self.found = self.parts.found
        return self.parts.hashed - before

    def run(self, budget: int) -> None:
        """Try candidates up to the `budget`-th most probable (those before `tried` were tried already)."""
        if self.found is not None or self.exhausted or budget <= self.tried:
            return
        if self.parts is not None and self.parts.hopeless:  # no plain candidate can match (`part_search`)
            self.exhausted = True
            return
        if not self._plain_ready:
            self._set_up_plain()
        ranks = _ranked_assignments(self.costs, budget)
        prefix, code, code_of, pieces = self.prefix, self.code, self.hasher.code, self._pieces
        runner_up = self.runner_up  # a local in the loop, the attribute set once after it
        for flat in _candidates(self.topk[: self.end, 0], self.topk, self.cells, ranks[self.tried :]):
            cells = flat[:prefix] + flat[prefix:].rstrip(" ") if prefix else flat.rstrip(" ")
            text = _canonical_with(cells, pieces)
            if text is None:
                continue
            runner_up = runner_up or cells
            if code_of(text) == code:
                self.found = cells
                break
        self.runner_up = runner_up
        self.tried = len(ranks)
        self.exhausted = len(ranks) < budget


def _stages(budget: int) -> list[tuple[str, int]]:
    """The order failing lines are searched in: (kind, candidates of that kind a line may have tried by then).

    Term-consistent candidates match early (on held-out frost pages half at the first, 99 % within
    23), so each failing line tries its first 64 of those, then its 64 and 512 most probable plain
    ones, then the rest of its term-consistent ones, then plain ones to the line's budget.
    """
    plain = [("plain", share) for share in sorted({*(min(stage, budget) for stage in _STAGES), budget})]
    return [("terms", min(64, budget)), *plain[:-1], ("terms", TERM_CANDIDATES), plain[-1]]


def verify_lines(
    lines: Sequence[tuple[np.ndarray, np.ndarray, bytes | None]],
    hasher: LineHasher | None,
    budget: int = MAX_CANDIDATES,
    page_budget: int | None = None,
    guides: Callable[[int], LineGuide | None] | None = None,
    parts: Sequence[bytes | None] | None = None,
    part_hasher: PartHasher | None = None,
) -> list[Verified]:
    """Verified decoding of the lines read from one page: (classes, probs, code) each, arrays (rows, columns, K).

    Every line is checked at its argmax reading. A failing line with a guide (`guides(i)` for the
    i-th line: what the search index says of it, `term_guide`; asked only of failing lines) then
    tries its term-consistent candidates, at most TERM_CANDIDATES; then each failing line tries its
    64, then 512, most probable plain alternatives (where most failing lines match); what is left
    of `page_budget` is shared among the lines still failing, at most `budget` candidates each
    (term-consistent ones included), so a page of hopeless lines costs a bounded time
    (`page_budget`, default `PAGE_CANDIDATES`). Without a code (or hasher) a line is returned with
    verified None and, as `uncertain`, the characters whose cells the reader is unsure of.
    """
    results: list[Verified | None] = []
    searches: dict[int, _Search] = {}
    wide = WideBudget()  # the page's lines share it
    for index, (classes, probs, code) in enumerate(lines):
        if classes.shape != probs.shape or classes.ndim != 3:
            raise ValueError(
                f"classes and probs must both be (rows, columns, K); got {classes.shape} and {probs.shape}"
            )
        best = cells_of_rows(classes[..., 0])
        if code is None or hasher is None:  # nothing to check against: say where the reader is unsure
            unsure = _doubtful(probs[..., 0].reshape(-1), at_least=0).tolist()
            results.append(Verified(decode(best), None, text_columns(best, unsure) if unsure else []))
        elif (text := _canonical_text(best)) is not None and hasher.code(text) == code:
            results.append(Verified(decode(best), True))
        else:
            results.append(None)
            search = _Search(classes, probs, code, hasher, guides(index) if guides is not None else None)
            own = parts[index] if parts is not None else None
            if own and part_hasher is not None:
                search.parts = PartSearch(
                    search.topk, search.line_costs(), search.prefix, own, part_hasher, _CODE_POINTS, wide
                )
            searches[index] = search
    left = PAGE_CANDIDATES if page_budget is None else page_budget
    _search_parts(list(searches.values()), budget)
    for kind, share in _stages(budget):
        waiting = [search for search in searches.values() if search.waiting(kind)]
        for position, search in enumerate(waiting):
            before = search.spent()
            room = min(budget - before, left // (len(waiting) - position))
            if kind == "terms":
                search.run_terms(min(share, search.term_tried + room))
            else:
                search.run(min(share, search.tried + room))
            left -= search.spent() - before
    for index, search in searches.items():
        results[index] = _outcome(lines[index][0], lines[index][1], search)
    return [result for result in results if result is not None]


def _search_parts(searches: list[_Search], budget: int) -> None:
    """The part-by-part search of the failing lines that have part codes, stage by stage, PAGE_PART_CANDIDATES
    part codes for the page in all (shared among the lines still waiting), at most `budget` line codes a line."""
    left = PAGE_PART_CANDIDATES
    for stage in PART_STAGES:
        waiting = [search for search in searches if search.parts is not None and search.parts.waiting()]
        for position, search in enumerate(waiting):
            left -= search.run_parts(stage, left // (len(waiting) - position), budget)


def _outcome(classes: np.ndarray, probs: np.ndarray, search: _Search) -> Verified:
    if search.found is not None:
        return Verified(decode(search.found), True)
    argmax = cells_of_rows(classes[..., 0])
    located = search.parts.doubted() if search.parts is not None else []
    doubtful = np.array(sorted(located)) if located else _doubtful(probs[..., 0].reshape(-1))
    if search.guess is not None:  # the most probable reading whose words are all on the page
        best = search.guess
        runner_up = argmax if argmax != best else search.guess_runner_up
    else:
        best, runner_up = argmax, search.runner_up
    alternative = decode(runner_up) if runner_up is not None and runner_up != best else None
    return Verified(decode(best), False, text_columns(best, doubtful.tolist()), alternative)


def verify_line(
    classes: np.ndarray,
    probs: np.ndarray,
    code: bytes | None,
    hasher: LineHasher | None,
    budget: int = MAX_CANDIDATES,
) -> Verified:
    """Verified decoding of one line from its rows' top-K classes and probabilities, each (rows, columns, K)."""
    return verify_lines([(classes, probs, code)], hasher, budget, page_budget=budget)[0]


def verify_reading(row_cells: Sequence[str], columns: int, code: bytes | None, hasher: LineHasher | None) -> Verified:
    """A reader's one reading of a line's rows (no probabilities): verified true or false, nothing searched."""
    text = decode(join_row_cells(row_cells, columns))
    if code is None or hasher is None:
        return Verified(text, None)
    return Verified(text, hasher.code(text) == code)
