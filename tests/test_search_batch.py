"""A batch's index writes (`search.IndexBatch`): the same index as posting page by page, in fewer writes."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from optical_memory import postings, search
from optical_memory.archive import Archive, ArchiveTxn, u64
from optical_memory.search import IndexBatch, index_lines, query_terms, rank

Writes = list[tuple[int, int, int, list[str]]]  # (sid, page, first line, line pieces), in write order


def _lines(rng: random.Random, n: int) -> list[str]:
    def word() -> str:
        return f"w{rng.randrange(6)}" if rng.random() < 0.6 else f"r{rng.randrange(400)}"

    return [" ".join(word() for _ in range(rng.randrange(1, 9))) for _ in range(n)]


def _sessions_interleaved(rng: random.Random) -> Writes:
    """Three sessions writing in turn, each onto its open page (pages numbered as they open)."""
    writes: Writes = []
    open_page = {1: 1, 2: 2, 3: 3}
    next_line = {1: 1, 2: 1, 3: 1}
    next_page = 4
    for _ in range(120):
        sid = rng.choice((1, 2, 3))
        pieces = _lines(rng, rng.randrange(1, 12))
        writes.append((sid, open_page[sid], next_line[sid], pieces))
        next_line[sid] += len(pieces)
        if next_line[sid] > 40:  # the page is full: the session's next entry opens a new one
            open_page[sid], next_line[sid], next_page = next_page, 1, next_page + 1
    return writes


def _one_session(rng: random.Random) -> Writes:
    return [(1, 1 + n // 3, 1 + (n % 3) * 20, _lines(rng, 20)) for n in range(150)]


def _post_page_by_page(tx: ArchiveTxn, sid: int, page: int, first_line: int, pieces: list[str]) -> None:
    """The reference: one page's lines posted term by term with `postings.post`, as before batches."""
    hashed = search.TermHasher(tx)
    raw = tx.txn.get(u64(page), db=tx.db(postings.TERMS_DB))
    lengths, known = postings.parse_page_entry(bytes(raw)) if raw else ({}, [])
    by_hash: dict[bytes, list[postings.Posting]] = {}
    for line, piece in enumerate(pieces, first_line):
        counts = Counter(search.terms(piece))
        lengths[line] = sum(counts.values())
        for term, count in counts.items():
            by_hash.setdefault(hashed(term), []).append((page, line, sid, count, lengths[line]))
    with tx.txn.cursor(db=tx.db(postings.BLOCKS_DB)) as cursor:
        for h, found in by_hash.items():
            postings.post(tx, cursor, h, page, found)
    tx.txn.put(u64(page), postings.page_entry(lengths, [*known, *by_hash]), db=tx.db(postings.TERMS_DB))
    added = sum(lengths[line] for line in range(first_line, first_line + len(pieces)))
    search.bump_index_counts(tx, len(pieces), added)


def _index(path: Path, writes: Writes, batches: list[int]) -> Archive:
    """An archive indexed with `writes`: page by page where `batches` is empty, else in batches of those sizes."""
    archive = Archive(path)
    if not batches:
        for sid, page, first, pieces in writes:
            archive.write(lambda tx, w=(sid, page, first, pieces): _post_page_by_page(tx, *w))
        return archive
    at = 0
    for size in batches:

        def write(tx: ArchiveTxn, part: Writes = writes[at : at + size]) -> None:
            batch = IndexBatch(tx)
            for sid, page, first, pieces in part:
                batch.add(sid, page, first, pieces)
            batch.flush()

        archive.write(write)
        at += size
    assert at == len(writes)
    return archive


VOCABULARY = [*(f"w{k}" for k in range(6)), *(f"r{k}" for k in range(400))]


def _blocks_by_term(archive: Archive) -> dict[str, list[tuple[int, bytes]]]:
    """Each term's blocks as stored: (first page, value), in key order (two archives hash terms differently)."""

    def read(tx: ArchiveTxn) -> dict[str, list[tuple[int, bytes]]]:
        hashed = search.TermHasher(tx)
        out: dict[str, list[tuple[int, bytes]]] = {}
        with tx.txn.cursor(db=tx.db(postings.BLOCKS_DB)) as cursor:
            for term in VOCABULARY:
                h = hashed(term)
                valid = cursor.set_range(h)
                while valid and bytes(cursor.key())[:8] == h:
                    out.setdefault(term, []).append((int.from_bytes(cursor.key()[8:], "big"), bytes(cursor.value())))
                    valid = cursor.next()
        return out

    return archive.read(read)


