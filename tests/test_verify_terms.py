"""Term-guided verified decoding: the search index's terms narrow the search, the line code alone accepts.

The first tests run the shipped reader on pages remembered and faded through a real archive (the
reading path fetches each page's index entry); the others give the decoder hand-made reader outputs
and index entries, so each states exactly what the reader saw and what the index holds.
"""

from __future__ import annotations

import dataclasses
import random
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from optical_memory import verify
from optical_memory.alphabet import ALPHABET
from optical_memory.archive import u64
from optical_memory.checkcode import LineHasher, line_code, line_key
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.postings import TERMS_DB, page_entry
from optical_memory.readers.trained import TrainedReader
from optical_memory.term_guide import PageTerms, best_first, page_terms
from optical_memory.terms import terms
from optical_memory.transcribe import transcribe_lines
from optical_memory.verify import verify_lines

KEY = line_key(bytes(range(32)))
HASHER = LineHasher(KEY)
INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
COLUMNS = 40
NAMES = ("Dröge", "Ærøskøbing", "Dvořák", "Łukasz", "Müller", "Šťastný", "Ångström", "Jäätteenmäki")
WORDS = ("deploy", "token", "cache", "session", "reader", "archive", "index", "build", "config")


@pytest.fixture(scope="module")
def reader() -> TrainedReader:
    return TrainedReader()


