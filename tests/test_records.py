"""Page records on disk: deflated, small enough for their LMDB leaf, and older plain JSON still read."""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, fields, replace
from pathlib import Path

import pytest

from optical_memory.archive import ArchiveTxn
from optical_memory.checkcode import NO_CODE, line_key, part_codes_for, stored_code
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.records import EntryRecord, PageRecord
from optical_memory.tiers import Tier

# LMDB (4 KB pages) keeps values of up to about 1,340 bytes two or three to a leaf page; larger ones get a
# leaf page each (measured: 941 values of 1,340 bytes take 432 leaf pages, of 1,360 bytes 855)
LEAF_SHARE = 1340


def full_pages(path: Path) -> Memory:
    config = replace(load_config(archive=path, environ={}), tiers=(Tier("hot", 1.0),))
    memory = Memory(config, reader=TemplateReader())
    for n in range(6):  # many entries a page: each adds an entry, rows, codes to the record
        memory.remember("\n".join(f"entry {n} line {i}: src/app/mod_{i}.py:{i * 7}" for i in range(9)), title=f"t{n}")
    return memory


def stored_records(memory: Memory) -> dict[str, bytes]:
    def run(tx: ArchiveTxn) -> dict[str, bytes]:
        with tx.txn.cursor(db=tx.db("pages")) as cursor:
            return {bytes(k).decode(): bytes(v) for k, v in cursor}

    return memory.archive.read(run)


def test_page_records_are_stored_packed_and_share_their_leaf(tmp_path: Path) -> None:
    memory = full_pages(tmp_path / "a")
    records = stored_records(memory)
    assert records
    for page_id, raw in records.items():
        assert raw[:1] == b"y", f"{page_id} is stored as {raw[:10]!r}"
        record = PageRecord.from_bytes(raw)
        plain = json.dumps(record.to_json(), separators=(",", ":")).encode()
        deflated = b"z" + zlib.compress(plain, 6)  # as the version before packed records stored it
        assert len(raw) < min(LEAF_SHARE, len(deflated)), (page_id, len(raw), len(deflated))
        assert record.codes and record.parts and record.to_json() == json.loads(plain)
        assert PageRecord.from_bytes(deflated) == record  # and that older form still reads
    memory.close()


def test_a_packed_record_whose_codes_are_cut_short_is_refused_by_name(tmp_path: Path) -> None:
    memory = full_pages(tmp_path / "a")
    raw = next(iter(stored_records(memory).values()))
    with pytest.raises(ValueError, match=r"a page record's codes take \d+ bytes, not the \d+ it says"):
        PageRecord.from_bytes(raw[:-3])
    memory.close()


def test_a_record_stored_as_plain_json_reads_and_its_page_reads_back(tmp_path: Path) -> None:
    memory = full_pages(tmp_path / "a")
    page_id, raw = next(iter(stored_records(memory).items()))
    before = memory.read_lines(page_id)
    plain = json.dumps(PageRecord.from_bytes(raw).to_json(), separators=(",", ":"), ensure_ascii=False).encode()
    memory.archive.write(lambda tx: tx.txn.put(page_id.encode(), plain, db=tx.db("pages")))  # as older versions wrote
    after = memory.read_lines(page_id)
    assert [(line.text, line.verified) for line in after.lines] == [(line.text, line.verified) for line in before.lines]
    assert all(line.verified is True for line in after.lines)
    memory.close()


def test_a_line_without_a_code_reads_as_having_none() -> None:
    codes = NO_CODE + b"\x01" * len(NO_CODE)
    assert stored_code(codes, 0) is None  # written before codes existed
    assert stored_code(codes, 1) == b"\x01" * len(NO_CODE)
    assert stored_code(codes, 2) is None and stored_code(None, 0) is None


def test_an_entry_record_is_written_with_every_field_in_order_and_none_left_out() -> None:
    """to_json is spelled out for speed: it must stay what asdict gives, less the optional fields left None."""
    optional = {"recalled_from", "entry"}
    for recalled, entry in ((None, None), ("p3:4", None), (None, "p9:1"), ("p3:4", "p9:1")):
        record = EntryRecord("user", "2026-11-27T03:00:00Z", "a title", 1, 7, recalled_from=recalled, entry=entry)
        expected = {k: v for k, v in asdict(record).items() if k not in optional or v is not None}
        assert list(record.to_json().items()) == list(expected.items())
        assert EntryRecord.from_json(record.to_json()) == record
    assert {f.name for f in fields(EntryRecord)} - optional == {"role", "time", "title", "first_line", "last_line"}


def test_a_page_keeps_the_part_codes_of_each_line_it_holds(tmp_path: Path) -> None:
    memory = full_pages(tmp_path / "a")
    key = line_key(memory.archive.read(lambda tx: tx.archive_key()))
    for page_id, raw in stored_records(memory).items():
        record = PageRecord.from_bytes(raw)
        pieces = [line.text for line in memory.read_lines(page_id).lines]  # hot and verified: the lines as written
        assert record.parts == part_codes_for(key, pieces), page_id
        assert PageRecord.from_bytes(record.to_bytes()).parts == record.parts
    memory.close()


def test_lines_appended_to_a_page_begun_before_part_codes_get_them_and_the_earlier_lines_none(tmp_path: Path) -> None:
    memory = Memory(load_config(archive=tmp_path / "a", environ={}), reader=TemplateReader())
    memory.remember("first line\nsecond line", session="s")
    page_id, raw = next(iter(stored_records(memory).items()))
    older = PageRecord.from_bytes(raw).to_json()
    del older["parts"]  # as a version before part codes wrote it
    memory.archive.write(lambda tx: tx.txn.put(page_id.encode(), json.dumps(older).encode(), db=tx.db("pages")))
    assert PageRecord.from_bytes(stored_records(memory)[page_id]).parts is None
    memory.remember("third line", session="s")
    record = PageRecord.from_bytes(stored_records(memory)[page_id])
    key = line_key(memory.archive.read(lambda tx: tx.archive_key()))
    assert record.parts == [b"", b"", *part_codes_for(key, ["third line"])]
    read = memory.read_lines(page_id)
    assert [(line.text, line.verified) for line in read.lines] == [
        ("first line", True), ("second line", True), ("third line", True)
    ]  # fmt: skip
    memory.close()
