"""optical-memory: long-term memory kept as page images that fade by tier, read back by OCR on demand.

The library knows nothing about MCP (the `server` package adapts it). Start with `Memory`::

    from optical_memory import Memory, load_config

    memory = Memory(load_config(archive="~/optical-memory"))
    spans = memory.remember("text to keep", session="notes").spans
    lines = memory.read_lines(spans[0].page_id).lines
"""

from optical_memory.config import Config, load_config
from optical_memory.errors import (
    ArchiveBusy,
    ArchiveError,
    ArchiveFull,
    InvalidArgument,
    NotFound,
    OpticalMemoryError,
    PageNotFound,
    ReaderError,
    ReaderUnavailable,
    SessionNotFound,
    TextTooLarge,
)
from optical_memory.memory import Memory

__all__ = [
    "ArchiveBusy",
    "ArchiveError",
    "ArchiveFull",
    "Config",
    "InvalidArgument",
    "Memory",
    "NotFound",
    "OpticalMemoryError",
    "PageNotFound",
    "ReaderError",
    "ReaderUnavailable",
    "SessionNotFound",
    "TextTooLarge",
    "load_config",
]
