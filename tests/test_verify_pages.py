"""Verified reading with the shipped reader on real faded pages: exact, or honestly marked unverified.

These use the trained reader (OCR is what is under test) and the archive's own fading chain.
"""

from __future__ import annotations

import dataclasses
import io
import random
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from optical_memory.checkcode import codes_for, line_key, part_codes_for
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.pages import PageFormat, plan_entry
from optical_memory.readers.trained import TrainedReader
from optical_memory.records import PageRecord
from optical_memory.render import Renderer
from optical_memory.results import Span
from optical_memory.tiers import decode_image, demote, encode_image
from optical_memory.training.evaluate import RECOMMENDED_TIERS
from optical_memory.transcribe import transcribe_lines

KEY = line_key(bytes(range(32)))
NAMES = ("Dröge", "Ærøskøbing", "Dvořák", "Łukasz", "Þórður", "Müller", "Šťastný", "Ðorđe", "Ångström")
GREEK = "αβγδεζηθικλμνξοπρστυφχψωΔΘΛΞΠΣΦΨΩ"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщыэюяБГДЖИЛПФЦШЭЮЯ"
ESCAPED = ("\t", "日本", "e\u0301", "🙂", "¤", "\u00a0")


@pytest.fixture(scope="module")
def reader() -> TrainedReader:
    return TrainedReader()


def identifier_line(rng: random.Random) -> str:
    """Keys, hex, UUIDs, paths, names with accents, Greek, Cyrillic, curly quotes, backticks, escapes."""
    b62 = string.ascii_letters + string.digits

    def pick(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    facts = [
        f'API_KEY="sk-{pick(b62, 24)}"',
        f"commit {pick('0123456789abcdef', rng.choice([7, 12, 40]))}",
        f"{pick('0123456789abcdef', 8)}-{pick('0123456789abcdef', 4)}-4{pick('0123456789abcdef', 3)}",
        f"/srv/app-{rng.randint(0, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}/lib/{pick('abcdefgh_', 8)}.py",
        f"`{pick(string.ascii_lowercase, 5)}_{pick(string.ascii_lowercase, 4)}()` returns ‘{rng.choice(NAMES)}’",
        f"{rng.choice(NAMES)} “{pick(GREEK, rng.randint(3, 8))}” {pick(CYRILLIC, rng.randint(3, 8))}",
        f"HttpClient{pick(string.ascii_uppercase, 1)}{pick(string.ascii_lowercase, 5)}:{rng.randint(1024, 65535)}",
        f"x{rng.choice(ESCAPED)}y {pick(b62, 6)}",
    ]
    return " ".join(rng.sample(facts, rng.randint(1, 3)))


def faded_page(lines: list[str], tiers: int, parts: bool = False) -> tuple[PageRecord, bytes, list[str]]:
    """A page of `lines` as `remember` lays it, with its check codes (and part codes, as `remember` writes
    them today, with `parts`), faded through the first `tiers` tiers."""
    renderer = Renderer(PageFormat())
    plan = plan_entry(lines, lambda continued: "user · test", renderer.format, None)[0]
    record = PageRecord(
        id="p1",
        number=1,
        session="test",
        created="2026-11-26T00:00:00Z",
        updated="2026-11-26T00:00:00Z",
        geometry=renderer.geometry,
        codec="png",
        rows=[row.code for row in plan.rows],
        lines=len(plan.pieces),
        codes=codes_for(KEY, plan.pieces),
        parts=part_codes_for(KEY, plan.pieces) if parts else None,
    )
    data, geometry = encode_image(renderer.render(plan.rows), RECOMMENDED_TIERS[0]), renderer.geometry
    for tier in RECOMMENDED_TIERS[1:tiers]:
        data, geometry = demote(data, geometry, tier)
    return dataclasses.replace(record, geometry=geometry), data, plan.pieces


def damage_cell(record: PageRecord, data: bytes, row: int, column: int) -> bytes:
    """The stored image with the pixels of one cell inverted (ink where paper was), stored again."""
    pixels = np.array(decode_image(data))
    left, top, right, bottom = record.geometry.row_box(row)
    width = (right - left) / record.geometry.columns
    x0, x1 = int(left + column * width), int(np.ceil(left + (column + 1) * width))
    pixels[int(top) : int(np.ceil(bottom)), x0:x1] = 255 - pixels[int(top) : int(np.ceil(bottom)), x0:x1]
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "WEBP", lossless=True)
    return out.getvalue()


