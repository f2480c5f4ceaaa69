"""Forget erases (#12.4), compact gives freed space back (#13), stats says what is where.

The erase tests scan the archive's files byte for byte, in every letter case and in UTF-8 and UTF-16,
for the forgotten words, title and session name and for pieces of the forgotten page images. Each
scan is also run once with erasing turned off, to show that it finds what erasing removes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from optical_memory.archive import _DATABASES, Archive, ArchiveTxn
from optical_memory.config import load_config
from optical_memory.errors import ArchiveBusy
from optical_memory.maintenance import stats
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
from tests.file_text import readable

TIERS = (Tier("hot", 1.0), Tier("warm", 0.6, "webp", 80, lossless=True, after_pages=2))
SECRET_SESSION = "Patient Zelda Quibblefrost"
SECRET_TITLE = "Confidential Diagnosis Xanthoria"
SECRET_WORDS = ["Quetzalcoatlus", "hunter2passphrase", "Przewalskimare", "sk-live-9f8e7d6c5b4a"]
CHUNK = 32


def open_memory(path: Path) -> Memory:
    return Memory(replace(load_config(archive=path, environ={}), tiers=TIERS), reader=TemplateReader())


def forms(text: str) -> set[bytes]:
    """Every way a file could hold `text`: lower, upper, title and as-is case; UTF-8 and UTF-16."""
    out: set[bytes] = set()
    for variant in (text, text.lower(), text.upper(), text.title()):
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            out.add(variant.encode(encoding))
    return out


def archive_bytes(path: Path) -> bytes:
    return readable(b"".join((path / name).read_bytes() for name in ("data.mdb", "lock.mdb")))


def leftovers(path: Path, texts: list[str], images: list[bytes], kept: list[bytes]) -> list[str]:
    """What of the forgotten texts and images can still be found in the archive's files.

    Image pieces: every run of 2 * CHUNK bytes of a forgotten image that is left in the files holds a
    CHUNK-aligned window of the files that is a piece of the image, so aligned windows are looked up
    among all of the image's pieces (pieces that kept images share prove nothing and are not counted).
    """
    data = archive_bytes(path)
    found = [f"text {text!r}" for text in texts if any(form in data for form in forms(text))]
    pieces = {image[i : i + CHUNK] for image in images for i in range(len(image) - CHUNK + 1)}
    kept_bytes = b"\x00".join(kept)
    for start in range(0, len(data) - CHUNK + 1, CHUNK):
        window = data[start : start + CHUNK]
        if window in pieces and window.count(0) < CHUNK and window not in kept_bytes:
            found.append(f"forgotten image bytes at offset {start}")
            if len(found) > 20:
                break  # enough to say so
    return found


def write_history(memory: Memory) -> None:
    """Two sessions interleaved, so forgotten records share LMDB pages with kept ones; pages fade."""
    for n in range(14):
        memory.remember(f"kept note {n}: the build passed\n" + "ordinary text " * 180, session="keeper")
        words = " ".join(SECRET_WORDS)
        memory.remember(f"{words} entry {n}\n" + "private " * 300, session=SECRET_SESSION, title=SECRET_TITLE)


def images_of(memory: Memory, session: str | None = None) -> dict[str, bytes]:
    return {p.id: memory.view_page(p.id).data for p in memory.list_pages(session=session, limit=200).pages}


@pytest.fixture
def no_erase(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    def disable() -> None:
        monkeypatch.setattr(Archive, "erase_free_space", lambda self: {})

    return disable


@pytest.mark.parametrize("erase", [True, False], ids=["erased", "control-without-erase"])
def test_forget_session_leaves_nothing_in_the_files(tmp_path: Path, erase: bool, no_erase: Callable[[], None]) -> None:
    if not erase:
        no_erase()
    memory = open_memory(tmp_path / "a")
    write_history(memory)
    forgotten = list(images_of(memory, SECRET_SESSION).values())
    assert {p.tier for p in memory.list_pages(session=SECRET_SESSION, limit=200).pages} == {"hot", "warm"}
    assert any(form in archive_bytes(tmp_path / "a") for form in forms(SECRET_TITLE))  # the scan can see it
    memory.forget(session=SECRET_SESSION)
    kept = list(images_of(memory).values())
    found = leftovers(tmp_path / "a", [*SECRET_WORDS, SECRET_TITLE, SECRET_SESSION], forgotten, kept)
    if erase:
        assert found == []
        assert memory.archive.check() == []
        newest = memory.list_pages(session="keeper", limit=1).pages[0]  # hot: the template reader reads it
        assert "ordinary text" in memory.read_lines(newest.id).lines[-1].text
        memory.remember("still writable", session="keeper")
    else:
        assert found, "without erasing, the scan must find what forget left behind"
    memory.close()


def test_forget_one_page_leaves_nothing_of_it(tmp_path: Path) -> None:
    memory = open_memory(tmp_path / "a")
    write_history(memory)
    memory.remember("Zygomorphic one-off line", session="keeper", title="Unique Heading Vermilion")
    page = memory.list_pages(session="keeper", limit=1).pages[0]
    image = memory.view_page(page.id).data
    memory.forget(page_id=page.id)
    kept = list(images_of(memory).values())
    assert leftovers(tmp_path / "a", ["Zygomorphic", "Unique Heading Vermilion"], [image], kept) == []
    memory.close()


def test_erase_clears_what_recycled_buffers_left_in_the_tails_of_live_pages(tmp_path: Path) -> None:
    # LMDB fills a value of one overflow page (2-4 KB: a small image, a long checkpoint) into a
    # recycled page buffer without clearing it, so the page's tail keeps what the buffer held before:
    # here the values just deleted. Erasing free space alone never rewrites such live pages.
    secret = b"tailword-5521"
    archive = Archive(tmp_path / "a")

    def first(tx: ArchiveTxn) -> None:
        for i in range(4):
            tx.txn.put(b"k%d" % i, bytes(2500) + secret * 100, db=tx.db("checkpoints"))

    def second(tx: ArchiveTxn) -> None:
        for i in range(4):
            tx.txn.delete(b"k%d" % i, db=tx.db("checkpoints"))
            tx.txn.put(b"n%d" % i, bytes(2200), db=tx.db("checkpoints"))

    archive.write(first)
    archive.write(second)
    assert secret in (tmp_path / "a" / "data.mdb").read_bytes(), "LMDB no longer leaves tails: make them another way"
    result = archive.erase_free_space()
    archive.close()
    assert result["page_sized_values_rewritten"] >= 4
    assert secret not in archive_bytes(tmp_path / "a")


def test_erase_reports_what_it_overwrote(tmp_path: Path) -> None:
    memory = open_memory(tmp_path / "a")
    write_history(memory)
    before = stats(memory.archive, [t.name for t in TIERS])
    result = memory.archive.erase_free_space()
    after = stats(memory.archive, [t.name for t in TIERS])
    assert result["pages_unreached"] == 0 and result["pages_overwritten"] > 0
    assert result["bytes_overwritten"] == result["pages_overwritten"] * 4096
    assert after["file_bytes"] <= before["file_bytes"] + 64 * 4096  # fills free pages; barely grows the file
    memory.close()


# compact ------------------------------------------------------------------------------------------------
HOLDER = """
import sys, time
from optical_memory.archive import Archive
archive = Archive(sys.argv[1])
print("holding", flush=True)
time.sleep(120)
"""


def snapshot(archive: Archive) -> dict[str, dict[bytes, bytes]]:
    def dump(tx: ArchiveTxn) -> dict[str, dict[bytes, bytes]]:
        return {name: {bytes(k): bytes(v) for k, v in tx.txn.cursor(db=tx.db(name))} for name in _DATABASES}

    return archive.read(dump)


@pytest.fixture
def faded(tmp_path: Path) -> Iterator[Memory]:
    """Most of an archive forgotten: its file is mostly free pages. (Hot only: the template reader is exact there.)"""
    memory = Memory(replace(load_config(archive=tmp_path / "a", environ={}), tiers=TIERS[:1]), reader=TemplateReader())
    for n in range(40):
        memory.remember(f"entry {n}\n" + f"line of session {n % 4} " * 60, session=f"s{n % 4}")
    for session in ("s1", "s2", "s3"):
        memory.forget(session=session)
    yield memory
    memory.close()


def test_compact_gives_freed_space_back_and_changes_no_data(faded: Memory) -> None:
    tiers = [t.name for t in TIERS]
    before, data = stats(faded.archive, tiers), snapshot(faded.archive)
    assert before["free_fraction"] > 0.5
    result = faded.archive.compact()
    after = stats(faded.archive, tiers)
    assert result["bytes_after"] == after["file_bytes"] < before["file_bytes"] == result["bytes_before"]
    assert after["file_bytes"] <= 1.1 * after["used_bytes"]  # within 10 % of the data it holds
    assert snapshot(faded.archive) == data
    assert faded.archive.check() == []
    assert faded.read_lines("p1", 1, 1).lines[0].text == "entry 0"
    faded.remember("written after compacting", session="s0")
    assert faded.archive.check() == []


def test_compact_refuses_while_another_process_has_the_archive_open(faded: Memory) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(faded.archive.path)], stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"holding"
        size = (faded.archive.path / "data.mdb").stat().st_size
        with pytest.raises(ArchiveBusy, match="another process has it open"):
            faded.archive.compact()
        assert (faded.archive.path / "data.mdb").stat().st_size == size
        assert faded.read_lines("p1", 1, 1).lines[0].text == "entry 0"  # still usable after the refusal
    finally:
        holder.kill()
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()
    assert faded.archive.compact()["bytes_freed"] > 0  # the holder is gone: now it may


def test_stats_adds_up(faded: Memory) -> None:
    tiers = [t.name for t in TIERS]
    report = stats(faded.archive, tiers)
    pages = faded.list_pages(limit=200).pages
    assert report["pages"] == len(pages) == sum(t["pages"] for t in report["tiers"].values())
    assert report["sessions"] == len(faded.list_sessions().sessions) == 1
    assert report["tokens"]["text_tokens"] == sum(p.text_tokens for p in pages)
    assert report["tokens"]["image_tokens"] == sum(p.image_tokens for p in pages)
    for name, tier in report["tiers"].items():
        assert tier["image_bytes"] == sum(p.image_bytes for p in pages if p.tier == name)
    assert report["used_bytes"] + report["free_bytes"] <= report["file_bytes"]
    assert 0 <= report["free_fraction"] <= 1
    json.dumps(report)  # printable as it is


def test_cli_stats_and_compact(faded: Memory, capsys: pytest.CaptureFixture[str]) -> None:
    from optical_memory_mcp.cli import main

    path = str(faded.archive.path)
    faded.close()
    assert main(["--archive", path, "stats"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["pages"] > 0 and printed["free_fraction"] > 0.5
    assert main(["--archive", path, "compact"]) == 0
    compacted = json.loads(capsys.readouterr().out)
    assert compacted["bytes_after"] < compacted["bytes_before"]
    faded.archive = Archive(path)  # the fixture closes it again


def test_cli_check_says_ok_and_names_a_damaged_image(faded: Memory, capsys: pytest.CaptureFixture[str]) -> None:
    from optical_memory_mcp.cli import main

    path = str(faded.archive.path)
    page = faded.list_pages(limit=1).pages[0].id
    faded.close()
    assert main(["--archive", path, "check"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "problems": []}
    archive = Archive(path)
    image = archive.read(lambda tx: tx.image(page))
    assert image is not None
    damaged = image[:-8] + bytes(8)
    archive.write(lambda tx: tx.txn.put(page.encode(), damaged, db=tx.db("images")))
    archive.close()
    assert main(["--archive", path, "check"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["ok"] is False
    assert printed["problems"] == [f"page {page}'s image does not match its checksum: it is damaged"]
    faded.archive = Archive(path)  # the fixture closes it again


READER = """
import sys, time
from optical_memory.archive import Archive
archive = Archive(sys.argv[1])
txn = archive.env.begin()  # a snapshot from before the forget, held open
txn.get(b"schema", db=archive._dbs["meta"])
print("reading", flush=True)
time.sleep(120)
"""


def test_a_reader_holding_old_pages_is_reported_and_the_next_erase_gets_them(tmp_path: Path) -> None:
    memory = open_memory(tmp_path / "a")
    write_history(memory)
    forgotten = list(images_of(memory, SECRET_SESSION).values())
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    reader = subprocess.Popen([sys.executable, "-c", READER, str(tmp_path / "a")], stdout=subprocess.PIPE, env=env)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == b"reading"
        memory.forget(session=SECRET_SESSION)
        pinned = memory.archive.erase_free_space()
        assert pinned["pages_unreached"] > 0  # said, not hidden
    finally:
        reader.kill()
        reader.wait(timeout=30)
        assert reader.stdout is not None
        reader.stdout.close()
    assert memory.archive.erase_free_space()["pages_unreached"] == 0
    kept = list(images_of(memory).values())
    assert leftovers(tmp_path / "a", [SECRET_TITLE, SECRET_SESSION], forgotten, kept) == []
    memory.close()


def test_every_key_of_every_database_is_touched_in_batches(tmp_path: Path) -> None:
    from optical_memory.maintenance import _touch_every_leaf

    memory = open_memory(tmp_path / "a")
    write_history(memory)
    before = snapshot(memory.archive)
    names = [name for name in _DATABASES if name in memory.archive._dbs]
    touched = memory.archive.write(lambda tx: _touch_every_leaf(tx, names, batch=3))
    assert touched == sum(len(table) for table in before.values())  # distinct keys (no dupsort keys repeat here)
    assert snapshot(memory.archive) == before  # probes only: no data changed
    memory.close()


OTHER_WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from test_maintenance import SECRET_SESSION, SECRET_TITLE, SECRET_WORDS, open_memory
memory = open_memory(Path(sys.argv[1]))
for command in sys.stdin:
    n = int(command.split()[1])
    if command.startswith("secret"):
        text = " ".join(SECRET_WORDS) + f" entry {n}\\n" + "private " * 300
        memory.remember(text, session=SECRET_SESSION, title=SECRET_TITLE)
    else:
        memory.remember(f"kept note {n}\\n" + "ordinary text " * 180, session="keeper")
    print("done", flush=True)
memory.close()
"""


