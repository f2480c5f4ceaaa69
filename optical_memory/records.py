"""Page and session records: the typed bookkeeping kept for each page and session, never any text.

This module owns their on-disk form: one JSON object per record, with these keys (old archives and
exports, written before the typed records, keep reading; keys added since are optional). A page
record is stored packed: `y`, the length (4 bytes, big-endian) of the deflated JSON (zlib, with the
preset dictionary `RECORD_ZDICT`), that JSON without `codes` and `parts` but with `codes_bytes`
(their length) and `part_sizes` (each line's), then the line codes and the part codes as raw bytes
(random bytes do not deflate; as hex inside the JSON they cost a quarter more). So a typical full
page's record takes ~1,200 bytes, where with hex codes it took ~1,570 and LMDB gave each record past
~1,340 bytes a leaf page of its own. Deflated records (`z` + zlib of the JSON, codes in hex) and
plain JSON records (older archives) read as before, and exports carry plain JSON (`to_json`, codes
in hex)::

    page     id, number, session, created, updated, sealed, sealed_at,
             tier          index into the configured tiers
             codec, image_bytes
             geometry      render.Geometry of the stored image (scaled with its tier)
             rows          one code per used row: 0 header, +n first row of line n, -n continuation of line n
             lines         line numbers on the page run 1..lines
             continued     line 1 continues the last line of the session's previous page
             continues     the last line continues on the next page
             characters, text_tokens   of the text on the page (counted when it was laid out)
             title         the first entry title on the page
             entries       [{role, time, title, first_line, last_line[, recalled_from][, entry]}] one per
                           remember call; `entry` ("<page id>:<line>" where the call began) is the
                           same on every page the call spans
             recalled_from the faded page whose lines this page re-remembers (reconsolidation)
             version       +1 at every write of the page (what caches of its pixels are keyed by)
             image_sha     blake2b-128 of the stored image bytes (hex), checked on every read
             codes         the lines' check codes (`checkcode`), hex, CODE_BYTES per line, in line order;
                           all zeros for a line written before codes existed (`checkcode.NO_CODE`)
             parts         each line's part codes (`checkcode.part_codes_for`), hex, a list in line order;
                           "" for a line written before part codes existed
             codes_key     hex of the check key of the archive the codes were made in, if not this one
    session  sid, open_page, open_rows, open_lines, pages, created, updated

A record without `image_sha` or `codes` comes from an older version: its image is not checked and its
lines read with `verified: null`. One without `parts` verifies its lines by their line codes alone.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from optical_memory.checkcode import NO_CODE
from optical_memory.errors import PageDamaged
from optical_memory.tokens import claude_image_tokens, deepseek_vision_tokens, estimate_text_tokens

if TYPE_CHECKING:  # loaded where used: opening the archive (a capture hook) needs neither numpy, Pillow nor pydantic
    from optical_memory.pages import PagePlan
    from optical_memory.render import Geometry
    from optical_memory.results import PageInfo
    from optical_memory.tiers import Tier

__all__ = [
    "RECORD_ZDICT",
    "EntryRecord",
    "PageRecord",
    "SessionRecord",
    "apply_plan",
    "check_image",
    "image_digest",
    "page_info",
]


_DEFLATED = b"z"  # a deflated page record; JSON ones start with "{"
_PACKED = b"y"  # deflated JSON, then the check codes as raw bytes (see the module doc)
# The preset dictionary a packed record's JSON is deflated with: a typical record, so that its keys
# and usual values cost a few bits each instead of being spelled out in every record (about 350
# bytes less a record). Part of the stored format: a changed dictionary needs a new prefix.
RECORD_ZDICT = (
    b'{"id":"p1","number":1,"session":"default","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z",'
    b'"codec":"webp","sealed":true,"sealed_at":"2026-01-01T00:00:00Z","tier":1,"image_bytes":20000,'
    b'"rows":[0,1,2,-2,3,4,-4,-4,5,6,7,8,-8,9,10,0,11,12,-12,13,14,15,-15,-15,16,17,18,19,20,-20,21,22,23,24,25,0,'
    b'26,27,28,29,30,-30,31,32,33,34,35,36,37,38,39,40],"lines":15,"continued":false,"continues":false,'
    b'"characters":3000,"text_tokens":800,"title":"title","version":1,"image_sha":"00000000000000000000000000000000",'
    b'"geometry":{"font_size":16,"cell_width":10,"cell_height":19,"margin":8,"gutter":4,"columns":100,"rows":64,'
    b'"width":1056,"height":1232,"scale":1.0},"entries":[{"role":"user","time":"2026-01-01T00:00:00Z","title":null,'
    b'"first_line":1,"last_line":10},{"role":"assistant","time":"2026-01-01T00:00:00Z","title":"title",'
    b'"first_line":11,"last_line":15,"entry":"p1:11"}],"codes_bytes":0,'
    b'"part_sizes":[2,3,5,6,8,9,11,12,14,15,17,18,20,21,23,24,26,27,29,30]}'
)


def image_digest(data: bytes) -> str:
    """The checksum kept with a stored image: blake2b-128, hex."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _compact(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def _packed(data: dict[str, Any], tail: bytes) -> bytes:
    deflate = zlib.compressobj(6, zdict=RECORD_ZDICT)
    deflated = deflate.compress(_compact(data)) + deflate.flush()
    return _PACKED + len(deflated).to_bytes(4, "big") + deflated + tail


