"""What a person with the archive's files could read in them: the bytes as they are, and inflated.

Page records are stored deflated (`records`; packed ones with a preset dictionary), so a scan of the
raw bytes alone would miss a record left behind. Every zlib stream found in the bytes is inflated
(as far as it goes: a stream cut short inflates up to the cut) and scanned too.
"""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

from optical_memory.records import RECORD_ZDICT

_ZLIB_HEADERS = (b"\x78\x9c", b"\x78\x01", b"\x78\xda", b"\x78\x5e")
# Streams deflated with a preset dictionary (packed page records: `records.RECORD_ZDICT`), at any level
_DICT_HEADERS = tuple(bytes([0x78, flg]) for flg in range(256) if flg & 0x20 and (0x78 * 256 + flg) % 31 == 0)
_MAX_INFLATED = 1 << 20


def inflated(data: bytes) -> bytes:
    """The inflated contents of every zlib stream in `data` (page records, PNG image data), joined."""
    out = []
    for header in (*_ZLIB_HEADERS, *_DICT_HEADERS):
        zdict = RECORD_ZDICT if header in _DICT_HEADERS else b""
        start = data.find(header)
        while start >= 0:
            with contextlib.suppress(zlib.error):  # two bytes that only look like a header
                inflate = zlib.decompressobj(zdict=zdict) if zdict else zlib.decompressobj()
                out.append(inflate.decompress(data[start : start + (1 << 16)], _MAX_INFLATED))
            start = data.find(header, start + 1)
    return b"\0".join(out)


def readable(data: bytes) -> bytes:
    """`data` followed by what inflates out of it: search this for text that must not be there."""
    return data + b"\0" + inflated(data)


def readable_file(path: Path) -> bytes:
    return readable(path.read_bytes())
