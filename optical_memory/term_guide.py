"""Term-guided verified decoding: check a line's reading word by word against its page's search terms.

When a page is remembered its line pieces are also cut into search terms (`terms.terms`), hashed
under the archive's term key and kept in the search index; the index's entry for the page
(`postings.page_entry`) keeps, per line, how many terms it has and, for the page, the first 4 bytes of
each distinct term's hash. A candidate spelling of a word whose terms are not on the page cannot be
what was written. So a failing line is not searched as one string: it is cut into *segments* that
no choice of the reader can join (runs between cells that are a separator in every choice
considered), each segment's few most probable spellings whose terms are all on the page are found
by a small best-first search of its own doubtful cells, and the segments' spellings are combined,
most probable first, into whole-line candidates whose term count is the line's. The line's check
code stays the only test of a candidate (`verify`): the index narrows what is tried, it never
accepts anything.

Each segment's spellings are `word_search`'s; this module cuts the line and combines them. The most
probable combination (each segment at its first spelling on the page) is tried before the segments'
other spellings are searched for: most failing lines verify there.

Why segments are independent: a term is cut from a run of word characters and the connectors
``./\\:@#-`` (`terms._COMPOUND`); a cell that is any other character (a space, a quote, ``=``) in
every choice ends every run, so the terms of a line are the terms of its segments together. The
escape mark and ``;`` never cut (an escape ``¤HEX;`` is decoded within one segment). Terms are
lower-cased, so spellings that differ only in case pass alike and the line code decides.

Where the page has no entry (an archive from before the index, a page whose entry is gone, an
old-layout entry) there is no guide and `verify` searches as before.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

from optical_memory import word_search
from optical_memory.alphabet import ALPHABET, ESCAPE
from optical_memory.archive import ArchiveTxn, u64
from optical_memory.errors import ArchiveError
from optical_memory.escapes import canonical_text
from optical_memory.pages import line_cells
from optical_memory.postings import TERMS_DB, parse_page_entry
from optical_memory.terms import MAX_TERM, TermHasher, terms
from optical_memory.word_search import Option, SegmentSearch, best_first, check_reading, reading_of, spellings

__all__ = ["LineGuide", "PageTerms", "best_first", "page_terms", "term_candidates"]

_LAYOUT_1 = b"{"  # layout 1's entries were JSON: their terms are not hashed as today's, so not used
_CONNECTORS = "./\\:@#-"  # join word characters into one compound (`terms._COMPOUND`)
_WORD = re.compile(r"\w")
_COMPOUND = re.compile(r"\w+(?:[./\\:@#-]\w+)*")  # what `terms` cuts a text into before its variants
# An alternative this much less probable than a cell's best (e^-12) is not considered for the cell.
CELL_COST = 12.0
# A cell is doubtful (its alternatives searched, and it may join words) when its second choice is
# within e^-DOUBT_COST of its best; a segment with no spelling on the page also searches its sure cells.
DOUBT_COST = 7.0
# Separators searched a line (the least certain): a quote or a dash the words cannot tell; a line of
# symbols is the plain search's (terms constrain nothing there).
CUT_CELLS = 8
CUT_COST = 10.0  # a cell is a sure separator when no choice within e^-10 of its best is a word character
# A whole-line candidate this much less probable than the argmax is not tried. Wider than the plain
# search's 12 (`verify.MAX_COST`): few combinations of words on the page have the line's term count.
LINE_COST = 24.0
UNCHECKED_COST = 12.0  # where some segment has no spelling on the page: as the plain search
TERM_CELLS = 64  # doubtful cells of a line searched word by word (plain search takes 24 for the whole line)
COMBINATIONS = 2048  # whole-line combinations looked at (most fail the term count, unhashed)


_MISSED = (False, 0)  # `PageTerms.check` of a text whose terms are not all on the page, cut no further


def _is_cut(ch: str) -> bool:
    return not _WORD.match(ch) and ch not in _CONNECTORS and ch not in (ESCAPE, ";")


_CUT = np.array([_is_cut(ch) for ch in ALPHABET])


class PageTerms:
    """One page's entry in the search index, read with the hasher of its archive's terms.

    `entry` is the raw `page_terms` value; it is parsed only when a line fails its check code, so
    pages whose lines verify at their most probable reading pay one LMDB get.
    """

    def __init__(self, entry: bytes, hasher: Callable[[str], bytes]) -> None:
        self._entry = entry
        self._hasher = hasher
        self._lengths: dict[int, int] | None = None
        self._prefixes: frozenset[bytes] = frozenset()
        self._width = 0
        self._segments: dict[str, tuple[bool, int]] = {}
        self._known: dict[str, bool] = {}
        self.spelled = 0  # segment spellings looked at on this page's reading, at most PAGE_SPELLINGS
        self.pieces: dict[str, str] = {}  # escape pieces the reading's spellings decoded (`escapes.canonical_with`)
        self._owed: dict[SegmentSearch, int] = {}  # unfinished searches: the most each may still look at
        self._owed_most = 0

    @classmethod
    def of(cls, entry: bytes | None, hasher: Callable[[str], bytes]) -> PageTerms | None:
        """The page's terms, or None where its entry is missing or in layout 1 (no guide)."""
        if not entry or bytes(entry[:1]) == _LAYOUT_1:
            return None
        return cls(bytes(entry), hasher)

    def _parse(self) -> dict[int, int]:
        """The entry's line lengths (its prefixes kept); an entry `postings` cannot read guides nothing."""
        if self._lengths is None:
            try:
                lengths, prefixes = parse_page_entry(self._entry)
            except (ArchiveError, IndexError, ValueError):  # a layout this code does not know, or damage
                lengths, prefixes = {}, []
            self._lengths, self._prefixes = lengths, frozenset(prefixes)
            self._width = len(prefixes[0]) if prefixes else 0  # the entry says how many bytes of each hash
        return self._lengths

    def new_reading(self) -> PageTerms:
        """Start one reading of the page: its spelling budget (`word_search.PAGE_SPELLINGS`) is its own."""
        self.spelled = 0
        self.pieces = {}
        self._owed, self._owed_most = {}, 0
        return self

    def room(self, budget: int) -> int:
        """How many of `budget` spellings a search may look at now: at most what is left of PAGE_SPELLINGS.

        Searches not yet finished (`owe`) may look at more before it, as they would have had they run
        to their end at once: where that could change this answer, they are finished first. (What they
        look at does not depend on the page's budget: that was read when their try began.)
        """
        cap = word_search.PAGE_SPELLINGS
        if self._owed_most and self.spelled + self._owed_most + budget > cap:
            for search in list(self._owed):
                search.finish()
        return max(0, min(budget, cap - self.spelled))

    def owe(self, search: SegmentSearch, most: int) -> None:
        """`search` stopped early and may still look at up to `most` spellings (`SegmentSearch.finish`)."""
        self._owed[search] = most
        self._owed_most += most

    def repay(self, search: SegmentSearch, looked: int) -> None:
        """`search` finished, having looked at `looked` more spellings (a search of an earlier reading: none)."""
        most = self._owed.pop(search, None)
        if most is not None:
            self._owed_most -= most
            self.spelled += looked

    def line(self, number: int) -> LineGuide | None:
        """The guide for line `number`, or None if the index holds no term count for it."""
        count = self._parse().get(number)
        return None if count is None else LineGuide(self, count)

    def known(self, term: str) -> bool:
        """Whether `term`'s hash is among the page's (by the entry's prefixes: with 4 bytes and a few hundred
        terms on the page, a term not there passes by chance about once in 10^7)."""
        found = self._known.get(term)
        if found is None:
            if self._lengths is None:
                self._parse()
            found = self._known[term] = self._hasher(term)[: self._width] in self._prefixes
        return found

    def check(self, text: str) -> tuple[bool, int]:
        """(every term of `text` is on the page, how many terms it has), as `index_lines` counts them."""
        found = self._segments.get(text)
        if found is not None:
            return found
        # a compound's whole form is one of its terms: most wrong spellings fail there, uncut; their terms
        # are looked up and hashed here, not through `known` (a call less a spelling: pages check thousands)
        cache = self._known
        # a word alone (no connector, no underscore) is its own one compound: the regex is the slow part
        for whole in (text,) if text.isalnum() else _COMPOUND.findall(text):
            term = whole.lower()[:MAX_TERM]
            on_page = cache.get(term)
            if on_page is None:
                if self._lengths is None:
                    self._parse()
                on_page = cache[term] = self._hasher(term)[: self._width] in self._prefixes
            if not on_page:
                self._segments[text] = _MISSED  # not cut: its terms are not counted
                return _MISSED
        cut = terms(text)
        known = self.known
        found = self._segments[text] = (all(known(term) for term in set(cut)), len(cut))
        return found


