"""The LMDB archive: map growth from a tiny map, several processes writing at once, open errors said at once."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import lmdb
import pytest

from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.config import load_config
from optical_memory.errors import ArchiveError, ArchiveFull
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier


def test_tiny_map_grows_without_losing_or_duplicating_a_write(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a", map_size_mib=1, max_map_size_mib=256)
    config = replace(load_config(archive=tmp_path / "a", environ={}))
    memory = Memory(config, archive=archive, reader=TemplateReader())
    rng = random.Random(1)  # varied text: page images must add up to several MiB, well past the 1 MiB map
    noise = ["".join(rng.choice("abcdefghij |-_0123456789") for _ in range(6000)) for _ in range(40)]
    results = [memory.remember(f"entry {n}\n" + noise[n], session="grow") for n in range(40)]
    assert archive.env.info()["map_size"] > 1 << 20
    ids = [span.page_id for result in results for span in result.spans]
    listed = [p.id for p in memory.list_pages(session="grow", limit=200).pages]
    assert sorted(set(ids), key=lambda p: int(p[1:])) == sorted(listed, key=lambda p: int(p[1:]))
    first = results[-1].spans[0]
    assert memory.read_lines(first.page_id, first.start, first.start).lines[0].text == "entry 39"
    memory.close()


def _hot_only(path: str) -> Memory:
    """Pages never fade here: the template reader is exact only at the hot tier."""
    config = replace(load_config(archive=path, environ={}), tiers=(Tier("hot", 1.0),))
    return Memory(config, reader=TemplateReader())


def _writer(path: str, session: str, count: int) -> None:
    memory = _hot_only(path)
    for n in range(count):
        memory.remember(f"{session} entry {n}\n" + "y" * 2500, session=session)
    memory.close()


def test_two_processes_write_one_archive_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared")
    Archive(path).close()  # created up front, as a first server would
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(path, name, 25)) for name in ("left", "right")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    memory = _hot_only(path)
    for session in ("left", "right"):
        pages = memory.list_pages(session=session, limit=200).pages
        firsts: list[str] = []
        for page in reversed(pages):
            lines = memory.read_lines(page.id).lines
            firsts += [line.text for line in lines if line.text.startswith(session)]
        assert firsts == [f"{session} entry {n}" for n in range(25)]  # none lost, in order
    memory.close()


# open errors say at once what is wrong (#12.9, #12.13) --------------------------------------------
OPEN_AND_READ = """
import json, sys
from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.errors import OpticalMemoryError
try:
    archive = Archive(sys.argv[1], busy_timeout_s=30)
    print(json.dumps({"pages": archive.read(lambda tx: sum(1 for _ in tx.pages()))}))
except OpticalMemoryError as exc:
    print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
"""


def open_in_child(path: Path) -> dict[str, object]:
    """Open and read the archive in a child process: a crash (SIGBUS) shows as its exit status."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    done = subprocess.run([sys.executable, "-c", OPEN_AND_READ, str(path)], capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, f"the process died (status {done.returncode}): {done.stderr.decode()[-2000:]}"
    return json.loads(done.stdout)


@pytest.fixture
def written(tmp_path: Path) -> Path:
    path = tmp_path / "a"
    memory = _hot_only(str(path))
    rng = random.Random(3)
    for n in range(12):
        memory.remember("".join(rng.choice("abc xyz\n") for _ in range(3000)), session=f"s{n % 2}")
    memory.close()
    return path


