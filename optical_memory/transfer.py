"""Export pages to a folder or zip, and import them back into any archive.

An export holds the stored images byte for byte and the page records (check codes included), so an
import gives the target archive the same pages - same images, same tier, same line layout - under new
page ids::

    manifest.json   {"format": "optical-memory-export", "version": 2, "exported": time,
                     "codes_key": hex of the source archive's line-code key,
                     "sessions": {name: {created, updated}},
                     "pages": [{"record": {...}, "image": "images/p12.png"}, ...]}   oldest first
    images/p12.png  (or .webp / .jpg / .avif: the page's stored format)

The search index is not exported: its terms are keyed hashes (the key is the archive's own), so an
import indexes each page again from its lines as the target archive's reader reads them. Check codes
are keyed too: an imported page keeps the source's key with it (`PageRecord.codes_key`), so its lines
still verify. Version 1 exports (with postings) import the same way; their postings are ignored.

Exports are private like the archive: a folder 0700 with files 0600, or a zip 0600, written under a
fresh temporary name beside the destination and renamed into place, so a link planted at the
destination is replaced, never followed. A path ending in ".zip" is a zip (stored, not deflated: the
images are compressed already); any other path is a new (or empty) folder. What an import checks
before writing anything is described in `transfer_checks`; it writes all pages or none.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optical_memory.archive import Archive, ArchiveTxn
from optical_memory.checkcode import line_key
from optical_memory.errors import InvalidArgument, SessionNotFound
from optical_memory.records import PageRecord, SessionRecord
from optical_memory.search import index_lines
from optical_memory.transfer_checks import (
    EXTENSIONS,
    MAX_IMAGE_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_PAGES,
    check_image,
    check_page,
    open_source,
)
from optical_memory.validation import check_name

__all__ = ["ImportReport", "LineReader", "export_pages", "import_pages"]

FORMAT, VERSION = "optical-memory-export", 2
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_READABLE = (1, 2)
LineReader = Callable[[PageRecord, bytes], list[str]]


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# export ---------------------------------------------------------------------------------------------
def export_pages(archive: Archive, destination: str | Path, session: str | None = None) -> dict[str, int]:
    """Write every page (of `session`, or all) to `destination`; returns counts."""
    dest = Path(destination).expanduser()

    def collect(tx: ArchiveTxn) -> tuple[dict[str, SessionRecord], list[tuple[PageRecord, bytes]], bytes]:
        sessions = {name: s for name, s in tx.sessions() if session is None or name == session}
        if session is not None and not sessions:
            raise SessionNotFound(f"no session {session!r} to export")
        pages = []
        for _, page_id in reversed(list(tx.page_ids_newest_first())):
            record, image = tx.page(page_id), tx.image(page_id)
            if record is not None and image is not None and record.session in sessions:
                pages.append((record, image))
        return sessions, pages, line_key(tx.archive_key())

    sessions, pages, key = archive.read(collect)  # one consistent snapshot
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported": _stamp(),
        "codes_key": key.hex(),
        "sessions": {name: {"created": s.created, "updated": s.updated} for name, s in sessions.items()},
        "pages": [],
    }
    files: dict[str, bytes] = {}
    for record, image in pages:
        name = f"images/{record.id}.{EXTENSIONS[record.codec]}"
        files[name] = image
        manifest["pages"].append({"record": record.to_json(), "image": name})
    files["manifest.json"] = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8", "surrogatepass")
    if dest.suffix == ".zip":
        _write_zip(dest, files)
    else:
        _write_folder(dest, files)
    return {"pages": len(pages), "sessions": len(sessions)}


def _private_parent(dest: Path) -> Path:
    if dest.is_symlink():
        raise InvalidArgument(f"{dest} is a symbolic link; export to a new path (links are never followed)")
    if dest.suffix != ".zip" and dest.is_dir():
        if any(dest.iterdir()):
            raise InvalidArgument(f"{dest} is a folder that is not empty; export to a new or empty folder")
    elif dest.is_dir():
        raise InvalidArgument(f"{dest} is a folder; give a new path for the zip")
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return dest.parent


def _write_zip(dest: Path, files: dict[str, bytes]) -> None:
    parent = _private_parent(dest)
    fd, temp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=parent)  # 0600, O_EXCL
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as bundle:
                for name, data in files.items():
                    bundle.writestr(zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0)), data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, dest)  # a link planted at dest is replaced, not followed
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _write_folder(dest: Path, files: dict[str, bytes]) -> None:
    parent = _private_parent(dest)
    temp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=parent))  # 0700
    try:
        (temp / "images").mkdir(mode=0o700)
        for name, data in files.items():
            fd = os.open(temp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if dest.is_dir() and not dest.is_symlink():
            dest.rmdir()  # empty (checked above): the new folder takes its place
        os.rename(temp, dest)  # fails on anything planted at dest meanwhile, rather than writing through it
    except OSError as exc:
        raise InvalidArgument(f"cannot write the export at {dest} ({exc.strerror}); export to a new path") from exc
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


# import ---------------------------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What an import did: all of it, in one transaction."""

    pages: int
    sessions: int
    ids: dict[str, str] = field(default_factory=dict)
    indexed_lines: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"pages": self.pages, "sessions": self.sessions, "ids": self.ids, "indexed_lines": self.indexed_lines}


