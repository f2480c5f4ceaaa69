"""Page entries of the search index (format 4: Rice-coded prefixes) and the layout-2 upgrade that writes them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optical_memory import index_upgrade, page_entries, postings
from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.errors import ArchiveError
from optical_memory.page_entries import decode_entry, encode_entry, varint
from optical_memory.search import index_lines, query_terms, rank, unindex_page


def _format_3(lengths: dict[int, int], hashes: list[bytes]) -> bytes:
    """A page entry as layout 2 wrote it: (line, length) pairs, then 4-byte prefixes as they came."""
    out = bytearray([3])
    varint(len(lengths), out)
    for line, length in sorted(lengths.items()):
        varint(line, out)
        varint(length, out)
    return bytes(out) + b"".join(dict.fromkeys(h[:4] for h in hashes))


@settings(max_examples=300, deadline=None)
@given(
    lines=st.dictionaries(st.integers(1, 5000), st.integers(0, 100_000), max_size=80),
    consecutive=st.booleans(),
    hashes=st.lists(st.binary(min_size=8, max_size=8), max_size=700),
    width=st.sampled_from([1, 2, 3, 4, 8]),
)
def test_an_entry_reads_back_its_lengths_and_every_prefix(
    lines: dict[int, int], consecutive: bool, hashes: list[bytes], width: int
) -> None:
    if consecutive:  # what a page holds: lines 1..n
        lines = {n: length for n, length in enumerate(lines.values(), 1)}
    lengths, prefixes = decode_entry(encode_entry(lines, hashes, width))
    assert lengths == lines
    assert sorted(prefixes) == sorted({h[:width] for h in hashes})


def test_extreme_prefixes_and_no_terms_read_back() -> None:
    hashes = [bytes(8), b"\xff" * 8, bytes(7) + b"\x01", b"\x00\x00\x00\x01" + bytes(4)]
    assert sorted(decode_entry(encode_entry({1: 4}, hashes, 4))[1]) == sorted({h[:4] for h in hashes})
    assert decode_entry(encode_entry({}, [], 4)) == ({}, [])


def test_format_4_takes_a_quarter_fewer_bytes_than_format_3() -> None:
    rng = random.Random(4)
    hashes = [rng.randbytes(8) for _ in range(320)]  # a page of chat: about 320 distinct terms
    lengths = {n: rng.randrange(4, 30) for n in range(1, 61)}
    old, new = _format_3(lengths, hashes), encode_entry(lengths, hashes, 4)
    assert decode_entry(old) == (lengths, [h[:4] for h in hashes])  # format 3 still reads
    assert len(new) <= 0.8 * len(old), (len(new), len(old))
    assert len(new) < 2000  # under what LMDB keeps inline on a 4 KB page


def test_a_damaged_entry_is_an_archive_error() -> None:
    rng = random.Random(1)
    raw = encode_entry({1: 3, 2: 5}, [rng.randbytes(8) for _ in range(50)], 4)
    with pytest.raises(ArchiveError, match="damaged"):
        decode_entry(raw[:-20])
    with pytest.raises(ArchiveError, match="layout 1"):
        decode_entry(b'{"terms": []}')


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64), k=st.integers(0, 40), count=st.integers(0, 600), seed=st.integers(0, 2**32))
def test_reading_prefixes_agrees_with_the_plain_bit_walk_on_any_bytes(
    data: bytes, k: int, count: int, seed: int
) -> None:
    """Rice-coded prefixes are read with numpy (`_unrice`); on written entries and on any damaged bytes it
    must give what the plain walk over the bits (`_unrice_bits`) gives: the same values, or an ArchiveError."""
    rng = random.Random(seed)
    values = sorted(rng.sample(range(1 << 32), rng.randrange(0, 300)))
    coded_k, coded = page_entries._rice(values)
    assert page_entries._unrice(coded, coded_k, len(values)) == values
    outcomes = []
    for read in (page_entries._unrice, page_entries._unrice_bits):
        try:
            outcomes.append(read(data, k, count))
        except ArchiveError:
            outcomes.append("damaged")
    assert outcomes[0] == outcomes[1]


def test_an_entry_that_claims_more_prefixes_than_it_holds_is_damaged_at_once() -> None:
    raw = bytearray(encode_entry({1: 3}, [bytes([n]) * 8 for n in range(20)], 4))
    k_at = raw.index(bytes([20])) + 1  # varint(20 prefixes), then the byte k
    claimed = bytearray()
    varint(1 << 40, claimed)  # a trillion prefixes in a few dozen bytes
    damaged = bytes(raw[: k_at - 1] + claimed + raw[k_at:])
    with pytest.raises(ArchiveError, match="damaged"):
        decode_entry(damaged)


def _entries(archive: Archive) -> dict[bytes, bytes]:
    return archive.read(lambda tx: {bytes(k): bytes(v) for k, v in tx.txn.cursor(db=tx.db(postings.TERMS_DB))})


def test_a_layout_2_index_moves_to_format_4_a_slice_per_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_upgrade, "UPGRADE_PAGES", 3)
    archive = Archive(tmp_path / "a")
    rng = random.Random(9)
    words = [f"word{n}" for n in range(60)]

    def write(tx: ArchiveTxn) -> None:
        for page in range(1, 11):
            index_lines(tx, 1, page, 1, [" ".join(rng.sample(words, 5)) + f" page{page}" for _ in range(8)])

    archive.write(write)
    current = {key: decode_entry(raw) for key, raw in _entries(archive).items()}

    def as_layout_2(tx: ArchiveTxn) -> None:  # what the previous version left: format-3 entries, layout b"2"
        for key, (lengths, prefixes) in current.items():
            tx.txn.put(key, _format_3(lengths, prefixes), db=tx.db(postings.TERMS_DB))
        tx.txn.put(b"index_layout", b"2", db=tx.db("meta"))

    archive.write(as_layout_2)
    assert {raw[:1] for raw in _entries(archive).values()} == {b"\x03"}

    def found(query: str) -> set[tuple[int, int]]:
        return {(h.page, h.line) for h in archive.read(lambda tx: rank(tx, query_terms(query), None, 1000))}

    before = {query: found(query) for query in ("word7", "page4", "word1 word2")}
    formats = []
    for _ in range(3):  # each index write rewrites the next three old entries; search and forget work between
        archive.write(lambda tx: index_lines(tx, 1, 11, 1, ["later line"]))
        formats.append(sorted(raw[:1] for raw in _entries(archive).values()))
        assert {query: found(query) for query in before} == before
    assert [f.count(b"\x04") for f in formats] == [4, 7, 10]  # page 11's own entry, then three more each time
    archive.write(lambda tx: unindex_page(tx, 10))  # this write rewrites the last old entry, then forgets it
    assert found("page10") == set()
    layout = archive.read(lambda tx: tx.txn.get(b"index_layout", db=tx.db("meta")))
    assert layout == index_upgrade.LAYOUT == b"3"
    assert archive.write(index_upgrade.upgrade_index) is False  # done: one meta get per write from now on
    after = {key: decode_entry(raw) for key, raw in _entries(archive).items()}
    for key, (lengths, prefixes) in after.items():
        if key in current and key != (10).to_bytes(8, "big"):
            assert lengths == current[key][0] and sorted(prefixes) == sorted(current[key][1])
    assert all(raw[:1] == b"\x04" for raw in _entries(archive).values())
    assert page_entries.ENTRY_FORMATS == (b"\x03", b"\x04")
    archive.close()