def test_a_truncated_data_file_is_named_and_never_crashes(written: Path) -> None:
    data = written / "data.mdb"
    os.truncate(data, data.stat().st_size // 2)
    result = open_in_child(written)
    assert result["error"] == "ArchiveDamaged"
    assert str(data) in str(result["message"]) and "truncated" in str(result["message"])
    assert "restore the folder from a backup" in str(result["message"])


def test_an_empty_data_file_is_damaged_not_a_new_archive(written: Path) -> None:
    (written / "data.mdb").write_bytes(b"")
    result = open_in_child(written)
    assert result["error"] == "ArchiveDamaged" and "empty (0 bytes)" in str(result["message"])
    assert (written / "data.mdb").stat().st_size == 0  # left as found, for whoever restores it


def test_a_file_that_is_not_lmdb_is_damaged_at_once(written: Path) -> None:
    (written / "data.mdb").write_bytes(os.urandom(20000))
    result = open_in_child(written)  # busy_timeout_s=30: "busy" would only come after that wait
    assert result["error"] == "ArchiveDamaged" and "not an LMDB data file" in str(result["message"])


READ_ONLY_PROBE = """
import json, sys
from dataclasses import replace
from optical_memory.config import load_config
from optical_memory.errors import ArchiveReadOnly
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
config = replace(load_config(archive=sys.argv[1], environ={}), tiers=(Tier("hot", 1.0),))
memory = Memory(config, reader=TemplateReader())
out = {"read_only": memory.archive.read_only, "pages": [p.id for p in memory.list_pages(limit=200).pages]}
out["first_line"] = memory.read_lines("p1", 1, 1).lines[0].text
out["found"] = len(memory.search("zeppelin").hits)
try:
    memory.remember("more", session="s")
    out["write"] = "accepted"
except ArchiveReadOnly as exc:
    out["write"] = str(exc)
print(json.dumps(out))
"""


def read_only_command(path: Path) -> list[str]:
    """The probe, run where `path` cannot be written: by its modes, or (root ignores modes) a read-only mount."""
    probe = [sys.executable, "-c", READ_ONLY_PROBE, str(path)]
    if os.geteuid() != 0:
        return probe
    # a private mount namespace: the read-only bind mount is gone when the probe exits
    script = f'mount --bind "{path}" "{path}" && mount -o remount,ro,bind "{path}" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "probe", *probe]


def test_a_read_only_archive_can_be_read_and_refuses_writes_clearly(tmp_path: Path) -> None:
    path = tmp_path / "a"
    memory = _hot_only(str(path))
    memory.remember("the zeppelin left at noon", session="s")
    memory.close()
    for file in path.iterdir():
        file.chmod(0o400)
    path.chmod(0o500)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    try:
        done = subprocess.run(read_only_command(path), capture_output=True, env=env, timeout=120)
    finally:
        path.chmod(0o700)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    out = json.loads(done.stdout)
    assert out["read_only"] is True and out["pages"] == ["p1"]
    assert out["first_line"] == "the zeppelin left at noon" and out["found"] == 1
    assert "read-only" in out["write"] and "can be read" in out["write"] and str(path) in out["write"]


def test_a_full_disk_reads_disk_full_even_as_an_io_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = Archive(tmp_path / "a")

    def failing(tx: ArchiveTxn) -> None:
        raise lmdb.DiskError("mdb_txn_commit: Input/output error")

    monkeypatch.setattr("optical_memory.archive.disk_free", lambda path: 4096)
    with pytest.raises(ArchiveFull, match=r"disk holding .* is full \(4,096 bytes free\); nothing was written"):
        archive.write(failing)
    monkeypatch.setattr("optical_memory.archive.disk_free", lambda path: 50 << 30)
    with pytest.raises(ArchiveError, match="refused the write; nothing was written") as raised:
        archive.write(failing)  # plenty of room: a real I/O error is not called a full disk
    assert not isinstance(raised.value, ArchiveFull)
    archive.close()


# check() verifies image checksums (#12.10) ---------------------------------------------------------
def test_check_finds_a_flipped_bit_in_a_stored_image(written: Path) -> None:
    archive = Archive(written)
    assert archive.check() == []

    def flip(tx: ArchiveTxn) -> None:
        image = bytearray(tx.image("p3") or b"")
        image[len(image) // 2] ^= 0x10
        tx.put_image("p3", bytes(image))

    archive.write(flip)
    assert archive.check() == ["page p3's image does not match its checksum: it is damaged"]
    archive.close()


def test_a_full_disk_at_open_reads_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = os.open

    def full(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if str(path).endswith("open.lock") and flags & os.O_CREAT:
            raise OSError(28, os.strerror(28), str(path))
        return original(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", full)
    with pytest.raises(ArchiveFull, match="the disk is full"):
        Archive(tmp_path / "new")


CREATOR = """
import fcntl, os, shutil, sys, time
path, valid = sys.argv[1], sys.argv[2]
lock = os.open(os.path.join(path, "open.lock"), os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(lock, fcntl.LOCK_SH)  # has the archive open, as every process does
print("creating", flush=True)
time.sleep(0.5)
with open(os.path.join(path, "data.mdb"), "r+b") as out, open(valid, "rb") as src:
    shutil.copyfileobj(src, out)  # the meta pages land in the empty file, as when LMDB creates it
print("created", flush=True)
time.sleep(3)
"""


def test_an_archive_another_process_is_creating_is_waited_for_not_called_damaged(tmp_path: Path) -> None:
    valid = tmp_path / "valid"
    Archive(valid).close()
    path = tmp_path / "new"
    path.mkdir()
    (path / "data.mdb").write_bytes(b"")  # created, its meta pages not written yet
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    creator = subprocess.Popen(
        [sys.executable, "-c", CREATOR, str(path), str(valid / "data.mdb")], stdout=subprocess.PIPE, env=env
    )
    try:
        assert creator.stdout is not None and creator.stdout.readline().strip() == b"creating"
        archive = Archive(path, busy_timeout_s=20)
        assert archive.check() == []
        archive.close()
    finally:
        creator.kill()
        creator.wait(timeout=30)
        assert creator.stdout is not None
        creator.stdout.close()
