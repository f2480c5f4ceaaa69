"""The foundation's acceptance scenario, over stdio with the default reader: remember ~50 kB of mixed
text, list the pages, view each (fading visibly by tier) and read back every line.

The config fades fast (one tier per three newer pages) so that a 50 kB history crosses every tier; the
tiers themselves are the shipped ones. Hot pages must read back exactly; faded pages within the
bounds the trained reader is held to.
"""

from __future__ import annotations

import base64
import io
import os
import random
import sys
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import ImageContent
from PIL import Image

from optical_memory.config import load_config
from optical_memory.metrics import edit_distance
from optical_memory.training.corpus import REALISTIC_MIX, mixed_lines

# Issue 7's bounds. Measured on this fixed history: hot 0/5,021 characters wrong, warm 0/8,523,
# cool 0/10,654, cold 0/9,022, frost 25/16,293 (0.15 %).
MAX_CER = {"hot": 0.0, "warm": 0.001, "cool": 0.001, "cold": 0.001, "frost": 0.01}


def mixed_history(chars: int = 50_000) -> list[str]:
    rng = random.Random(11)
    entries: list[str] = []
    total = 0
    while total < chars:
        entry = "\n".join(mixed_lines(rng, "heldout", min_lines=rng.randint(3, 30), mix=REALISTIC_MIX))
        # the SDK's client cannot put lone surrogates into JSON (tests/test_fuzz.py covers them in-process)
        entry = "".join(ch for ch in entry if not 0xD800 <= ord(ch) <= 0xDFFF)
        entries.append(entry)
        total += len(entry)
    return entries


async def test_fifty_kilobytes_through_stdio_fade_and_read_back(tmp_path: Path) -> None:
    shipped = load_config(environ={}).tiers
    tiers_toml = "".join(
        f'[[tiers]]\nname = "{t.name}"\nscale = {t.scale}\ncodec = "{t.codec}"\nlossless = {str(t.lossless).lower()}\n'
        + (f"after_pages = {3 * index}\n" if index else "")
        for index, t in enumerate(shipped)
    )
    config = tmp_path / "fast-fading.toml"
    config.write_text(tiers_toml, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "optical_memory_mcp", "serve", "--archive", str(tmp_path / "archive"), "--config", str(config)],
        env=env,
    )
    entries = mixed_history()
    truth: dict[tuple[str, int], str] = {}
    async with Client(params, read_timeout_seconds=120) as client:
        for entry in entries:
            result = await client.call_tool("remember", {"text": entry, "role": "user"})
            assert result.structured_content is not None, result
            lines = entry.split("\n")
            cursor, split = 0, False
            for span in result.structured_content["spans"]:
                for number in range(span["start"], span["end"] + 1):
                    last = number == span["end"]
                    # a line split across pages is scored as a whole only by its own readers: skip its halves
                    if not split and not (last and span["continues"]):
                        truth[(span["page_id"], number)] = lines[cursor]
                    if not (last and span["continues"]):
                        cursor += 1
                    split = False
                split = span["continues"]
            assert cursor == len(lines)
        # fading runs on the server's background thread: wait until every page is at its due tier
        pages: list[dict] = []
        for _ in range(200):
            listed = await client.call_tool("list_pages", {"limit": 200})
            assert listed.structured_content is not None
            pages = listed.structured_content["pages"]
            # newest first: a sealed page with k newer pages belongs at tier min(k // 3, coldest)
            due = [shipped[min(k // 3, len(shipped) - 1)].name for k in range(len(pages))]
            if [p["tier"] for p in pages] == due:
                break
            await anyio.sleep(0.1)
        assert {p["tier"] for p in pages} == {t.name for t in shipped}, [p["tier"] for p in pages]

        widths = {}
        errors: dict[str, int] = {}
        chars: dict[str, int] = {}
        for page in pages:
            view = await client.call_tool("view_page", {"page_id": page["id"]})
            image = view.content[0]
            assert isinstance(image, ImageContent)
            decoded = Image.open(io.BytesIO(base64.b64decode(image.data)))
            assert decoded.size == (page["image_width"], page["image_height"])
            widths[page["tier"]] = decoded.size[0]
            read = await client.call_tool("read_lines", {"page_id": page["id"]})
            assert read.structured_content is not None
            for line in read.structured_content["lines"]:
                if (page["id"], line["number"]) not in truth:
                    continue
                expected = truth[(page["id"], line["number"])]
                # exact or honestly unsure: a line read wrong is never marked verified, and one read
                # right is marked verified (a match of its check code) whatever the tier
                assert line["verified"] is (line["text"] == expected), (page["tier"], line, expected)
                errors[page["tier"]] = errors.get(page["tier"], 0) + edit_distance(line["text"], expected)
                chars[page["tier"]] = chars.get(page["tier"], 0) + max(1, len(expected))
    assert sum(chars.values()) >= 45_000
    ordered = [widths[t.name] for t in shipped]
    assert ordered == sorted(ordered, reverse=True) and len(set(ordered)) == len(ordered)  # visibly smaller
    for tier, bound in MAX_CER.items():
        assert errors[tier] / chars[tier] <= bound, (tier, errors[tier], chars[tier])