def _loaded(raw: bytes) -> tuple[Any, bytes]:
    """The JSON of a stored record (packed, deflated or plain) and the raw bytes after it (packed only)."""
    tail = b""
    try:
        if raw[:1] == _PACKED:
            size = int.from_bytes(raw[1:5], "big")
            inflate = zlib.decompressobj(zdict=RECORD_ZDICT)
            body = inflate.decompress(raw[5 : 5 + size]) + inflate.flush()
            return json.loads(body), raw[5 + size :]
        if raw[:1] == _DEFLATED:
            return json.loads(zlib.decompress(raw[1:])), tail
    except zlib.error as exc:
        raise ValueError(f"a page record does not inflate ({exc})") from None
    return json.loads(raw), tail


def _codes_of(data: dict[str, Any], tail: bytes) -> tuple[bytes | None, list[bytes] | None]:
    """A record's line codes and part codes: raw after a packed record's JSON, hex in an older one's."""
    if "codes_bytes" not in data and "part_sizes" not in data:
        codes = bytes.fromhex(data["codes"]) if data.get("codes") is not None else None
        hexed = [bytes.fromhex(part) for part in data["parts"]] if data.get("parts") is not None else None
        return codes, hexed
    size = int(data.get("codes_bytes", 0))
    sizes = [int(n) for n in data.get("part_sizes", [])]
    if len(tail) != size + sum(sizes):
        raise ValueError(f"a page record's codes take {len(tail)} bytes, not the {size + sum(sizes)} it says")
    if "part_sizes" not in data:
        return tail[:size], None
    parts, at = [], size
    for n in sizes:
        parts.append(tail[at : at + n])
        at += n
    return (tail[:size] if "codes_bytes" in data else None), parts


