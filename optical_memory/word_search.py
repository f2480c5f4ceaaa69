"""One word's spellings: a best-first search over a segment's doubtful cells for spellings on the page.

`term_guide` cuts a failing line into segments (runs of cells no choice can split into other words)
and asks here for each one's few most probable spellings whose terms are all on the page
(`PageTerms.check`). A segment whose reading is on the page looks a little way for others (case and
look-alike words); one that is not searches where its misread terms lie, its doubtful cells, a
Greek or Cyrillic word's Latin look-alikes, then its sure cells too. `best_first` enumerates the
choices, cheapest first, lazily. A `SegmentSearch` stops at its first spelling on the page and looks
for the others only when its line needs them (`finish`), its page budget kept as if it had not stopped.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
import weakref
from collections.abc import Iterator, Sequence
from itertools import islice, pairwise
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from optical_memory.alphabet import ALPHABET, ESCAPE
from optical_memory.escapes import canonical_text, canonical_with
from optical_memory.terms import MAX_TERM, terms

if TYPE_CHECKING:
    from optical_memory.term_guide import PageTerms

__all__ = ["Option", "SegmentSearch", "best_first", "check_reading", "reading_of", "spellings"]

_COMPOUND = re.compile(r"\w+(?:[./\\:@#-]\w+)*")  # what `terms` cuts a text into before its variants
_CODE_POINTS = np.array([ord(ch) for ch in ALPHABET], dtype="<u4")
# A spelling of a segment this much less probable than its argmax is not tried: wider than the plain
# search's 12 (`verify.MAX_COST`), as few spellings of a word are on the page.
SEGMENT_COST = 20.0
SEGMENT_CELLS = 12  # doubtful cells of one segment
SEGMENT_BUDGET = 1024  # spellings of one segment looked at, per try
WIDER = 4  # times SEGMENT_BUDGET for the last try, over the segment's sure cells too
CONSISTENT_BUDGET = 32  # where its most probable spelling is on the page
SEGMENT_KEEP = 6  # term-consistent spellings of one segment kept
KEEP_MARGIN = 8.0  # nor any less probable than e^-8 of the segment's most probable consistent one
# A page's failing lines together look at most this many spellings (~5 us each): a page of
# hopeless words reads in bounded time; what is left of each line's budget goes to plain search.
PAGE_SPELLINGS = 20_000


_MISSED = (False, 0)  # a reading that is not well formed: no terms checked


class Option(NamedTuple):  # a tuple: a page's reading makes tens of thousands
    cost: float  # -log probability relative to the argmax of the segment's cells
    cells: str
    terms: int


Changes = tuple[tuple[int, int], ...]  # (slot, rank) of the slots not at their rank 0
_Try = tuple[np.ndarray, np.ndarray, int]  # cells searched, their costs (inf: not a choice), spellings looked at


def best_first(costs: Sequence[Sequence[float]], max_cost: float) -> Iterator[tuple[float, Changes]]:
    """Every choice of one rank per slot, cheapest first, up to `max_cost`: (cost, the (slot, rank) not at rank 0).

    `costs[i]` are slot i's ranks' costs, ascending, from 0 (inf: not allowed). Lazy, for the few
    choices a segment or a line needs (a heap; at most 3 successors a choice): slots with an
    alternative are ordered by their second rank's cost, and a choice whose last changed slot is
    j leads to (a) rank + 1 at j, (b) rank 1 at j + 1, (c) where j is at rank 1, that 1 moved to
    j + 1. Each choice has one parent that costs no more, so all come, in order, once each.
    """
    slots = sorted((i for i, row in enumerate(costs) if len(row) > 1 and row[1] <= max_cost), key=lambda i: costs[i][1])
    yield 0.0, ()
    if not slots:
        return
    rows = [costs[i] for i in slots]
    order = {slot: k for k, slot in enumerate(slots)}
    heap: list[tuple[float, int, Changes]] = [(rows[0][1], 0, ((slots[0], 1),))]
    counter = 0
    while heap:
        cost, _, state = heapq.heappop(heap)
        yield cost, state
        slot, rank = state[-1]
        k = order[slot]
        row = rows[k]
        grown: list[tuple[float, Changes]] = []
        if rank + 1 < len(row) and row[rank + 1] != math.inf:  # (a)
            grown.append((cost + row[rank + 1] - row[rank], (*state[:-1], (slot, rank + 1))))
        if k + 1 < len(slots):
            step, following = rows[k + 1][1], slots[k + 1]
            grown.append((cost + step, (*state, (following, 1))))  # (b)
            if rank == 1:  # (c)
                grown.append((cost + step - row[1], (*state[:-1], (following, 1))))
        for value, successor in grown:
            if value <= max_cost:
                counter += 1
                heapq.heappush(heap, (value, counter, successor))


def spellings(chars: str, topk: np.ndarray, costs: np.ndarray, cells: np.ndarray) -> Iterator[tuple[float, str]]:
    """A segment's spellings over its doubtful `cells`, most probable first: (cost, cell string).

    A cell's choices are its ranks of finite cost (rank 0 always), in rank order (costs ascend).
    The choices come in `best_first`'s order with its costs, summed as it sums them; each spelling is
    made from the one it grew from, a cell or two changed (a segment is read thousands of times a
    page: joining every spelling anew cost more than the search).
    """
    if not len(cells):
        yield 0.0, chars  # what `best_first` gives without slots: the reading as it is
        return
    if len(cells) == 1:  # most doubtful words and separators: no heap needed
        yield from _one_cell_spellings(chars, int(cells[0]), topk[cells[0]].tolist(), costs[cells[0]].tolist())
        return
    at = cells.tolist()
    letters: list[list[str]] = []
    rows: list[list[float]] = []
    for choice_costs, choice_classes in zip(costs[cells].tolist(), topk[cells].tolist(), strict=True):
        row, chosen = [0.0], [ALPHABET[choice_classes[0]]]  # one walk over the ranks, not three
        for rank in range(1, len(choice_costs)):
            if choice_costs[rank] != math.inf:
                row.append(choice_costs[rank])
                chosen.append(ALPHABET[choice_classes[rank]])
        letters.append(chosen)
        rows.append(row)
    if len(set(at)) < len(at):  # a cell named twice: the general path applies the changes in order
        yield from _joined_spellings(chars, at, letters, rows)
        return
    yield from _grown_spellings(chars, at, letters, rows, SEGMENT_COST)


def _one_cell_spellings(chars: str, at: int, classes: list[int], costs: list[float]) -> Iterator[tuple[float, str]]:
    """`_grown_spellings` of one cell: its finite choices in rank order while within SEGMENT_COST, each cost
    summed as the heap's walk sums it (the previous cost, plus this rank's, minus the previous rank's)."""
    yield 0.0, chars
    ranks = [rank for rank in range(1, len(costs)) if costs[rank] != math.inf]
    if not ranks or costs[ranks[0]] > SEGMENT_COST:
        return
    before, after = chars[:at], chars[at + 1 :]
    cost = costs[ranks[0]]
    yield cost, before + ALPHABET[classes[ranks[0]]] + after
    for previous, rank in pairwise(ranks):
        cost = cost + costs[rank] - costs[previous]
        if cost > SEGMENT_COST:
            return
        yield cost, before + ALPHABET[classes[rank]] + after


