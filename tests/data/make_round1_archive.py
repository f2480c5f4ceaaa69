"""Build the first round's archive fixture (tests/data/round1-archive.tar.gz) with the first round's code.

Archives written by the code of commit abfcfaa (the first round) must keep opening and working with
today's code; `tests/test_old_archive.py` checks that on the archive this script builds. Run it with
the OLD package on the path, never today's (it refuses to run otherwise)::

    git -C /work/main worktree add /tmp/om-round1 abfcfaa
    PYTHONPATH=/tmp/om-round1:/tmp/om-round1/server /work/main/.venv/bin/python \\
        tests/data/make_round1_archive.py --out tests/data/round1-archive.tar.gz
    git -C /work/main worktree remove /tmp/om-round1

What it writes (inside the tarball, under ``round1/``):

    archive/data.mdb, lock.mdb   the archive as the old code left it (never compacted or touched since)
    config.toml                  the old code's config: small after_pages, so pages sit at every tier
    expected.json                what was remembered: the exact text of every line of every page,
                                 each entry's text and where its parts lie, the tiers the old code
                                 listed, and the pages the old code forgot (with a string only they held)

The old code kept no check codes, no image checksums, no entry ids and a plain-term search index
(layout 1): exactly what today's code must read, upgrade and keep.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import optical_memory
import optical_memory.memory as old_memory
from optical_memory import records as old_records
from optical_memory.config import load_config

# after_pages 2..5: with an open page at the top of a session, its newest sealed page stays hot and the
# four before it are warm, cool, cold and frost. after_days is a century so that no test date moves a
# page by age unless a test asks for it (memory.fade(now=...)).
CONFIG = """\
# the first round's config format (no [[tiers]] levels): today's code must still load it.
# 32 rows a page instead of 64: half the bytes a page, so the fixture stays small
[page]
rows = 32

[archive]
map_size_mib = 64

[reader]
name = "trained"

[[tiers]]
name = "hot"
scale = 1.0
codec = "png"

[[tiers]]
name = "warm"
scale = 0.75
codec = "webp"
lossless = true
after_pages = 2
after_days = 36500

[[tiers]]
name = "cool"
scale = 0.5
codec = "webp"
lossless = true
after_pages = 3
after_days = 36600

[[tiers]]
name = "cold"
scale = 0.35
codec = "webp"
lossless = true
after_pages = 4
after_days = 36700