@dataclass
class EntryRecord:
    """One remember call's part of a page: who said it, when, and which of the page's lines it holds."""

    role: str | None
    time: str
    title: str | None
    first_line: int
    last_line: int
    recalled_from: str | None = None
    # "<page id>:<line>" where the remember call began: the same on every page it spans (None before ids)
    entry: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EntryRecord:
        return cls(
            role=data.get("role"),
            time=data["time"],
            title=data.get("title"),
            first_line=int(data["first_line"]),
            last_line=int(data["last_line"]),
            recalled_from=data.get("recalled_from"),
            entry=data.get("entry"),
        )

    def to_json(self) -> dict[str, Any]:
        # Spelled out, not asdict (which copies recursively: 11.5 against 0.4 us an entry, a bulk import
        # writes one per message); tests/test_records.py checks it against asdict, key order included.
        data: dict[str, Any] = {
            "role": self.role,
            "time": self.time,
            "title": self.title,
            "first_line": self.first_line,
            "last_line": self.last_line,
        }
        if self.recalled_from is not None:
            data["recalled_from"] = self.recalled_from
        if self.entry is not None:
            data["entry"] = self.entry
        return data


@dataclass
class SessionRecord:
    """A session: its id in the page indexes, its open page (and how full it is), its page count."""

    sid: int
    created: str
    updated: str
    open_page: str | None = None
    open_rows: int = 0
    open_lines: int = 0
    pages: int = 0

    @classmethod
    def from_bytes(cls, raw: bytes) -> SessionRecord:
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        data.setdefault("updated", data.get("created"))
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_bytes(self) -> bytes:
        return _compact(asdict(self))

    def close_page(self) -> None:
        self.open_page, self.open_rows, self.open_lines = None, 0, 0