def _joined_spellings(
    chars: str, at: list[int], letters: list[list[str]], rows: list[list[float]]
) -> Iterator[tuple[float, str]]:
    base = list(chars)
    for cost, changes in best_first(rows, SEGMENT_COST):
        spelled = base.copy()
        for slot, rank in changes:
            spelled[at[slot]] = letters[slot][rank]
        yield cost, "".join(spelled)


def _grown_spellings(
    chars: str, at: list[int], letters: list[list[str]], rows: list[list[float]], max_cost: float
) -> Iterator[tuple[float, str]]:
    """`best_first(rows, max_cost)` applied to `chars` at the distinct positions `at`: the same choices in the
    same order (a heap of (cost, push count, ...) pops alike), the same float sums, each spelling made
    from its parent's: successor (a) changes the last changed cell's letter, (b) the next slot's, (c)
    puts the last one back and changes the next."""
    slots = sorted((i for i, row in enumerate(rows) if len(row) > 1 and row[1] <= max_cost), key=lambda i: rows[i][1])
    yield 0.0, chars
    if not slots:
        return
    costs = [rows[i] for i in slots]
    where = [at[i] for i in slots]
    choices = [letters[i] for i in slots]
    last = len(slots) - 1
    # (cost, push count, slot, its rank, the parent's spelling, a cell to put back or -1): a spelling is
    # made when it is popped (about half of those pushed never are)
    heap: list[tuple[float, int, int, int, str, int]] = [(costs[0][1], 0, 0, 1, chars, -1)]
    pop, push = heapq.heappop, heapq.heappush
    counter = 0
    while heap:
        cost, _, k, rank, spelled, back = pop(heap)
        if back >= 0:
            spelled = spelled[:back] + chars[back] + spelled[back + 1 :]
        p = where[k]
        spelled = spelled[:p] + choices[k][rank] + spelled[p + 1 :]
        yield cost, spelled
        row = costs[k]
        if rank + 1 < len(row) and row[rank + 1] != math.inf:  # (a)
            value = cost + row[rank + 1] - row[rank]
            if value <= max_cost:
                counter += 1
                push(heap, (value, counter, k, rank + 1, spelled, -1))
        if k < last:
            step = costs[k + 1][1]
            value = cost + step
            if value <= max_cost:  # (b)
                counter += 1
                push(heap, (value, counter, k + 1, 1, spelled, -1))
            if rank == 1:  # (c)
                value = cost + step - row[1]
                if value <= max_cost:
                    counter += 1
                    push(heap, (value, counter, k + 1, 1, spelled, p))


