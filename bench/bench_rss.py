"""Peak memory of one large remember: is a big text paged with bounded memory?

Run:  python bench/bench_rss.py [--chars 2000000]

Each size runs in a fresh process that opens an archive, remembers one text of that many
characters (mixed lines of 80 characters) and reports its peak RSS (ru_maxrss) next to the RSS it
had just before the call. The growth per character shows whether memory scales with the text.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, tempfile, time
from optical_memory.config import load_config
from optical_memory.memory import Memory
from optical_memory.readers.template import TemplateReader
chars = int(sys.argv[1])
line = "log 2026-11-25T10:00:00Z worker=7 status=ok path=/srv/app/main.py value=0x1f3a " * 2
text = "\n".join(line[:79] for _ in range(chars // 80 + 1))[:chars]
with tempfile.TemporaryDirectory() as tmp:
    config = load_config(archive=tmp, environ={})
    memory = Memory(config, reader=TemplateReader())
    memory.remember("warm up")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = memory.remember(text)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pages = len({s.page_id for s in result.spans})
    print(json.dumps({"chars": chars, "pages": pages, "seconds": elapsed, "rss_before_mib": before / 1024,
                      "rss_peak_mib": peak / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=2_000_000, help="largest text (the default limit)")
    args = parser.parse_args()
    print("| characters | pages | seconds | RSS before MiB | peak RSS MiB | growth MiB |")
    print("|---|---|---|---|---|---|")
    for chars in (args.chars // 8, args.chars // 2, args.chars):
        out = subprocess.run([sys.executable, "-c", CHILD, str(chars)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout)
        growth = r["rss_peak_mib"] - r["rss_before_mib"]
        print(
            f"| {chars:,} | {r['pages']} | {r['seconds']:.1f} | {r['rss_before_mib']:.0f} | "
            f"{r['rss_peak_mib']:.0f} | {growth:.0f} |"
        )


if __name__ == "__main__":
    main()