def page_terms(tx: ArchiveTxn, page: int) -> PageTerms | None:
    """Page number `page`'s entry in this archive's search index (inside the read that gets its record).

    One get: the entry is parsed, and its terms hashed, only for lines that fail their code. None
    where the page has no entry (or the archive no index, or no key yet): reading searches plainly.
    """
    try:
        raw = tx.txn.get(u64(page), db=tx.db(TERMS_DB))
        return PageTerms.of(bytes(raw), TermHasher(tx)) if raw is not None else None
    except (KeyError, ArchiveError):  # a read-only archive without the index database, or without a key
        return None


@dataclass(frozen=True)
class LineGuide:
    """What the index says about one line: its page's terms and how many terms the line has."""

    page: PageTerms
    count: int


def _segments(cut: np.ndarray) -> list[tuple[int, int]]:
    """The line's parts, (start, stop) over its cells: a run of cells that are no sure cut is one part,
    and so is every cut cell (its own part, searched alone where doubtful)."""
    parts: list[tuple[int, int]] = []
    start = 0
    for at in np.flatnonzero(cut).tolist():
        if at > start:
            parts.append((start, at))
        parts.append((at, at + 1))
        start = at + 1
    if start < len(cut):
        parts.append((start, len(cut)))
    return parts


def _read_as_is(argmax: str, page: PageTerms) -> list[Option] | None:
    """What `SegmentSearch` makes of a word part with no doubtful cell whose reading is on the page (its one
    option, looked at within the page's budget), without the object and its arrays; else None (search it).

    A line's parts are mostly such words: building a search for each cost more than checking them.
    """
    checked = check_reading(argmax, page)
    if not checked[0] or not page.room(1):  # `room` again in the search: it finished what was owed here
        return None
    page.spelled += 1
    return [Option(0.0, argmax, checked[1])]