def test_a_damaged_cell_on_a_frost_page_is_never_verified_and_its_column_is_named(reader: TrainedReader) -> None:
    """The part codes say which run of cells fails: a damaged cell is named there even where the reader is
    sure of what it misread (an inverted cell reads as a block glyph)."""
    lines = ["sha 4f9a2c1e7b", "id 0b7e 42ac 9d1f", "port 8443 host db-7"]
    record, data, _ = faded_page(lines, tiers=5, parts=True)
    before = transcribe_lines(reader, record, data, [1, 2, 3], key=KEY)
    assert [(line.verified, line.text) for line in before] == [(True, text) for text in lines]
    for number, column in [(1, 6), (2, 4), (3, 6)]:
        damaged = damage_cell(record, data, row=number, column=column)  # row 0 is the entry header
        line = transcribe_lines(reader, record, damaged, [number], key=KEY)[0]
        assert line.verified is False, line
        assert column in line.uncertain, line
        assert line.text != lines[number - 1]


def test_pages_without_codes_or_without_a_key_read_unverified(reader: TrainedReader) -> None:
    lines = ["plain text", "a\tb ¤ 日本"]
    record, data, _ = faded_page(lines, tiers=1)
    for verified in (
        transcribe_lines(reader, dataclasses.replace(record, codes=None), data, [1, 2], key=KEY),
        transcribe_lines(reader, record, data, [1, 2]),
    ):
        assert [(line.verified, line.text, line.uncertain) for line in verified] == [(None, t, []) for t in lines]


def test_escapes_on_a_hot_page_verify_exactly(reader: TrainedReader) -> None:
    lines = ["tab\there", "e\u0301 and 日本 and 🙂", "literal ¤A4; mark", "trailing space ", "\ud800 lone", ""]
    record, data, pieces = faded_page(lines, tiers=1)
    read = transcribe_lines(reader, record, data, range(1, len(pieces) + 1), key=KEY)
    assert [(line.verified, line.text) for line in read] == [(True, text) for text in lines]


def read_spans(memory: Memory, spans: list[Span]) -> list[tuple[str, bool | None, str]]:
    """Every line of a remembered text, read back: (text, verified, tier); a line split across pages joined."""
    out: list[tuple[str, bool | None, str]] = []
    joining = False
    for span in spans:
        read = memory.read_lines(span.page_id, span.start, span.end)
        for line in read.lines:
            if joining:
                previous, verified, _ = out.pop()
                out.append((previous + line.text, line.verified if verified is True else verified, read.tier))
            else:
                out.append((line.text, line.verified, read.tier))
            joining = False
        joining = span.continues
    return out


@pytest.mark.parametrize(("days", "tier", "least_verified"), [(100, "cold", 0.95), (400, "frost", 0.1)])
def test_identifier_lines_faded_read_back_exact_or_unverified(
    tmp_path: Path, reader: TrainedReader, days: int, tier: str, least_verified: float
) -> None:
    """A thousand identifier-heavy lines remembered and faded: every line marked verified is exact.

    At cold nearly every line verifies; at frost today's reader recovers only part of such lines
    (bench/bench_verify.py has the figures), and the rest must come back marked unverified.
    """
    memory = Memory(load_config(None, archive=tmp_path / "archive"), reader=reader)
    try:
        rng = random.Random(days)
        blocks = [[identifier_line(rng) for _ in range(250)] for _ in range(4)]
        remembered = [(lines, memory.remember("\n".join(lines), session="s").spans) for lines in blocks]
        assert memory.fade("s", now=datetime.now(UTC) + timedelta(days=days)) > 0
        by_tier: dict[str, list[bool | None]] = {}
        for lines, spans in remembered:
            read = read_spans(memory, spans)
            assert len(read) == len(lines)
            for truth, (text, verified, at) in zip(lines, read, strict=True):
                assert verified is not None
                assert verified is False or text == truth, (truth, text)
                by_tier.setdefault(at, []).append(verified)
        assert set(by_tier) == {tier, "hot"}  # sealed pages faded; the open page stays hot
        assert all(by_tier["hot"])
        faded = by_tier[tier]
        assert len(faded) > 800
        assert sum(faded) >= least_verified * len(faded)  # verification is on, and finds what it can
    finally:
        memory.close()
