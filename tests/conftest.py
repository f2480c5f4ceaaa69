"""Shared fixtures, each built on the one before: tmp archive path -> config file -> config -> memory -> server.

The config uses small pages (so a few hundred characters already span several pages, and tests
stay fast) and the template reader, which is exact at the hot tier: tests that use these fixtures
are about the archive, the facade or the server, not OCR.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from optical_memory.config import Config, load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from optical_memory_mcp.app import AppState

# 40 x 12 cells: 11 text lines a page under one header row. Tiers stay the defaults, so pages fade
# only past 8 newer pages in a session (or 2 days): tests that need exact text write fewer.
SMALL_CONFIG = """\
[page]
columns = 40
rows = 12

[archive]
map_size_mib = 64

[reader]
name = "template"
"""


@pytest.fixture(autouse=True)
def _no_optical_memory_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's OPTICAL_MEMORY_* settings (or their archive)."""
    for name in list(os.environ):
        if name.startswith("OPTICAL_MEMORY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def archive_path(tmp_path: Path) -> Path:
    return tmp_path / "archive"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "optical-memory.toml"
    path.write_text(SMALL_CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def config(config_file: Path, archive_path: Path) -> Config:
    return load_config(config_file, archive=archive_path)


@pytest.fixture
def memory(config: Config) -> Iterator[Memory]:
    mem = Memory(config, reader=TemplateReader())
    yield mem
    mem.close()


@pytest.fixture
def server(config: Config, memory: Memory) -> MCPServer[AppState]:
    from optical_memory_mcp.app import build_server

    return build_server(config, memory)
