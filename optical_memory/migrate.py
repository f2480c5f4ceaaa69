"""Move an archive between LMDB and PostgreSQL, losslessly: `optical-memory migrate`.

::

    optical-memory migrate --from-archive PATH --to-url postgresql://...
    optical-memory migrate --from-url postgresql://... --to-archive PATH

Every sub-database is copied key for key and value for value, byte-identical: page records, images
at their current tiers, sessions, both order indexes, the search index, checkpoints and the meta
keys, the archive's secret key among them, so the search index's keyed term hashes and the line
check codes stay valid and nothing needs re-encoding or re-indexing. The copy reads the source in
one snapshot and writes the target in one transaction (all or nothing). The target must be empty
(a new folder, or a schema without pages). Afterwards each sub-database's entry count and a digest
of all its keys and values are compared on both sides, and the target's `check()` must pass.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any, cast

from optical_memory.archive import _DATABASES, Archive, ArchiveTxn
from optical_memory.errors import ArchiveError, InvalidArgument
from optical_memory.postgres import connect, redact

__all__ = ["copy_archive", "digests", "migrate"]

_FILLED_BY_OPENING = frozenset({b"schema", b"key"})  # what a fresh archive's meta holds before any write


def _rows(tx: ArchiveTxn, name: str) -> Iterator[tuple[bytes, bytes]]:
    with tx.txn.cursor(db=tx.db(name)) as cursor:
        for key, value in cursor:
            yield bytes(key), bytes(value)


def _nonempty(tx: ArchiveTxn) -> list[str]:
    """The sub-databases of a target that already hold something a fresh archive would not."""
    full = [name for name in _DATABASES if name != "meta" and tx.txn.stat(tx.db(name))["entries"]]
    meta = {key for key, _ in _rows(tx, "meta")}
    return full + (["meta"] if meta - _FILLED_BY_OPENING else [])


def _fill(target: ArchiveTxn, name: str, rows: Iterator[tuple[bytes, bytes]]) -> int:
    """Write `rows` (in key order) into the target's `name`: COPY on PostgreSQL, puts on LMDB."""
    db, txn = target.db(name), cast(Any, target.txn)
    conn = getattr(txn, "conn", None)  # a PgTxn's connection; LMDB's transaction has none
    if conn is None:
        count = 0
        for key, value in rows:
            txn.put(key, value, db=db)
            count += 1
        return count
    from psycopg import sql

    table = sql.Identifier(f"om_{name}")
    count = 0
    with (
        conn.cursor() as cursor,
        cursor.copy(sql.SQL("COPY {} (key, value) FROM STDIN (FORMAT BINARY)").format(table)) as copy,
    ):
        copy.set_types(["bytea", "bytea"])
        for row in rows:
            copy.write_row(row)
            count += 1
    txn.generation += 1  # cursors of this transaction must refetch
    return count


def copy_archive(source: Archive, target: Archive) -> dict[str, int]:
    """Copy every sub-database of `source` into the empty `target`; returns the entries copied per database."""

    def copy_from(tx: ArchiveTxn) -> dict[str, int]:
        def copy_into(out: ArchiveTxn) -> dict[str, int]:
            busy = _nonempty(out)
            if busy:
                raise InvalidArgument(
                    f"the target archive is not empty ({', '.join(busy)} hold data): migrate copies into a new "
                    "archive only (a new folder, or a PostgreSQL schema without optical-memory tables)"
                )
            out.txn.drop(out.db("meta"), delete=False)  # the fresh target's own key gives way to the source's
            return {name: _fill(out, name, _rows(tx, name)) for name in _DATABASES}

        return target.write(copy_into)

    return source.read(copy_from)


def digests(archive: Archive) -> dict[str, tuple[int, str]]:
    """(entries, blake2b of every key and value in order) of each sub-database, in one snapshot."""

    def run(tx: ArchiveTxn) -> dict[str, tuple[int, str]]:
        out = {}
        for name in _DATABASES:
            digest, count = hashlib.blake2b(digest_size=16), 0
            for key, value in _rows(tx, name):
                for part in (key, value):
                    digest.update(len(part).to_bytes(8, "big"))
                    digest.update(part)
                count += 1
            out[name] = (count, digest.hexdigest())
        return out

    return archive.read(run)


def _open(path: str | None, url: str | None, role: str) -> tuple[Archive, str]:
    if (path is None) == (url is None):
        raise InvalidArgument(f"name the {role} once: --{role}-archive PATH or --{role}-url postgresql://...")
    if url is not None:
        return connect(url), redact(url)
    assert path is not None
    return Archive(path), path


def migrate(
    from_archive: str | None = None,
    from_url: str | None = None,
    to_archive: str | None = None,
    to_url: str | None = None,
) -> dict[str, Any]:
    """Copy one archive into a new one (LMDB folder or PostgreSQL), then verify; returns a report."""
    started = time.perf_counter()
    source, source_name = _open(from_archive, from_url, "from")
    try:
        target, target_name = _open(to_archive, to_url, "to")
        try:
            copied = copy_archive(source, target)
            before, after = digests(source), digests(target)
            differ = sorted(name for name in _DATABASES if before[name] != after[name])
            if differ:
                raise ArchiveError(f"the copy in {target_name} differs from {source_name} in {', '.join(differ)}")
            problems = target.check()
            if problems:
                raise ArchiveError(f"the copy in {target_name} fails its check: {'; '.join(problems[:5])}")
        finally:
            target.close()
    finally:
        source.close()
    return {
        "from": source_name,
        "to": target_name,
        "copied": copied,
        "verified": True,
        "seconds": round(time.perf_counter() - started, 3),
    }
