"""Every error optical-memory raises on purpose, each saying what was wrong and what is valid.

::

    OpticalMemoryError
     ├── InvalidArgument (also ValueError)   a caller's argument is out of bounds
     │    └── TextTooLarge                    remember's text is over the configured limit
     ├── NotFound (also LookupError)
     │    ├── PageNotFound                    no page with that id (names the valid ones)
     │    └── SessionNotFound
     ├── PageDamaged                          a stored image fails its checksum: never read back as text
     ├── ArchiveError                         the LMDB archive could not do what was asked
     │    ├── ArchiveBusy                     another process held it for longer than the bounded wait
     │    ├── ArchiveFull                     the map could not grow far enough (disk full, or max size)
     │    ├── ArchiveReadOnly                 the archive can be read but not written (permissions, mount)
     │    └── ArchiveDamaged                  the archive's files are truncated or not an archive
     └── ReaderError                          OCR could not run
          └── ReaderUnavailable               a reader's model or extra is missing or corrupt

The MCP adapter turns each into a tool error with the same message; nothing already stored is
changed by a call that raises.
"""

from __future__ import annotations

__all__ = [
    "ArchiveBusy",
    "ArchiveDamaged",
    "ArchiveError",
    "ArchiveFull",
    "ArchiveReadOnly",
    "InvalidArgument",
    "NotFound",
    "OpticalMemoryError",
    "PageDamaged",
    "PageNotFound",
    "ReaderError",
    "ReaderUnavailable",
    "SessionNotFound",
    "TextTooLarge",
]


class OpticalMemoryError(Exception):
    """Base of every deliberate optical-memory error."""


class InvalidArgument(OpticalMemoryError, ValueError):
    """An argument is outside what the call accepts; the message says what is valid."""


class TextTooLarge(InvalidArgument):
    """remember's text exceeds `limits.max_text_chars`."""


class NotFound(OpticalMemoryError, LookupError):
    """Something named by the caller does not exist."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0]) if self.args else ""


class PageNotFound(NotFound):
    """No page with that id."""


class SessionNotFound(NotFound):
    """No session with that name."""


class PageDamaged(OpticalMemoryError):
    """A page's stored image does not match the checksum kept with it (or is missing)."""


class ArchiveError(OpticalMemoryError):
    """The archive could not complete an operation; nothing was half-written."""


class ArchiveBusy(ArchiveError):
    """Another process kept the archive busy past the bounded wait."""


class ArchiveFull(ArchiveError):
    """The archive's map could not grow enough to hold the write."""


class ArchiveReadOnly(ArchiveError):
    """The archive's folder, files or file system are read-only: it can be read, and every write fails."""


class ArchiveDamaged(ArchiveError):
    """The archive's data file is empty, truncated or not an LMDB file: it was not opened at all."""


class ReaderError(OpticalMemoryError):
    """A reader failed to transcribe a page."""


class ReaderUnavailable(ReaderError):
    """A reader cannot be loaded: its model file or optional dependency is missing or corrupt."""