def _postings_by_term(archive: Archive) -> dict[str, list[postings.Posting]]:
    return {
        term: [p for first, value in blocks for p in postings.decode_block(first, value)]
        for term, blocks in _blocks_by_term(archive).items()
    }


def _page_entries(archive: Archive) -> dict[int, tuple[dict[int, int], set[str]]]:
    """Each page's line lengths and the terms its hash prefixes stand for."""

    def read(tx: ArchiveTxn) -> dict[int, tuple[dict[int, int], set[str]]]:
        hashed = search.TermHasher(tx)
        by_prefix = {hashed(term)[: postings.PREFIX_BYTES]: term for term in VOCABULARY}
        out = {}
        for key, value in tx.txn.cursor(db=tx.db(postings.TERMS_DB)):
            lengths, prefixes = postings.parse_page_entry(bytes(value))
            out[int.from_bytes(key, "big")] = (lengths, {by_prefix[p] for p in prefixes})
        return out

    return archive.read(read)


def _counts(archive: Archive) -> tuple[int, int]:
    def read(tx: ArchiveTxn) -> tuple[int, int]:
        meta = tx.db("meta")
        return tuple(int.from_bytes(tx.txn.get(key, db=meta), "big") for key in (b"index_lines", b"index_terms"))  # type: ignore[return-value]

    return archive.read(read)


@pytest.mark.parametrize("block_bytes", [1024, 48])
def test_one_session_in_batches_stores_the_very_blocks_page_by_page_posting_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    monkeypatch.setattr(postings, "BLOCK_BYTES", block_bytes)  # 48: every term spans many blocks
    writes = _one_session(random.Random(7))
    paged = _index(tmp_path / "paged", writes, [])
    batched = _index(tmp_path / "batched", writes, [1, 40, 9, 100])
    assert _blocks_by_term(batched) == _blocks_by_term(paged)
    assert _page_entries(batched) == _page_entries(paged)
    assert _counts(batched) == _counts(paged)
    paged.close()
    batched.close()


@pytest.mark.parametrize("block_bytes", [1024, 48])
def test_sessions_interleaved_in_one_batch_find_what_page_by_page_posting_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    # pages of several sessions interleave and older open pages grow after newer pages: the merge path
    monkeypatch.setattr(postings, "BLOCK_BYTES", block_bytes)
    writes = _sessions_interleaved(random.Random(11))
    paged = _index(tmp_path / "paged", writes, [])
    batched = _index(tmp_path / "batched", writes, [60, 3, 57])
    assert _postings_by_term(batched) == _postings_by_term(paged)
    assert _page_entries(batched) == _page_entries(paged)
    assert _counts(batched) == _counts(paged)

    def df(archive: Archive, term: str) -> int:
        def read(tx: ArchiveTxn) -> int:
            with tx.txn.cursor(db=tx.db(postings.BLOCKS_DB)) as cursor:
                return postings.document_frequency(cursor, search.TermHasher(tx)(term))

        return archive.read(read)

    for term in ("w0", "w5", "r17"):
        assert df(batched, term) == df(paged, term) > 0, term
    for query in ("w1", "w2 r3", "r250 w4"):
        for sid in (None, 2):
            found = batched.read(lambda tx, q=query, s=sid: rank(tx, query_terms(q), s, 1000))
            expected = paged.read(lambda tx, q=query, s=sid: rank(tx, query_terms(q), s, 1000))
            assert found == expected, (query, sid)
    paged.close()
    batched.close()


def test_a_batch_that_fails_leaves_no_index_behind(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a")
    archive.write(lambda tx: index_lines(tx, 1, 1, 1, ["kept alpha"]))

    def fail(tx: ArchiveTxn) -> None:
        batch = IndexBatch(tx)
        batch.add(1, 2, 1, ["zebra alpha"])
        batch.flush()
        raise RuntimeError("the batch's write fails after its index was stored")

    with pytest.raises(RuntimeError):
        archive.write(fail)
    assert archive.read(lambda tx: rank(tx, ["zebra"], None, 10)) == []
    assert [(h.page, h.line) for h in archive.read(lambda tx: rank(tx, ["alpha"], None, 10))] == [(1, 1)]
    archive.close()
