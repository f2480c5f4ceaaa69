"""Check codes: keyed, short, exact-text sensitive, and one per line piece in line order."""

from __future__ import annotations

import random

import pytest

from optical_memory.checkcode import (
    CODE_BYTES,
    LINE_CODES,
    LineHasher,
    code_at,
    codes_for,
    derive_key,
    line_code,
    line_key,
)

ARCHIVE_KEY = bytes(range(32))


def test_derived_keys_differ_by_purpose_and_by_archive() -> None:
    a = derive_key(ARCHIVE_KEY, LINE_CODES)
    assert a == derive_key(ARCHIVE_KEY, LINE_CODES) == line_key(ARCHIVE_KEY)
    assert len(a) == 32
    assert a != derive_key(ARCHIVE_KEY, "terms")
    assert a != derive_key(bytes(32), LINE_CODES)
    assert a != ARCHIVE_KEY


def test_bad_keys_and_purposes_are_refused_with_what_is_valid() -> None:
    with pytest.raises(ValueError, match="16 to 64 bytes, got 4 bytes"):
        derive_key(b"abcd", LINE_CODES)
    with pytest.raises(ValueError, match="non-empty string"):
        derive_key(ARCHIVE_KEY, "")
    with pytest.raises(ValueError, match="16 to 64 bytes, got str"):
        line_code("not bytes", "text")  # type: ignore[arg-type]


def test_a_code_is_short_and_changes_with_any_character_or_key() -> None:
    key = line_key(ARCHIVE_KEY)
    text = "DEPLOY_KEY=sk-4f9Qx  Dröge ‘quoted’ `x`"
    code = line_code(key, text)
    assert len(code) == CODE_BYTES
    assert len(line_code(key, text * 300)) == CODE_BYTES  # never the text, whatever its length
    for i in range(len(text)):
        for other in ("e", "õ", " ", ""):
            changed = text[:i] + other + text[i + 1 :]
            if changed != text:
                assert line_code(key, changed) != code, (i, other)
    assert line_code(key, text + " ") != code  # a trailing space is text too
    assert line_code(line_key(bytes(32)), text) != code


def test_no_collisions_among_many_distinct_lines() -> None:
    rng = random.Random(3)
    key = line_key(ARCHIVE_KEY)
    texts = {"".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(1, 12))) for _ in range(20000)}
    assert len({line_code(key, t) for t in texts}) == len(texts)


def test_lone_surrogates_and_escaped_characters_hash_as_themselves() -> None:
    key = line_key(ARCHIVE_KEY)
    assert line_code(key, "a\ud800b") != line_code(key, "a\ufffdb")
    assert line_code(key, "tab\there") != line_code(key, "tab¤9;here")


def test_hasher_and_page_codes_agree_with_line_code() -> None:
    key = line_key(ARCHIVE_KEY)
    pieces = ["first line", "", "third \t line", "x" * 250]
    codes = codes_for(key, pieces)
    assert len(codes) == len(pieces) * CODE_BYTES
    hasher = LineHasher(key)
    for i, piece in enumerate(pieces):
        assert code_at(codes, i) == line_code(key, piece) == hasher.code(piece)


def test_codes_are_the_ones_stored_pages_keep() -> None:
    """Archives keep these codes: a faster hasher must give the very bytes the first one did (these values
    were made by the code of 1963f6f), lone surrogates and escapes included."""
    key = line_key(ARCHIVE_KEY)
    hasher = LineHasher(key)
    for text, stored in [("Dröge \ud800 ¤301; x", "98f2914b454d"), ("", "591d1bc6e85c")]:
        assert hasher.code(text) == line_code(key, text) == bytes.fromhex(stored)


def test_code_at_refuses_what_is_not_there() -> None:
    codes = codes_for(line_key(ARCHIVE_KEY), ["a", "b"])
    with pytest.raises(IndexError, match=r"indices 0\.\.1"):
        code_at(codes, 2)
    with pytest.raises(ValueError, match="not a multiple"):
        code_at(codes[:-1], 0)
