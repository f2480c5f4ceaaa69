"""LMDB's transaction and cursor API over PostgreSQL tables, so `ArchiveTxn`'s typed methods (and the
search index and checkpoints, which keep layouts of their own) run unchanged on either backend.

Each LMDB sub-database is one table ``om_<name>(key bytea, value bytea)``; bytea sorts bytewise, as
LMDB's keys do. A dupsort database (only the legacy ``postings``) keys on (key, value), as LMDB sorts
its duplicates. Only the calls the archive's modules make are emulated:

* `PgTxn`: get, put (overwrite, dupdata; append is a hint LMDB may ignore, and so do we), delete,
  cursor, stat (``entries`` only), drop (emptying: the tables belong to the schema).
* `PgCursor`: first, last, set_key, set_range, next, prev, next_nodup, put, key, value, item,
  iternext, iternext_nodup, iternext_dup, iteration and ``with``.

A cursor keeps a window of rows that is a contiguous slice of the table, fetched by ordered range
queries in bounded chunks that double while it keeps walking (a newest-first scan reads 16, 32, ...
512 rows a query, a single lookup reads one row either side). `set_range` also fetches the row just
below its key, since "the last key below k" (set_range then prev) is the archive's most common seek.
A write in the same transaction bumps the transaction's generation and each cursor refetches around
its current row at its next move, so it sees its own writes as LMDB's cursors do.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql

from optical_memory.errors import ArchiveReadOnly

__all__ = ["PgCursor", "PgDb", "PgTxn", "table_name"]

FIRST_CHUNK, MAX_CHUNK = 16, 512
READ_AHEAD = 64  # page records fetched at once while a walk over a page index goes on
PAGE_INDEXES = frozenset({"order", "session_pages"})  # values are page ids, keys of `pages`
Row = tuple[bytes, bytes]


def table_name(name: str) -> str:
    return f"om_{name}"


@dataclass(frozen=True)
class PgDb:
    """A sub-database handle: the `db=` argument of every call, as LMDB's `_Database` is."""

    name: str
    dupsort: bool = False

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(table_name(self.name))

    def order(self, descending: bool) -> sql.Composable:
        direction = sql.SQL(" DESC" if descending else "")
        columns = ["key", "value"] if self.dupsort else ["key"]
        return sql.SQL(", ").join(sql.SQL(c) + direction for c in columns)

    def beyond(self, op: str) -> sql.Composable:
        """The condition "after (op '>') / before (op '<') the row at %(k)s, %(v)s"."""
        column = "(key, value)" if self.dupsort else "key"
        row = "(%(k)s, %(v)s)" if self.dupsort else "%(k)s"
        return sql.SQL(f"{column} {op} {row}")


