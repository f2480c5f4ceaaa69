"""The term-guided search that checks a line's most probable candidate first tries exactly what the eager one did.

`term_guide.term_candidates` yields the line's most probable candidate (every part at its first option)
before searching the parts' other options (`word_search.SegmentSearch`), and the page's spelling budget
counts what those unfinished searches may still look at. The reference below is the code it replaced
(9fe0d61), which searched every part to its end first. On drawn pages (misread and doubtful cells,
separators read as word characters, words off the page, index entries that disagree with the line,
page spelling budgets small enough to run out) both must hash the same candidates in the same order
and return the same lines (bench/bench_search_same.py shows the same on the bench pages).
"""

from __future__ import annotations

import gc
import math
import random
import weakref
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from typing import cast

import numpy as np
import pytest

from optical_memory import term_guide, word_search
from optical_memory.alphabet import ALPHABET, ESCAPE
from optical_memory.checkcode import LineHasher, line_code, line_key
from optical_memory.escapes import canonical_text, canonical_with
from optical_memory.pages import encode_piece
from optical_memory.postings import page_entry
from optical_memory.term_guide import CELL_COST, CUT_CELLS, CUT_COST, DOUBT_COST, TERM_CELLS, PageTerms
from optical_memory.terms import terms
from optical_memory.verify import Verified, verify_lines
from optical_memory.word_search import Option, _misread, _mixed_script, best_first, spellings

KEY = line_key(bytes(range(32)))
INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
COLUMNS = 40
K = 4
events: Counter[str] = Counter()  # what the reference met: each kind of line must be among the drawn


def segment_options_before(
    topk: np.ndarray, costs: np.ndarray, allowed: np.ndarray, doubtful: np.ndarray, page: PageTerms, argmax: str,
    limited: np.ndarray,
) -> tuple[list[Option], bool]:  # fmt: skip
    """`word_search.segment_options` as of 9fe0d61: every try to its end, the page budget read at each."""
    ws = word_search
    second = costs[:, 1] if costs.shape[1] > 1 else np.zeros(len(costs))
    text = canonical_text(argmax)
    checked = page.check(text) if text is not None else (False, 0)
    if checked[0]:
        if not len(doubtful) and page.spelled < ws.PAGE_SPELLINGS:
            page.spelled += 1
            return [Option(0.0, argmax, checked[1])], True
        tries = [(doubtful, limited, ws.CONSISTENT_BUDGET)]
    else:
        wider = np.argsort(second, kind="stable")
        tries = [(doubtful, limited, ws.SEGMENT_BUDGET), (wider, costs, ws.WIDER * ws.SEGMENT_BUDGET)]
        mixed = _mixed_script(topk, costs)
        if mixed is not None:
            tries.insert(0, mixed)
        wrong = _misread(argmax, page)
        if wrong is not None:
            tries[:0] = [(doubtful[wrong[doubtful]], limited, ws.SEGMENT_BUDGET),
                         (wider[wrong[wider]], costs, ws.SEGMENT_BUDGET)]  # fmt: skip
    plain: list[Option] = []
    for cells, choices, budget in tries:
        kept: list[Option] = []
        if ws.PAGE_SPELLINGS - page.spelled < budget:
            events["page budget cut a try"] += 1
        budget = max(0, min(budget, ws.PAGE_SPELLINGS - page.spelled))
        looked = 0
        margin = math.inf
        for cost, spelled in islice(spellings(argmax, topk, choices, np.sort(cells[: ws.SEGMENT_CELLS])), budget):
            looked += 1
            if cost > margin:
                break
            text = canonical_with(spelled, page.pieces) if ESCAPE in spelled else spelled
            if text is None:
                continue
            ok, count = page.check(text)
            if len(plain) < 4:
                plain.append(Option(cost, spelled, count))
            if ok:
                if not kept:
                    margin = cost + ws.KEEP_MARGIN
                kept.append(Option(cost, spelled, count))
                if len(kept) == ws.SEGMENT_KEEP:
                    break
        page.spelled += looked
        if kept:
            return kept, True
    return plain or [Option(0.0, argmax, 0)], False