def identifier_line(rng: random.Random) -> str:
    """Keys, hex, hosts and ports, versioned paths, snake_case and CamelCase, accented names, Greek, Cyrillic."""
    b62 = string.ascii_letters + string.digits

    def pick(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    def ident() -> str:
        parts = rng.sample(WORDS, rng.randint(1, 3))
        return "_".join(parts) if rng.random() < 0.5 else parts[0] + "".join(p.title() for p in parts[1:])

    facts = [
        f'{ident().upper()}_KEY="sk-{pick(b62, 24)}"',
        f"commit {pick('0123456789abcdef', rng.choice([7, 12]))} by {rng.choice(NAMES)}",
        f"{rng.choice(WORDS)}-{rng.randint(1, 99)}.internal:{rng.randint(1024, 65535)}",
        f"/opt/{rng.choice(WORDS)}-{rng.randint(0, 9)}.{rng.randint(0, 30)}/lib/{ident()}.py",
        f"`{ident()}()` returns ‘{ident()}’",
        f"{rng.choice(NAMES)} ({pick('αβγδεζηθικλμνξοπρστυφχψω', 5)}) {pick('абвгдежзийклмнопрстуфхцчшщ', 6)}",
    ]
    return " ".join(rng.sample(facts, rng.randint(1, 3)))


def frost_memory(path: Path, reader: TrainedReader, lines: list[str]) -> tuple[Memory, list[str]]:
    """A memory holding `lines` faded to frost (the open page stays hot): the memory and its frost page ids."""
    memory = Memory(load_config(None, archive=path / "archive"), reader=reader)
    memory.remember("\n".join(lines), session="s")
    assert memory.fade("s", now=datetime.now(UTC) + timedelta(days=400)) > 0
    ids = [page.id for page in memory.list_pages("s", limit=100).pages if page.tier == "frost"]
    assert ids
    return memory, ids


def read_stored(memory: Memory, page_id: str, *, index: bool, parts: bool) -> list[tuple[str, bool | None]]:
    """Every line of a stored page verified with or without its search-index entry, and with or without its
    part codes (without: as a page remembered before part codes reads)."""
    number = int(page_id[1:])
    record, image, key, guide = memory.archive.read(
        lambda tx: (tx.page(page_id), tx.image(page_id), tx.archive_key(), page_terms(tx, number) if index else None)
    )
    assert record is not None and image is not None
    if not parts:
        record = dataclasses.replace(record, parts=None)
    lines = transcribe_lines(memory.reader, record, image, range(1, record.lines + 1), key=line_key(key), terms=guide)
    return [(line.text, line.verified) for line in lines]


def test_frost_identifier_lines_that_plain_search_cannot_verify_do_with_the_index(
    tmp_path: Path, reader: TrainedReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On pages without part codes (remembered before them), the index's words verify lines the plain search
    leaves unverified. With part codes (every page remembered now) the part search finds these lines by
    itself, each run alone (test_part_search), so the comparison is made where the index is what helps."""
    # A page may try 512 candidates (not 12,288): where plain search needs many, the words find it in few,
    # so the comparison holds however good the reader gets.
    monkeypatch.setattr(verify, "PAGE_CANDIDATES", 512)
    rng = random.Random(16)
    truth = [identifier_line(rng) for _ in range(240)]
    memory, ids = frost_memory(tmp_path, reader, truth)
    try:
        gained = verified_plain = verified_guided = verified_now = 0
        for page_id in ids:
            guided = read_stored(memory, page_id, index=True, parts=False)
            plain = read_stored(memory, page_id, index=False, parts=False)
            now = memory.read_lines(page_id).lines  # the index and the part codes, as every read goes
            assert [line.text for line in now if line.verified] != []
            for (text, verified), (plain_text, plain_verified) in zip(guided, plain, strict=True):
                # the same line's verified readings: both exact wherever verified
                if verified and plain_verified:
                    assert text == plain_text
                gained += bool(verified) and not plain_verified
                verified_plain += bool(plain_verified)
                verified_guided += bool(verified)
            verified_now += sum(bool(line.verified) for line in now)
        assert gained > 0, "no line that plain search left unverified verified with the index"
        assert verified_now >= verified_guided >= verified_plain
        # every verified line is one that was remembered (lines wrap at the page's columns, so compare by content)
        remembered = "\n".join(truth)
        for page_id in ids:
            for line in memory.read_lines(page_id).lines:
                assert line.verified is False or line.text in remembered, line
    finally:
        memory.close()


def test_a_page_without_an_index_entry_reads_as_before(tmp_path: Path, reader: TrainedReader) -> None:
    rng = random.Random(17)
    memory, ids = frost_memory(tmp_path, reader, [identifier_line(rng) for _ in range(60)])
    try:
        page_id = ids[0]
        number = int(page_id[1:])
        memory.archive.write(lambda tx: tx.txn.delete(u64(number), db=tx.db(TERMS_DB)))
        assert memory.archive.read(lambda tx: page_terms(tx, number)) is None
        read = memory.read_lines(page_id)
        plain = read_stored(memory, page_id, index=False, parts=True)
        assert [(line.text, line.verified) for line in read.lines] == plain
        assert all(line.verified is not None for line in read.lines)
    finally:
        memory.close()


def test_a_forgotten_pages_terms_are_not_kept_for_reading(tmp_path: Path, reader: TrainedReader) -> None:
    memory = Memory(load_config(None, archive=tmp_path / "archive"), reader=reader)
    try:
        first = memory.remember("only here: zanzibar_quokka_7741", session="a").spans[0].page_id
        second = memory.remember("elsewhere: deploy token", session="b").spans[0].page_id
        memory.forget(page_id=first)
        entries = memory.archive.read(lambda tx: (page_terms(tx, int(first[1:])), page_terms(tx, int(second[1:]))))
        assert entries[0] is None  # the forgotten page's entry went with it
        assert entries[1] is not None
        assert entries[1].known("deploy") and not entries[1].known("zanzibar_quokka_7741")
    finally:
        memory.close()


# hand-made reader outputs ---------------------------------------------------------------------------


def reading(cells: str, alternatives: dict[int, list[tuple[str, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """(classes, probs) of one line in COLUMNS-cell rows whose argmax is `cells`; `alternatives` give
    a cell's ranked choices [(char, prob), ...], every other cell is sure with unlikely fillers."""
    rows = max(1, -(-len(cells) // COLUMNS))
    flat = cells.ljust(rows * COLUMNS)
    classes = np.zeros((rows * COLUMNS, 4), dtype=np.int64)
    probs = np.zeros((rows * COLUMNS, 4), dtype=np.float32)
    for i, ch in enumerate(flat):
        sure = [(ch, 0.9999), *[(f, 0.0001 / 3) for f in "qzjx" if f != ch][:3]]
        for r, (alt, p) in enumerate((alternatives.get(i) or sure)[:4]):
            classes[i, r], probs[i, r] = INDEX[alt], p
    return classes.reshape(rows, COLUMNS, 4), probs.reshape(rows, COLUMNS, 4)


def term_hash(term: str) -> bytes:
    return line_code(line_key(b"t" * 32), term) + b"\0\0"  # any keyed 8-byte hash will do for these tests


def guide_for(indexed: list[str]) -> PageTerms:
    """What the index would say of a page whose lines were indexed as `indexed` (right or not)."""
    entry = page_entry(
        {n: len(terms(text)) for n, text in enumerate(indexed, 1)},
        {term_hash(t): None for text in indexed for t in terms(text)},
    )
    found = PageTerms.of(entry, term_hash)
    assert found is not None
    return found


# Many doubtful cells in three words: the truth is far down the whole line's ranking, but each
# word alone has only a few spellings on the page.
TRUTH = "deploy_token=sk-Q7 cache port 8443 Dröge"
MISREAD = "dcploy_tokcn=sk-Q7 cachc port 8443 Drõge"


def misread_line() -> tuple[np.ndarray, np.ndarray]:
    alternatives: dict[int, list[tuple[str, float]]] = {}
    for at, (seen, meant) in enumerate(zip(MISREAD, TRUTH, strict=True)):
        if seen != meant:  # the truth is the cell's 4th choice
            fillers = [f for f in "oaó" if f not in (seen, meant)][:2]
            alternatives[at] = [(seen, 0.5), (fillers[0], 0.2), (fillers[1], 0.2), (meant, 0.1)]
    for at, ch in enumerate(TRUTH):  # doubtful but right: the reader hesitates on more cells than it errs
        if ch in "ptk" and at not in alternatives:
            alternatives[at] = [(ch, 0.6), ("b", 0.2), ("h", 0.1), ("l", 0.1)]
    return reading(MISREAD, alternatives)


def test_a_line_whose_words_are_doubtful_verifies_with_the_page_terms() -> None:
    classes, probs = misread_line()
    code = line_code(KEY, TRUTH)
    plain = verify_lines([(classes, probs, code)], HASHER, budget=256, page_budget=256)[0]
    guided = verify_lines(
        [(classes, probs, code)], HASHER, budget=256, page_budget=256, guides=lambda i: guide_for([TRUTH]).line(1)
    )[0]
    assert plain.verified is False  # too far down the whole line's ranking for this budget
    assert (guided.text, guided.verified) == (TRUTH, True)


def test_a_wrong_but_plausible_word_in_the_index_is_never_verified() -> None:
    """An imported page indexed from a misreading: its index holds the wrong word, the code the right one."""
    classes, probs = misread_line()
    wrong = TRUTH.replace("cache", "cachc")
    index = guide_for([wrong])
    found = verify_lines([(classes, probs, line_code(KEY, TRUTH))], HASHER, guides=lambda i: index.line(1))[0]
    assert found.verified is False or found.text == TRUTH
    # when the truth cannot be reached, the guess follows the index, and is still never verified
    unreachable = line_code(KEY, TRUTH + "!")
    guess = verify_lines([(classes, probs, unreachable)], HASHER, guides=lambda i: index.line(1))[0]
    assert guess.verified is False
    assert guess.text == wrong  # the index's word, but only as a guess


def test_when_nothing_matches_the_guess_is_the_most_probable_reading_on_the_page() -> None:
    classes, probs = misread_line()
    unreachable = line_code(KEY, "something else entirely")
    guess = verify_lines([(classes, probs, unreachable)], HASHER, guides=lambda i: guide_for([TRUTH]).line(1))[0]
    assert guess.verified is False
    assert guess.text == TRUTH  # every word on the page: closer than the argmax
    assert guess.alternative == MISREAD
    assert guess.uncertain


def test_old_layout_and_missing_entries_give_no_guide() -> None:
    assert PageTerms.of(None, term_hash) is None
    assert PageTerms.of(b'{"lengths": {}, "terms": []}', term_hash) is None
    assert guide_for(["a b"]).line(2) is None  # no count for a line the entry does not hold


def test_best_first_yields_every_choice_once_cheapest_first() -> None:
    rng = random.Random(5)
    costs = [sorted([0.0, *(rng.uniform(0, 6) for _ in range(rng.randint(0, 3)))]) for _ in range(5)]
    costs[2] = [0.0, 1.0, float("inf")]
    seen = []
    for cost, changes in best_first(costs, max_cost=100.0):
        ranks = [0] * len(costs)
        for slot, rank in changes:
            assert rank > 0
            ranks[slot] = rank
        seen.append((cost, ranks))
    totals = [cost for cost, _ in seen]
    assert totals == sorted(totals)
    choices = [tuple(ranks) for _, ranks in seen]
    assert len(set(choices)) == len(choices)
    expected = 1
    for row in costs:
        expected *= sum(1 for c in row if c != float("inf"))
    assert len(choices) == expected
    for cost, ranks in seen:
        assert cost == pytest.approx(sum(row[r] for row, r in zip(costs, ranks, strict=True)))
