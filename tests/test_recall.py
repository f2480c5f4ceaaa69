"""Search, sessions and forget over a real archive (template reader: exact at the hot tier)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from optical_memory.config import load_config
from optical_memory.errors import InvalidArgument, PageNotFound, SessionNotFound
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.results import SearchHit
from optical_memory.search import terms
from optical_memory.tiers import Tier

CODE = """\
import os
from app.settings import ConfigLoader

def parse_config(path: str) -> dict:
    loader = ConfigLoader(os.path.join(ROOT, path))
    return loader.load()
"""
LOGS = """\
2026-11-25T10:00:01Z INFO  [worker] job 7f3a9c1e started
2026-11-25T10:00:02Z ERROR [db] E1234 connection refused at 0xdeadbeef (src/app/main.py:88)
2026-11-25T10:00:03Z WARN  [http] HTTP-503 from upstream, retrying
"""


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Memory]:
    config = replace(load_config(archive=tmp_path / "a", environ={}), tiers=(Tier("hot", 1.0),))
    mem = Memory(config, reader=TemplateReader())
    mem.remember(CODE, session="code", title="settings")
    mem.remember(LOGS, session="ops", role="tool")
    yield mem
    mem.close()


def test_terms_cut_identifiers_paths_and_codes() -> None:
    cut = set(terms("parse_config ConfigLoader os.path.join src/app/main.py:88 0xDEADBEEF E1234 HTTP-503"))
    assert {"parse_config", "parse", "config", "configloader", "loader", "os.path.join", "join"} <= cut
    assert {"src/app/main.py:88", "main", "py", "88", "0xdeadbeef", "e1234", "http-503", "503"} <= cut


def matched(hit: SearchHit) -> list[str]:
    """The text of a passage's lines that matched the query, best first (the rest is context)."""
    texts = {line.number: line.text for line in hit.lines}
    return [texts[number] for number in hit.matches]


@pytest.mark.parametrize(
    ("query", "page_line_text"),
    [
        ("parse_config", "def parse_config(path: str) -> dict:"),
        ("ConfigLoader", "from app.settings import ConfigLoader"),
        ("0xdeadbeef", "2026-11-25T10:00:02Z ERROR [db] E1234 connection refused at 0xdeadbeef (src/app/main.py:88)"),
        (
            "E1234 refused",
            "2026-11-25T10:00:02Z ERROR [db] E1234 connection refused at 0xdeadbeef (src/app/main.py:88)",
        ),
        ("main.py", "2026-11-25T10:00:02Z ERROR [db] E1234 connection refused at 0xdeadbeef (src/app/main.py:88)"),
        ("HTTP-503", "2026-11-25T10:00:03Z WARN  [http] HTTP-503 from upstream, retrying"),
        ("7f3a9c1e", "2026-11-25T10:00:01Z INFO  [worker] job 7f3a9c1e started"),
    ],
)
def test_search_finds_identifiers_buried_in_code_and_logs(memory: Memory, query: str, page_line_text: str) -> None:
    result = memory.search(query)
    assert result.hits, f"nothing found for {query!r}"
    best = result.hits[0]
    assert query.split()[0] in matched(best)[0]  # the top hit's matching line holds the identifier itself
    assert page_line_text in [text for hit in result.hits for text in matched(hit)]  # read back exactly
    assert best.tier == "hot" and best.start <= best.matches[0] <= best.end


def test_search_stays_inside_a_session(memory: Memory) -> None:
    assert memory.search("ConfigLoader", session="ops").hits == []
    assert {hit.session for hit in memory.search("ConfigLoader", session="code").hits} == {"code"}
    with pytest.raises(SessionNotFound, match="sessions: 'code', 'ops'"):
        memory.search("x", session="nope")


def test_newer_pages_rank_first_on_ties(memory: Memory) -> None:
    memory.remember("the same token zebra", session="ties")
    memory.remember("x\n" * 70, session="ties")  # seal, so the next entry lands on a newer page
    memory.remember("the next token zebra", session="ties")
    hits = memory.search("zebra").hits
    assert len(hits) == 2 and hits[0].score == hits[1].score
    assert int(hits[0].page_id[1:]) > int(hits[1].page_id[1:])


def test_bad_queries_are_refused(memory: Memory) -> None:
    with pytest.raises(InvalidArgument, match="empty"):
        memory.search("   ")
    with pytest.raises(InvalidArgument, match="no searchable terms"):
        memory.search("?!")
    with pytest.raises(InvalidArgument, match="between 1 and 50"):
        memory.search("x", limit=0)