class PgTxn:
    """One PostgreSQL transaction, spoken to as an LMDB transaction (`Archive.read`/`write` own it)."""

    def __init__(self, conn: Connection[Any], write: bool) -> None:
        self.conn = conn
        self.write = write
        self.generation = 0  # bumped by every change: cursors refetch their window after one
        # Read-ahead of page records (read transactions only: one snapshot, nothing changes): a walk
        # over a page index (order, session_pages) is followed by a get of each page it yields, so
        # the records of the pages the walk is heading for are fetched in one query, not one each.
        self._walk: PgCursor | None = None
        self._records: dict[bytes, bytes | None] = {}

    def rows(self, query: sql.Composed, params: dict[str, Any]) -> list[Row]:
        return self.conn.execute(query, params, binary=True).fetchall()

    def _changing(self, db: PgDb) -> None:
        if not self.write:
            raise ArchiveReadOnly(f"cannot change {db.name} inside a read transaction")
        self.generation += 1

    def walking(self, cursor: PgCursor) -> None:
        if not self.write and cursor.db.name in PAGE_INDEXES:
            self._walk = cursor

    def _page_record(self, key: bytes, db: PgDb) -> bytes | None:
        if key not in self._records:
            ahead = self._walk.upcoming() if self._walk is not None else []
            keys = [key, *(k for k in ahead if k != key and k not in self._records)][:READ_AHEAD]
            query = sql.SQL("SELECT key, value FROM {} WHERE key = ANY(%(keys)s)").format(db.table)
            self._records.update(dict.fromkeys(keys))
            self._records.update(self.rows(query, {"keys": keys}))
        return self._records[key]

    def get(self, key: bytes, default: bytes | None = None, db: PgDb | None = None) -> bytes | None:
        assert db is not None
        if db.name == "pages" and not self.write:
            found = self._page_record(key, db)
            return default if found is None else found
        query = sql.SQL("SELECT value FROM {} WHERE key = %(k)s {}LIMIT 1").format(
            db.table, sql.SQL("ORDER BY value " if db.dupsort else "")
        )
        row = self.conn.execute(query, {"k": key}, binary=True).fetchone()
        return default if row is None else row[0]

    def put(
        self,
        key: bytes,
        value: bytes,
        dupdata: bool = True,
        overwrite: bool = True,
        append: bool = False,
        db: PgDb | None = None,
    ) -> bool:
        """Store `value` under `key`; False when `overwrite` is off (or the duplicate exists) and nothing changed."""
        assert db is not None
        self._changing(db)
        if db.dupsort:
            conflict = sql.SQL("ON CONFLICT (key, value) DO NOTHING")
        elif overwrite:
            conflict = sql.SQL("ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value")
        else:
            conflict = sql.SQL("ON CONFLICT (key) DO NOTHING")
        query = sql.SQL("INSERT INTO {} (key, value) VALUES (%(k)s, %(v)s) {}").format(db.table, conflict)
        return self.conn.execute(query, {"k": key, "v": value}).rowcount == 1

    def delete(self, key: bytes, value: bytes = b"", db: PgDb | None = None) -> bool:
        """Remove `key` (of a dupsort database: only the pair with `value`, when given); True if it was there."""
        assert db is not None
        self._changing(db)
        if db.dupsort and value:
            query = sql.SQL("DELETE FROM {} WHERE key = %(k)s AND value = %(v)s").format(db.table)
        else:
            query = sql.SQL("DELETE FROM {} WHERE key = %(k)s").format(db.table)
        return self.conn.execute(query, {"k": key, "v": value}).rowcount > 0

    def drop(self, db: PgDb, delete: bool = True) -> None:
        """Empty the database (LMDB's `delete=True` would also remove it; the table stays, empty)."""
        self._changing(db)
        self.conn.execute(sql.SQL("DELETE FROM {}").format(db.table))

    def stat(self, db: PgDb) -> dict[str, int]:
        row = self.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(db.table)).fetchone()
        return {"entries": int(row[0]) if row else 0}

    def cursor(self, db: PgDb | None = None) -> PgCursor:
        assert db is not None
        return PgCursor(self, db)


