"""Export pages to a folder or zip, and import them back into any archive, losslessly.

An export holds the stored images byte for byte, the page records and each page's search postings
(terms, never text), so an import gives the target archive the same pages - same images, same tier,
same line layout, same search results - under new page ids::

    manifest.json   {"format": "optical-memory-export", "version": 1, "exported": time,
                     "sessions": {name: {created, updated}},
                     "pages": [{"record": {...}, "image": "images/p12.png",
                                "postings": [[term, line, count], ...]}, ...]}   oldest first
    images/p12.png  (or .webp / .jpeg: the page's stored format)

A path ending in ".zip" is a zip file (stored, not deflated: the images are compressed already);
any other path is a folder, created if missing.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optical_memory.archive import Archive, ArchiveTxn, u64
from optical_memory.errors import InvalidArgument, SessionNotFound
from optical_memory.records import new_session
from optical_memory.search import POSTING_DB, TERMS_DB, bump_index_counts, parse_posting, posting

__all__ = ["export_pages", "import_pages"]

FORMAT, VERSION = "optical-memory-export", 1
_EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


def _page_index(tx: ArchiveTxn, number: int) -> dict[str, Any]:
    """A page's search index: {"lengths": {line: terms}, "postings": [[term, line, count], ...]}."""
    raw = tx.txn.get(u64(number), db=tx.db(TERMS_DB))
    if raw is None:
        return {"lengths": {}, "postings": []}
    entry = json.loads(bytes(raw))
    found: list[list[Any]] = []
    page_key = u64(number)
    with tx.txn.cursor(db=tx.db(POSTING_DB)) as cursor:
        for term in entry["terms"]:
            key = term.encode("utf-8", "surrogatepass")
            valid = cursor.set_range_dup(key, page_key)  # the page's postings of a term are contiguous
            while valid and bytes(cursor.value())[:8] == page_key:
                _, line, _, count, _ = parse_posting(bytes(cursor.value()))
                found.append([term, line, count])
                valid = cursor.next_dup()
    return {"lengths": entry["lengths"], "postings": found}


def export_pages(archive: Archive, destination: str | Path, session: str | None = None) -> dict[str, int]:
    """Write every page (of `session`, or all) to `destination`; returns counts."""
    dest = Path(destination).expanduser()

    def collect(tx: ArchiveTxn) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes, dict[str, Any]]]]:
        sessions = {name: s for name, s in tx.sessions() if session is None or name == session}
        if session is not None and not sessions:
            raise SessionNotFound(f"no session {session!r} to export")
        pages = []
        for number, page_id in reversed(list(tx.page_ids_newest_first())):
            record, image = tx.page(page_id), tx.image(page_id)
            if record is not None and image is not None and record["session"] in sessions:
                pages.append((record, image, _page_index(tx, number)))
        return sessions, pages

    sessions, pages = archive.read(collect)  # one consistent snapshot
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sessions": {
            name: {"created": s["created"], "updated": s.get("updated", s["created"])} for name, s in sessions.items()
        },
        "pages": [],
    }
    files: dict[str, bytes] = {}
    for record, image, index in pages:
        name = f"images/{record['id']}.{_EXTENSIONS[record['codec']]}"
        files[name] = image
        manifest["pages"].append({"record": record, "image": name, "index": index})
    files["manifest.json"] = json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8", "surrogatepass")
    if dest.suffix == ".zip":
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as bundle:
            for name, data in files.items():
                bundle.writestr(name, data)
    else:
        for name, data in files.items():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return {"pages": len(pages), "sessions": len(sessions)}


def _reader(source: Path) -> Any:
    if source.is_file() and zipfile.is_zipfile(source):
        bundle = zipfile.ZipFile(source)
        return bundle.read
    if source.is_dir():
        return lambda name: (source / name).read_bytes()
    raise InvalidArgument(f"{source} is neither an export folder nor an export zip")


def import_pages(archive: Archive, source: str | Path) -> dict[str, Any]:
    """Add the pages of an export to `archive` under new ids; returns counts and the id mapping."""
    read = _reader(Path(source).expanduser())
    try:
        manifest = json.loads(read("manifest.json"))
    except (KeyError, FileNotFoundError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"{source} has no readable manifest.json: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise InvalidArgument(f"{source} is not an {FORMAT} version {VERSION} export")
    images = {page["image"]: read(page["image"]) for page in manifest["pages"]}  # read before writing
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def once(tx: ArchiveTxn) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for page in manifest["pages"]:
            record = dict(page["record"])
            name = record["session"]
            sess = tx.session(name)
            if sess is None:
                meta = manifest["sessions"].get(name, {})
                sess = new_session(tx.next_session_id(), meta.get("created", stamp), meta.get("updated", stamp))
            page_id, number = tx.next_page_id()
            mapping[record["id"]] = page_id
            record.update(id=page_id, number=number)
            if not record["sealed"]:
                if sess["open_page"]:  # a session keeps one open page: the imported one is sealed
                    record.update(sealed=True, sealed_at=stamp)
                else:
                    sess.update(open_page=page_id, open_rows=len(record["rows"]), open_lines=record["lines"])
            tx.put_page(record)
            tx.put_image(page_id, images[page["image"]])
            tx.add_page_to_indexes(sess["sid"], number, page_id)
            _repost(tx, sess["sid"], number, page["index"])
            sess["pages"] += 1
            tx.put_session(name, sess)
        return mapping

    mapping = archive.write(once)
    return {"pages": len(mapping), "sessions": len(manifest["sessions"]), "ids": mapping}


def _repost(tx: ArchiveTxn, sid: int, number: int, index: dict[str, Any]) -> None:
    terms: dict[str, None] = {}
    for term, line, count in index["postings"]:
        value = posting(number, int(line), sid, int(count), int(index["lengths"].get(str(line), 0)))
        tx.txn.put(term.encode("utf-8", "surrogatepass"), value, db=tx.db(POSTING_DB), dupdata=True)
        terms[term] = None
    lengths = index["lengths"]
    entry = {"terms": list(terms), "lengths": lengths}
    tx.txn.put(u64(number), json.dumps(entry, separators=(",", ":")).encode(), db=tx.db(TERMS_DB))
    bump_index_counts(tx, len(lengths), sum(lengths.values()))