def reading_of(topk: np.ndarray) -> str:
    """The cells' most probable classes (`topk[:, 0]`) as one string, a character a cell."""
    return str(_CODE_POINTS[topk[:, 0]].view(f"<U{len(topk)}")[0]) if len(topk) else ""


def check_reading(argmax: str, page: PageTerms) -> tuple[bool, int]:
    """`PageTerms.check` of the text a segment's cells stand for; not on the page where they are not well formed."""
    text = canonical_text(argmax)
    return page.check(text) if text is not None else _MISSED


class SegmentSearch:
    """A word segment's spellings on the page, searched in two steps: made, it has its most probable option
    (`options[0]`, all that a line's most probable candidate needs); `finish` looks for the rest.

    A segment read as a spelling on the page looks CONSISTENT_BUDGET spellings further (a case or
    look-alike word may be the one). One that is not tries in turn, until a try finds spellings on
    the page: the cells of its terms that are not on the page, a Greek or Cyrillic word's Latin
    look-alikes in its own script, its doubtful cells, then (the reader was sure of a wrong cell) its
    SEGMENT_CELLS least certain cells with every alternative. `argmax` (the cells' best classes as a
    string) and `limited` (`costs` where `allowed`, else inf) may be given where the caller has them.

    Why two steps: most failing lines verify at their most probable candidate, and the search past a
    segment's first option on the page (up to SEGMENT_KEEP, or its try's budget) was most of their
    cost. What the rest may still look at is owed to the page's spelling budget (`PageTerms.owe`),
    which finishes it before that could change another segment's budget: the same options and budgets.
    """

    def __init__(
        self,
        topk: np.ndarray,
        costs: np.ndarray,
        allowed: np.ndarray,
        doubtful: np.ndarray,
        page: PageTerms,
        argmax: str | None = None,
        limited: np.ndarray | None = None,
    ) -> None:
        if argmax is None:
            argmax = reading_of(topk)
        if limited is None:
            limited = np.where(allowed, costs, np.inf)
        self._page = weakref.ref(page)  # the page keeps its unfinished searches (`owe`): no cycle to collect
        self._rest: Iterator[tuple[float, str]] | None = None  # the spellings left of the try that found one
        self._margin = math.inf  # past this cost no spelling is kept (KEEP_MARGIN past the first kept)
        checked = check_reading(argmax, page)
        if checked[0]:  # most words read right: look a little way for others
            budget = page.room(CONSISTENT_BUDGET if len(doubtful) else 1)  # no doubtful cell: nowhere to look
            if budget:  # the reading is the first spelling looked at, and on the page
                page.spelled += 1
                self.options, self.checked = [Option(0.0, argmax, checked[1])], True
                if SEGMENT_KEEP > 1 and budget > 1:
                    self._rest, self._margin = _after_first(argmax, topk, limited, doubtful, budget), KEEP_MARGIN
                    page.owe(self, budget - 1)
                return
            tries = [(doubtful, limited, CONSISTENT_BUDGET)]
        else:
            tries = _tries(topk, costs, doubtful, limited, page, argmax)
        self.options, self.checked = self._first(page, tries, argmax, topk)

    def _first(self, page: PageTerms, tries: list[_Try], argmax: str, topk: np.ndarray) -> tuple[list[Option], bool]:
        """Try in turn until a spelling is on the page: that one (the rest of its try left for `finish`); where
        none is, the few most probable spellings, unchecked (the search is then over)."""
        plain: list[Option] = []
        check, pieces = page.check, page.pieces
        for cells, choices, budget in tries:
            budget = page.room(budget)
            ranked = islice(spellings(argmax, topk, choices, np.sort(cells[:SEGMENT_CELLS])), budget)
            looked = 0
            for cost, spelled in ranked:
                looked += 1
                text = canonical_with(spelled, pieces) if ESCAPE in spelled else spelled
                if text is None:
                    continue
                ok, count = check(text)
                if len(plain) < 4:
                    plain.append(Option(cost, spelled, count))
                if ok:
                    page.spelled += looked
                    # the rest is at most the try's other spellings: each a choice of one finite rank a cell
                    most = min(budget, _choices(choices, cells[:SEGMENT_CELLS], budget)) - looked
                    if SEGMENT_KEEP > 1 and most > 0:
                        self._rest, self._margin = ranked, cost + KEEP_MARGIN
                        page.owe(self, most)
                    return [Option(cost, spelled, count)], True
            page.spelled += looked
        return plain or [Option(0.0, argmax, 0)], False

    def finish(self) -> tuple[list[Option], bool]:
        """The segment's options (at most SEGMENT_KEEP, most probable first) and whether they are on the page."""
        ranked, self._rest, page = self._rest, None, self._page()
        if ranked is None or page is None:  # no page: it was read and let go, nothing is owed to it
            return self.options, self.checked
        kept, margin = self.options, self._margin
        check, pieces = page.check, page.pieces
        looked = 0
        for cost, spelled in ranked:
            looked += 1
            if cost > margin:
                break
            text = canonical_with(spelled, pieces) if ESCAPE in spelled else spelled
            if text is None:
                continue
            ok, count = check(text)
            if ok:
                kept.append(Option(cost, spelled, count))
                if len(kept) == SEGMENT_KEEP:
                    break
        page.repay(self, looked)
        return kept, True


