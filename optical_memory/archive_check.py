"""The archive's consistency check (`Archive.check`, `optical-memory check`): its invariants, one pass."""

from __future__ import annotations

from optical_memory.archive_txn import ArchiveTxn
from optical_memory.records import PageRecord, image_digest

__all__ = ["archive_problems"]


def archive_problems(tx: ArchiveTxn) -> list[str]:
    """The archive's broken invariants, read in transaction `tx` (empty when consistent).

    Every page has its image and the reverse; both order indexes list exactly the stored pages; no
    search terms outlive their page; page numbers stay below `next_page`; stored images match their
    checksums; each session's open page exists and is the session's only unsealed page.
    """
    problems: list[str] = []
    pages = {record.id: record for record in tx.pages()}
    images = {bytes(k).decode() for k in tx.txn.cursor(db=tx.db("images")).iternext(values=False)}
    order = {bytes(v).decode() for v in tx.txn.cursor(db=tx.db("order")).iternext(keys=False)}
    by_session = {bytes(v).decode() for v in tx.txn.cursor(db=tx.db("session_pages")).iternext(keys=False)}
    problems += [f"page {p} has no image" for p in sorted(set(pages) - images)]
    problems += [f"image {p} has no page record" for p in sorted(images - set(pages))]
    problems += [f"order lists missing page {p}" for p in sorted(order - set(pages))]
    problems += [f"page {p} missing from order" for p in sorted(set(pages) - order)]
    problems += [f"session index lists missing page {p}" for p in sorted(by_session - set(pages))]
    problems += [f"page {p} missing from its session index" for p in sorted(set(pages) - by_session)]
    numbers = {r.number for r in pages.values()}
    indexed = {int.from_bytes(k, "big") for k in tx.txn.cursor(db=tx.db("page_terms")).iternext(values=False)}
    problems += [f"search terms of missing page p{n}" for n in sorted(indexed - numbers)]
    raw_next = tx.txn.get(b"next_page", db=tx.db("meta"))
    next_page = int.from_bytes(raw_next, "big") if raw_next else 1
    ahead = [p for p, r in pages.items() if r.number >= next_page]
    problems += [f"page {p} is not below next_page {next_page}" for p in ahead]
    problems += _image_problems(tx, pages)
    for name, session in tx.sessions():
        unsealed = sorted(p for p, r in pages.items() if r.session == name and not r.sealed)
        expected = [session.open_page] if session.open_page else []
        if unsealed != expected:
            problems.append(f"session {name!r}: open page {expected} but unsealed pages {unsealed}")
    return problems


def _image_problems(tx: ArchiveTxn, pages: dict[str, PageRecord]) -> list[str]:
    """Pages whose stored image does not match the checksum kept with it (pages written before checksums pass)."""
    problems = []
    for page_id, record in sorted(pages.items(), key=lambda item: item[1].number):
        if record.image_sha is None:
            continue
        image = tx.image(page_id)
        if image is not None and image_digest(image) != record.image_sha:
            problems.append(f"page {page_id}'s image does not match its checksum: it is damaged")
    return problems
