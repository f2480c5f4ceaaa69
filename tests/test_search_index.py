"""The search index's layout: keyed term hashes in compact blocks, kept right by remember and forget."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import lmdb
import pytest

from optical_memory import postings, search
from optical_memory.archive import Archive, ArchiveTxn, u32, u64
from optical_memory.config import load_config
from optical_memory.errors import ArchiveError, InvalidArgument
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.search import index_lines, query_terms, query_words, rank, terms, unindex_page, upgrade_index
from optical_memory.tiers import Tier
from tests.file_text import readable_file

SECRETS = [
    "Quokka_Sunrise_Passphrase",
    "sk_live_9f8e7d6c5b4a39281706",
    "zanzibar-gateway.internal:7443",
    "Ærøskøbing",
    "OrbitalMechanicsSolver",
]


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    config = replace(load_config(archive=tmp_path / "a", environ={}), tiers=(Tier("hot", 1.0),))
    mem = Memory(config, reader=TemplateReader())
    yield mem
    mem.close()


def _all_values(path: Path) -> bytes:
    """Every key and value of every database of the archive, concatenated (what a live copy holds)."""
    env = lmdb.open(str(path), readonly=True, lock=False, max_dbs=32)
    out = bytearray()
    with env.begin() as txn:
        for name, _ in txn.cursor():
            db = env.open_db(bytes(name), txn=txn, create=False)
            for key, value in txn.cursor(db=db):
                out += bytes(key) + bytes(value)
    env.close()
    return bytes(out)


def _words(secret: str) -> set[str]:
    return {variant for t in terms(secret) for variant in (t, t.upper(), t.capitalize()) if len(t) >= 4}


def test_the_archive_file_holds_no_word_of_what_was_remembered(memory: Memory, tmp_path: Path) -> None:
    for n, secret in enumerate(SECRETS):
        memory.remember(f"note {n}: the value is {secret} for later\n" + "filler line\n" * 3, session="s")
    data = readable_file(tmp_path / "a" / "data.mdb")
    for secret in SECRETS:
        for word in _words(secret):
            for encoded in {word.encode(), word.lower().encode()}:
                assert encoded not in data, f"{word!r} is readable in the archive file"
    # and search finds each of them from the caller's side, as before
    for secret in SECRETS:
        hit = memory.search(secret, limit=1).hits[0]
        assert any(secret in line.text for line in hit.lines)


def test_the_same_term_hashes_differently_in_two_archives(tmp_path: Path) -> None:
    blocks = []
    for name in ("one", "two"):
        archive = Archive(tmp_path / name)
        archive.write(lambda tx: index_lines(tx, 1, 1, 1, ["zebra"]))
        blocks.append(archive.read(lambda tx: {bytes(k)[:8] for k, _ in tx.txn.cursor(db=tx.db("term_blocks"))}))
        archive.close()
    assert blocks[0] and blocks[0].isdisjoint(blocks[1])


def _lines(rng: random.Random, count: int) -> list[str]:
    common = [f"w{i}" for i in range(40)]
    rare = [f"r{i}" for i in range(3000)]
    return [" ".join(rng.choice(rng.choice((common, rare))) for _ in range(rng.randint(1, 14))) for _ in range(count)]


def _expected(truth: dict[int, list[str]], query: str) -> set[tuple[int, int]]:
    wanted = set(query_terms(query))
    return {(p, n + 1) for p, lines in truth.items() for n, line in enumerate(lines) if wanted & set(terms(line))}


def _found(archive: Archive, query: str, sid: int | None = None) -> set[tuple[int, int]]:
    return {(h.page, h.line) for h in archive.read(lambda tx: rank(tx, query_terms(query), sid, 100_000))}


@pytest.mark.parametrize(("block_bytes", "prefix_bytes"), [(1024, 4), (48, 1)])
def test_blocks_stay_exact_through_appends_out_of_order_writes_and_forgetting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int, prefix_bytes: int
) -> None:
    # tiny blocks: every term spans many; 1-byte prefixes: forgetting a page meets many other terms
    monkeypatch.setattr(postings, "BLOCK_BYTES", block_bytes)
    monkeypatch.setattr(postings, "PREFIX_BYTES", prefix_bytes)
    rng = random.Random(3)
    archive = Archive(tmp_path / "a")
    truth: dict[int, list[str]] = {}

    def write(tx: ArchiveTxn) -> None:
        for page in range(1, 160):
            lines = _lines(rng, 30)
            index_lines(tx, page % 4 + 1, page, 1, lines[:12])  # a page filled by two entries
            index_lines(tx, page % 4 + 1, page, 13, lines[12:])
            truth[page] = lines

    archive.write(write)
    # an older session's open page grows after newer pages were written: the merge path
    late = ["w1 w2 r7 lateword", "w1 w1 w3"]
    archive.write(lambda tx: index_lines(tx, 3, 7, 31, late))
    truth[7] = truth[7] + late
    queries = ["w1", "w3 r7", "lateword", "r2999 r5", "w0 w1 w2 w3"]
    for query in queries:
        assert _found(archive, query) == _expected(truth, query), query
    for term in ("w1", "r7", "lateword"):  # each term's count, kept in its last block
        assert archive.read(lambda tx, t=term: _df(tx, t)) == len(_expected(truth, term)), term

    def forget(tx: ArchiveTxn) -> None:
        for page in (7, 1, 80, 159):
            unindex_page(tx, page)

    archive.write(forget)
    for page in (7, 1, 80, 159):
        del truth[page]
    for query in queries:
        assert _found(archive, query) == _expected(truth, query), query
    for term in ("w1", "r7", "w3"):
        assert archive.read(lambda tx, t=term: _df(tx, t)) == len(_expected(truth, term)), term
    in_session_2 = {(p, n) for p, n in _expected(truth, "w1") if p % 4 + 1 == 2}
    assert _found(archive, "w1", sid=2) == in_session_2
    archive.write(lambda tx: [unindex_page(tx, page) for page in list(truth)])
    assert archive.read(lambda tx: tx.txn.stat(tx.db("term_blocks"))["entries"]) == 0  # nothing left behind
    archive.close()


def test_postings_take_a_few_bytes_each(tmp_path: Path) -> None:
    rng = random.Random(5)
    archive = Archive(tmp_path / "a")
    postings = 0

    def write(tx: ArchiveTxn) -> None:
        nonlocal postings
        for page in range(1, 300):
            lines = _lines(rng, 60)
            postings += sum(len(set(terms(line))) for line in lines)
            index_lines(tx, 1, page, 1, lines)

    archive.write(write)
    used = archive.read(lambda tx: tx.txn.stat(tx.db("term_blocks")))
    size = used["psize"] * (used["leaf_pages"] + used["branch_pages"] + used["overflow_pages"])
    # layout 1 spent 18 bytes of value plus the term and LMDB's node per posting (over 30 in all)
    assert size / postings < 10, f"{size / postings:.1f} bytes per posting"
    archive.close()


def _write_layout_1(tx: ArchiveTxn, sid: int, page: int, lines: list[str]) -> None:
    """What the previous version wrote for a page: plain terms in the dupsort `postings`, JSON page terms."""
    lengths, distinct = {}, []
    for number, line in enumerate(lines, 1):
        counts: dict[str, int] = {}
        for term in terms(line):
            counts[term] = counts.get(term, 0) + 1
        for term, count in counts.items():
            # layout 1: u64 page | u16 line | u32 sid | u16 count | u16 length
            value = u64(page) + number.to_bytes(2, "big") + u32(sid) + count.to_bytes(2, "big")
            value += len(terms(line)).to_bytes(2, "big")
            tx.txn.put(term.encode(), value, db=tx.db("postings"), dupdata=True)
            distinct += [term] if term not in distinct else []
        lengths[str(number)] = len(terms(line))
    entry = {"terms": distinct, "lengths": lengths}
    tx.txn.put(u64(page), json.dumps(entry).encode(), db=tx.db("page_terms"))
    search.bump_index_counts(tx, len(lines), sum(lengths.values()))
    tx.txn.delete(b"index_layout", db=tx.db("meta"))


def _df(tx: ArchiveTxn, term: str) -> int:
    with tx.txn.cursor(db=tx.db("term_blocks")) as cursor:
        return postings.document_frequency(cursor, search._TermHasher(tx)(term))


def test_a_layout_1_index_is_upgraded_without_the_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postings, "BLOCK_BYTES", 6)  # a block per page: the upgrade streams several per term
    archive = Archive(tmp_path / "a")

    def write(tx: ArchiveTxn) -> None:
        for page in (1, 2, 3):
            _write_layout_1(tx, 1, page, [f"alpha on page {page}"])
        _write_layout_1(tx, 2, 4, ["Quokka_Sunrise alpha", "alpha beta", "gamma Quokka_Sunrise"])

    archive.write(write)
    with pytest.raises(ArchiveError, match=r"layout 1 .* next write upgrades it"):
        archive.read(lambda tx: rank(tx, ["alpha"], None, 10))
    assert archive.write(upgrade_index) is True
    assert archive.write(upgrade_index) is False  # once
    assert _found(archive, "quokka_sunrise") == {(4, 1), (4, 3)}
    assert _found(archive, "alpha", sid=2) == {(4, 1), (4, 2)}
    assert _found(archive, "alpha") == {(1, 1), (2, 1), (3, 1), (4, 1), (4, 2)}
    assert archive.read(lambda tx: tx.txn.stat(tx.db("postings"))["entries"]) == 0
    archive.close()
    assert b"quokka" not in _all_values(tmp_path / "a")
    archive = Archive(tmp_path / "a")
    archive.write(lambda tx: unindex_page(tx, 4))  # forgetting an upgraded page unposts it whole
    assert _found(archive, "alpha") == {(1, 1), (2, 1), (3, 1)}
    assert _found(archive, "quokka_sunrise") == set()
    assert archive.read(lambda tx: _df(tx, "alpha")) == 3  # the count in the last block followed
    archive.close()


def test_the_first_search_of_an_old_archive_upgrades_its_index(memory: Memory) -> None:
    text = "the deploy key is Quokka_Sunrise\nnothing else here"
    page = memory.remember(text, session="s").spans[0]

    def make_it_old(tx: ArchiveTxn) -> None:
        tx.txn.drop(tx.db("term_blocks"), delete=False)
        tx.txn.delete(u64(1), db=tx.db("page_terms"))
        search.bump_index_counts(tx, -2, -100)
        _write_layout_1(tx, 1, 1, text.split("\n"))

    memory.archive.write(make_it_old)
    hit = memory.search("Quokka_Sunrise").hits[0]
    assert (hit.page_id, hit.matches) == (page.page_id, [page.start])
    assert memory.archive.read(lambda tx: tx.txn.stat(tx.db("postings"))["entries"]) == 0


def test_long_queries_are_refused_with_the_limit() -> None:
    with pytest.raises(InvalidArgument, match=f"at most {search.MAX_QUERY_CHARS:,} are allowed"):
        query_terms("x" * (search.MAX_QUERY_CHARS + 1))
    many = " ".join(f"word{i}" for i in range(search.MAX_QUERY_TERMS + 1))
    with pytest.raises(InvalidArgument, match=f"at most {search.MAX_QUERY_TERMS} are allowed"):
        query_terms(many)
    assert len(query_terms(" ".join(f"word{i}" for i in range(search.MAX_QUERY_TERMS)))) == search.MAX_QUERY_TERMS


def test_a_long_line_with_every_query_word_beats_short_lines_with_one(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a")

    def write(tx: ArchiveTxn) -> None:
        filler = [
            f"the staging token for billing service {n} was rotated" if n % 3 == 0 else f"other matters {n}"
            for n in range(300)
        ]
        fact = (
            "during the incident review we agreed the staging deploy of the billing service keeps using "
            "the quasar token until the migration lands next week"
        )
        index_lines(tx, 1, 1, 1, [*filler, fact])  # a long line with every query word
        index_lines(tx, 1, 2, 1, [f"quasar {n}" for n in range(17)])  # short, newer, the one rare word

    archive.write(write)
    best = archive.read(lambda tx: rank(tx, query_terms("quasar token billing staging"), None, 1))[0]
    assert (best.page, best.line) == (1, 301)
    archive.close()


def test_a_word_counts_once_whether_written_whole_or_in_capitals(tmp_path: Path) -> None:
    # "SendGrid" is cut into sendgrid, send and grid, but SENDGRID_PRODUCTION_API_KEY holds only
    # sendgrid: the line naming the asked-for service must still beat one naming another
    archive = Archive(tmp_path / "a")
    fact = "export SENDGRID_PRODUCTION_API_KEY=SG.llLRpxizwrImR3cP0cbgwU  # batch-scheduler"
    other = "The production SendGrid key for invoice-worker is SG.ekgqkTZNSh66kj9Sh88DS5 (rotate it after the demo)."
    words = ("key", "api", "production", "export", "batch-scheduler")  # common here; send and grid are rare
    filler = [f"the {w} for {n} is what we use" for n in range(40) for w in words]

    def write(tx: ArchiveTxn) -> None:
        index_lines(tx, 1, 1, 1, [*filler, fact])
        index_lines(tx, 1, 2, 1, [other])

    archive.write(write)
    query = "what is the production SendGrid API key for batch-scheduler"
    best = archive.read(lambda tx: rank(tx, query_terms(query), None, 1, query_words(query)))[0]
    assert (best.page, best.line) == (1, len(filler) + 1)
    archive.close()
