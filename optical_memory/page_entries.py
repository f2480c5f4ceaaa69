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

import numpy as np

from optical_memory.errors import ArchiveError

__all__ = ["ENTRY_FORMATS", "decode_entry", "encode_entry", "read_varint", "varint"]

FORMAT_3, FORMAT_4 = 3, 4
ENTRY_FORMATS = (bytes([FORMAT_3]), bytes([FORMAT_4]))  # the first byte of an entry this module reads
_MAX_K = 40  # low bits a gap that `_unrice` reads with numpy (unsigned 64-bit sums: prefixes of up to 7 bytes)


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
    if values and values[-1] >> (8 * width):  # a prefix wider than the entry's width: not what was written
        raise ArchiveError("a search index value is damaged (a term prefix out of range)")
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
    """The `count` sorted values `_rice` coded with `k` low bits a gap (a damaged value: ArchiveError).

    Read at every page reading whose lines fail their codes (a frost page: most): hundreds of gaps.
    Found with numpy, not a walk over a bit string (1 ms a page): each code word ends its unary part
    at the first 0 from its start, so the start of every word follows from the one before through one
    table, and the rest (quotients, low bits, sums) is done on arrays.
    """
    if count == 0:
        return []
    if k > _MAX_K:  # not written by `_rice` for prefixes of up to 7 bytes; read the slow way
        return _unrice_bits(data, k, count)
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    size = len(bits)
    if count * (1 + k) > size:  # each word takes at least 1 + k bits (and a damaged count allocates nothing)
        raise ArchiveError("a search index value is truncated; the archive is damaged")
    # stop[p]: the first 0 at or after bit p (size where none is), the end of a unary part begun at p
    stop = np.minimum.accumulate(np.where(bits == 0, np.arange(size), size)[::-1])[::-1]
    following = np.append(stop + 1 + k, size + 1 + k).astype(np.int64).data  # a Python int a lookup, no list
    starts = [0] * count
    at = 0
    try:
        for index in range(count):
            starts[index] = at
            at = following[at]  # IndexError: the value ends before its last word does
    except IndexError:
        raise ArchiveError("a search index value is truncated; the archive is damaged") from None
    first = np.array(starts, dtype=np.int64)
    if first[-1] >= size:  # the last word starts where the value ends
        raise ArchiveError("a search index value is truncated; the archive is damaged")
    ends = stop[first]
    if ends[-1] + 1 + k > size:
        raise ArchiveError("a search index value is truncated; the archive is damaged")
    quotients = ends - first
    if int(quotients.max()) >= 1 << max(0, 63 - k - count.bit_length()):  # sums past 2^63: damaged, not a prefix
        raise ArchiveError("a search index value is damaged (a term prefix out of range)")
    gaps = quotients.astype(np.uint64) << np.uint64(k)
    for bit in range(k):  # the low k bits, most significant first
        gaps |= bits[ends + 1 + bit].astype(np.uint64) << np.uint64(k - 1 - bit)
    values: list[int] = (np.cumsum(gaps + np.uint64(1), dtype=np.uint64) - np.uint64(1)).tolist()
    return values


def _unrice_bits(data: bytes, k: int, count: int) -> list[int]:
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