@dataclass
class PageRecord:
    """What the archive keeps about one page besides its image (see the module docstring)."""

    id: str
    number: int
    session: str
    created: str
    updated: str
    geometry: Geometry
    codec: str
    sealed: bool = False
    sealed_at: str | None = None
    tier: int = 0
    image_bytes: int = 0
    rows: list[int] = field(default_factory=list)
    lines: int = 0
    continued: bool = False
    continues: bool = False
    characters: int = 0
    text_tokens: int = 0
    title: str | None = None
    entries: list[EntryRecord] = field(default_factory=list)
    recalled_from: str | None = None
    version: int = 0
    image_sha: str | None = None
    codes: bytes | None = None
    codes_key: bytes | None = None
    parts: list[bytes] | None = None

    @classmethod
    def new(cls, page_id: str, number: int, session: str, stamp: str, geometry: Geometry, hot: Tier) -> PageRecord:
        return cls(  # a page begun now has a check code for every line it will hold: codes start empty
            id=page_id,
            number=number,
            session=session,
            created=stamp,
            updated=stamp,
            geometry=geometry,
            codec=hot.codec,
            codes=b"",
            parts=[],
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> PageRecord:
        from optical_memory.render import Geometry

        data, tail = _loaded(raw)
        codes, parts = _codes_of(data, tail)
        return cls(
            id=data["id"],
            number=int(data["number"]),
            session=data["session"],
            created=data["created"],
            updated=data.get("updated", data["created"]),
            geometry=Geometry.from_dict(data["geometry"]),
            codec=data["codec"],
            sealed=bool(data.get("sealed", False)),
            sealed_at=data.get("sealed_at"),
            tier=int(data.get("tier", 0)),
            image_bytes=int(data.get("image_bytes", 0)),
            rows=[int(code) for code in data.get("rows", [])],
            lines=int(data.get("lines", 0)),
            continued=bool(data.get("continued", False)),
            continues=bool(data.get("continues", False)),
            characters=int(data.get("characters", 0)),
            text_tokens=int(data.get("text_tokens", 0)),
            title=data.get("title"),
            entries=[EntryRecord.from_json(entry) for entry in data.get("entries", [])],
            recalled_from=data.get("recalled_from"),
            version=int(data.get("version", 0)),
            image_sha=data.get("image_sha"),
            codes=codes,
            codes_key=bytes.fromhex(data["codes_key"]) if data.get("codes_key") else None,
            parts=parts,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("geometry", "entries")
        }
        data["geometry"] = self.geometry.to_dict()
        data["entries"] = [entry.to_json() for entry in self.entries]
        data["codes"] = self.codes.hex() if self.codes is not None else None
        data["codes_key"] = self.codes_key.hex() if self.codes_key is not None else None
        data["parts"] = [part.hex() for part in self.parts] if self.parts is not None else None
        for optional in ("recalled_from", "codes_key", "parts"):
            if data[optional] is None:
                del data[optional]
        return data

    def to_bytes(self) -> bytes:
        """The stored form: packed, the check codes raw after the deflated JSON (module doc)."""
        data = self.to_json()
        data.pop("codes", None)
        data.pop("parts", None)
        tail = b""
        if self.codes is not None:
            data["codes_bytes"] = len(self.codes)
            tail += self.codes
        if self.parts is not None:
            data["part_sizes"] = [len(part) for part in self.parts]
            tail += b"".join(self.parts)
        return _packed(data, tail)

    def stored(self, data: bytes) -> None:
        """Account for a new stored image: its size, its checksum, and one more version of the page."""
        self.image_bytes = len(data)
        self.image_sha = image_digest(data)
        self.version += 1

    def entry_of(self, line: int) -> EntryRecord | None:
        """The entry (remember call) that holds line `line` of this page."""
        for entry in self.entries:
            if entry.first_line <= line <= entry.last_line:
                return entry
        return None


def check_image(record: PageRecord, data: bytes | None) -> bytes:
    """The page's stored image, after checking it against the checksum kept with it."""
    if data is None:
        raise PageDamaged(f"page {record.id} has no stored image; the archive is damaged (run `optical-memory check`)")
    if record.image_sha is not None and image_digest(data) != record.image_sha:
        raise PageDamaged(
            f"page {record.id}'s stored image does not match its checksum: it is damaged and will not be read "
            "(restore it from an export, or forget the page)"
        )
    return data


def apply_plan(
    record: PageRecord,
    plan: PagePlan,
    entry: EntryRecord,
    codes: bytes | None,
    stamp: str,
    parts: list[bytes] | None = None,
) -> None:
    """Account for an entry's rows written onto the page `record` at `stamp` (the caller stores the image);
    `codes` and `parts` are the check codes of the plan's pieces (`checkcode.codes_for`, `part_codes_for`)."""
    lines_before = record.lines
    if record.lines == 0 and plan.continued:
        record.continued = True
    record.rows.extend(row.code for row in plan.rows)
    record.lines = plan.last_line or record.lines
    record.continues = plan.continues
    record.characters += sum(len(piece) for piece in plan.pieces)
    record.text_tokens += estimate_text_tokens("\n".join(plan.pieces))
    record.entries.append(entry)
    if codes is not None:
        if record.codes is None:  # a page begun before codes existed: its earlier lines have none
            record.codes = NO_CODE * lines_before
        record.codes += codes
    if parts is not None:
        if record.parts is None:  # a page begun before part codes existed: its earlier lines have none
            record.parts = [b""] * lines_before
        record.parts.extend(parts)
    if record.title is None and entry.title:
        record.title = entry.title
    record.updated = stamp
    if plan.sealed:
        record.sealed = True
        record.sealed_at = stamp


def page_info(record: PageRecord, tier: Tier) -> PageInfo:
    """The public description of a page at its current tier."""
    from optical_memory.results import PageInfo

    geometry = record.geometry
    return PageInfo(
        id=record.id,
        session=record.session,
        created=record.created,
        updated=record.updated,
        tier=tier.name,
        tier_index=record.tier,
        sealed=record.sealed,
        lines=record.lines,
        characters=record.characters,
        text_tokens=record.text_tokens,
        image_width=geometry.width,
        image_height=geometry.height,
        image_bytes=record.image_bytes,
        image_format=record.codec,
        image_tokens=claude_image_tokens(geometry.width, geometry.height),
        vision_tokens=deepseek_vision_tokens(geometry.width, geometry.height),
        px_per_char=round(geometry.px_per_char, 2),
        title=record.title,
        recalled_from=record.recalled_from,
    )
