"""Search, sessions, forget and the MCP fuzz tests, run again on the PostgreSQL archive (same test functions)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from optical_memory.config import Config, load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier
from tests.test_fuzz import (  # noqa: F401  (collected here, with `config` on PostgreSQL)
    test_malformed_calls_get_clear_errors_and_change_nothing,
    test_random_argument_fuzz_never_crashes_the_server,
)
from tests.test_recall import (  # noqa: F401
    CODE,
    LOGS,
    test_bad_queries_are_refused,
    test_forget_a_page_removes_it_from_everything,
    test_forget_a_session,
    test_forget_unknown_targets_fail_clearly,
    test_list_sessions,
    test_newer_pages_rank_first_on_ties,
    test_search_finds_identifiers_buried_in_code_and_logs,
    test_search_stays_bounded_when_terms_are_everywhere,
    test_search_stays_inside_a_session,
)

pytest_plugins = ["tests.pg"]  # the PostgreSQL server and a schema per test


@pytest.fixture
def config(config_file: object, pg_url: str) -> Config:
    """conftest's small-page config (the fuzz tests'), on PostgreSQL."""
    return load_config(str(config_file), environ={"OPTICAL_MEMORY_ARCHIVE_URL": pg_url})


@pytest.fixture
def memory(pg_url: str) -> Iterator[Memory]:
    """test_recall's memory: hot pages only, with its code and log entries."""
    config = replace(load_config(environ={"OPTICAL_MEMORY_ARCHIVE_URL": pg_url}), tiers=(Tier("hot", 1.0),))
    mem = Memory(config, reader=TemplateReader())
    mem.remember(CODE, session="code", title="settings")
    mem.remember(LOGS, session="ops", role="tool")
    yield mem
    mem.close()


def test_forget_vacuums_and_says_it_overwrote_nothing(memory: Memory) -> None:
    """PostgreSQL has no secure delete: forget's VACUUM frees the rows' space and does not claim more."""
    forgotten = memory.forget(session="ops")
    assert forgotten.sessions_removed == ["ops"] and forgotten.erased is None  # never claims an erasure
    report = memory.archive.erase_free_space()
    assert report["vacuumed_tables"] >= 8 and report["overwritten"] is False and report["erased"] is None
    assert memory.search("E1234").hits == []
    assert memory.archive.check() == []
