"""The archive on PostgreSQL, for a memory shared by agents on several machines (see the README).

`open_archive(config)` is the one place the facade picks a backend: the LMDB folder by default, or
PostgreSQL when ``[archive] url`` (or ``OPTICAL_MEMORY_ARCHIVE_URL``) names a database. psycopg is
imported only then, so the LMDB default needs no driver.

Several archives can share one database, one schema each: the URL's libpq options pick the schema,
``postgresql://host/db?options=-csearch_path%3Dteam_a`` (the schema must exist).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optical_memory.archive import Archive
from optical_memory.errors import ArchiveError
from optical_memory.postgres.urls import redact

if TYPE_CHECKING:
    from optical_memory.config import Config

__all__ = ["connect", "open_archive", "redact"]

EXTRA = "pip install 'optical-memory[postgres]'"


def connect(url: str, busy_timeout_s: float = 10.0) -> Archive:
    """The PostgreSQL archive at `url` (a `PgArchive`), tables created or migrated on first open."""
    try:
        from optical_memory.postgres.archive import PgArchive
    except ImportError as exc:
        raise ArchiveError(f"a PostgreSQL archive ({redact(url)}) needs psycopg 3 and psycopg_pool: {EXTRA}") from exc
    return PgArchive(url, busy_timeout_s=busy_timeout_s)


def open_archive(config: Config) -> Archive:
    """The archive `config` names: PostgreSQL at `archive.url` if set, else the LMDB folder `archive.path`."""
    settings = config.archive
    if settings.url:
        return connect(settings.url, settings.busy_timeout_s)
    return Archive(
        settings.path,
        map_size_mib=settings.map_size_mib,
        max_map_size_mib=settings.max_map_size_mib,
        busy_timeout_s=settings.busy_timeout_s,
    )
