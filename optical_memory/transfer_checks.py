"""What an import trusts of an export: nothing until checked, and nothing read beyond its bounds.

An export is input from anywhere (a download, a colleague's zip), so before anything is written:

* files are read only under their canonical names (``manifest.json``, ``images/p<n>.<ext>``), never
  through a symbolic link, only as regular files, and never more than a bounded number of bytes (a zip
  member's declared size and compression ratio are checked before it is inflated);
* the manifest's schema is checked field by field (types, bounds, consistency: a page cannot claim
  more lines than it has rows), with an error naming the page and the field;
* each image's bytes must be the format its record names (magic bytes and the decoder's own header)
  with the record's pixel size, which is bounded, read from the header before any pixel is decoded,
  and must match the checksum the record carries.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import warnings
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

from optical_memory.checkcode import CODE_BYTES, PART_BITS, PART_CELLS
from optical_memory.errors import InvalidArgument
from optical_memory.records import PageRecord, image_digest
from optical_memory.render import Geometry
from optical_memory.validation import check_name

__all__ = ["EXTENSIONS", "MAX_IMAGE_BYTES", "MAX_MANIFEST_BYTES", "Source", "check_image", "check_page", "open_source"]

EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg", "avif": "avif"}
_PIL_FORMATS = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG", "avif": "AVIF"}
MAX_MANIFEST_BYTES = 64 << 20
MAX_IMAGE_BYTES = 8 << 20  # a hot page of the largest allowed geometry is well under 1 MiB
MAX_PAGES = 200_000
MAX_SIDE = 8192  # pixels, either side of a stored page image
MAX_GRID = 1000  # columns or rows of a page
MAX_ZIP_RATIO = 100  # a member inflating more than this is a zip bomb, not an export
MAX_COUNT = 10_000_000  # characters and tokens of one page
_IMAGE_NAME = re.compile(r"images/p[1-9][0-9]{0,17}\.(png|webp|jpg|avif)")
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_HEX = re.compile(r"[0-9a-f]*")


def _fail(where: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{where}: {message}")


class Source:
    """Bounded reads of an export's files by canonical name (folder or zip)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._dir_fd: int | None = None
        if path.is_file() and zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
        elif path.is_dir():
            self._dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        else:
            raise InvalidArgument(f"{path} is neither an export folder nor an export zip")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._dir_fd is not None:
            os.close(self._dir_fd)

    def read(self, name: str, limit: int) -> bytes:
        """The bytes of file `name` (a canonical name, checked by the caller), at most `limit` of them."""
        if name != "manifest.json" and not _IMAGE_NAME.fullmatch(name):
            raise _fail(str(self.path), f"{name!r} is not a file name an export holds (images/p<n>.<ext>)")
        if self._zip is not None:
            return self._read_member(name, limit)
        return self._read_file(name, limit)

    def _read_member(self, name: str, limit: int) -> bytes:
        assert self._zip is not None
        try:
            info = self._zip.getinfo(name)
        except KeyError:
            raise _fail(str(self.path), f"the zip has no {name}") from None
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _fail(f"{self.path}:{name}", "is a symbolic link; an export holds plain files only")
        if info.flag_bits & 0x1:
            raise _fail(f"{self.path}:{name}", "is encrypted; exports are not")
        if info.file_size > limit:
            raise _fail(f"{self.path}:{name}", f"declares {info.file_size:,} bytes; at most {limit:,} are allowed")
        if info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1) + 4096:
            raise _fail(f"{self.path}:{name}", f"inflates over {MAX_ZIP_RATIO}x: a zip bomb, not an export")
        try:
            with self._zip.open(info) as member:
                data = member.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise _fail(f"{self.path}:{name}", f"cannot be read from the zip ({exc})") from exc
        if len(data) != info.file_size:
            raise _fail(f"{self.path}:{name}", "holds more or fewer bytes than the zip declares")
        return data

    def _read_file(self, name: str, limit: int) -> bytes:
        assert self._dir_fd is not None
        parts = name.split("/")
        fds: list[int] = []
        try:
            at = self._dir_fd
            for part in parts[:-1]:  # never through a link: O_NOFOLLOW on every component
                at = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=at)
                fds.append(at)
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=at)
            fds.append(fd)
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _fail(f"{self.path}/{name}", "is not a regular file")
            if info.st_size > limit:
                raise _fail(f"{self.path}/{name}", f"is {info.st_size:,} bytes; at most {limit:,} are allowed")
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read(limit + 1)
        except FileNotFoundError:
            raise _fail(str(self.path), f"has no {name}") from None
        except OSError as exc:
            why = "is a symbolic link" if exc.errno in (40, 20) else f"cannot be read ({exc.strerror})"
            raise _fail(f"{self.path}/{name}", f"{why}; an export holds plain files only") from exc
        finally:
            for fd in reversed(fds):
                os.close(fd)
        if len(data) > limit:
            raise _fail(f"{self.path}/{name}", f"is over {limit:,} bytes")
        return data


