"""Search hits read like context: passages with their entry's role, time and title; repeats folded.

Uses the shared small-page config (11 text lines a page) and the template reader (exact at hot).
"""

from __future__ import annotations

from typing import NoReturn

import pytest

from optical_memory.errors import InvalidArgument
from optical_memory.memory import Memory
from optical_memory.results import SearchHit


def _texts(hit: SearchHit) -> dict[int, str]:
    return {line.number: line.text for line in hit.lines}


def test_a_hit_is_the_matching_line_with_context_and_its_entry(memory: Memory) -> None:
    lines = [f"plain line {n}" for n in range(1, 10)]
    lines[4] = "the needle is here"
    first = memory.remember("\n".join(lines), session="s", role="assistant", title="notes").spans[0].start
    needle = first + 4
    hit = memory.search("needle").hits[0]
    assert (hit.start, hit.end, hit.matches) == (needle - 2, needle + 2, [needle])
    assert _texts(hit) == {first + n: lines[n] for n in range(2, 7)}
    assert (hit.role, hit.title) == ("assistant", "notes") and hit.time is not None
    assert {(line.role, line.title) for line in hit.lines} == {("assistant", "notes")}
    narrow = memory.search("needle", context=0).hits[0]
    assert (narrow.start, narrow.end) == (needle, needle) and [line.text for line in narrow.lines] == [lines[4]]
    assert memory.search("needle").context == 2


def test_context_is_clipped_to_the_page_and_entries_keep_their_own_role(memory: Memory) -> None:
    memory.remember("question about the needle?", session="s", role="user")
    memory.remember("answer line one\nanswer line two", session="s", role="assistant")
    hit = memory.search("needle").hits[0]
    assert hit.start == 1 and hit.role == "user"  # nothing before line 1
    assert [line.role for line in hit.lines] == ["user", "assistant", "assistant"]


def test_matching_lines_close_together_merge_into_one_passage(memory: Memory) -> None:
    text = "needle one\nfiller a\nfiller b\na needle in the haystack\nfiller c"
    first = memory.remember(text, session="s").spans[0].start
    hits = memory.search("needle haystack").hits
    assert len(hits) == 1
    assert sorted(hits[0].matches) == [first, first + 3] and hits[0].matches[0] == first + 3  # best first
    assert (hits[0].start, hits[0].end) == (first, first + 4)


def test_identical_lines_on_other_pages_fold_into_one_hit(memory: Memory) -> None:
    pages = [memory.remember("the deploy key is K7Q2-XR9", session=f"s{n}").spans[0].page_id for n in range(3)]
    memory.remember("rotated K7Q2-XR9 yesterday, see the runbook", session="other")
    hits = memory.search("K7Q2-XR9").hits
    folded = [hit for hit in hits if "the deploy key is K7Q2-XR9" in _texts(hit).values()]
    assert len(folded) == 1 and len(hits) == 2
    assert folded[0].duplicates == 2
    assert sorted([folded[0].page_id, *folded[0].also_on]) == sorted(pages)


def test_context_and_query_bounds_are_enforced(memory: Memory) -> None:
    memory.remember("something to find", session="s")
    for bad in (-1, 11, "2", True):
        with pytest.raises(InvalidArgument, match="context must be a whole number between 0 and 10"):
            memory.search("something", context=bad)  # type: ignore[arg-type]

    def no_work(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("a query over the limit reached the index (it took 10.7 s and 965 MB)")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("optical_memory.passages.rank", no_work)  # refused before any work
        with pytest.raises(InvalidArgument, match="16,384 characters; at most 1,000 are allowed"):
            memory.search("word " * 3276 + "word")


def test_a_damaged_page_is_skipped_not_fatal(memory: Memory) -> None:
    damaged = memory.remember("needle on a page that will be damaged", session="a").spans[0].page_id
    memory.remember("needle on a healthy page", session="b")
    memory.archive.write(lambda tx: tx.put_image(damaged, b"\x89PNG not an image any more"))
    hits = memory.search("needle").hits
    assert [hit.session for hit in hits] == ["b"]