def _line_options(
    topk: np.ndarray, costs: np.ndarray, prefix: int, page: PageTerms
) -> tuple[list[list[Option] | SegmentSearch], bool]:
    """Each part's spellings over the line's cells (a sure part has one), and whether all are checked.

    A word part's is a `SegmentSearch` that has its most probable option so far (`finish` for the rest).
    A cell is a cut when every choice within CUT_COST is a separator; it then keeps only its
    separator choices (a cut's choice changes no term, so only the line code can tell them apart).
    A word cell is doubtful when its second choice is within DOUBT_COST (at most TERM_CELLS a line).
    """
    second = costs[:, 1] if costs.shape[1] > 1 else np.full(len(costs), np.inf)
    # cells past the last that is non-blank or has a choice are blank in every candidate: left out
    busy = np.flatnonzero((topk[:, 0] != 0) | (second <= CELL_COST))
    end = max(prefix, int(busy[-1]) + 1 if len(busy) else 0)
    topk, costs, second = topk[:end], costs[:end], second[:end]
    separator = _CUT[topk]
    cut = (separator | (costs > CUT_COST)).all(axis=1)
    allowed = (costs <= CELL_COST) & (separator | ~cut[:, None])
    allowed[:, 0] = True
    # per line, not per part: a line has tens of parts and numpy's calls cost more than their work here
    limited = np.where(allowed, costs, np.inf)
    # the argmax, a character a cell (the code points viewed as one string: no NUL in the alphabet to lose)
    reading = reading_of(topk)
    is_cut, seconds = cut.tolist(), second.tolist()
    # the least certain word cells and searched separators (sorted stably: the leftmost of equals first),
    # picked in Python: the lists are short, and a numpy call costs microseconds whatever its size
    by_second = seconds.__getitem__
    words = sorted(np.flatnonzero(~cut & (second <= DOUBT_COST)).tolist(), key=by_second)[:TERM_CELLS]
    separators = np.flatnonzero(cut & allowed[:, 1:].any(axis=1)).tolist()
    doubted_at = sorted(words + sorted(separators, key=by_second)[:CUT_CELLS])  # a part's found by bisection
    doubted = set(doubted_at)
    options: list[list[Option] | SegmentSearch] = []
    constrained = True
    for start, stop in _segments(cut):
        if is_cut[start] and start not in doubted:  # a sure separator with no choice searched: as it is read
            options.append([Option(0.0, reading[start], 0)])
            continue
        # its doubtful cells, least certain first (a stable sort: the leftmost of equals first)
        first = bisect_left(doubted_at, start)
        inside = doubted_at[first : bisect_left(doubted_at, stop, first)]
        if not inside and not is_cut[start]:  # a word the reader is sure of: most are on the page as read
            as_read = _read_as_is(reading[start:stop], page)
            if as_read is not None:
                options.append(as_read)
                continue
        seg_doubt = np.array([i - start for i in sorted(inside, key=by_second)], dtype=np.intp)
        if is_cut[start]:  # a cut cell: no terms, any of its separator choices
            choices = spellings(reading[start], topk[start:stop], limited[start:stop], seg_doubt)
            options.append([Option(c, s, 0) for c, s in choices])
            continue
        seg = slice(start, stop)
        search = SegmentSearch(topk[seg], costs[seg], allowed[seg], seg_doubt, page, reading[seg], limited[seg])
        constrained &= search.checked
        options.append(search)
    return options, constrained


