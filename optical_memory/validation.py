"""Checks of the arguments every entry point shares, each failing with an error that says what is valid."""

from __future__ import annotations

import unicodedata

from optical_memory.archive import MAX_PAGE_DIGITS, page_number
from optical_memory.errors import InvalidArgument, PageNotFound, TextTooLarge

__all__ = ["MAX_NAME_BYTES", "MAX_NAME_CHARS", "check_limit", "check_name", "check_page_id", "check_text"]

MAX_NAME_CHARS = 128  # session, role and title names: shown in page headers, so kept short
MAX_NAME_BYTES = 400  # session names are LMDB keys (at most 511 bytes); 128 emoji are 512 bytes of UTF-8


def check_name(kind: str, value: object) -> str:
    """A session, role or title: a non-empty printable string of at most 128 characters (400 UTF-8 bytes)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{kind} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidArgument(f"{kind} must not be empty or blank; give at least one visible character")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{kind} is {len(value)} characters; at most {MAX_NAME_CHARS} are allowed")
    bad = [ch for ch in value if unicodedata.category(ch) in ("Cc", "Cs", "Cn")]
    if bad:
        raise InvalidArgument(
            f"{kind} {value!r} contains control, surrogate or unassigned characters ({bad[0]!r}); "
            "use printable characters"
        )
    size = len(value.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidArgument(
            f"{kind} is {size} bytes of UTF-8; at most {MAX_NAME_BYTES} are allowed (fewer emoji or CJK characters)"
        )
    return value


def check_text(text: object, limit: int) -> str:
    if not isinstance(text, str):
        raise InvalidArgument(f"text must be a string, got {type(text).__name__}")
    if not text:
        raise InvalidArgument("text is empty; remember needs at least one character")
    if len(text) > limit:
        raise TextTooLarge(
            f"text is {len(text):,} characters; one remember call takes at most {limit:,} "
            "(limits.max_text_chars): split it into several calls"
        )
    return text


def check_page_id(page_id: object) -> int:
    """The page number of a well-formed page id; else PageNotFound saying what a page id looks like."""
    number = page_number(page_id)
    if number is None:
        shown = repr(page_id) if not isinstance(page_id, str) or len(page_id) <= 40 else repr(page_id[:40]) + "..."
        raise PageNotFound(
            f"{shown} is not a page id; page ids look like 'p12': 'p' and a number of at most "
            f"{MAX_PAGE_DIGITS} ASCII digits (see list_pages)"
        )
    return number


def check_limit(name: str, value: object, maximum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise InvalidArgument(f"{name} must be between 1 and {maximum} (a whole number), got {value!r}")
    return value
