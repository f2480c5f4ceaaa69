"""Export a session or a whole archive, import it into another archive: nothing changes but the ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from optical_memory.config import load_config
from optical_memory.errors import InvalidArgument, SessionNotFound
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier

TIERS = (Tier("hot", 1.0), Tier("warm", 0.6, "webp", 80, after_pages=2))


def open_memory(path: Path) -> Memory:
    return Memory(replace(load_config(archive=path, environ={}), tiers=TIERS), reader=TemplateReader())


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Memory]:
    mem = open_memory(tmp_path / "source")
    for n in range(4):  # enough pages for some to fade to warm (webp)
        mem.remember("\n".join(f"chapter {n} line {i} token_{n}_{i}" for i in range(70)), session="book", role="user")
    mem.remember("side note about zeppelins", session="notes", title="aside")
    yield mem
    mem.close()


def pages_of(memory: Memory) -> list[tuple[str, bytes, object]]:
    out = []
    for info in reversed(memory.list_pages(limit=200).pages):
        view = memory.view_page(info.id)
        out.append((info.session, view.data, info.model_copy(update={"id": "", "created": "", "updated": ""})))
    return out


@pytest.mark.parametrize("name", ["export", "export.zip"])
def test_export_then_import_is_lossless(source: Memory, tmp_path: Path, name: str) -> None:
    counts = source.export_pages(tmp_path / name)
    assert counts == {"pages": len(source.list_pages(limit=200).pages), "sessions": 2}
    target = open_memory(tmp_path / "target")
    target.remember("already here", session="other")
    result = target.import_pages(tmp_path / name)
    assert result["pages"] == counts["pages"]
    imported = [p for p in pages_of(target) if p[0] != "other"]
    assert imported == pages_of(source)  # same images byte for byte, same metadata
    assert {p.tier for p in target.list_pages(session="book", limit=200).pages} == {"hot", "warm"}
    new_id = result["ids"][source.search("zeppelins").hits[0].page_id]
    hit = target.search("zeppelins").hits[0]
    assert (hit.page_id, hit.lines[0].text) == (new_id, "side note about zeppelins")
    assert target.remember("more notes", session="notes").spans[0].page_id == new_id  # open page stays open
    assert target.archive.check() == []
    target.close()


def test_export_one_session(source: Memory, tmp_path: Path) -> None:
    assert source.export_pages(tmp_path / "notes", session="notes") == {"pages": 1, "sessions": 1}
    with pytest.raises(SessionNotFound):
        source.export_pages(tmp_path / "x", session="ghost")


def test_import_rejects_what_is_not_an_export(source: Memory, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    with pytest.raises(InvalidArgument, match="manifest"):
        source.import_pages(tmp_path / "junk")
    with pytest.raises(InvalidArgument, match="neither"):
        source.import_pages(tmp_path / "missing")