def term_candidates(topk: np.ndarray, costs: np.ndarray, prefix: int, guide: LineGuide) -> Iterator[str]:
    """A line's candidate cell strings whose terms are on the page and number the line's, most probable first.

    `topk` (L, K) class indices and `costs` (L, K) (-log probability relative to each cell's best) of
    the line's cells laid out as its rows are (full rows, `prefix` cells of them). Well-formed
    (escapes) and each cell string at most once.

    The most probable (every part at its first option) comes before the parts' other options are
    searched for: most failing lines verify there (`word_search.SegmentSearch`).
    """
    parts, constrained = _line_options(topk, costs, prefix, guide.page)
    firsts = [part[0] if isinstance(part, list) else part.options[0] for part in parts]
    first = _most_probable(firsts, constrained, prefix, guide.count)
    if first is not None:
        yield first
    options = [part if isinstance(part, list) else part.finish()[0] for part in parts]
    yield from _combinations(options, constrained, prefix, guide.count, {first} if first is not None else set())


def _most_probable(firsts: list[Option], constrained: bool, prefix: int, count: int) -> str | None:
    """The first of `_combinations`: every part at its first option, if it has the line's term count and
    is well formed."""
    if constrained and sum(option.terms for option in firsts) != count:
        return None
    cells = line_cells("".join(option.cells for option in firsts), prefix)
    return cells if canonical_text(cells) is not None else None


def _combinations(
    options: list[list[Option]], constrained: bool, prefix: int, count: int, seen: set[str]
) -> Iterator[str]:
    """The parts' options combined, most probable first (those with another term count than the line's left
    out where every part is checked), each cell string once: none in `seen`, which is added to."""
    base_cost = sum(found[0].cost for found in options)
    table = [[option.cost - found[0].cost for option in found] for found in options]
    limit = (LINE_COST if constrained else UNCHECKED_COST) - base_cost
    # a combination changes a part or two of the most probable: its term count and cells are the first
    # options' with those parts changed (not summed and joined from every part's option anew)
    first_cells = [found[0].cells for found in options]
    first_terms = sum(found[0].terms for found in options)
    for _, changes in islice(best_first(table, limit), COMBINATIONS):
        if constrained:
            terms_of = first_terms
            for part, rank in changes:
                terms_of += options[part][rank].terms - options[part][0].terms
            if terms_of != count:
                continue
        chosen = first_cells.copy()
        for part, rank in changes:
            chosen[part] = options[part][rank].cells
        cells = line_cells("".join(chosen), prefix)
        if cells in seen or canonical_text(cells) is None:
            continue
        seen.add(cells)
        yield cells
