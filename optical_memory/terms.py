"""Terms: how text and queries are cut into the search index's terms, and how a term is hashed.

Terms are cut for how agents search: words; identifiers whole and in parts (``snake_case`` ->
``snake_case``, ``snake``, ``case``; ``camelCase`` -> ``camelcase``, ``camel``, ``case``); dotted
names and paths whole, by component and by file or host (``os.path.join``; ``src/app/main.py:88`` ->
also ``main.py``, ``main``; ``batch-scheduler:8080`` -> also ``batch-scheduler``, ``8080``); numbers,
hex ids and error codes whole (``0x1f3a``, ``E1234``, ``HTTP-503``). Everything is lower-cased.

The index stores no term itself: each becomes an 8-byte keyed hash (`TermHasher`, blake2b under
`checkcode.derive_key(archive_key, "terms")`), the same at `remember` time and at search time.
"""

from __future__ import annotations

import functools
import hashlib
import re

from optical_memory.archive import ArchiveTxn
from optical_memory.checkcode import derive_key
from optical_memory.errors import InvalidArgument
from optical_memory.postings import HASH_BYTES

__all__ = ["MAX_QUERY_CHARS", "MAX_QUERY_TERMS", "MAX_TERM", "TermHasher", "query_terms", "query_words", "terms"]

TERMS_PURPOSE = "terms"
MAX_TERM = 64  # longer runs (base64 blobs, minified code) are indexed by their first 64 characters
# A query is a few words or identifiers; a pasted page would cost seconds and hundreds of MB.
MAX_QUERY_CHARS = 1_000
MAX_QUERY_TERMS = 48
_COMPOUND = re.compile(r"\w+(?:[./\\:@#-]\w+)*")
_STRONG, _WEAK = re.compile(r"[/\\:@#]"), re.compile(r"[.-]")  # paths, hosts, ports; then dotted, hyphenated
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_MIXED = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]")  # where _CAMEL has parts to find


def terms(text: str) -> list[str]:
    """The search terms of a text, with repeats (a term's count is its frequency)."""
    out: list[str] = []
    for whole in _COMPOUND.findall(text):  # whole matches (the pattern has no groups): no match objects made
        out.extend(_variants(whole))
    return out


@functools.lru_cache(maxsize=1 << 16)
def _variants(whole: str) -> tuple[str, ...]:
    """The distinct terms of one compound word: words repeat, so each is cut once (bulk import's hot path)."""
    if whole.isalnum() and (whole.islower() or not _MIXED.search(whole)):
        return (whole.lower()[:MAX_TERM],)  # a plain word: nothing to split
    variants = {whole}
    for chunk in _STRONG.split(whole):  # "batch-scheduler:8080" -> "batch-scheduler", "8080"
        variants.add(chunk)
        for part in _WEAK.split(chunk):
            variants.add(part)
            pieces = [p for p in part.split("_") if p]
            variants.update(pieces)
            for piece in pieces:
                if _MIXED.search(piece):  # camelCase / HTTPServer
                    variants.update(_CAMEL.findall(piece))
    return tuple(v.lower()[:MAX_TERM] for v in variants if v)


def query_terms(query: object) -> list[str]:
    """The distinct terms of a search query, or InvalidArgument saying what a valid query is."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgument("query is empty; give words, identifiers, paths, numbers or error codes")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument(
            f"query is {len(query):,} characters; at most {MAX_QUERY_CHARS:,} are allowed: "
            "search for the few words or identifiers that matter"
        )
    wanted = list(dict.fromkeys(terms(query)))
    if not wanted:
        raise InvalidArgument(f"query {query[:80]!r} has no searchable terms (letters, digits or identifiers)")
    if len(wanted) > MAX_QUERY_TERMS:
        raise InvalidArgument(
            f"query has {len(wanted)} distinct terms (identifiers count whole and by part); at most "
            f"{MAX_QUERY_TERMS} are allowed: search for fewer words"
        )
    return wanted


def query_words(query: str) -> list[list[str]]:
    """The query's words, each as its terms with the whole word first (``SendGrid``: sendgrid, send, grid)."""
    words = []
    for match in _COMPOUND.finditer(query):
        whole = match.group(0).lower()[:MAX_TERM]
        words.append([whole, *(t for t in dict.fromkeys(terms(match.group(0))) if t != whole)])
    return words


class TermHasher:
    """Keyed 8-byte hashes of terms: the keyed state is made once and copied per term."""

    def __init__(self, tx: ArchiveTxn) -> None:
        key = derive_key(tx.archive_key(), TERMS_PURPOSE)
        self._keyed = hashlib.blake2b(key=key, digest_size=HASH_BYTES, person=b"om-terms-v1")

    def __call__(self, term: str) -> bytes:
        h = self._keyed.copy()
        h.update(term.encode("utf-8", "surrogatepass"))
        return h.digest()
