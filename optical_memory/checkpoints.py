"""What importers and capture have already remembered, so that running them again adds nothing.

This module alone owns the `checkpoints` sub-database of the archive. Its layout (keys are keyed
blake2b hashes, so neither a transcript's path nor a message's words are readable in the file)::

    b"t" + H(source)               -> JSON `Mark`: how far a transcript has been captured
                                      (byte offset of the end of the last line taken, the
                                      start and a hash of that line, its record's uuid, the
                                      line count, the session it goes to)
    b"c" + H(session, role, time, text)  -> u64: the page number the message's entry starts on
    b"r" + u64 page number + content key -> b"": the reverse of the above, so that forgetting a
                                      page can drop the content keys that point at it
    b"s" + u64 sequence            -> a spooled capture (`spool.Spooled`, JSON): the messages a capture
                                      hook read, waiting to be laid onto pages; written with the
                                      transcript's moved mark, deleted in the transaction that writes
                                      the last of them. It holds their text until then.
    b"n"                           -> u64: the next spool sequence number (numbers are never reused)

H is blake2b-128 keyed with `derive_key(archive_key, ...)`, one purpose per kind of key.

A content key whose page is gone (forgotten) counts as absent, so a forgotten conversation can be
imported again; `forget_pages` (called by `forget`) also removes such keys, so that nothing about
forgotten messages stays behind.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the archive (and numpy with it) is loaded only by callers that open one
    from optical_memory.archive import ArchiveTxn

__all__ = ["Checkpoints", "Mark", "forget_pages", "line_hash"]

DATABASE = "checkpoints"
_TRANSCRIPT, _CONTENT, _REVERSE, _SPOOLED, _NEXT_SPOOLED = b"t", b"c", b"r", b"s", b"n"
_KEY_BYTES = 16
_SEPARATOR = "\x1f"  # unit separator: cannot occur in session, role or time, so fields never run together


def line_hash(line: bytes) -> str:
    """A short hash of one transcript line, to recognise it again at the same offset."""
    return hashlib.blake2b(line, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Mark:
    """How far one transcript has been captured: everything before `offset` is remembered."""

    offset: int  # bytes of the file taken (always the end of a complete line)
    line_start: int  # where the last line taken starts: [line_start, offset) is that line
    line_hash: str  # `line_hash` of that line: a rewritten file no longer matches it
    lines: int  # how many lines `offset` covers, so problems past it get their line numbers
    session: str  # the session the transcript is remembered in
    format: str  # the transcript's format (claude-code, codex)
    uuid: str | None = None  # the last record's uuid, where the format has one (Claude Code)

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Mark | None:
        try:
            data = json.loads(raw)
            return cls(**data)
        except (ValueError, TypeError):  # a mark of another version: start over (content keys keep it exact)
            return None


class Checkpoints:
    """The checkpoints inside one transaction of the archive."""

    def __init__(self, tx: ArchiveTxn) -> None:
        from optical_memory.checkcode import derive_key
        from optical_memory.errors import ArchiveError

        self.tx = tx
        self._db = tx.db(DATABASE)
        try:
            secret = tx.archive_key()
        except ArchiveError:  # an archive never written to: it holds no checkpoints either
            self._source_key = self._content_key = b""
        else:
            self._source_key = derive_key(secret, "checkpoints-source")
            self._content_key = derive_key(secret, "checkpoints-content")
        self._pages: dict[int, bool] = {}

    def _hash(self, key: bytes, text: str) -> bytes:
        data = text.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, key=key, digest_size=_KEY_BYTES).digest()

    # transcripts ------------------------------------------------------------------------------
    def mark(self, source: str) -> Mark | None:
        """The mark of the transcript `source` (its absolute path), None if never captured."""
        if not self._source_key:
            return None
        raw = self.tx.txn.get(_TRANSCRIPT + self._hash(self._source_key, source), db=self._db)
        return None if raw is None else Mark.from_bytes(bytes(raw))

    def put_mark(self, source: str, mark: Mark) -> None:
        self.tx.txn.put(_TRANSCRIPT + self._hash(self._source_key, source), mark.to_bytes(), db=self._db)

    # the spool: captures waiting to be remembered (`spool` reads and writes what they hold) --------
    def spool(self, item: bytes) -> int:
        """Add a spooled capture after all others; returns its sequence number (write transactions only)."""
        raw = self.tx.txn.get(_NEXT_SPOOLED, db=self._db)
        sequence = int.from_bytes(raw, "big") if raw is not None else 1
        self.tx.txn.put(_NEXT_SPOOLED, (sequence + 1).to_bytes(8, "big"), db=self._db)
        self.tx.txn.put(_SPOOLED + sequence.to_bytes(8, "big"), item, db=self._db)
        return sequence

    def spooled_after(self, sequence: int) -> tuple[int, bytes] | None:
        """The first spooled capture numbered above `sequence` (0: the oldest), or None."""
        with self.tx.txn.cursor(db=self._db) as cursor:
            if not cursor.set_range(_SPOOLED + (sequence + 1).to_bytes(8, "big")):
                return None
            key = bytes(cursor.key())
            if len(key) != 9 or not key.startswith(_SPOOLED):
                return None
            return int.from_bytes(key[1:], "big"), bytes(cursor.value())

    def spooled(self) -> list[tuple[int, bytes]]:
        """Every spooled capture, oldest first."""
        found, after = [], 0
        while (item := self.spooled_after(after)) is not None:
            found.append(item)
            after = item[0]
        return found

    def unspool(self, sequence: int) -> bool:
        """Remove a spooled capture once remembered; False if it was gone (another drain took it)."""
        return bool(self.tx.txn.delete(_SPOOLED + sequence.to_bytes(8, "big"), db=self._db))

    # messages ---------------------------------------------------------------------------------
    def content_key(self, session: str, role: str, time: str | None, text: str, occurrence: int = 0) -> bytes:
        """The key of one message: the same message said in the same session at the same time.

        `occurrence` counts the same message earlier in the same source ("ok" said twice without a
        time), so that repeats in one conversation are kept, and kept once each on a re-import.
        """
        fields = _SEPARATOR.join((session, role, time or "", str(occurrence), text))
        return self._hash(self._content_key, fields) if self._content_key else b""

    def seen(self, key: bytes) -> bool:
        """Whether the message with this content key is remembered (on a page that still exists)."""
        if not key:
            return False
        raw = self.tx.txn.get(_CONTENT + key, db=self._db)
        if raw is None:
            return False
        number = int.from_bytes(raw, "big")
        alive = self._pages.get(number)
        if alive is None:
            alive = self.tx.page(f"p{number}") is not None
            self._pages[number] = alive
        return alive

    def remember(self, key: bytes, page_number: int) -> None:
        """Record that the message with this content key now starts on page `page_number`."""
        old = self.tx.txn.get(_CONTENT + key, db=self._db)
        if old is not None:
            self.tx.txn.delete(_REVERSE + bytes(old) + key, db=self._db)
        number = page_number.to_bytes(8, "big")
        self.tx.txn.put(_CONTENT + key, number, db=self._db)
        self.tx.txn.put(_REVERSE + number + key, b"", db=self._db)
        self._pages[page_number] = True


def forget_pages(tx: ArchiveTxn, page_numbers: list[int]) -> int:
    """Drop the content keys of messages that start on these (forgotten) pages; returns how many.

    `forget` calls this in its transaction; without it such keys would only be ignored, not erased.
    """
    db = tx.db(DATABASE)
    dropped = 0
    for number in page_numbers:
        prefix = _REVERSE + number.to_bytes(8, "big")
        keys: list[bytes] = []
        with tx.txn.cursor(db=db) as cursor:
            if cursor.set_range(prefix):
                for raw in cursor.iternext(values=False):
                    raw = bytes(raw)
                    if not raw.startswith(prefix):
                        break
                    keys.append(raw)
        for reverse in keys:
            tx.txn.delete(reverse, db=db)
            tx.txn.delete(_CONTENT + reverse[len(prefix) :], db=db)
            dropped += 1
    return dropped