def test_another_process_that_wrote_the_forgotten_pages_does_not_write_them_back(tmp_path: Path) -> None:
    """A server process wrote the session; another process forgets it; the server's later writes stay clean."""
    path = tmp_path / "a"
    open_memory(path).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    server = subprocess.Popen(
        [sys.executable, "-c", OTHER_WRITER, str(path), str(Path(__file__).parent)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None

    def ask(command: str) -> None:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(command + "\n")
        server.stdin.flush()
        assert server.stdout.readline().strip() == "done"

    try:
        for n in range(14):
            ask(f"keeper {n}")
            ask(f"secret {n}")
        memory = open_memory(path)
        forgotten = list(images_of(memory, SECRET_SESSION).values())
        memory.forget(session=SECRET_SESSION)
        for n in range(14, 40):  # the server goes on writing, after the erase
            ask(f"keeper {n}")
        kept = list(images_of(memory).values())
        assert leftovers(path, [*SECRET_WORDS, SECRET_TITLE, SECRET_SESSION], forgotten, kept) == []
        memory.close()
    finally:
        server.stdin.close()
        server.wait(timeout=60)
        server.stdout.close()


def test_an_erase_killed_midway_leaves_nothing_that_stops_the_next(tmp_path: Path) -> None:
    from optical_memory import maintenance

    memory = open_memory(tmp_path / "a")
    write_history(memory)
    memory.forget(page_id=memory.list_pages(session="keeper", limit=1).pages[0].id)
    scratch = memory.archive.env.open_db(maintenance.SCRATCH_DB)
    maintenance._fill(memory.archive, scratch, 0, 50, 4096)  # as if killed after filling, before emptying
    result = memory.archive.erase_free_space()
    assert result["pages_unreached"] == 0
    scratch = memory.archive.env.open_db(maintenance.SCRATCH_DB)  # the erase reopened the environment
    with memory.archive.env.begin() as txn:
        assert txn.stat(scratch)["entries"] == 0
    assert memory.archive.check() == []
    memory.close()