def line_options_before(
    topk: np.ndarray, costs: np.ndarray, prefix: int, page: PageTerms
) -> tuple[list[list[Option]], bool]:
    """`term_guide._line_options` as of 9fe0d61: every part's options searched before any candidate."""
    second = costs[:, 1] if costs.shape[1] > 1 else np.full(len(costs), np.inf)
    busy = np.flatnonzero((topk[:, 0] != 0) | (second <= CELL_COST))
    end = max(prefix, int(busy[-1]) + 1 if len(busy) else 0)
    topk, costs, second = topk[:end], costs[:end], second[:end]
    separator = term_guide._CUT[topk]
    cut = np.all(separator | (costs > CUT_COST), axis=1)
    allowed = (costs <= CELL_COST) & (separator | ~cut[:, None])
    allowed[:, 0] = True
    words = np.flatnonzero(~cut & (second <= DOUBT_COST))
    doubt = np.zeros(end, dtype=bool)
    doubt[words[np.argsort(second[words], kind="stable")][:TERM_CELLS]] = True
    separators = np.flatnonzero(cut & allowed[:, 1:].any(axis=1))
    doubt[separators[np.argsort(second[separators], kind="stable")][:CUT_CELLS]] = True
    options: list[list[Option]] = []
    constrained = True
    limited = np.where(allowed, costs, np.inf)
    reading = "".join(ALPHABET[c] for c in topk[:, 0].tolist())
    doubted_at = np.flatnonzero(doubt).tolist()
    for start, stop in term_guide._segments(cut):
        if cut[start] and not doubt[start]:
            options.append([Option(0.0, reading[start], 0)])
            continue
        inside = doubted_at[bisect_left(doubted_at, start) : bisect_left(doubted_at, stop)]
        seg_doubt = np.array([i - start for i in sorted(inside, key=lambda i: second[i])], dtype=np.intp)
        if cut[start]:
            choices = spellings(reading[start], topk[start:stop], limited[start:stop], seg_doubt)
            options.append([Option(c, s, 0) for c, s in choices])
            continue
        seg = slice(start, stop)
        found, checked = segment_options_before(
            topk[seg], costs[seg], allowed[seg], seg_doubt, page, reading[seg], limited[seg]
        )
        constrained &= checked
        options.append(found)
    return options, constrained


def term_candidates_before(
    topk: np.ndarray, costs: np.ndarray, prefix: int, guide: term_guide.LineGuide
) -> Iterator[str]:
    """`term_guide.term_candidates` as of 9fe0d61 (the combinations' cells joined anew: the same strings)."""
    options, constrained = line_options_before(topk, costs, prefix, guide.page)
    base_cost = sum(found[0].cost for found in options)
    table = [[option.cost - found[0].cost for option in found] for found in options]
    limit = (term_guide.LINE_COST if constrained else term_guide.UNCHECKED_COST) - base_cost
    seen: set[str] = set()
    for _, changes in islice(best_first(table, limit), term_guide.COMBINATIONS):
        ranks = dict(changes)
        chosen = [found[ranks.get(part, 0)] for part, found in enumerate(options)]
        first = not changes
        if constrained and sum(option.terms for option in chosen) != guide.count:
            events["most probable: another term count" if first else "other term count"] += 1
            continue
        flat = "".join(option.cells for option in chosen)
        cells = flat[:prefix] + flat[prefix:].rstrip(" ") if prefix else flat.rstrip(" ")
        if cells in seen or canonical_text(cells) is None:
            continue
        seen.add(cells)
        events["most probable tried" if first else "others tried"] += 1
        yield cells


# drawn pages --------------------------------------------------------------------------------------

WORDS = ("deploy", "token", "cache", "session", "Dröge", "Łukasz", "αβγδε", "архив", "v2.14", "api.internal")
LOOKALIKE = {"o": "e", "e": "o", "c": "e", "l": "1", "1": "l", "0": "O", "O": "0", "ö": "õ", "Ł": "L", "a": "á",
             "α": "a", "р": "p", " ": "_", "_": " ", "-": ".", ".": ",", "=": "-", "k": "h", "t": "f"}  # fmt: skip
FILLERS = "qzjxвж"


def drawn_line(rng: random.Random) -> str:
    def word() -> str:
        if rng.random() < 0.3:
            return "sk-" + "".join(rng.choice("ABCdef0123456789xyz") for _ in range(rng.randint(4, 12)))
        return rng.choice(WORDS) + (f"_{rng.randint(0, 99)}" if rng.random() < 0.3 else "")

    return "".join(word() + rng.choice([" ", " ", "=", "-", ": ", "/"]) for _ in range(rng.randint(2, 7))).strip()


def disagreeing(rng: random.Random, line: str) -> str:
    """What an index entry may say of a line (a page imported from a misreading): another line, or the
    line with a word more (its terms on the page, their count not the line's)."""
    return drawn_line(rng) if rng.random() < 0.3 else f"{line} {rng.choice(line.split())}"


