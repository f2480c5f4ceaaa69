"""Decode a stored lossless WebP page with libwebp itself: the same pixels as Pillow, a quarter of the time.

Pillow (13) decodes every WebP through libwebp's animation decoder, which composites RGBA frames:
7-10 ms for a warm page (792 x 924), up to a sixth of a verified full-page read. `WebPDecodeRGBInto`
on the same bytes, then Pillow's own RGB -> L conversion, takes about 2.3 ms. Every page below hot
is stored as a simple lossless WebP (one `VP8L` chunk, no alpha), for which both paths give the same
RGB pixels; anything else (lossy, extended, alpha, animation, damaged, larger than Pillow's
decompression-bomb limit) returns None and the caller decodes it with Pillow as before, errors
included.

The library is the one Pillow was built with (its wheels ship it beside the package) or the system's
`libwebp`; where neither loads, every call returns None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os
import struct
from collections.abc import Iterator

from PIL import Image

__all__ = ["decode_lossless_webp", "library"]

_HEADER = struct.Struct("<4sI4s4sI")  # RIFF, size, WEBP, chunk tag, chunk size
_VP8L_SIGNATURE = 0x2F


def _candidates() -> Iterator[str]:
    """Where libwebp may be: Pillow's own copy first (the one it decodes with), then the system's.

    A generator: the system lookup (`find_library` runs `ldconfig -p`) happens only if Pillow's fails.
    """
    here = os.path.dirname(Image.__file__)
    yield from sorted(glob.glob(os.path.join(os.path.dirname(here), "pillow.libs", "libwebp-*.so*")))  # manylinux
    yield from sorted(glob.glob(os.path.join(here, ".dylibs", "libwebp*.dylib")))  # macOS wheels
    system = ctypes.util.find_library("webp") or ctypes.util.find_library("libwebp")
    if system:
        yield system


@functools.cache
def library() -> ctypes.CDLL | None:
    """libwebp with the two functions used here, or None when none loads (the Pillow path is used)."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
            get_info, decode = lib.WebPGetInfo, lib.WebPDecodeRGBInto
        except (OSError, AttributeError):
            continue
        size = ctypes.POINTER(ctypes.c_int)
        get_info.argtypes = [ctypes.c_char_p, ctypes.c_size_t, size, size]
        get_info.restype = ctypes.c_int
        decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        decode.restype = ctypes.c_void_p
        return lib
    return None


def _simple_lossless_without_alpha(data: bytes) -> bool:
    """RIFF/WEBP holding exactly one VP8L chunk whose header says no alpha (what `encode_image` writes)."""
    if len(data) < _HEADER.size + 5:
        return False
    riff, riff_size, webp, tag, chunk_size = _HEADER.unpack_from(data)
    if riff != b"RIFF" or webp != b"WEBP" or tag != b"VP8L" or riff_size + 8 != len(data):
        return False
    if chunk_size + _HEADER.size > len(data) or data[_HEADER.size] != _VP8L_SIGNATURE:
        return False
    bits = int.from_bytes(data[_HEADER.size + 1 : _HEADER.size + 5], "little")
    return not (bits >> 28) & 1  # 14 bits width - 1, 14 bits height - 1, then alpha_is_used


def decode_lossless_webp(data: bytes) -> Image.Image | None:
    """The page in mode "L" exactly as `Image.open(...).convert("L")` gives it, or None to let Pillow decode."""
    lib = library()
    if lib is None or not _simple_lossless_without_alpha(data):
        return None
    data = bytes(data)  # ctypes passes bytes only: a memoryview or bytearray from a database driver is copied
    width, height = ctypes.c_int(), ctypes.c_int()
    if not lib.WebPGetInfo(data, len(data), ctypes.byref(width), ctypes.byref(height)):
        return None
    w, h = width.value, height.value
    if w <= 0 or h <= 0 or (Image.MAX_IMAGE_PIXELS is not None and w * h > Image.MAX_IMAGE_PIXELS):
        return None  # Pillow warns or refuses, as it always did
    rgb = bytearray(w * h * 3)
    if not lib.WebPDecodeRGBInto(data, len(data), (ctypes.c_char * len(rgb)).from_buffer(rgb), len(rgb), w * 3):
        return None  # damaged: Pillow raises its usual error
    return Image.frombuffer("RGB", (w, h), rgb, "raw", "RGB", 0, 1).convert("L")