@dataclass
class _Page:
    record: PageRecord
    image: bytes
    lines: list[str]


def _manifest(source: Any, path: Path) -> dict[str, Any]:
    raw = source.read("manifest.json", MAX_MANIFEST_BYTES)
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, bad UTF-8, a 5,000-digit number
        raise InvalidArgument(f"{path}: manifest.json is not JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") not in _READABLE:
        raise InvalidArgument(f"{path} is not an {FORMAT} (versions {_READABLE}); its manifest says otherwise")
    pages, sessions = manifest.get("pages"), manifest.get("sessions", {})
    if not isinstance(pages, list) or len(pages) > MAX_PAGES:
        raise InvalidArgument(f"{path}: manifest pages must be a list of at most {MAX_PAGES:,} pages")
    if not isinstance(sessions, dict):
        raise InvalidArgument(f"{path}: manifest sessions must be an object")
    key = manifest.get("codes_key")
    if key is not None and (not isinstance(key, str) or not re.fullmatch(r"[0-9a-f]{64}", key)):
        raise InvalidArgument(f"{path}: manifest codes_key must be 64 lower-case hex digits")
    return manifest


def _load_pages(source: Any, path: Path, manifest: dict[str, Any], read_lines: LineReader | None) -> list[_Page]:
    """Every page checked (schema, names, sizes, image headers) and read, before anything is written."""
    loaded: list[_Page] = []
    seen: set[str] = set()
    source_key = manifest.get("codes_key")
    for n, entry in enumerate(manifest["pages"]):
        where = f"{path}: page {n + 1}"
        if not isinstance(entry, dict):
            raise InvalidArgument(f"{where}: must be an object with record and image")
        record = check_page(where, entry.get("record"))
        name = f"images/{record.id}.{EXTENSIONS[record.codec]}"
        if entry.get("image") != name or name in seen:
            raise InvalidArgument(f"{where}: image must be {name!r} (once), got {entry.get('image')!r:.80}")
        seen.add(name)
        image = source.read(name, MAX_IMAGE_BYTES)
        check_image(where, record, image)
        if record.codes is not None and record.codes_key is None and source_key is not None:
            record.codes_key = bytes.fromhex(source_key)  # the codes verify with the key they were made with
        lines = read_lines(record, image) if read_lines is not None else []
        loaded.append(_Page(record, image, lines))
    return loaded


def import_pages(archive: Archive, source: str | Path, read_lines: LineReader | None = None) -> dict[str, Any]:
    """Add the pages of an export to `archive` under new ids, all or none; returns counts and the id mapping.

    `read_lines(record, image)` reads every line of a page (the facade passes its reader): what it
    returns is indexed for search. Without it, imported pages are not searchable.
    """
    path = Path(source).expanduser()
    src = open_source(path)
    try:
        manifest = _manifest(src, path)
        for name in manifest["sessions"]:
            check_name("session", name)
        pages = _load_pages(src, path, manifest, read_lines)
    finally:
        src.close()
    stamp = _stamp()

    def once(tx: ArchiveTxn) -> ImportReport:
        report = ImportReport(pages=0, sessions=0)
        touched: dict[str, SessionRecord] = {}
        for page in pages:
            record = PageRecord.from_bytes(page.record.to_bytes())  # a fresh copy: this may run twice
            name = record.session
            sess = touched.get(name) or tx.session(name)
            if sess is None:
                meta = manifest["sessions"].get(name)
                given = meta.get("created") if isinstance(meta, dict) else None
                created = given if isinstance(given, str) and _STAMP.fullmatch(given) else stamp
                sess = SessionRecord(sid=tx.next_session_id(), created=created, updated=created)
            touched[name] = sess
            page_id, number = tx.next_page_id()
            report.ids[record.id] = page_id
            record.id, record.number = page_id, number
            if not record.sealed:
                if sess.open_page:  # a session keeps one open page: the imported one is sealed
                    record.sealed, record.sealed_at = True, stamp
                else:
                    sess.open_page, sess.open_rows, sess.open_lines = page_id, len(record.rows), record.lines
            tx.put_page(record)
            tx.put_image(page_id, page.image)
            tx.add_page_to_indexes(sess.sid, number, page_id)
            if page.lines:
                index_lines(tx, sess.sid, number, 1, page.lines)
                report.indexed_lines += len(page.lines)
            sess.pages += 1
            report.pages += 1
        for name, sess in touched.items():
            sess.updated = max(sess.updated, stamp)
            tx.put_session(name, sess)
        report.sessions = len(touched)
        return report

    return archive.write(once).as_dict()
