"""Free space: what fading leaves in the archive file, what `compact` gives back, what erasing costs.

    python bench/bench_compact.py [--tokens 1000000] [--batch 64] [--keep DIR] [--json FILE]
    python bench/bench_compact.py --reuse DIR     # steps 2-3 on a copy of an archive built with --keep

1. Writes a coding agent's history of about `--tokens` text tokens (`bench.agent_history`, 8 projects,
   one session each), `--batch` turns per transaction, then fades it by the default policy as its age
   gives (the turns are dated September 2026).
2. Prints `stats` (file size, used and free bytes, bytes per tier), then compacts and prints them
   again: the target (issue #13) is a file within 10 % of the data it holds.
3. Forgets one project's session and times `forget` with its erasing of the freed space, then times
   `Archive.erase_free_space()` alone on the compacted archive, with the bytes each writes, and
   extrapolates both to 100,000 pages (the erase cost grows with the archive's keys and free pages).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.agent_history import agent_history
from optical_memory.config import load_config
from optical_memory.maintenance import stats
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
from optical_memory.writing import NewEntry

MIB = 1 << 20


def _mib(n: int) -> str:
    return f"{n / MIB:.1f} MiB"


def build(memory: Memory, tokens: int, batch: int) -> dict[str, Any]:
    history = agent_history(tokens=tokens, facts=0)
    started = time.perf_counter()
    turns = history.turns
    for at in range(0, len(turns), batch):
        entries = [NewEntry(t.text, t.session, t.role, t.title, t.said_at) for t in turns[at : at + batch]]
        memory.remember_batch(entries, fade=False)
    written = time.perf_counter() - started
    started = time.perf_counter()
    steps = memory.fade()
    return {
        "turns": len(turns),
        "characters": history.characters,
        "tokens": history.tokens,
        "write_seconds": round(written, 1),
        "fade_steps": steps,
        "fade_seconds": round(time.perf_counter() - started, 1),
    }


def show(label: str, report: dict[str, Any]) -> None:
    print(
        f"{label}: file {_mib(report['file_bytes'])}, used {_mib(report['used_bytes'])}, "
        f"free {_mib(report['free_bytes'])} ({report['free_fraction']:.1%}); {report['pages']} pages"
    )
    for name, tier in report["tiers"].items():
        per_char = tier["image_bytes"] / max(tier["characters"], 1)
        print(f"    {name:6s} {tier['pages']:5d} pages  {_mib(tier['image_bytes']):>10s}  {per_char:5.2f} B/char")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=64, help="turns per transaction while writing")
    parser.add_argument("--keep", type=Path, help="build the archive here and keep it (default: a temp folder)")
    parser.add_argument("--reuse", type=Path, help="skip writing: measure on a copy of this archive")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-compact-")) / "archive"
    if args.reuse:
        shutil.copytree(args.reuse, folder)
    memory = Memory(load_config(archive=folder, environ={}), reader=TemplateReader())
    tiers = [tier.name for tier in memory.tiers]
    out: dict[str, Any] = {"archive": str(folder)}
    out["history"] = {"reused": str(args.reuse)} if args.reuse else build(memory, args.tokens, args.batch)
    print(json.dumps(out["history"]))
    out["before"] = stats(memory.archive, tiers)
    show("faded", out["before"])
    out["compact"] = memory.archive.compact()
    out["after"] = stats(memory.archive, tiers)
    show("compacted", out["after"])
    after = out["after"]
    over = after["file_bytes"] / max(after["used_bytes"], 1) - 1
    tokens = after["tokens"]["text_tokens"]
    print(
        f"compact: {out['compact']['seconds']} s, freed {_mib(out['compact']['bytes_freed'])}; file is "
        f"{over:.1%} over the data it holds (target <= 10 %); "
        f"{_mib(int(after['file_bytes'] * 1_000_000 / max(tokens, 1)))} per 1M text tokens (as the archive counts them)"
    )
    pages = after["pages"]
    smallest = min(memory.list_sessions().sessions, key=lambda s: s.pages)
    erased: list[dict[str, Any]] = []
    erase = memory.archive.erase_free_space
    memory.archive.erase_free_space = lambda: erased.append(erase()) or erased[-1]  # type: ignore[method-assign,func-returns-value]
    started = time.perf_counter()
    memory.forget(session=smallest.name)
    out["forget"] = {"session": smallest.name, "pages": smallest.pages, "seconds": time.perf_counter() - started}
    out["forget_erase"] = erased[0]
    out["erase_alone"] = erase()  # nothing freed since: the fixed part (rewriting every leaf)
    scale = 100_000 / pages
    print(f"forget of {smallest.pages} pages: {out['forget']['seconds']:.2f} s, of which erasing:")
    for key, label in (("forget_erase", "after forget"), ("erase_alone", "again, nothing freed")):
        figure = out[key]
        print(
            f"    {label}: {figure['seconds']:.2f} s, {_mib(figure['bytes_written'])} written "
            f"({figure['pages_rewritten']} pages rewritten, {figure['pages_overwritten']} free pages zeroed); "
            f"x{scale:.0f} for 100,000 pages: about {figure['seconds'] * scale:.0f} s, "
            f"{_mib(int(figure['bytes_written'] * scale))}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    memory.close()


if __name__ == "__main__":
    main()
