"""optical-memory: long-term memory kept as page images that fade by tier, read back by OCR on demand.

The library knows nothing about MCP (the `optical_memory_mcp` package adapts it). Start with `Memory`::

    from optical_memory import Memory, load_config

    memory = Memory(load_config(archive="~/optical-memory"))
    spans = memory.remember("text to keep", session="notes").spans
    lines = memory.read_lines(spans[0].page_id).lines

The names that need numpy, Pillow or pydantic are imported on first use (PEP 562), so
`import optical_memory.capture` in a hook process does not pay for them before it knows there is
anything to remember.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from optical_memory.errors import (  # plain classes, no dependencies: cheap to load at once
    ArchiveBusy,
    ArchiveDamaged,
    ArchiveError,
    ArchiveFull,
    ArchiveReadOnly,
    InvalidArgument,
    NotFound,
    OpticalMemoryError,
    PageDamaged,
    PageNotFound,
    ReaderError,
    ReaderUnavailable,
    SessionNotFound,
    TextTooLarge,
)

if TYPE_CHECKING:
    from optical_memory.config import Config, load_config
    from optical_memory.memory import Memory, NewEntry
    from optical_memory.spans import join_spans

# what loads numpy, Pillow or pydantic: imported when first asked for
_LAZY = {"Config": "config", "load_config": "config", "Memory": "memory", "NewEntry": "memory", "join_spans": "spans"}

__all__ = [
    "ArchiveBusy",
    "ArchiveDamaged",
    "ArchiveError",
    "ArchiveFull",
    "ArchiveReadOnly",
    "Config",
    "InvalidArgument",
    "Memory",
    "NewEntry",
    "NotFound",
    "OpticalMemoryError",
    "PageDamaged",
    "PageNotFound",
    "ReaderError",
    "ReaderUnavailable",
    "SessionNotFound",
    "TextTooLarge",
    "join_spans",
    "load_config",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'optical_memory' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"optical_memory.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
