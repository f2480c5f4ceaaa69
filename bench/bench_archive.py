"""The archive for 1M text tokens at the default policy, alone: `bench.run`'s storage figure and its parts.

    python -m bench.bench_archive [--pages 12] [--json FILE]

The same measurement as `python -m bench.run` (its "1M text tokens" storage line) without the
readers, speed and scale phases: the built-in corpus is remembered into `--pages` sealed pages, each
is faded through every tier, and one session long enough for 1M text tokens is written from copies
of them, each page at the tier its rank gives, with records, indexes and search postings
(`scale.generate_archive`). Printed: the files' bytes, and what each LMDB sub-database holds
(images, the search index's blocks and page entries, records, ...), in MiB, and the image bytes per
character of the measured pages at each tier.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import corpus_entries, machine
from bench.pages import fade_pages, remember_pages
from bench.results import Results
from bench.scale import measure_storage
from optical_memory.archive import Archive
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader

MIB = 1 << 20


def database_bytes(path: Path) -> dict[str, int]:
    """Bytes of LMDB pages (branch, leaf, overflow) each sub-database of the archive at `path` holds."""
    archive = Archive(path)
    try:
        with archive.env.begin() as txn:
            out = {}
            for name, db in archive._dbs.items():
                stat = txn.stat(db)
                out[name] = stat["psize"] * (stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"])
            return out
    finally:
        archive.close()


def measure(pages: int, workdir: Path) -> dict[str, Any]:
    config = load_config(None, archive=workdir / "archive", environ={})
    results = Results("python -m bench.bench_archive", machine(), "", config.tiers)
    entries, results.corpus = corpus_entries(None, pages + 1)  # +1: the last page stays open
    memory = Memory(replace(config, tiers=config.tiers[:1]), reader=TemplateReader())  # no fading here
    try:
        truth = remember_pages(memory, entries, "bench", results)
        results.pages = fade_pages(memory, truth, config.tiers)[:pages]
    finally:
        memory.close()
    measure_storage(results, workdir)
    st = results.storage
    return {
        "machine": results.machine,
        "pages": len(results.pages),
        "pages_1m": st["pages_1m"],
        "archive_bytes_1m": st["bytes_1m"],
        "image_bytes_1m": st["image_bytes_1m"],
        "databases": database_bytes(workdir / "one-million-tokens"),
        # the image bytes a character of the measured pages costs at each tier (the issue-13 targets)
        "bytes_per_char": {
            tier.name: sum(len(page.images[i][0]) for page in results.pages)
            / max(1, sum(page.characters for page in results.pages))
            for i, tier in enumerate(config.tiers)
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=12, help="sealed pages measured and copied (bench.run: 12)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = measure(args.pages, Path(tmp))
    dbs = out["databases"]
    index = sum(dbs.get(name, 0) for name in ("term_blocks", "page_terms", "postings"))
    print(
        f"1M text tokens ({out['pages_1m']} pages): archive {out['archive_bytes_1m'] / MIB:.2f} MiB on disk; "
        f"image bytes {out['image_bytes_1m'] / MIB:.2f} MiB; search index {index / MIB:.2f} MiB"
    )
    for name, size in sorted(dbs.items(), key=lambda item: -item[1]):
        if size:
            print(f"    {name:16s} {size / MIB:7.2f} MiB")
    per_char = "  ".join(f"{name} {value:.2f}" for name, value in out["bytes_per_char"].items())
    print(f"image bytes per character of the {out['pages']} measured pages: {per_char}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
