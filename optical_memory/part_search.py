"""Search a failing line part by part: each run of cells against its part code, then the runs' survivors together.

A page written with part codes (`checkcode.part_codes_for`) keeps, beside each line's line code, a
PART_BITS code for every run of PART_CELLS cells of the line as laid out. When a frost line misreads a
few cells in different places, the plain search (`verify`) must find all of them at once: the truth is
a product of alternatives, often past its budget. Here each run whose argmax cells fail their part code
is searched alone, most probable first (`verify._ranked_assignments` over the run's cells), and the
candidates that match its code are kept; a run that matches at its argmax keeps that. The line's
candidates are then the products of the runs' survivors, most probable first, and only the line code
accepts one, so the chance of a wrong line marked verified stays bounded by the line codes tried
(`verify`'s module doc); part codes only decide what is tried.

Runs are over the line's cells joined row after row (`pages.line_cells` before its strip), padded with
blanks to whole runs. The number of part codes says how many runs the line's text reaches: cells past
the last run are blank in what was written, whatever the reader saw there.

A run is searched in stages (`PART_STAGES`) and stops growing once it has a survivor; when the survivors'
products all fail the line code (a wrong candidate matches a 12-bit code one time in 4,096), every
failing run is searched further. A run first tries its one-cell changes (most failing runs have one
wrong cell), then its ranked candidates. A run that finds nothing within MAX_COST of its argmax makes
the line `hopeless` for `verify`'s plain search: every candidate that search could try, cut to this
run, is one this run tried. It ends the part search too, unless its wide pass (below) found survivors.

The reader can be sure and wrong. At frost a Cyrillic `т` or `п` reads as Latin `r` or `n` at a probability
e^-14 to e^-22 of its reading, far past MAX_COST, while the truth is still among its top K; and it sees
equal pictures alike, so a run of one glyph is misread alike (`#` then 62 `/` read as 62 `ι`, `/` missing
from some cells' top K). So a run that its ranked search gave up on (its candidates exhausted within
MAX_COST, or the last stage over) goes on through its wide candidates (`_Run.widen`), one survivor at a
time, cheapest first within each kind, from the page's WIDE_PAGE_CANDIDATES:

1. its equal cells changed together: where 3 or more cells read as one class, all of them to another
   class from any of their top K;
2. every change of one or two of its cells, whatever they cost (10 x 7 + 45 x 49 = 2,275 at K = 8);
3. each of the 8 cheapest changes of kind 1 with one other cell changed too.

So does a run whose survivors all failed the line code, runs never widened first: a ranked search that
tried 2,048 candidates kept a wrong one about half the time. A wrong candidate matches one time in 4,096,
so a run that goes through all of them keeps about half a wrong survivor: the line code decides among
the products, which are tried most probable first but none left out for its cost (a wide survivor may
cost 20 nats more than a ranked one).
"""

from __future__ import annotations

import numpy as np

from optical_memory.checkcode import PART_CELLS, LineHasher, PartHasher, unpack_parts
from optical_memory.escapes import canonical_with
from optical_memory.pages import line_cells

__all__ = ["PART_STAGES", "WIDE_PAGE_CANDIDATES", "PartSearch", "WideBudget"]

PART_STAGES = (64, 512, 2048)  # candidates a failing run may have tried by the end of each stage
_MAX_SURVIVORS = 8  # candidates matching a run's code kept per run (more are almost surely wrong)
_SINGLES = 16  # one-cell changes of a failing run tried before its ranked search
_ALIKE = 3  # cells of a run read as one class that its wide pass also changes together
_ALIKE_TOP = 8  # of those changes, the cheapest tried again with one other cell changed too
COMBINATIONS = 64  # line codes tried per stage: products of the runs' survivors, most probable first
_ANY_COST = float(np.finfo(np.float64).max)  # every finite cost (a run without a k-th survivor has inf there)
# Part codes the wide passes (`_Run.widen`) of one page's lines hash together, first come first served: four
# runs' (~1.7 ms each at ~0.75 us a code), so a page of hopeless lines stays within a few ms more.
WIDE_PAGE_CANDIDATES = 4 * 2_275  # 2,275: one run's wide pass at K = 8 (10 x 7 + 45 x 49 changes)