def drawn_reading(rng: random.Random, cells: str, misread: float) -> tuple[np.ndarray, np.ndarray]:
    """Classes and probabilities (rows, COLUMNS, K) of a line whose truth is `cells`: some cells misread (the
    truth a later choice, or not among them), some doubtful but right, the rest sure."""
    rows = max(1, -(-len(cells) // COLUMNS))
    flat = cells.ljust(rows * COLUMNS)
    classes = np.zeros((len(flat), K), dtype=np.int64)
    probs = np.zeros((len(flat), K), dtype=np.float32)
    for i, ch in enumerate(flat):
        other = LOOKALIKE.get(ch, rng.choice("aeo"))
        fillers = [f for f in FILLERS if f not in (ch, other)]
        draw = rng.random()
        if (draw < misread and ch != " ") or draw < misread / 3:
            truth_rank = rng.choice([1, 1, 2, 3, 3, 4])  # 4: the truth is not among the reader's choices
            ranked = [other, *fillers[:2]]
            ranked.insert(min(truth_rank, 3), ch)
            weights = sorted((rng.uniform(0.05, 1.0) for _ in range(K)), reverse=True)
        elif draw < 3 * misread:
            ranked, weights = (
                [ch, other, *fillers[:2]],
                sorted((rng.uniform(0.01, 1.0) for _ in range(K)), reverse=True),
            )
            weights[0] = max(weights[0], weights[1] * 1.5)
        else:
            ranked, weights = [ch, *fillers[:3]], [0.9999, 0.0001 / 3, 0.0001 / 3, 0.0001 / 3]
        total = sum(weights)
        for r in range(K):
            classes[i, r], probs[i, r] = INDEX[ranked[r]], weights[r] / total
    return classes.reshape(rows, COLUMNS, K), probs.reshape(rows, COLUMNS, K)


def term_hash(term: str) -> bytes:
    return line_code(line_key(b"t" * 32), term) + b"\0\0"


class Recording:
    """A line hasher that keeps every text it hashed, in order."""

    def __init__(self) -> None:
        self.hasher, self.texts = LineHasher(KEY), list[str]()

    def code(self, text: str) -> bytes:
        self.texts.append(text)
        return self.hasher.code(text)


def read_page(
    items: list[tuple[np.ndarray, np.ndarray, bytes | None]], entry: bytes
) -> tuple[list[Verified], list[str], PageTerms]:
    page = PageTerms.of(entry, term_hash)
    assert page is not None
    reading = page.new_reading()
    hasher = Recording()
    found = verify_lines(items, cast(LineHasher, hasher), guides=lambda i: reading.line(i + 1))
    return found, hasher.texts, reading


@pytest.mark.parametrize("page_spellings", [word_search.PAGE_SPELLINGS, 600, 60])
def test_the_most_probable_candidate_first_tries_what_the_eager_search_did(
    page_spellings: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same lines, same candidates hashed in the same order; the page's spelling budget running out too."""
    monkeypatch.setattr(word_search, "PAGE_SPELLINGS", page_spellings)
    room = PageTerms.room
    settled = Counter[str]()

    def counted_room(page: PageTerms, budget: int) -> int:  # how often unfinished searches had to finish first
        owed = len(page._owed)
        found = room(page, budget)
        settled["settled"] += owed > len(page._owed)
        settled["owed"] += owed > 0
        return found

    monkeypatch.setattr(PageTerms, "room", counted_room)
    read_as_is = term_guide._read_as_is

    def counted_read_as_is(argmax: str, page: PageTerms) -> list[Option] | None:  # sure words, built or searched
        found = read_as_is(argmax, page)
        settled["sure word as read" if found is not None else "sure word searched"] += 1
        return found

    monkeypatch.setattr(term_guide, "_read_as_is", counted_read_as_is)
    rng = random.Random(page_spellings)
    events.clear()
    for _ in range(30):
        truth = [drawn_line(rng) for _ in range(rng.randint(4, 14))]
        indexed = [disagreeing(rng, line) if rng.random() < 0.2 else line for line in truth]
        entry = page_entry(
            {n: len(terms(text)) for n, text in enumerate(indexed, 1)},
            {term_hash(t): None for text in indexed for t in terms(text)},
        )
        misread = rng.choice([0.02, 0.05, 0.1])
        items = [(*drawn_reading(rng, encode_piece(line), misread), line_code(KEY, line)) for line in truth]
        got, hashed, reading = read_page(items, entry)
        with monkeypatch.context() as before:
            before.setattr(term_guide, "term_candidates", term_candidates_before)
            want, want_hashed, eager = read_page(items, entry)
        assert got == want
        assert hashed == want_hashed
        # the searches left unfinished (their lines verified first), finished now, looked at what they would have
        for search in list(reading._owed):
            search.finish()
        assert reading.spelled == eager.spelled
    # the kinds of lines the fast path must get right were all met
    assert events["most probable tried"] > 100 and events["others tried"] > 20, events
    assert events["most probable: another term count"] > 3, events
    assert events["page budget cut a try"] > 100, events
    assert settled["settled"] > 3 and settled["owed"] > 50, settled
    assert settled["sure word as read"] > 20 and settled["sure word searched"] > 3, settled


def test_a_read_page_is_freed_when_let_go_with_searches_unfinished() -> None:
    """A page keeps its unfinished segment searches (their spellings may still count against its budget), and
    they must not keep it: a cycle left each reading, its spellings and term caches to the garbage collector,
    whose runs cost several ms a frost page. Freed by reference counting alone, with the collector off."""
    rng = random.Random(5)
    truth = [drawn_line(rng) for _ in range(12)]
    entry = page_entry(
        {n: len(terms(text)) for n, text in enumerate(truth, 1)},
        {term_hash(t): None for text in truth for t in terms(text)},
    )
    items = [(*drawn_reading(rng, encode_piece(line), 0.05), line_code(KEY, line)) for line in truth]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        found, _, reading = read_page(items, entry)
        assert any(result.verified for result in found)
        assert reading._owed, "the drawn page must leave searches unfinished, or this test shows nothing"
        gone = weakref.ref(reading)
        del reading
        assert gone() is None
    finally:
        if was_enabled:
            gc.enable()
