"""The facade's behavioural tests, run again on the PostgreSQL archive (the same test functions).

Each test module's own fixtures build a `Memory` from `config` (or a helper): here `config` names a
fresh PostgreSQL archive instead of a folder, so every assertion is made against PostgreSQL. Tests
about LMDB's files (modes, raw bytes of data.mdb, a full map) stay LMDB's; their PostgreSQL
counterparts are below or in test_postgres_archive.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

import tests.test_memory as memory_tests
import tests.test_transfer as transfer_tests
import tests.test_writing as writing_tests
from optical_memory.config import Config, load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
from tests.test_memory import (  # noqa: F401  (test functions and fixtures, collected here with the PG config)
    TIERS,
    page_text,
    test_bad_input_gets_a_clear_error,
    test_entries_share_the_open_page_and_continue_line_numbers,
    test_fade_by_age,
    test_list_pages_newest_first_with_cursor,
    test_pages_fade_tier_by_tier_and_stay_readable,
    test_persists_across_reopen,
    test_remember_then_read_back_exactly,
    test_sessions_fill_their_own_pages,
    test_view_page_returns_the_stored_image,
)
from tests.test_transfer import (  # noqa: F401
    test_export_one_session,
    test_export_then_import_is_lossless,
    test_one_bad_page_imports_nothing,
)
from tests.test_writing import (  # noqa: F401
    test_a_batch_commits_whole_or_not_at_all,
    test_an_entry_reads_back_whole_across_pages_and_verified,
)


def pg_config(url: str) -> Config:
    return load_config(environ={"OPTICAL_MEMORY_ARCHIVE_URL": url})


pytest_plugins = ["tests.pg"]  # the PostgreSQL server and a schema per test
memory = memory_tests.memory  # test_memory's fixture, over the `config` below
source, target = transfer_tests.source, transfer_tests.target  # test_transfer's, over `open_memory` below


@pytest.fixture
def config(pg_url: str) -> Config:
    return replace(pg_config(pg_url), tiers=TIERS)


@pytest.fixture(autouse=True)
def _writing_tests_on_postgres(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """test_writing's tests make their memory with `hot_only(path)`: make it on PostgreSQL."""

    def hot_only(path: Path) -> Memory:
        return Memory(replace(pg_config(pg_url), tiers=(Tier("hot", 1.0),)), reader=TemplateReader())

    monkeypatch.setattr(writing_tests, "hot_only", hot_only)


@pytest.fixture(autouse=True)
def _transfer_tests_on_postgres(named_schema_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """test_transfer's source and target archives (`open_memory(path)`): one schema each, on PostgreSQL."""

    def open_memory(path: Path) -> Memory:
        url = named_schema_url(f"{path.name}_{uuid.uuid4().hex[:8]}")
        return Memory(replace(pg_config(url), tiers=transfer_tests.TIERS), reader=TemplateReader())

    monkeypatch.setattr(transfer_tests, "open_memory", open_memory)


def test_the_backend_under_test_is_postgres(memory: Memory) -> None:
    assert type(memory.archive).__name__ == "PgArchive"


def test_sealed_pages_keep_no_source_text_in_any_table(memory: Memory, pg_url: str) -> None:
    marker = "ZebraQuokkaMarker"
    memory.remember("\n".join(f"{marker} {i}" for i in range(80)))
    memory.remember(page_text(1))
    with psycopg.connect(pg_url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        assert "om_pages" in tables and "om_images" in tables
        for table in tables:
            rows = conn.execute(psycopg.sql.SQL("SELECT * FROM {}").format(psycopg.sql.Identifier(table))).fetchall()
            assert all(marker.encode() not in bytes(v) for row in rows for v in row if isinstance(v, bytes)), table


def test_two_facades_on_one_database_see_each_others_entries(config: Config) -> None:
    """Two servers (two hosts) on one database: one memory, in the order the writes committed."""
    a, b = Memory(config, reader=TemplateReader()), Memory(config, reader=TemplateReader())
    try:
        a.remember("from a", session="shared")
        b.remember("from b", session="shared")
        a.remember("a again", session="shared")
        lines = [line.text for line in b.read_lines("p1").lines]
        assert lines == ["from a", "from b", "a again"]
        assert a.archive.check() == [] and b.archive.check() == []
    finally:
        a.close()
        b.close()


def test_background_fader_fades_what_remember_left_hot(memory: Memory) -> None:
    """test_memory's fader test requests fading while it still writes, which on a slower backend lets
    the fader demote a page before its "nothing faded inline" check: here every write comes first."""
    from optical_memory.fading import BackgroundFader

    sealed = [p for n in range(5) for p in memory.remember(page_text(n), fade=False).pages_sealed]
    assert sealed and all(p.tier == "hot" for p in memory.list_pages(limit=200).pages)  # nothing faded inline
    fader = BackgroundFader(memory.fade)
    fader.request("default")
    assert fader.wait_idle(timeout=60)
    tiers = [p.tier for p in memory.list_pages(limit=200).pages]
    assert "warm" in tiers and "cold" in tiers
    fader.close()
