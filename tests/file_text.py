"""What a person with the archive's files could read in them: the bytes as they are, and inflated.

Page records are stored deflated (`records`), so a scan of the raw bytes alone would miss a record
left behind. Every zlib stream found in the bytes is inflated (as far as it goes: a stream cut short
inflates up to the cut) and scanned too.
"""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

_ZLIB_HEADERS = (b"\x78\x9c", b"\x78\x01", b"\x78\xda", b"\x78\x5e")
_MAX_INFLATED = 1 << 20


def inflated(data: bytes) -> bytes:
    """The inflated contents of every zlib stream in `data` (page records, PNG image data), joined."""
    out = []
    for header in _ZLIB_HEADERS:
        start = data.find(header)
        while start >= 0:
            with contextlib.suppress(zlib.error):  # two bytes that only look like a header
                out.append(zlib.decompressobj().decompress(data[start : start + (1 << 16)], _MAX_INFLATED))
            start = data.find(header, start + 1)
    return b"\0".join(out)


def readable(data: bytes) -> bytes:
    """`data` followed by what inflates out of it: search this for text that must not be there."""
    return data + b"\0" + inflated(data)


def readable_file(path: Path) -> bytes:
    return readable(path.read_bytes())
