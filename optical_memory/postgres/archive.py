"""The archive on PostgreSQL: the same sub-databases and layouts as the LMDB archive, one table each.

Tables (in the connection's current schema; one archive per schema, see `optical_memory.postgres`)::

    om_schema(version integer)                 one row: the table layout below (SCHEMA_VERSION)
    om_<name>(key bytea PRIMARY KEY, value bytea NOT NULL)
                                               for every LMDB sub-database `archive._DATABASES` names,
                                               with byte-identical keys and values (`archive` documents
                                               them); om_postings, dupsort in LMDB, keys on (key, value)

Transactions follow the LMDB archive's rules. A write is one PostgreSQL transaction that first takes
this archive's transaction-scoped advisory lock, so writers on any number of hosts run one at a time
as LMDB's writers do (a session's entries keep their order; fading's version check sees every
earlier demotion, so no page is demoted twice); it reads at READ COMMITTED, which under that lock sees
every earlier write. A read is one REPEATABLE READ, READ ONLY transaction: one consistent snapshot,
never blocked by a writer. Connections come from a pool; each public call begins and ends its own
transaction on one of them, so threads share a `PgArchive` as they share an `Archive`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from optical_memory.archive import _DATABASES, _DUPSORT, SCHEMA, Archive, ArchiveTxn
from optical_memory.errors import ArchiveBusy, ArchiveError, ArchiveFull, ArchiveReadOnly
from optical_memory.postgres.kv import PgDb, PgTxn, table_name
from optical_memory.postgres.urls import redact, scrub

__all__ = ["SCHEMA_VERSION", "PgArchive"]

log = logging.getLogger(__name__)

T = TypeVar("T")
SCHEMA_VERSION = 1
LOCK_CLASS = 0x6F6D  # "om": the advisory lock's first key; the second is the schema's hash
_MIGRATIONS: dict[int, Callable[[psycopg.Connection[Any]], None]] = {}  # version -> step from version - 1


def _create_tables(conn: psycopg.Connection[Any]) -> None:
    for name in _DATABASES:
        key = "PRIMARY KEY (key, value)" if name in _DUPSORT else "PRIMARY KEY (key)"
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (key bytea NOT NULL, value bytea NOT NULL, {})").format(
                sql.Identifier(table_name(name)), sql.SQL(key)
            )
        )
    # Images are PNG/WebP already: compressing them again only costs time.
    conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN value SET STORAGE EXTERNAL").format(sql.Identifier("om_images")))


_MIGRATIONS[1] = _create_tables


class PgArchive(Archive):
    """An optical-memory archive in a PostgreSQL database. Thread-safe; share one per process.

    A subclass of `Archive` only so the facade's annotations hold: every method is its own, and
    the LMDB-only maintenance (`compact`, `swap_data_file`) says what to use instead.
    """

    def __init__(self, url: str, busy_timeout_s: float = 10.0, pool_size: int = 8) -> None:
        self.url = url
        self.description = redact(url)
        self.busy_timeout_s = busy_timeout_s
        self.stale_readers_cleared = 0
        self._dbs: dict[str, Any] = {name: PgDb(name, name in _DUPSORT) for name in _DATABASES}
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},  # transactions are begun explicitly, each with its own mode
            configure=self._configure,
            timeout=busy_timeout_s,
            name="optical-memory",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=busy_timeout_s)
        except PoolTimeout as exc:
            self._pool.close()
            raise ArchiveError(
                f"cannot connect to the PostgreSQL archive {self.description} within {busy_timeout_s:g} s: "
                f"{self._connect_problem()}"
            ) from exc
        try:
            self.read_only_reason = self._read_only_reason()
            self._migrate()
            if not self.read_only:
                self._init_meta()
        except BaseException:
            self._pool.close()
            raise

    def _connect_problem(self) -> str:
        """Why a connection fails, said by libpq (never with the password): asked once more directly."""
        try:
            psycopg.connect(self.url, connect_timeout=max(1, int(self.busy_timeout_s))).close()
        except psycopg.Error as exc:
            return scrub(str(exc).strip(), self.url)
        return "the server answered only now; try again"

    def _read_only_reason(self) -> str | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), current_schema()"
            ).fetchone()
        if row is None or row[2] is None:
            raise ArchiveError(
                f"{self.description}: the connection's search_path names no existing schema; create the schema "
                "(CREATE SCHEMA name) or fix the URL's options=-csearch_path=name"
            )
        if row[0]:
            return "the database is a read-only standby"
        if row[1] == "on":
            return "the database's default_transaction_read_only is on"
        return None

    def _migrate(self) -> None:
        """Create or bring the tables up to SCHEMA_VERSION, under the archive's lock (first opens may race)."""

        def step(txn: PgTxn) -> None:
            conn = txn.conn
            version = 0
            if self._has_tables(conn):  # then no CREATE is issued: a role without CREATE may use it
                row = conn.execute("SELECT max(version) FROM om_schema").fetchone()
                version = int(row[0]) if row and row[0] is not None else 0
            else:
                conn.execute("CREATE TABLE om_schema (version integer NOT NULL)")
            if version > SCHEMA_VERSION:
                raise ArchiveError(
                    f"the PostgreSQL archive {self.description} has table layout {version}; this version of "
                    f"optical-memory reads up to {SCHEMA_VERSION}: upgrade optical-memory"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[target](conn)
                log.info("PostgreSQL archive %s: tables at layout %d", self.description, target)
            if version < SCHEMA_VERSION:
                conn.execute("DELETE FROM om_schema")
                conn.execute("INSERT INTO om_schema (version) VALUES (%s)", (SCHEMA_VERSION,))

        if self.read_only:
            if not self._run(lambda txn: self._has_tables(txn.conn), write=False):
                raise ArchiveReadOnly(f"cannot create an archive in {self.description}: {self.read_only_reason}")
            return
        self._run(step, write=True)

    @staticmethod
    def _has_tables(conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute("SELECT to_regclass('om_schema') IS NOT NULL").fetchone()
        return bool(row and row[0])

    def _init_meta(self) -> None:
        def init(tx: ArchiveTxn) -> None:
            meta = self._dbs["meta"]
            schema = tx.txn.get(b"schema", db=meta)
            if schema is None:
                tx.txn.put(b"schema", SCHEMA, db=meta)
            elif bytes(schema) != SCHEMA:
                raise ArchiveError(f"archive {self.description} has schema {bytes(schema)!r}; this reads {SCHEMA!r}")
            if tx.txn.get(b"key", db=meta) is None:
                tx.txn.put(b"key", os.urandom(32), db=meta)

        self.write(init)

    def close(self) -> None:
        self._pool.close()

    def reopen(self) -> None:
        """Nothing to reopen: each transaction has a fresh connection state already."""

    # transactions -----------------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise ArchiveBusy(
                f"no connection to the PostgreSQL archive {self.description} came free within "
                f"{self.busy_timeout_s:g} s; try again"
            ) from exc

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[PgTxn]:
        """One transaction on a pooled connection: committed if the block returns, else rolled back."""
        with self._connection() as conn:
            if write:
                conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            else:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                if write:  # the lock, waited for at most lock_timeout (see _configure)
                    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (LOCK_CLASS,))
                yield PgTxn(conn, write)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _run(self, fn: Callable[[PgTxn], T], write: bool) -> T:
        try:
            with self._transaction(write) as txn:
                return fn(txn)
        except psycopg.Error as exc:
            raise self._error(exc, "write" if write else "read") from exc

    def _typed(self, fn: Callable[[ArchiveTxn], T]) -> Callable[[PgTxn], T]:
        # ArchiveTxn is annotated with lmdb's Transaction; PgTxn speaks the part of it that it uses.
        return lambda txn: fn(ArchiveTxn(cast(Any, txn), self._dbs))

    def read(self, fn: Callable[[ArchiveTxn], T]) -> T:
        """Run `fn` in one REPEATABLE READ, READ ONLY transaction (one snapshot)."""
        return self._run(self._typed(fn), write=False)

    def write(self, fn: Callable[[ArchiveTxn], T]) -> T:
        """Run `fn` in one transaction, alone among this archive's writers on every host."""
        if self.read_only_reason is not None:
            raise ArchiveReadOnly(
                f"the PostgreSQL archive {self.description} is read-only ({self.read_only_reason}): it can "
                "be read, but nothing can be written"
            )
        return self._run(self._typed(fn), write=True)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Each new connection waits at most busy_timeout_s for a lock (the writer ahead), as LMDB's writers do."""
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(self._timeout_ms())))

    def _timeout_ms(self) -> str:
        return f"{max(1, round(self.busy_timeout_s * 1000))}ms"

    def _error(self, exc: psycopg.Error, what: str) -> ArchiveError:
        """What a failed call means, said without the password; a failed write wrote nothing."""
        text = scrub(str(exc).strip(), self.url)
        where = f"the PostgreSQL archive {self.description}"
        unchanged = "; nothing was written" if what == "write" else ""
        if isinstance(exc, pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
            return ArchiveBusy(f"{where} was held by another writer for over {self.busy_timeout_s:g} s{unchanged}")
        if isinstance(exc, pg_errors.DiskFull | pg_errors.OutOfMemory | pg_errors.ProgramLimitExceeded):
            return ArchiveFull(f"{where} has no room for this {what} ({text}){unchanged}")
        if isinstance(exc, pg_errors.InsufficientPrivilege | pg_errors.ReadOnlySqlTransaction):
            return ArchiveReadOnly(f"{where} refused the {what} ({text}){unchanged}: check the role's grants")
        if isinstance(exc, psycopg.OperationalError):
            # a connection lost during COMMIT leaves the outcome unknown: say so rather than guess
            return ArchiveError(f"{where} could not be reached during the {what} ({text}); try again")
        return ArchiveError(f"{where} refused the {what}: {text}{unchanged}")

    # inspection and maintenance ---------------------------------------------------------------
    def stat(self) -> dict[str, int]:
        """Counts and sizes: pages, sessions, bytes of the tables (with their indexes and TOAST)."""

        def run(txn: PgTxn) -> dict[str, int]:
            size = sum(self._table_bytes(txn, name) for name in _DATABASES)
            pages = txn.stat(self._dbs["pages"])["entries"]
            return {"pages": pages, "sessions": txn.stat(self._dbs["sessions"])["entries"], "bytes_on_disk": size}

        return self._run(run, write=False)

    @staticmethod
    def _table_bytes(txn: PgTxn, name: str) -> int:
        row = txn.conn.execute("SELECT pg_total_relation_size(to_regclass(%s))", (table_name(name),)).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def erase_free_space(self) -> dict[str, Any]:
        """VACUUM the tables after a forget: the rows are gone for every reader already; this frees their space.

        PostgreSQL has no secure delete. VACUUM marks the dead rows' space reusable and returns
        empty pages at a table's end to the file system, but it does not overwrite them: the bytes
        stay in the data files until new rows reuse the space, and in the WAL, in standbys and in
        base backups until those are recycled. Erasure for real needs the database's storage to be
        encrypted (then forget what the key protects) or the whole cluster rebuilt from a dump.
        """
        names = [table_name(name) for name in _DATABASES if name != "meta"]
        vacuumed = []
        with self._connection() as conn:
            # only a table's owner may VACUUM it (others get a warning and nothing done): ask first
            owned = conn.execute(
                "SELECT relname FROM pg_class WHERE oid = ANY(%s::regclass[]) AND pg_has_role(relowner, 'USAGE')",
                (names,),
            ).fetchall()
            for (name,) in owned:
                try:
                    conn.execute(sql.SQL("VACUUM {}").format(sql.Identifier(name)))
                    vacuumed.append(name)
                except psycopg.Error as exc:  # the rows are gone all the same
                    log.warning("could not VACUUM %s in %s: %s", name, self.description, scrub(str(exc), self.url))
        if len(vacuumed) < len(names):
            log.info(
                "%s: VACUUM is left to the tables' owner (or autovacuum) for %d table(s)",
                self.description,
                len(names) - len(vacuumed),
            )
        # erased None: this storage cannot erase (ForgetResult.erased tells the caller so)
        return {"vacuumed_tables": len(vacuumed), "overwritten": False, "erased": None}

    def compact(self) -> dict[str, Any]:
        raise ArchiveError(
            f"compact is for LMDB archive folders; {self.description} is PostgreSQL: "
            "VACUUM FULL (or pg_repack) gives its space back"
        )

    def swap_data_file(self, write_copy: Callable[[], None], copy: str | os.PathLike[str]) -> None:
        raise ArchiveError(f"{self.description} is a PostgreSQL archive: it has no data file to swap")
