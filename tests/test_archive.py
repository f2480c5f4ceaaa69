"""The LMDB archive: map growth from a tiny map, several processes writing at once."""

from __future__ import annotations

import multiprocessing
import random
from dataclasses import replace
from pathlib import Path

from optical_memory.archive import Archive
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.tiers import Tier


def test_tiny_map_grows_without_losing_or_duplicating_a_write(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "a", map_size_mib=1, max_map_size_mib=256)
    config = replace(load_config(archive=tmp_path / "a", environ={}))
    memory = Memory(config, archive=archive, reader=TemplateReader())
    rng = random.Random(1)  # varied text: page images must add up to several MiB, well past the 1 MiB map
    noise = ["".join(rng.choice("abcdefghij |-_0123456789") for _ in range(6000)) for _ in range(40)]
    results = [memory.remember(f"entry {n}\n" + noise[n], session="grow") for n in range(40)]
    assert archive.env.info()["map_size"] > 1 << 20
    ids = [span.page_id for result in results for span in result.spans]
    listed = [p.id for p in memory.list_pages(session="grow", limit=200).pages]
    assert sorted(set(ids), key=lambda p: int(p[1:])) == sorted(listed, key=lambda p: int(p[1:]))
    first = results[-1].spans[0]
    assert memory.read_lines(first.page_id, first.start, first.start).lines[0].text == "entry 39"
    memory.close()


def _hot_only(path: str) -> Memory:
    """Pages never fade here: the template reader is exact only at the hot tier."""
    config = replace(load_config(archive=path, environ={}), tiers=(Tier("hot", 1.0),))
    return Memory(config, reader=TemplateReader())


def _writer(path: str, session: str, count: int) -> None:
    memory = _hot_only(path)
    for n in range(count):
        memory.remember(f"{session} entry {n}\n" + "y" * 2500, session=session)
    memory.close()


def test_two_processes_write_one_archive_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared")
    Archive(path).close()  # created up front, as a first server would
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(path, name, 25)) for name in ("left", "right")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    memory = _hot_only(path)
    for session in ("left", "right"):
        pages = memory.list_pages(session=session, limit=200).pages
        firsts: list[str] = []
        for page in reversed(pages):
            lines = memory.read_lines(page.id).lines
            firsts += [line.text for line in lines if line.text.startswith(session)]
        assert firsts == [f"{session} entry {n}" for n in range(25)]  # none lost, in order
    memory.close()
