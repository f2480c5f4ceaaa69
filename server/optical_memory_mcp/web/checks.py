"""Arguments from the address, validated as the tools validate theirs, before any reaches the facade."""

from __future__ import annotations

from optical_memory.errors import InvalidArgument
from optical_memory.validation import check_name, check_page_id

__all__ = ["MAX_QUERY_CHARS", "page_id_arg", "query_arg", "session_arg"]

MAX_QUERY_CHARS = 1000  # the search box's maxlength; a query is words, not a document


def page_id_arg(value: str | None) -> str:
    """A page id (or a cursor, which is one): 'p' and a number, as the tools take it."""
    check_page_id(value)
    assert isinstance(value, str)
    return value


def session_arg(value: str | None) -> str:
    """A session name as the tools take it: printable, at most 128 characters (400 bytes)."""
    if value is None:
        raise InvalidArgument("no session given: open one from the sessions list")
    return check_name("session", value)


def query_arg(value: str | None) -> str:
    query = (value or "").strip()
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"the query has {len(query):,} characters; at most {MAX_QUERY_CHARS:,} are searched")
    return query
