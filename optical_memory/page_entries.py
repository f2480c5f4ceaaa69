"""A page's entry in the search index: how many terms each line has, and which term hashes it holds.

`postings` keeps one entry per page (`page_terms`): BM25 reads nothing from it (each posting carries
its line's length), `forget` unposts every term whose hash starts with one of its prefixes, and
verified reading checks a candidate spelling's terms against it. Two formats are read::

    3  b"\\x03", varint(lines), (varint line, varint length) per line, then the first 4 bytes of the
       hash of each distinct term, as they came
    4  b"\\x04", varint(prefix bytes), varint(lines), varint(first line * 2 + 1) and varint(length)
       per line in order (lines are consecutive on a page; else varint(0), then (varint line,
       varint length) per line), then varint(prefixes), a byte k and the prefixes sorted, as
       Rice-coded gaps (each gap's high bits in unary, its low k bits plain)

Format 4 is written: the same prefixes (so the same answers to "is this term on the page?") in
about 3.2 bytes each instead of 4 (a page's few hundred prefixes are spread evenly over 2^32, so
their gaps are about 2^32 / count), and a byte a line fewer. Most entries then stay under the
size LMDB keeps inline (about 2 KB) instead of taking a 4 KB overflow page of their own.
"""

from __future__ import annotations

from collections.abc import Iterable

from optical_memory.errors import ArchiveError

__all__ = ["ENTRY_FORMATS", "decode_entry", "encode_entry", "read_varint", "varint"]

FORMAT_3, FORMAT_4 = 3, 4
ENTRY_FORMATS = (bytes([FORMAT_3]), bytes([FORMAT_4]))  # the first byte of an entry this module reads


def varint(n: int, out: bytearray) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def read_varint(data: bytes, offset: int = 0) -> tuple[int, int]:
    """The varint at `offset` of `data` and the offset after it."""
    value = shift = 0
    for end in range(offset, len(data)):
        byte = data[end]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, end + 1
        shift += 7
    raise ArchiveError("a search index value is truncated; the archive is damaged")


def encode_entry(lengths: dict[int, int], hashes: Iterable[bytes], width: int) -> bytes:
    """A page's entry (format 4): its line lengths and the first `width` bytes of its term hashes."""
    out = bytearray([FORMAT_4])
    varint(width, out)
    lines = sorted(lengths)
    varint(len(lines), out)
    if lines and lines[-1] - lines[0] + 1 == len(lines):
        varint(lines[0] * 2 + 1, out)
        for line in lines:
            varint(lengths[line], out)
    else:
        varint(0, out)
        for line in lines:
            varint(line, out)
            varint(lengths[line], out)
    values = sorted({int.from_bytes(h[:width], "big") for h in hashes})
    varint(len(values), out)
    k, coded = _rice(values)
    out.append(k)
    return bytes(out + coded)


def decode_entry(raw: bytes) -> tuple[dict[int, int], list[bytes]]:
    """A page's {line: terms on it} and the hash prefixes of its distinct terms, from format 3 or 4."""
    if raw[:1] == ENTRY_FORMATS[0]:
        return _decode_3(raw)
    if raw[:1] != ENTRY_FORMATS[1]:
        raise ArchiveError("the search index has layout 1 here; open the archive writable once to upgrade it")
    width, offset = read_varint(raw, 1)
    count, offset = read_varint(raw, offset)
    start, offset = read_varint(raw, offset)
    lengths: dict[int, int] = {}
    for n in range(count):
        if start:
            line = (start >> 1) + n
        else:
            line, offset = read_varint(raw, offset)
        lengths[line], offset = read_varint(raw, offset)
    m, offset = read_varint(raw, offset)
    if offset >= len(raw):
        raise ArchiveError("a search index value is truncated; the archive is damaged")
    values = _unrice(raw[offset + 1 :], raw[offset], m)
    return lengths, [value.to_bytes(width, "big") for value in values]


def _decode_3(raw: bytes) -> tuple[dict[int, int], list[bytes]]:
    count, offset = read_varint(raw, 1)
    lengths: dict[int, int] = {}
    for _ in range(count):
        line, offset = read_varint(raw, offset)
        lengths[line], offset = read_varint(raw, offset)
    return lengths, [raw[i : i + 4] for i in range(offset, len(raw), 4)]


def _rice(values: list[int]) -> tuple[int, bytes]:
    """Sorted distinct `values` as Rice-coded gaps: (k, the bits, big-endian, zero-padded to bytes)."""
    if not values:
        return 0, b""
    k = max((values[-1] // len(values)).bit_length() - 1, 0)  # about log2 of the mean gap
    mask, previous, parts = (1 << k) - 1, -1, []
    for value in values:
        gap, previous = value - previous - 1, value
        parts.append("1" * (gap >> k) + "0" + (format(gap & mask, f"0{k}b") if k else ""))
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    return k, int(bits, 2).to_bytes(len(bits) // 8, "big")


def _unrice(data: bytes, k: int, count: int) -> list[int]:
    bits = format(int.from_bytes(data, "big"), f"0{len(data) * 8}b") if data else ""
    out, previous, at = [], -1, 0
    try:
        for _ in range(count):
            stop = bits.index("0", at)
            low = int(bits[stop + 1 : stop + 1 + k], 2) if k else 0
            if stop + 1 + k > len(bits):
                raise ValueError
            previous += 1 + ((stop - at) << k | low)
            out.append(previous)
            at = stop + 1 + k
    except ValueError:
        raise ArchiveError("a search index value is truncated; the archive is damaged") from None
    return out