def _strings(candidates: np.ndarray) -> list[str]:
    """Candidates (m, n) as code points -> m strings of n characters."""
    if not len(candidates):
        return []
    return candidates.view(f"<U{candidates.shape[1]}")[:, 0].tolist()


class WideBudget:
    """What is left of a page's WIDE_PAGE_CANDIDATES, shared by the `PartSearch` of each of its failing lines."""

    def __init__(self, left: int = WIDE_PAGE_CANDIDATES) -> None:
        self.left = left


class _Run:
    """One run of PART_CELLS cells, searched against its part code, most probable candidates first."""

    def __init__(self, index: int, base: str, topk: np.ndarray, costs: np.ndarray, code: int) -> None:
        self.index, self.code = index, code
        self.base = base  # the run's argmax cells (blank past the line's cells)
        self.topk, self.costs = topk, costs  # the run's cells on the page: (n, K), n <= PART_CELLS
        self.survivors: list[tuple[float, str]] = []
        self.tried = 0  # candidates of the ranked list hashed so far
        self.singles = False  # the one-cell changes were tried
        self._wide: tuple[list[str], list[float]] | None = None  # `widen`'s candidates, made when first asked
        self._wide_at = 0  # how many of them were hashed
        self._alike_top: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # for its third kind, until made
        self.exhausted = False
        self._strings: list[str] = []  # the ranked candidates so far (`_rank`), and their costs
        self._costs: list[float] = []
        self._ranked_for = 0  # the budget they were ranked for

    def _hash(self, strings: list[str], costs: list[float], hasher: PartHasher) -> int:
        """Hash `strings` in order until one matches the run's code (kept as a survivor); returns how many."""
        pad = self.base[len(self.topk) :]
        index, code, code_of = self.index, self.code, hasher.code
        known = {text for _, text in self.survivors}
        for count, (text, cost) in enumerate(zip(strings, costs, strict=True), start=1):
            if code_of(index, text + pad) == code and text + pad not in known:
                self.survivors.append((cost, text + pad))
                return count
        return len(strings)

    def try_singles(self, hasher: PartHasher, code_points: np.ndarray) -> int:
        """The run's one-cell changes within MAX_COST, cheapest first, until one matches: most failing runs
        have one wrong cell, found here without ranking every choice (`extend` still ranks them all)."""
        from optical_memory.verify import MAX_COST

        self.singles = True
        alternatives = self.costs[:, 1:]
        order = np.argsort(alternatives, axis=None, kind="stable")
        order = order[alternatives.reshape(-1)[order] <= MAX_COST][:_SINGLES]
        if not len(order):
            return 0
        cells, ranks = np.divmod(order, alternatives.shape[1])
        read = self.base[: len(self.topk)]
        chars = code_points[self.topk[cells, ranks + 1]].tolist()
        strings = [read[:c] + chr(ch) + read[c + 1 :] for c, ch in zip(cells.tolist(), chars, strict=True)]
        return self._hash(strings, alternatives.reshape(-1)[order].tolist(), hasher)

    def wide_fresh(self) -> bool:
        """Whether `widen` was never asked: any survivor came from the ranked search."""
        return self._wide is None

    def can_widen(self) -> bool:
        """Whether `widen` has candidates left to try."""
        if len(self.survivors) >= _MAX_SURVIVORS:
            return False
        return self._wide is None or self._wide_at < len(self._wide[0]) or self._alike_top is not None

    def widen(self, hasher: PartHasher, code_points: np.ndarray, limit: int) -> int:
        """Go on through the run's wide candidates (module doc: its equal cells changed together, then every
        change of one or two of its cells, then the cheapest of the first with one more cell changed), each
        kind cheapest first, until one more matches the run's code or `limit` were hashed; returns how many
        were. For a run the ranked search gave up on. Each call resumes where the last one stopped."""
        if self._wide is None:
            read = np.array([ord(ch) for ch in self.base[: len(self.topk)]], dtype=code_points.dtype)
            alike = self._alike_candidates(read, code_points)
            changes, change_costs = self._wide_candidates(read, code_points)
            self._wide = (_strings(alike[0]) + _strings(changes), alike[1].tolist() + change_costs.tolist())
            if len(alike[1]):  # they are cheapest first
                self._alike_top = (alike[0][:_ALIKE_TOP], alike[1][:_ALIKE_TOP], alike[2][:_ALIKE_TOP])
        strings, costs = self._wide
        start, found = self._wide_at, len(self.survivors)
        while True:
            end = min(len(strings), start + limit)
            at = self._wide_at
            self._wide_at += self._hash(strings[at:end], costs[at:end], hasher)
            if len(self.survivors) > found or self._wide_at < len(strings) or self._alike_top is None:
                return self._wide_at - start
            more, more_costs = self._alike_and_one(*self._alike_top, code_points)  # the third kind, once reached
            strings.extend(_strings(more))
            costs.extend(more_costs.tolist())
            self._alike_top = None

    def _alike_candidates(
        self, read: np.ndarray, code_points: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Equal cells changed together: where _ALIKE or more of the run's cells read as one class, all of them
        changed to one other class from any of their top K (module doc: `/` read as `ι` in every cell, and
        missing from some cells' top K). Returns the candidates (m, n) as code points, cheapest first, their
        costs, and which cells each changed (m, n). A cell whose top K lacks the class costs as much as its
        least probable choice: a bound, for the order only. `read`: the run's argmax cells as code points."""
        n = len(read)
        least = np.where(np.isfinite(self.costs), self.costs, 0.0).max(axis=1)
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        classes, counts = np.unique(self.topk[:, 0], return_counts=True)
        for same in classes[(counts >= _ALIKE) & (classes != 0)]:  # class 0 is the blank
            members = self.topk[:, 0] == same
            options = np.unique(self.topk[members, 1:])
            options = options[options != same]
            hits = self.topk[members][None, :, :] == options[:, None, None]  # (options, members, K)
            per_cell = np.where(hits, self.costs[members][None], 0.0).sum(axis=2)
            costs = np.where(hits.any(axis=2), per_cell, least[members][None]).sum(axis=1)
            candidates = np.tile(read, (len(options), 1))
            candidates[:, members] = code_points[options][:, None]
            found.append((candidates, costs, np.tile(members, (len(options), 1))))
        if not found:
            return np.zeros((0, n), dtype=read.dtype), np.zeros(0), np.zeros((0, n), dtype=bool)
        candidates, costs, changed = (np.concatenate(part) for part in zip(*found, strict=True))
        order = np.argsort(costs, kind="stable")
        return candidates[order], costs[order], changed[order]

    def _alike_and_one(
        self, candidates: np.ndarray, costs: np.ndarray, changed: np.ndarray, code_points: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each of `candidates` (equal cells changed together) with one other cell changed to another of its
        top-K classes too, cheapest first: (candidates, costs)."""
        k = self.topk.shape[1]
        picks, cells = np.nonzero(~changed)  # which candidate, which of its unchanged cells
        picks, cells = np.repeat(picks, k - 1), np.repeat(cells, k - 1)
        ranks = np.tile(np.arange(1, k), len(cells) // max(1, k - 1))
        more = candidates[picks].copy()
        more[np.arange(len(picks)), cells] = code_points[self.topk[cells, ranks]]
        more_costs = costs[picks] + self.costs[cells, ranks]
        order = np.argsort(more_costs, kind="stable")
        order = order[np.isfinite(more_costs[order])]
        return more[order], more_costs[order]

    def _wide_candidates(self, read: np.ndarray, code_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`read` (the run's argmax cells as code points) with one or two cells changed to another top-K class:
        (candidates, costs), cheapest first; 10 x 7 + 45 x 49 = 2,275 at K = 8."""
        n, k = self.topk.shape
        if n == 0 or k < 2:
            return np.zeros((0, n), dtype=read.dtype), np.zeros(0)
        alternatives = self.costs[:, 1:].astype(np.float64)
        chars = code_points[self.topk[:, 1:]]
        cells, ranks = np.divmod(np.arange(n * (k - 1)), k - 1)  # one cell changed
        first, second = np.triu_indices(n, 1)  # two cells changed: each pair, each pair of their choices
        a_cells, b_cells = np.repeat(first, (k - 1) ** 2), np.repeat(second, (k - 1) ** 2)
        a_ranks = np.tile(np.repeat(np.arange(k - 1), k - 1), len(first))
        b_ranks = np.tile(np.tile(np.arange(k - 1), k - 1), len(first))
        candidates = np.tile(read, (len(cells) + len(a_cells), 1))
        candidates[np.arange(len(cells)), cells] = chars[cells, ranks]
        pairs = np.arange(len(cells), len(candidates))
        candidates[pairs, a_cells] = chars[a_cells, a_ranks]
        candidates[pairs, b_cells] = chars[b_cells, b_ranks]
        costs = np.concatenate(
            [alternatives[cells, ranks], alternatives[a_cells, a_ranks] + alternatives[b_cells, b_ranks]]
        )
        order = np.argsort(costs, kind="stable")
        order = order[np.isfinite(costs[order])]  # a class the reader gave no probability is not one it read
        return candidates[order], costs[order]

    def within_reach(self) -> bool:
        """Whether a survivor lies within MAX_COST of the argmax, where `verify`'s plain search could find it
        (those of `widen` may lie past it)."""
        from optical_memory.verify import MAX_COST

        return any(cost <= MAX_COST for cost, _ in self.survivors)

    def can_grow(self, stage: int) -> bool:
        """Whether `extend(stage)` may still find another survivor."""
        return not self.exhausted and self.tried < stage and len(self.survivors) < _MAX_SURVIVORS

    def extend(self, budget: int, hasher: PartHasher, code_points: np.ndarray) -> int:
        """Try the run's candidates, most probable first, up to the `budget`-th, until one more matches its
        code; returns how many were hashed. The ranked candidates are kept: a later call goes on from them."""
        if self.exhausted or budget <= self.tried or len(self.survivors) >= _MAX_SURVIVORS:
            return 0
        if budget > self._ranked_for:
            self._rank(budget, code_points)
        end = min(budget, len(self._strings))
        hashed = self._hash(self._strings[self.tried : end], self._costs[self.tried : end], hasher)
        self.tried += hashed
        self.exhausted = self.tried >= len(self._strings) and len(self._strings) < self._ranked_for
        return hashed

    def _rank(self, budget: int, code_points: np.ndarray) -> None:
        from optical_memory.verify import MAX_COST, _ranked_assignments

        ranks = _ranked_assignments(self.costs, budget, MAX_COST)
        n = len(self.topk)
        picked = self.topk[np.arange(n)[None, :], ranks]
        self._strings = code_points[picked].view(f"<U{n}")[:, 0].tolist() if len(ranks) else []
        self._costs = self.costs[np.arange(n)[None, :], ranks].sum(axis=1).tolist()
        self._ranked_for = budget


class PartSearch:
    """The part-by-part search of one failing line; `run(stage)` resumes where the last stage stopped.

    `topk` and `costs` (L, K): the line's cells' classes and each choice's -log probability relative to
    the cell's best (`verify._Search.line_costs`; read, never changed)."""

    def __init__(
        self,
        topk: np.ndarray,
        costs: np.ndarray,
        prefix: int,
        parts: bytes,
        part_hasher: PartHasher,
        code_points: np.ndarray,
        wide: WideBudget | None = None,
    ) -> None:
        self.prefix, self.hasher, self.code_points = prefix, part_hasher, code_points
        self.wide_budget = wide if wide is not None else WideBudget()  # the page's, where its lines share one
        self.length = len(topk)
        self.topk_best = topk[:, 0]
        codes = unpack_parts(parts)
        flat = code_points[topk[:, 0]].view(f"<U{len(topk)}")[0] if len(topk) else ""
        width = self.width = len(codes) * PART_CELLS
        flat = str(flat)[:width].ljust(width)  # past the last run the line was blank, whatever is read there
        self.fixed: list[str] = []
        self.runs: list[_Run] = []
        self.failed = not codes  # nothing to search by
        self.hopeless = False  # some run's truth is past MAX_COST: no candidate within it is the line
        for index, code in enumerate(codes):
            start = index * PART_CELLS
            base = flat[start : start + PART_CELLS]
            if part_hasher.code(index, base) == code:
                self.fixed.append(base)
                continue
            self.fixed.append("")
            end = min(start + PART_CELLS, len(topk))
            if start >= end:  # a run wholly past the line's cells cannot be read otherwise
                self.failed = self.hopeless = True
                continue
            self.runs.append(_Run(index, base, topk[start:end], costs[start:end], code))
        self.tried_codes = 0  # line codes checked
        self.hashed = 0  # part codes checked (by the staged search; `wide_hashed` by the runs' wide passes)
        self.wide_hashed = 0
        self._combined: set[tuple[int, ...]] = set()
        self.found: str | None = None

    def settled(self) -> np.ndarray:
        """The line's cells in runs that matched their part code as read: a wrong reading matches one time in
        4,096, so a search over alternatives (`term_guide`) can leave these cells as they are."""
        mask = np.zeros(self.length, dtype=bool)
        for index, run in enumerate(self.fixed):
            if run:
                mask[index * PART_CELLS : (index + 1) * PART_CELLS] = True
        return mask

    def doubted(self) -> list[int]:
        """Where a line that failed its code is wrong, as its part codes say: every cell of each run that fails
        its code as read (the reader may be sure of a misread cell: an inverted one reads as a block glyph,
        so its confidence cannot point at it), and any ink read past the last run, where the line was blank."""
        positions: list[int] = []
        for run in self.runs:
            positions.extend(range(run.index * PART_CELLS, run.index * PART_CELLS + len(run.topk)))
        past = self.code_points[self.topk_best[self.width :]]
        positions.extend(self.width + int(cell) for cell in np.flatnonzero(past != ord(" ")))
        return positions

    def waiting(self) -> bool:
        """Whether a later stage can still find the line (every run matching as read counts once: the line
        may differ from its argmax only past its last run, which is blank here)."""
        return self.found is None and not self.failed and (bool(self.runs) or () not in self._combined)

    def run(
        self, stage: int, cap: int, line_code: bytes, line_hasher: LineHasher, line_budget: int, pieces: dict[str, str]
    ) -> None:
        """Search each failing run up to `stage` candidates, at most `cap` part codes in all, and try the
        products of the runs' survivors not yet tried, at most `line_budget` line codes. A run with a
        survivor waits while others find theirs; when every product fails the line code, each run looks
        for its next survivor, within the same stage. `pieces` is the line's cache for `escapes.canonical_with`."""
        if not self.waiting():
            return
        if not self.runs:
            self._combine(line_code, line_hasher, min(1, line_budget), pieces)
            return
        start_hashed, start_codes = self.hashed, self.tried_codes
        retry = all(run.survivors for run in self.runs)  # every product so far failed the line code
        while True:
            before = self.hashed + self.wide_hashed
            growing = [run for run in self.runs if retry or not run.survivors]
            # when the products failed, runs never widened go first: the survivor of a ranked search that tried
            # ~2,000 candidates matched its 12-bit code by chance about as often as not
            fresh = any(run.wide_fresh() for run in growing)
            for position, run in enumerate(growing):
                if not run.singles:
                    self.hashed += run.try_singles(self.hasher, self.code_points)
                    if run.survivors and not retry:
                        continue
                room = (cap - (self.hashed - start_hashed)) // (len(growing) - position)
                self.hashed += run.extend(min(stage, run.tried + room), self.hasher, self.code_points)
                given_up = run.exhausted or stage >= PART_STAGES[-1]  # its ranked search had its last chance
                unmatched = not run.survivors or (retry and (run.wide_fresh() or not fresh))
                if given_up and unmatched and run.can_widen() and self.wide_budget.left > 0:
                    spent = run.widen(self.hasher, self.code_points, self.wide_budget.left)
                    self.wide_budget.left -= spent
                    self.wide_hashed += spent
                if run.exhausted and not run.within_reach():
                    self.hopeless = True  # the truth of this run is past MAX_COST: no plain candidate holds it
                    if not run.survivors:  # nor any product of the runs' survivors
                        self.failed = True
                        return
            left = line_budget - (self.tried_codes - start_codes)
            if not all(run.survivors for run in self.runs) or left <= 0:
                return
            self._combine(line_code, line_hasher, min(COMBINATIONS, left), pieces)
            if self.found is not None or not any(run.can_grow(stage) or run.can_widen() for run in self.runs):
                return
            spent = self.hashed - start_hashed >= cap and self.wide_budget.left <= 0
            if spent or (retry and self.hashed + self.wide_hashed == before):
                return  # the page's part budget is spent, or no run could grow
            retry = True

    def _combine(self, line_code: bytes, line_hasher: LineHasher, budget: int, pieces: dict[str, str]) -> None:
        from optical_memory.verify import _ranked_assignments

        if budget <= 0:
            return
        if all(len(run.survivors) == 1 for run in self.runs):  # the common case: one product, no ranking
            self._try((0,) * len(self.runs), line_code, line_hasher, pieces)
            return
        width = max(len(run.survivors) for run in self.runs)
        costs = np.full((len(self.runs), width), np.inf)
        for i, run in enumerate(self.runs):
            own = [c for c, _ in run.survivors]
            costs[i, : len(own)] = np.array(own) - min(own)
        order = np.argsort(costs, axis=1, kind="stable")
        ranked = np.take_along_axis(costs, order, axis=1)
        choices = np.zeros((1, len(self.runs)), dtype=np.int64)
        if self.runs:
            # every survivor matched its run's code, whatever it cost (a wide pass's may cost far more than a
            # ranked one's): the products are ordered by cost, none left out, and the line code decides
            choices = np.vstack([choices, _ranked_assignments(ranked, 4 * budget, max_cost=_ANY_COST)])
        tried = 0
        for choice in choices:
            key = tuple(int(order[i, r]) for i, r in enumerate(choice))
            if key in self._combined:
                continue
            if tried >= budget:
                return
            tried += 1
            if self._try(key, line_code, line_hasher, pieces):
                return

    def _try(self, key: tuple[int, ...], line_code: bytes, line_hasher: LineHasher, pieces: dict[str, str]) -> bool:
        """Check one product (a survivor of each failing run, by index) against the line code, once."""
        if key in self._combined:
            return False
        self._combined.add(key)
        parts = list(self.fixed)
        for run, pick in zip(self.runs, key, strict=True):
            parts[run.index] = run.survivors[pick][1]
        cells = line_cells("".join(parts)[: self.length].ljust(self.length), self.prefix)
        text = canonical_with(cells, pieces)
        self.tried_codes += 1
        if text is not None and line_hasher.code(text) == line_code:
            self.found = cells
            return True
        return False