def test_list_sessions(memory: Memory) -> None:
    sessions = {s.name: s for s in memory.list_sessions().sessions}
    assert set(sessions) == {"code", "ops"}
    assert sessions["code"].pages == 1 and sessions["code"].open_page is not None


def test_forget_a_page_removes_it_from_everything(memory: Memory) -> None:
    page = memory.search("ConfigLoader").hits[0].page_id
    assert memory.forget(page_id=page).forgotten == [page]
    assert memory.search("ConfigLoader").hits == []
    with pytest.raises(PageNotFound):
        memory.view_page(page)
    assert memory.archive.check() == []
    # the session goes on: a new entry opens a fresh page
    assert memory.remember("again", session="code").spans[0].page_id != page


def test_forget_a_session(memory: Memory) -> None:
    result = memory.forget(session="ops")
    assert result.sessions_removed == ["ops"] and result.forgotten
    assert [s.name for s in memory.list_sessions().sessions] == ["code"]
    assert memory.search("E1234").hits == []
    assert memory.archive.check() == []


def test_forget_unknown_targets_fail_clearly(memory: Memory) -> None:
    with pytest.raises(PageNotFound, match="no page 'p99'"):
        memory.forget(page_id="p99")
    with pytest.raises(SessionNotFound, match="no session 'ghost'"):
        memory.forget(session="ghost")
    with pytest.raises(InvalidArgument, match=r"page_id .* or session"):
        memory.forget()
    page = memory.list_pages(session="code").pages[0].id
    with pytest.raises(InvalidArgument, match="belongs to session 'code'"):
        memory.forget(page_id=page, session="ops")


def test_forgotten_space_is_reused(memory: Memory, tmp_path: Path) -> None:
    def cycle() -> None:
        memory.remember("\n".join(f"bulk line {i} " + "q" * 80 for i in range(400)), session="bulk")
        memory.forget(session="bulk")

    # Forget's erase fills and frees the free pages, and LMDB reuses a page only a couple of
    # transactions after it was freed: the file settles a few cycles later than it did without the
    # erase (measured: 8 cycles, about 180 KB above), then must stay put however long it runs.
    for _ in range(8):
        cycle()
    size = (tmp_path / "a" / "data.mdb").stat().st_size
    for _ in range(6):
        cycle()
    assert (tmp_path / "a" / "data.mdb").stat().st_size <= size * 1.1


class RowNamer:
    """A stand-in reader (OCR is not the subject here): row r reads as "row r"."""

    name = "row-namer"

    def read_rows(self, image: object, geometry: object, rows: list[int]) -> list[str]:
        return [f"row {r}" for r in rows]


def test_recall_reconsolidates_faded_pages_when_enabled(tmp_path: Path) -> None:
    tiers = (Tier("hot", 1.0), Tier("warm", 0.6, "webp", 80, after_pages=1))
    base = replace(load_config(archive=tmp_path / "r", environ={}), tiers=tiers)
    for enabled in (False, True):
        mem = Memory(replace(base, recall_reconsolidates=enabled), reader=RowNamer())
        mem.remember("x\n" * 70, session=f"s{enabled}")  # p: sealed, then warm once the next page exists
        mem.remember("y\n" * 70, session=f"s{enabled}")
        faded = mem.list_pages(session=f"s{enabled}", limit=200).pages[-1]
        assert faded.tier == "warm"
        read = mem.read_lines(faded.id, 2, 3)
        assert [line.text for line in read.lines] == ["row 2", "row 3"]
        if not enabled:
            assert read.recalled_into == []
            mem.close()
            continue
        fresh = mem.page_info(read.recalled_into[0].page_id)
        assert fresh.tier == "hot" and fresh.recalled_from == faded.id
        assert mem.page_info(faded.id).tier == "warm"  # the original keeps fading
        mem.close()


def test_search_stays_bounded_when_terms_are_everywhere(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    import optical_memory.search as search

    monkeypatch.setattr(search, "MAX_SCAN", 5)  # as if "common" were on millions of lines
    monkeypatch.setattr(search, "SCAN_BUDGET", 5)
    for n in range(12):
        memory.remember(f"common filler line {n}", session="bulk")
    memory.remember("common needle_7f3a here", session="bulk")
    for n in range(12, 20):
        memory.remember(f"common filler line {n}", session="bulk")
    # a rare term picks the candidates; the common one is only looked up on them
    hits = memory.search("common needle_7f3a").hits
    assert matched(hits[0]) == ["common needle_7f3a here"]
    # every term common: the newest lines are read, at most MAX_SCAN of them
    common = memory.search("common filler", limit=50, context=0).hits
    assert 0 < len(common) <= 5
    assert {text for hit in common for text in matched(hit)} <= {f"common filler line {n}" for n in range(15, 20)}