def open_source(path: Path) -> Source:
    return Source(path)


def _int(where: str, data: dict[str, Any], key: str, low: int, high: int) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(where, f"{key} must be a whole number from {low} to {high:,}, got {value!r:.60}")
    return value


def _optional_text(where: str, data: dict[str, Any], key: str, kind: str) -> None:
    value = data.get(key)
    if value is not None:
        try:
            check_name(kind, value)
        except InvalidArgument as exc:
            raise _fail(where, str(exc)) from None


def _stamp(where: str, data: dict[str, Any], key: str, optional: bool = False) -> None:
    value = data.get(key)
    if optional and value is None:
        return
    if not isinstance(value, str) or not _STAMP.fullmatch(value):
        raise _fail(where, f"{key} must be a UTC time like 2026-11-26T15:04:05Z, got {value!r:.60}")


def _hex(where: str, data: dict[str, Any], key: str, length: int | None) -> None:
    value = data.get(key)
    if value is None:
        return
    if not isinstance(value, str) or not _HEX.fullmatch(value) or (length is not None and len(value) != length):
        size = f"{length} " if length is not None else ""
        raise _fail(where, f"{key} must be {size}lower-case hex digits, got {value!r:.60}")


def _geometry(where: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _fail(where, "geometry must be an object")
    names = ("font_size", "cell_width", "cell_height", "margin", "gutter", "columns", "rows", "width", "height")
    if set(data) - set(names) - {"scale", "scale_y"} or not set(names) <= set(data):
        raise _fail(where, f"geometry must have the keys {names}, and may have 'scale' and 'scale_y'")
    for key in names:  # in order: the same bad record always gets the same message
        high = MAX_SIDE if key in ("width", "height") else MAX_GRID
        _int(f"{where} geometry", data, key, 0 if key in ("margin", "gutter") else 1, high)
    scale = data.get("scale", 1.0)
    if not isinstance(scale, int | float) or isinstance(scale, bool) or not 0 < scale <= 1:
        raise _fail(where, f"geometry scale must be a number in (0, 1], got {scale!r:.60}")
    scale_y = data.get("scale_y")  # pages of whole-pixel cells: the exact factor down
    number = isinstance(scale_y, int | float) and not isinstance(scale_y, bool)
    if scale_y is not None and (not number or not 0 < scale_y <= 1):
        raise _fail(where, f"geometry scale_y must be a number in (0, 1] or absent, got {scale_y!r:.60}")
    if scale_y is not None:  # the image is the hot page mapped by exactly these factors: its size follows
        geometry = Geometry.from_dict({**data, "scale": float(scale), "scale_y": float(scale_y)})
        hot = (geometry.hot_width * geometry.scale, geometry.hot_height * scale_y)
        if abs(hot[0] - geometry.width) > 1 or abs(hot[1] - geometry.height) > 1:
            raise _fail(
                where,
                f"geometry width and height must be the hot page ({geometry.hot_width} x {geometry.hot_height}) "
                f"times scale and scale_y, about {hot[0]:.0f} x {hot[1]:.0f}; got {geometry.width} x {geometry.height}",
            )
    return data


def _entries(where: str, entries: Any, lines: int) -> None:
    if not isinstance(entries, list) or len(entries) > MAX_GRID:
        raise _fail(where, f"entries must be a list of at most {MAX_GRID}")
    for n, entry in enumerate(entries):
        at = f"{where} entry {n}"
        if not isinstance(entry, dict):
            raise _fail(at, "must be an object")
        _optional_text(at, entry, "role", "role")
        _optional_text(at, entry, "title", "title")
        _stamp(at, entry, "time")
        first = _int(at, entry, "first_line", 0, lines)
        _int(at, entry, "last_line", first, lines)
        for key in ("recalled_from", "entry"):
            if entry.get(key) is not None and (not isinstance(entry[key], str) or len(entry[key]) > 64):
                raise _fail(at, f"{key} must be a short string")


def check_page(where: str, record: Any) -> PageRecord:
    """A page record from a manifest, checked field by field; InvalidArgument naming the field if not."""
    if not isinstance(record, dict):
        raise _fail(where, "record must be an object")
    page_id = record.get("id")
    if not isinstance(page_id, str) or not re.fullmatch(r"p[1-9][0-9]{0,17}", page_id):
        raise _fail(where, f"id must look like 'p12', got {page_id!r:.60}")
    where = f"{where} ({page_id})"
    _int(where, record, "number", 1, 10**18)
    try:
        check_name("session", record.get("session"))
    except InvalidArgument as exc:
        raise _fail(where, str(exc)) from None
    for key in ("created", "updated"):
        _stamp(where, record, key)
    _stamp(where, record, "sealed_at", optional=True)
    if not isinstance(record.get("codec"), str) or record["codec"] not in _PIL_FORMATS:
        raise _fail(where, f"codec must be one of {sorted(_PIL_FORMATS)}, got {record.get('codec')!r:.60}")
    geometry = _geometry(where, record.get("geometry"))
    rows = record.get("rows", [])
    if not isinstance(rows, list) or len(rows) > geometry["rows"]:
        raise _fail(where, f"rows must be a list of at most the page's {geometry['rows']} rows")
    lines = _int(where, record, "lines", 0, len(rows))  # every line takes at least one row
    if any(not isinstance(code, int) or isinstance(code, bool) or abs(code) > lines for code in rows):
        raise _fail(where, f"rows must hold whole numbers from -{lines} to {lines}")
    for key in ("sealed", "continued", "continues"):
        if not isinstance(record.get(key, False), bool):
            raise _fail(where, f"{key} must be true or false")
    _int(where, record, "tier", 0, 63)
    _int(where, record, "image_bytes", 0, MAX_IMAGE_BYTES)
    for key in ("characters", "text_tokens"):
        _int(where, record, key, 0, MAX_COUNT)
    _int(where, {"version": record.get("version", 0)}, "version", 0, 10**12)
    _optional_text(where, record, "title", "title")
    _entries(where, record.get("entries", []), lines)
    if record.get("recalled_from") is not None and not isinstance(record["recalled_from"], str):
        raise _fail(where, "recalled_from must be a page id")
    _hex(where, record, "image_sha", 32)
    _hex(where, record, "codes", 2 * CODE_BYTES * lines)
    _hex(where, record, "codes_key", 64)
    _parts(where, record.get("parts"), lines, geometry["rows"] * geometry["columns"])
    try:
        return PageRecord.from_bytes(_json_bytes(record))
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(where, f"is not a page record ({exc})") from exc


def _parts(where: str, parts: Any, lines: int, cells: int) -> None:
    """Part codes: absent, or one hex string per line, none longer than a page's cells need."""
    if parts is None:
        return
    runs = math.ceil(cells / PART_CELLS)  # a line that fills the page
    most = 2 * math.ceil(runs * PART_BITS / 8)  # hex digits of its packed codes
    if not isinstance(parts, list) or len(parts) != lines:
        raise _fail(where, f"parts must be a list of {lines} hex strings, one per line")
    for number, part in enumerate(parts, start=1):
        if not isinstance(part, str) or not _HEX.fullmatch(part) or len(part) % 2 or len(part) > most:
            raise _fail(
                where, f"parts[{number - 1}] (line {number}) must be whole bytes of lower-case hex, at most "
                f"{most} digits; got {part!r:.60}"
            )  # fmt: skip


def _json_bytes(record: dict[str, Any]) -> bytes:
    import json

    return json.dumps(record).encode("utf-8", "surrogatepass")


def check_image(where: str, record: PageRecord, data: bytes) -> None:
    """The image bytes are the record's codec, at its pixel size, with its checksum: header only, no pixels."""
    if record.image_sha is not None and image_digest(data) != record.image_sha:
        raise _fail(where, "image does not match the checksum in its record: the export is damaged")
    magic_ok = {
        "png": data.startswith(b"\x89PNG\r\n\x1a\n"),
        "webp": data[:4] == b"RIFF" and data[8:12] == b"WEBP",
        "jpeg": data.startswith(b"\xff\xd8\xff"),
        "avif": data[4:12] in (b"ftypavif", b"ftypavis"),
    }[record.codec]
    if not magic_ok:
        raise _fail(where, f"image bytes are not {record.codec}, the codec its record names")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                size, found = image.size, image.format
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _fail(where, f"image claims too many pixels for a page (at most {MAX_SIDE}x{MAX_SIDE}): {exc}") from exc
    except Exception as exc:  # any decoder failure is a bad image, and is said to be one
        raise _fail(where, f"image header cannot be read as {record.codec} ({type(exc).__name__}: {exc})") from exc
    if found != _PIL_FORMATS[record.codec]:
        raise _fail(where, f"image is {found}, but its record says {record.codec}")
    expected = (record.geometry.width, record.geometry.height)
    if size != expected:
        raise _fail(where, f"image is {size[0]}x{size[1]} pixels, but its record says {expected[0]}x{expected[1]}")