[[tiers]]
name = "frost"
scale = 0.21
codec = "webp"
lossless = true
after_pages = 5
after_days = 36800
"""

SAID = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # entries keep a time of their own (as imports do)

RICH = [
    "Crème brûlée à la café: naïve résumé, façade, Ångström, Øresund, Straße, ŽluŤoučký kůň",
    "東京の天気は晴れです。会議は明日の午後三時から。",
    "Deploy went fine 🚀✨ (coffee ☕ after), 👍🏽 from the team",
    "col1\tcol2\tcol3\t\tend",
    "a line with trailing spaces   ",
    "    indented code: return {'ok': True}  # done",
    "",
    "Ελληνικά και русский текст, and “curly quotes” with — dashes … and ellipses",
]

IDENTIFIERS = [
    "API key sk_live_51HqZ2eKx9vTbQ7 rotated; old key revoked at 2026-11-19T22:14:03Z",
    "uuid 3f2b8c1e-9a4d-4e7b-8c2f-1d5e6a7b8c9d on host db-prod-03.internal:5432",
    "config at /srv/app/v2.3.1/config.yaml; class HTTPServerAdapter calls parse_retry_budget()",
    "error E1234 (HTTP-503) at 0x7ffe3a10; commit 9c0ffee4b2a1d3e5; port 8443; flag --max-inflight=64",
]


def _filler(tag: str, count: int) -> str:
    """Short, varied lines: many per page, few characters (a small fixture), still worth reading back."""
    words = ["build", "test", "lint", "deploy", "review", "merge", "bench", "docs"]
    lines = []
    for i in range(count):
        word = words[i % len(words)]
        lines.append(f"{tag} {i:02d} ok" if i % 5 else f"{tag} {i:02d}: {word}_step_{i} took {i * 7} ms")
    return "\n".join(lines)


class Recorder:
    """Remembers through the old facade and records the exact text of every page line it wrote."""

    def __init__(self, memory: Any) -> None:
        self.memory = memory
        self.pages: dict[str, dict[str, str]] = {}
        self.entries: list[dict[str, Any]] = []
        self._plans: list[Any] = []
        real = old_memory.plan_entry

        def capture(*args: Any, **kwargs: Any) -> Any:
            plans = real(*args, **kwargs)
            self._plans = plans  # the transaction may run again: the last run's plans are what was stored
            return plans

        old_memory.plan_entry = capture

    def remember(self, text: str, session: str, role: str | None, title: str | None, minutes: int) -> dict[str, Any]:
        result = self.memory.remember(
            text, session=session, role=role, title=title, said_at=SAID + timedelta(minutes=minutes)
        )
        plans = [plan for plan in self._plans if plan.pieces]
        assert len(plans) == len(result.spans), (plans, result.spans)
        parts = []
        for plan, span in zip(plans, result.spans, strict=True):
            assert (plan.first_line, plan.last_line) == (span.start, span.end)
            page = self.pages.setdefault(span.page_id, {})
            for offset, piece in enumerate(plan.pieces):
                page[str(plan.first_line + offset)] = piece
            parts.append({**span.model_dump(), "text": "\n".join(plan.pieces)})
        entry = {"session": session, "role": role, "title": title, "text": text, "parts": parts}
        self.entries.append(entry)
        return entry


def build(folder: Path) -> dict[str, Any]:
    """Write the archive and config into `folder`; returns what expected.json holds."""
    config_path = folder / "config.toml"
    config_path.write_text(CONFIG, encoding="utf-8")
    memory = old_memory.Memory(load_config(config_path, archive=folder / "archive", environ={}))
    rec = Recorder(memory)
    minutes = iter(range(10_000))

    def say(text: str, session: str, role: str | None = None, title: str | None = None) -> dict[str, Any]:
        return rec.remember(text, session, role, title, next(minutes))

    # alpha: the long session; seven sealed pages and an open one, so its pages sit at every tier
    say("\n".join(RICH), "alpha", "user", "Café notes · 東京")
    for n in range(14):
        say(_filler(f"a{n}", 13), "alpha", "assistant" if n % 2 else "user", f"round {n}")
        if n == 6:
            say("\n".join(IDENTIFIERS), "alpha", "tool", "keys and hosts")
    # beta (a session name with accents): a long line that begins near a page's end and continues
    beta = "Projekt Übersicht"
    say(_filler("beta", 24), beta, "user", "warm-up")
    long_line = " ".join(f"segment{i:03d}=ünïcode-{i * 13 % 97}" for i in range(40))
    crossing = say("before the long line\n" + long_line + "\nafter the long line", beta, "assistant", "long line")
    assert any(part["continues"] for part in crossing["parts"]), "the long line did not cross a page"
    say(_filler("beta-tail", 34), beta, "user", "tail")
    # gamma: a page the old code forgot, a sealed page with marks of its own, then an open page.
    # 1 header row + 30 lines fill 31 of 32 rows: each of the first two entries seals its page.
    say("zanzibar-tangerine-0451 secret handle\n" + _filler("gamma-doomed", 29), "gamma", "user", "Doomed Marmalade 77")
    doomed_entry = rec.entries[-1]
    doomed = [part["page_id"] for part in doomed_entry["parts"]]
    lines = [*IDENTIFIERS[::-1], "quokka-lighthouse-88 keeps its place"]
    say("\n".join(lines) + "\n" + _filler("gamma-kept", 30 - len(lines)), "gamma", "tool", "Quokka Ledger")
    say("gamma's open page: the last word", "gamma", "assistant", None)
    assert len(doomed) == 1 and len({p["page_id"] for e in rec.entries[-3:] for p in e["parts"]}) == 3
    forgotten = memory.forget(page_id=doomed[0]).forgotten
    for page_id in forgotten:
        rec.pages.pop(page_id)

    listed = []
    cursor = None
    while True:
        listing = memory.list_pages(cursor=cursor, limit=200)
        listed.extend(listing.pages)
        cursor = listing.next_cursor
        if cursor is None:
            break
    tiers = {page.tier for page in listed}
    assert tiers == {"hot", "warm", "cool", "cold", "frost"}, tiers
    problems = memory.archive.check()
    assert problems == [], problems
    sessions = memory.list_sessions().sessions
    memory.close()
    return {
        "written_by": "abfcfaa",
        "written_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "config": "config.toml",
        "archive": "archive",
        "pages": {
            page.id: {
                "session": page.session,
                "tier": page.tier,
                "sealed": page.sealed,
                "total_lines": page.lines,
                "title": page.title,
                "lines": rec.pages[page.id],
            }
            for page in reversed(listed)
        },
        "sessions": {s.name: {"pages": s.pages, "open_page": s.open_page} for s in sessions},
        "entries": rec.entries,
        "forgotten": {
            "pages": forgotten,
            "marks": ["zanzibar-tangerine-0451", "Doomed Marmalade 77"],
            "entries": [doomed_entry],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the .tar.gz to write")
    args = parser.parse_args()
    if hasattr(old_records, "PageRecord"):
        sys.exit(f"this imported today's optical_memory ({optical_memory.__file__}); put abfcfaa's first on PYTHONPATH")
    commit = subprocess.run(
        ["git", "-C", str(Path(optical_memory.__file__).parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if commit != "abfcfaa":
        sys.exit(f"{optical_memory.__file__} is at commit {commit!r}, not abfcfaa")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "round1"
        folder.mkdir()
        expected = build(folder)
        (folder / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1), encoding="utf-8")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(args.out, "w:gz", compresslevel=9) as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(folder.parent)), recursive=False)
        sizes = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
        shutil.rmtree(folder)
    print(json.dumps({"wrote": str(args.out), "bytes": args.out.stat().st_size, "files": sizes}))


if __name__ == "__main__":
    main()
