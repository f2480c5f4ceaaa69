"""Export a session or a whole archive, import it into another archive: nothing changes but the ids.

And an export is untrusted input: an import reads nothing outside it, checks every field and size
before writing, and writes all of it or nothing; an export is written private and never through a
planted link (issue #12, cases 3, 7 and 15).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from optical_memory.archive import _DATABASES, Archive, ArchiveTxn
from optical_memory.config import load_config
from optical_memory.errors import InvalidArgument, SessionNotFound
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.records import PageRecord
from optical_memory.tiers import Tier
from optical_memory.transcribe import transcribe_lines
from optical_memory.transfer import import_pages

TIERS = (Tier("hot", 1.0), Tier("warm", 0.6, "webp", 80, after_pages=2))


def open_memory(path: Path) -> Memory:
    return Memory(replace(load_config(archive=path, environ={}), tiers=TIERS), reader=TemplateReader())


def line_reader(memory: Memory) -> Callable[[PageRecord, bytes], list[str]]:
    """What the facade gives an import: every line of a page, read with its reader."""

    def read(record: PageRecord, image: bytes) -> list[str]:
        numbers = range(1, record.lines + 1)
        return [line.text for line in transcribe_lines(memory.reader, record, image, numbers, key=record.codes_key)]

    return read


def import_into(memory: Memory, source: Path) -> dict[str, Any]:
    return import_pages(memory.archive, source, read_lines=line_reader(memory))


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Memory]:
    mem = open_memory(tmp_path / "source")
    for n in range(4):  # enough pages for some to fade to warm (webp)
        mem.remember("\n".join(f"chapter {n} line {i} token_{n}_{i}" for i in range(70)), session="book", role="user")
    mem.remember("side note about zeppelins", session="notes", title="aside")
    yield mem
    mem.close()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Memory]:
    mem = open_memory(tmp_path / "target")
    mem.remember("already here", session="other")
    yield mem
    mem.close()


def pages_of(memory: Memory) -> list[tuple[str, bytes, object]]:
    out = []
    for info in reversed(memory.list_pages(limit=200).pages):
        view = memory.view_page(info.id)
        out.append((info.session, view.data, info.model_copy(update={"id": "", "created": "", "updated": ""})))
    return out


def snapshot(archive: Archive) -> dict[str, dict[bytes, bytes]]:
    def dump(tx: ArchiveTxn) -> dict[str, dict[bytes, bytes]]:
        return {name: {bytes(k): bytes(v) for k, v in tx.txn.cursor(db=tx.db(name))} for name in _DATABASES}

    return archive.read(dump)


@pytest.mark.parametrize("name", ["export", "export.zip"])
def test_export_then_import_is_lossless(source: Memory, target: Memory, tmp_path: Path, name: str) -> None:
    counts = source.export_pages(tmp_path / name)
    assert counts == {"pages": len(source.list_pages(limit=200).pages), "sessions": 2}
    result = import_into(target, tmp_path / name)
    assert result["pages"] == counts["pages"]
    imported = [p for p in pages_of(target) if p[0] != "other"]
    assert imported == pages_of(source)  # same images byte for byte, same metadata
    assert {p.tier for p in target.list_pages(session="book", limit=200).pages} == {"hot", "warm"}
    new_id = result["ids"][source.search("zeppelins").hits[0].page_id]
    hit = target.search("zeppelins").hits[0]  # indexed again from the lines as the target reads them
    assert (hit.page_id, hit.lines[0].text) == (new_id, "side note about zeppelins")
    # the check codes were made with the source archive's key; the page keeps it, so lines still verify
    assert [line.verified for line in target.read_lines(new_id).lines] == [True]
    assert target.remember("more notes", session="notes").spans[0].page_id == new_id  # open page stays open
    assert target.archive.check() == []


def test_export_one_session(source: Memory, tmp_path: Path) -> None:
    assert source.export_pages(tmp_path / "notes", session="notes") == {"pages": 1, "sessions": 1}
    with pytest.raises(SessionNotFound):
        source.export_pages(tmp_path / "x", session="ghost")


def test_import_rejects_what_is_not_an_export(source: Memory, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    with pytest.raises(InvalidArgument, match="manifest"):
        source.import_pages(tmp_path / "junk")
    with pytest.raises(InvalidArgument, match="neither"):
        source.import_pages(tmp_path / "missing")


# exports are private and never written through a link (#12.15) -----------------------------------
def test_exports_are_private(source: Memory, tmp_path: Path) -> None:
    source.export_pages(tmp_path / "folder")
    source.export_pages(tmp_path / "bundle.zip")
    folder = tmp_path / "folder"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "images").stat().st_mode) == 0o700
    files = [folder / "manifest.json", *(folder / "images").iterdir()]
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert stat.S_IMODE((tmp_path / "bundle.zip").stat().st_mode) == 0o600


def test_export_never_writes_through_a_planted_link(source: Memory, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    victim_dir = tmp_path / "victim_dir"
    victim_dir.mkdir()
    for name, points_to in (("out.zip", victim), ("out", victim_dir)):
        (tmp_path / name).symlink_to(points_to)
        with pytest.raises(InvalidArgument, match="symbolic link"):
            source.export_pages(tmp_path / name)
    assert victim.read_text() == "do not touch" and list(victim_dir.iterdir()) == []
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidArgument, match="not empty"):
        source.export_pages(tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


# imports read only the export's own files (#12.3) -------------------------------------------------
def exported(source: Memory, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path / "exp"
    source.export_pages(folder, session="notes")
    return folder, json.loads((folder / "manifest.json").read_text())


def rewrite(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["../secret.txt", "/etc/hostname", "images/../../secret.txt", "images/p1.txt"])
def test_import_reads_no_file_outside_the_export(source: Memory, target: Memory, tmp_path: Path, name: str) -> None:
    folder, manifest = exported(source, tmp_path)
    (tmp_path / "secret.txt").write_text("password=hunter2")
    manifest["pages"][0]["image"] = name
    rewrite(folder, manifest)
    before = snapshot(target.archive)
    with pytest.raises(InvalidArgument, match="image must be"):
        import_into(target, folder)
    assert snapshot(target.archive) == before


def test_import_follows_no_symlink(source: Memory, target: Memory, tmp_path: Path) -> None:
    folder, manifest = exported(source, tmp_path)
    secret = tmp_path / "secret.png"
    shutil.copy(next((folder / "images").iterdir()), secret)
    secret.chmod(0o600)
    image = folder / manifest["pages"][0]["image"]
    image.unlink()
    image.symlink_to(secret)  # a link to a private file, even one that is a valid image
    with pytest.raises(InvalidArgument, match="symbolic link"):
        import_into(target, folder)
    image.unlink()
    shutil.copy(secret, image)
    (folder / "images").rename(tmp_path / "elsewhere")
    (folder / "images").symlink_to(tmp_path / "elsewhere")  # the images folder itself a link
    with pytest.raises(InvalidArgument, match="symbolic link"):
        import_into(target, folder)
    assert [s.name for s in target.list_sessions().sessions] == ["other"]


def test_zip_members_that_are_links_are_refused(source: Memory, target: Memory, tmp_path: Path) -> None:
    _, manifest = exported(source, tmp_path)
    bundle = tmp_path / "links.zip"
    with zipfile.ZipFile(bundle, "w") as out:
        out.writestr("manifest.json", json.dumps(manifest))
        link = zipfile.ZipInfo(manifest["pages"][0]["image"])
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        out.writestr(link, "/etc/hostname")
    with pytest.raises(InvalidArgument, match="symbolic link"):
        import_into(target, bundle)


# bounded sizes, checked before reading (#12.7) ----------------------------------------------------
def test_a_record_claiming_ten_million_lines_is_refused(source: Memory, target: Memory, tmp_path: Path) -> None:
    folder, manifest = exported(source, tmp_path)
    record = manifest["pages"][0]["record"]
    record["lines"] = 10**7
    rewrite(folder, manifest)
    with pytest.raises(InvalidArgument, match="lines must be a whole number from 0 to"):
        import_into(target, folder)
    record["lines"], record["rows"] = 10**7, [1] * 10**5  # rows to match: still more than the page holds
    rewrite(folder, manifest)
    with pytest.raises(InvalidArgument, match="rows must be a list of at most"):
        import_into(target, folder)


def test_zip_bombs_are_refused_before_inflating(source: Memory, target: Memory, tmp_path: Path) -> None:
    _, manifest = exported(source, tmp_path)
    name = manifest["pages"][0]["image"]
    opened: list[str] = []
    original = zipfile.ZipFile.open

    def spy(self: zipfile.ZipFile, member: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(getattr(member, "filename", member))
        return original(self, member, *args, **kwargs)

    for size, match in ((64 << 20, "declares"), (4 << 20, "zip bomb")):
        bundle = tmp_path / f"bomb{size}.zip"
        with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("manifest.json", json.dumps(manifest))
            out.writestr(name, bytes(size))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(zipfile.ZipFile, "open", spy)
            with pytest.raises(InvalidArgument, match=match):
                import_into(target, bundle)
        assert name not in opened  # refused from the declared sizes alone


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` pixels, followed by one tiny compressed row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_pixel_limits_are_checked_on_the_header(source: Memory, target: Memory, tmp_path: Path) -> None:
    folder, manifest = exported(source, tmp_path)
    record = manifest["pages"][0]["record"]
    image = folder / manifest["pages"][0]["image"]
    image.write_bytes(png_header(60000, 60000))
    record.pop("image_sha", None)
    rewrite(folder, manifest)
    with pytest.raises(InvalidArgument, match="too many pixels"):
        import_into(target, folder)
    image.write_bytes(png_header(4000, 4000))  # within the decoder's limit, not the record's size
    with pytest.raises(InvalidArgument, match="4000x4000 pixels, but its record says"):
        import_into(target, folder)
    record["geometry"]["width"] = record["geometry"]["height"] = 60000  # the record agreeing is no way round
    rewrite(folder, manifest)
    with pytest.raises(InvalidArgument, match="geometry: width must be a whole number from 1 to 8,192"):
        import_into(target, folder)


def test_codecs_are_whitelisted_and_must_match_the_bytes(source: Memory, target: Memory, tmp_path: Path) -> None:
    folder, manifest = exported(source, tmp_path)
    record = manifest["pages"][0]["record"]
    record["codec"] = "bmp"
    rewrite(folder, manifest)
    with pytest.raises(InvalidArgument, match="codec must be one of"):
        import_into(target, folder)
    record["codec"] = "webp"  # png bytes under a webp name
    old = folder / manifest["pages"][0]["image"]
    manifest["pages"][0]["image"] = old.relative_to(folder).with_suffix(".webp").as_posix()
    old.rename(old.with_suffix(".webp"))
    rewrite(folder, manifest)
    with pytest.raises(InvalidArgument, match="image bytes are not webp"):
        import_into(target, folder)


def test_a_damaged_image_is_refused_by_its_checksum(source: Memory, target: Memory, tmp_path: Path) -> None:
    folder, manifest = exported(source, tmp_path)
    image = folder / manifest["pages"][0]["image"]
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0x01
    image.write_bytes(bytes(data))
    with pytest.raises(InvalidArgument, match="checksum"):
        import_into(target, folder)


# all or nothing, with clear errors for any manifest ------------------------------------------------
def test_one_bad_page_imports_nothing(source: Memory, target: Memory, tmp_path: Path) -> None:
    folder = tmp_path / "all"
    source.export_pages(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["pages"][-1]["record"]["session"] = ""
    rewrite(folder, manifest)
    before = snapshot(target.archive)
    with pytest.raises(InvalidArgument, match=r"page \d+ \(p\d+\): session must not be empty"):
        import_into(target, folder)
    assert snapshot(target.archive) == before


JUNK: list[Any] = [None, True, -1, 0, 10**30, 1.5, "", "x" * 300, "p0", [], {}, [1, "a"], {"a": 1}, "\udcff"]


def test_malformed_manifests_give_clear_errors_never_tracebacks(source: Memory, target: Memory, tmp_path: Path) -> None:
    folder, manifest = exported(source, tmp_path)
    for text in ("", "not json", "[]", '{"format": "optical-memory-export"}', "1" * 5000, "[" * 100_000):
        (folder / "manifest.json").write_text(text)
        with pytest.raises(InvalidArgument):
            import_into(target, folder)
    rng = random.Random(12)
    paths = list(_paths(manifest))
    for _ in range(300):
        broken = json.loads(json.dumps(manifest))
        path = rng.choice(paths)
        _set(broken, path, rng.choice(JUNK))
        (folder / "manifest.json").write_text(json.dumps(broken))
        try:
            import_into(target, folder)
        except InvalidArgument:
            continue  # the one error a caller gets for a bad export
        # accepted: then the value was a valid one for that field; the archive must still be sound
    assert target.archive.check() == []


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            yield from _paths(value, (*prefix, index))


def _set(root: Any, path: tuple[Any, ...], value: Any) -> None:
    if not path:
        return
    node = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def test_version_1_exports_still_import(source: Memory, target: Memory, tmp_path: Path) -> None:
    folder, manifest = exported(source, tmp_path)
    manifest["version"] = 1
    del manifest["codes_key"]
    for page in manifest["pages"]:
        page["index"] = {"lengths": {"1": 4}, "postings": [["zeppelins", 1, 1]]}  # ignored: re-indexed
    rewrite(folder, manifest)
    result = import_into(target, folder)
    assert result["pages"] == 1
    assert target.search("zeppelins").hits[0].lines[0].text == "side note about zeppelins"


def test_import_reads_the_bytes_it_checked(source: Memory, target: Memory, tmp_path: Path) -> None:
    folder, _ = exported(source, tmp_path)
    bundle = tmp_path / "same.zip"
    with zipfile.ZipFile(bundle, "w") as out:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                out.write(file, file.relative_to(folder).as_posix())
    assert import_into(target, bundle)["pages"] == 1
    data = io.BytesIO(bundle.read_bytes())
    assert zipfile.ZipFile(data).testzip() is None
    assert os.path.exists(bundle)


def records_of(memory: Memory, session: str) -> list[PageRecord]:
    ids = [info.id for info in reversed(memory.list_pages(session=session, limit=200).pages)]
    return memory.archive.read(lambda tx: [tx.page(page_id) for page_id in ids])


def test_part_codes_travel_with_their_pages(source: Memory, target: Memory, tmp_path: Path) -> None:
    source.export_pages(tmp_path / "export")
    import_into(target, tmp_path / "export")
    before, after = records_of(source, "book"), records_of(target, "book")
    assert [record.parts for record in after] == [record.parts for record in before]
    assert all(record.parts and len(record.parts) == record.lines for record in after)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([], r"parts must be a list of 1 hex strings, one per line"),
        (["abc"], r"parts\[0\] \(line 1\) must be whole bytes of lower-case hex"),
        (["ZZ"], r"parts\[0\] \(line 1\) must be whole bytes of lower-case hex"),
        (["00" * 5000], r"parts\[0\] \(line 1\) must be whole bytes of lower-case hex, at most \d+ digits"),
        ("00", r"parts must be a list of 1 hex strings"),
    ],
)
def test_malformed_part_codes_are_refused_by_name(
    source: Memory, target: Memory, tmp_path: Path, parts: object, message: str
) -> None:
    folder, manifest = exported(source, tmp_path)
    manifest["pages"][0]["record"]["parts"] = parts
    rewrite(folder, manifest)
    before = snapshot(target.archive)
    with pytest.raises(InvalidArgument, match=message):
        import_into(target, folder)
    assert snapshot(target.archive) == before