class PgCursor:
    """An LMDB cursor over one table (see the module docstring for its window of rows)."""

    def __init__(self, txn: PgTxn, db: PgDb) -> None:
        self.txn, self.db = txn, db
        self._rows: list[Row] = []
        self._pos: int | None = None  # index of the current row in the window; None: unpositioned
        self._at_start = self._at_end = False  # the window reaches the table's first / last row
        self._generation = -1
        self._chunk = FIRST_CHUNK
        self._keys_only = False  # an iternext(values=False) scan: values are not fetched (images are large)
        # Where LMDB's cursor still stands after a failed move, though it reports no row: a step from
        # there goes on from that row (or, past the end, back to the last row), as LMDB's does.
        self._ghost: Row | None = None
        self._past_end = False
        self._direction = 1  # of the last step: where a walk is heading (for the page read-ahead)
        self._on_successor = False  # the current row was deleted: LMDB stands on the next one, and
        # its next step returns that row rather than the one after it

    def __enter__(self) -> PgCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._rows, self._pos = [], None

    # fetching ---------------------------------------------------------------------------------
    def _fetch(self, where: sql.Composable | None, descending: bool, limit: int, params: dict[str, Any]) -> list[Row]:
        condition = sql.SQL("WHERE ") + where if where is not None else sql.SQL("")
        value = sql.SQL("''::bytea" if self._keys_only else "value")
        query = sql.SQL("SELECT key, {} FROM {} {} ORDER BY {} LIMIT {}").format(
            value, self.db.table, condition, self.db.order(descending), sql.Literal(limit)
        )
        return self.txn.rows(query, params)

    def _around(self, key: bytes) -> tuple[list[Row], list[Row]]:
        """The last row below `key` and the first chunk of rows from it on: one query (one round trip)."""
        order = self.db.order(False)
        query = sql.SQL(
            "SELECT part, key, value FROM ("
            "(SELECT 0 AS part, key, value FROM {t} WHERE key < %(k)s ORDER BY {down} LIMIT 1) UNION ALL "
            "(SELECT 1 AS part, key, value FROM {t} WHERE key >= %(k)s ORDER BY {up} LIMIT {n})"
            ") AS around ORDER BY part, {up}"
        ).format(t=self.db.table, down=self.db.order(True), up=order, n=sql.Literal(self._chunk))
        rows = self.txn.conn.execute(query, {"k": key}, binary=True).fetchall()
        return [(k, v) for part, k, v in rows if part == 0], [(k, v) for part, k, v in rows if part == 1]

    def _window(self, rows: list[Row], pos: int | None, at_start: bool, at_end: bool) -> bool:
        self._rows, self._pos, self._at_start, self._at_end = rows, pos, at_start, at_end
        self._generation = self.txn.generation
        self._ghost, self._past_end, self._on_successor = None, False, False
        self.txn.walking(self)
        return pos is not None

    def _current(self) -> Row | None:
        return None if self._pos is None else self._rows[self._pos]

    def _row_params(self, row: Row) -> dict[str, Any]:
        return {"k": row[0], "v": row[1]}

    # positioning ------------------------------------------------------------------------------
    def first(self) -> bool:
        self._keys_only = False
        return self._first()

    def _first(self) -> bool:
        self._chunk = FIRST_CHUNK
        rows = self._fetch(None, False, self._chunk, {})
        return self._window(rows, 0 if rows else None, True, len(rows) < self._chunk)

    def last(self) -> bool:
        self._keys_only = False
        self._chunk = FIRST_CHUNK
        rows = self._fetch(None, True, self._chunk, {})[::-1]
        return self._window(rows, len(rows) - 1 if rows else None, len(rows) < self._chunk, True)

    def set_range(self, key: bytes) -> bool:
        """Position on the first row with a key >= `key` (False, unpositioned, if there is none)."""
        self._keys_only = False
        self._chunk = FIRST_CHUNK
        below, above = self._around(key)
        found = self._window(below + above, len(below) if above else None, not below, len(above) < self._chunk)
        self._past_end = not found
        return found

    def set_key(self, key: bytes) -> bool:
        """Position on `key` (its first duplicate); False, unpositioned, if it is absent."""
        if self.set_range(key) and self.key() == key:
            return True
        self._ghost, self._pos = self._current(), None  # LMDB stays on the next key, reporting none
        return False

    def next(self) -> bool:
        return self._step(+1)

    def prev(self) -> bool:
        return self._step(-1)

    def upcoming(self) -> list[bytes]:
        """The values of the window's rows from the current one on, in the direction last stepped."""
        if self._pos is None:
            return []
        if self._direction > 0:
            return [value for _, value in self._rows[self._pos :]]
        return [value for _, value in self._rows[self._pos :: -1]]

    def _step(self, direction: int) -> bool:
        self._direction = direction
        self._refresh()  # after a write: stand where LMDB's cursor stands now
        if self._on_successor:
            self._on_successor = False
            if direction > 0:  # the deleted row's successor is where the cursor already is
                return True
        current = self._current()
        if current is None:
            if self._past_end:
                return False if direction > 0 else self.last()
            if self._ghost is None:  # a fresh cursor starts at the matching end
                return self.first() if direction > 0 else self.last()
            current = self._ghost
        else:
            assert self._pos is not None
            target = self._pos + direction
            if 0 <= target < len(self._rows):
                self._pos = target
                return True
            if self._at_end if direction > 0 else self._at_start:
                self._ghost, self._pos = current, None
                return False
        self._chunk = min(self._chunk * 2, MAX_CHUNK)
        descending = direction < 0
        beyond = self.db.beyond("<" if descending else ">")
        rows = self._fetch(beyond, descending, self._chunk, self._row_params(current))
        complete = len(rows) < self._chunk
        if descending:
            moved = self._window([*rows[::-1], current], len(rows) - 1 if rows else None, complete, False)
        else:
            moved = self._window([current, *rows], 1 if rows else None, False, complete)
        if not moved:
            self._ghost = current
        return moved

    def next_nodup(self) -> bool:
        """Move to the first row of the next key (from an unpositioned cursor: the first row)."""
        if not self.db.dupsort or self._current() is None:
            return self.next()
        return self._next_key()

    def put(self, key: bytes, value: bytes, dupdata: bool = True, overwrite: bool = True, append: bool = False) -> bool:
        """Store `value` under `key` and stand on it, as LMDB's cursor put does."""
        stored = self.txn.put(key, value, dupdata=dupdata, overwrite=overwrite, append=append, db=self.db)
        if stored:
            self._chunk = FIRST_CHUNK
            self._window([(key, value)], 0, False, False)
        return stored

    # the current row --------------------------------------------------------------------------
    def _refresh(self) -> None:
        """After a write in this transaction, read the current row again (or its successor if it is gone)."""
        current = self._current() or self._ghost  # LMDB reads where it stands, even after a failed move
        if current is None or self._generation == self.txn.generation:
            return
        self._chunk = FIRST_CHUNK
        rows = self._fetch(self.db.beyond(">="), False, 1, self._row_params(current))
        self._window(rows, 0 if rows else None, False, not rows)
        self._past_end = not rows
        self._on_successor = bool(rows) and rows[0][0] != current[0]

    def key(self) -> bytes:
        self._refresh()
        self._on_successor = False  # LMDB has read where it stands: its next step moves on
        current = self._current()
        return b"" if current is None else current[0]

    def value(self) -> bytes:
        self._refresh()
        self._on_successor = False  # LMDB has read where it stands: its next step moves on
        current = self._current()
        return b"" if current is None else current[1]

    def item(self) -> Row:
        return self.key(), self.value()

    # iteration ------------------------------------------------------------------------------------
    def _yielded(self, keys: bool, values: bool) -> Any:
        if keys and values:
            return self.item()
        return self.key() if keys else self.value()

    def iternext(self, keys: bool = True, values: bool = True) -> Iterator[Any]:
        """Rows from the current one (the first, if unpositioned) to the end."""
        if self._current() is None and not values and not self.db.dupsort:
            self._keys_only = True
        try:
            valid = self._current() is not None or self._first()
            while valid:
                yield self._yielded(keys, values)
                valid = self.next()
        finally:
            self._keys_only = False

    def iternext_nodup(self, keys: bool = True, values: bool = False) -> Iterator[Any]:
        """The first row of each key, from the current one on."""
        valid = self._current() is not None or self.first()
        while valid:
            yield self._yielded(keys, values)
            valid = self._next_key()

    def _next_key(self) -> bool:
        if not self.db.dupsort:
            return self.next()
        current = self.key()
        while self.next():
            if self.key() != current:
                return True
        return False

    def iternext_dup(self, keys: bool = False, values: bool = True) -> Iterator[Any]:
        """The current key's rows (its duplicates), from the current one on."""
        current = self._current()
        if current is None:
            return
        key = current[0]
        while True:
            yield self._yielded(keys, values)
            if not self.next() or self.key() != key:
                return

    def __iter__(self) -> Iterator[Any]:
        return self.iternext()