def _after_first(
    argmax: str, topk: np.ndarray, costs: np.ndarray, cells: np.ndarray, budget: int
) -> Iterator[tuple[float, str]]:
    """The spellings of a try after its first (the reading itself), up to its `budget`: made when first asked for."""
    yield from islice(spellings(argmax, topk, costs, np.sort(cells[:SEGMENT_CELLS])), 1, budget)


def _choices(costs: np.ndarray, cells: np.ndarray, at_most: int) -> int:
    """How many spellings there are over `cells` (a finite rank each), or more than `at_most`."""
    count = 1
    for finite in np.isfinite(costs[cells]).sum(axis=1).tolist():
        count *= finite
        if count > at_most:
            break
    return count


def _tries(
    topk: np.ndarray, costs: np.ndarray, doubtful: np.ndarray, limited: np.ndarray, page: PageTerms, argmax: str
) -> list[_Try]:
    """Where a segment not read as a spelling on the page looks, in turn (`SegmentSearch`)."""
    second = costs[:, 1] if costs.shape[1] > 1 else np.zeros(len(costs))
    wider = np.argsort(second, kind="stable")
    tries = [(doubtful, limited, SEGMENT_BUDGET), (wider, costs, WIDER * SEGMENT_BUDGET)]
    mixed = None if _one_script(argmax) else _mixed_script(topk, costs)
    if mixed is not None:  # a letter of another script inside a Greek or Cyrillic word: its look-alikes first
        tries.insert(0, mixed)
    wrong = _misread(argmax, page)
    if wrong is not None:  # search where the terms that are not on the page lie first
        tries[:0] = [(doubtful[wrong[doubtful]], limited, SEGMENT_BUDGET), (wider[wrong[wider]], costs, SEGMENT_BUDGET)]
    return tries


def _script(ch: str) -> str:
    """The script of a letter as far as look-alikes go: LATIN, GREEK, CYRILLIC (else the empty string)."""
    if not ch.isalpha():
        return ""
    name = unicodedata.name(ch, "")
    return next((script for script in ("LATIN", "GREEK", "CYRILLIC") if name.startswith(script)), "")


# each letter's script as a number in the names' order (CYRILLIC < GREEK < LATIN; 0: none), so that the
# smallest of equally common scripts is the first by name
_SCRIPT_NAMES = ("", "CYRILLIC", "GREEK", "LATIN")
_SCRIPTS = np.array([_SCRIPT_NAMES.index(_script(ch)) for ch in ALPHABET], dtype=np.intp)


_SCRIPT_OF = dict(zip(ALPHABET, _SCRIPTS.tolist(), strict=True))


def _one_script(cells: str) -> bool:
    """Whether a reading's letters are all of one script, or it has none: `_mixed_script` finds nothing there
    (most words; asked first, as numpy's calls cost more than a look at each of a word's cells)."""
    return len({_SCRIPT_OF[ch] for ch in cells} - {0}) <= 1


def _mixed_script(topk: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, int] | None:
    """A try for a word read as mostly one script with a few letters of another (``vπvτγ``): those
    cells, with only their choices in the word's script. Words rarely mix scripts; frost's look-alikes do."""
    scripts = _SCRIPTS[topk]  # (cells, K)
    first = scripts[:, 0]
    counts = np.bincount(first, minlength=len(_SCRIPT_NAMES))[1:]
    letters = int(counts.sum())
    if letters < 2:
        return None
    major = int(counts.argmax()) + 1  # a tie: the first by name
    odd = np.flatnonzero((first != 0) & (first != major) & (scripts[:, 1:] == major).any(axis=1))
    if not len(odd) or len(odd) * 2 > letters:
        return None
    return odd, np.where(scripts == major, costs, np.inf), SEGMENT_BUDGET


def _misread(cells: str, page: PageTerms) -> np.ndarray | None:
    """Where a segment's reading goes wrong, if its terms tell: the cells of its terms that are not on
    the page (a part of an identifier, ``ghp_4XMeCH0`` -> ``me``, ``ch``, ...), one cell either side;
    None if every term is on the page, only its whole form is not, or escapes shift the cells."""
    if ESCAPE in cells or page.check(cells)[0]:
        return None
    lowered = cells.lower()
    if len(lowered) != len(cells):
        return None
    wrong = np.zeros(len(cells), dtype=bool)
    wholes = {m.group(0).lower()[:MAX_TERM] for m in _COMPOUND.finditer(cells)}
    for term in set(terms(cells)) - wholes:
        if page.known(term):
            continue
        at = lowered.find(term)
        while at >= 0:
            wrong[max(0, at - 1) : at + len(term) + 1] = True
            at = lowered.find(term, at + 1)
    return wrong if wrong.any() else None
