"""Measure a reader tier by tier on pages it never trained on (the held-out corpus split and seeds).

`sample` fades held-out pages through a tier chain with the archive's code; `score` reads every
text row of every tier with any `Reader` and counts: character errors (cells read wrong, over the
cells that hold text), rows and logical lines read exactly, px per character, and image tokens.

    python -m optical_memory.training.evaluate --pages 16 --json runs/reader/evaluation.json
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from optical_memory.pages import PageFormat, decode, join_row_cells
from optical_memory.readers.base import Reader
from optical_memory.render import Renderer
from optical_memory.tiers import Tier
from optical_memory.tokens import claude_image_tokens, deepseek_vision_tokens, estimate_text_tokens
from optical_memory.training.corpus import IDENTIFIER_MIX, REALISTIC_MIX, TRAINING_MIX, Mix
from optical_memory.training.generate import (
    LOSSLESS_TIERS,
    PREVIOUS_TIERS,
    Page,
    TierImage,
    configured_tiers,
    fade,
    random_page,
)

__all__ = ["CHAINS", "HELDOUT_SEED", "MIXES", "RECOMMENDED_TIERS", "TierScore", "figures", "sample", "score"]

HELDOUT_SEED = 7_000_000  # training seeds stay below this

# The default tiers, as config/default.toml sets them (the one source; the name is older than that).
RECOMMENDED_TIERS = configured_tiers()
# Chains to measure: the configured one, and the lossless one that archives from before issue 13 hold.
# config: the default tiers; previous: the defaults before whole-pixel cells (what most archives hold);
# lossless: archives from before issue 13.
CHAINS: dict[str, tuple[Tier, ...]] = {
    "config": RECOMMENDED_TIERS,
    "previous": PREVIOUS_TIERS,
    "lossless": LOSSLESS_TIERS,
}
# Held-out mixes: dialogue as agents write it; random runs over the whole alphabet; recalled values.
MIXES: dict[str, Mix] = {"realistic": REALISTIC_MIX, "stress": TRAINING_MIX, "identifiers": IDENTIFIER_MIX}


@dataclass
class TierScore:
    tier: Tier
    px_per_char: float = 0.0
    chars: int = 0  # text cells (each row up to its last non-blank cell)
    errors: int = 0  # cells read wrong, counted over max(truth, read) length of each row
    rows: int = 0
    rows_exact: int = 0
    lines: int = 0
    lines_exact: int = 0
    text_tokens: int = 0
    deepseek_tokens: int = 0
    claude_tokens: int = 0
    nbytes: int = 0
    confusions: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def cer(self) -> float:
        return self.errors / max(1, self.chars)

    @property
    def line_rate(self) -> float:
        return self.lines_exact / max(1, self.lines)

    def row(self) -> str:
        return (
            f"{self.tier.name:>6} {self.tier.scale:5.2f} {codec_label(self.tier):<8}"
            f" {self.px_per_char:6.1f} px/char  CER {100 * self.cer:7.4f} % ({self.errors}/{self.chars})"
            f"  lines exact {100 * self.line_rate:6.2f} %"
            f"  text/DeepSeek {self.text_tokens / max(1, self.deepseek_tokens):5.1f}x"
            f"  text/Claude {self.text_tokens / max(1, self.claude_tokens):5.2f}x"
        )


def codec_label(tier: Tier) -> str:
    levels = f" {tier.levels}lv" if tier.levels != 256 else ""
    if tier.codec == "png" or tier.lossless:
        return f"{tier.codec}{'-lossless' if tier.lossless else ''}{levels}"
    return f"{tier.codec} q{tier.quality}"


def sample(
    n_pages: int,
    tiers: Sequence[Tier] = RECOMMENDED_TIERS,
    seed: int = HELDOUT_SEED,
    fmt: PageFormat | None = None,
    mix: Mix | None = None,
) -> list[tuple[Page, list[TierImage]]]:
    """Held-out pages (realistic mix unless `mix` says otherwise), each faded through `tiers`, hot first."""
    renderer = Renderer(fmt or PageFormat())
    out = []
    for i in range(n_pages):
        page = random_page(random.Random(seed + i), renderer, "heldout", mix or REALISTIC_MIX)
        out.append((page, list(fade(page, renderer.geometry, tiers))))
    return out


def _line_groups(rows: dict[int, str], columns: int) -> list[list[int]]:
    """Physical rows grouped into logical lines: a full row continues into the next row."""
    groups: list[list[int]] = []
    current: list[int] = []
    for index in sorted(rows):
        current.append(index)
        if len(rows[index]) < columns or index + 1 not in rows:
            groups.append(current)
            current = []
    return groups


def score(reader: Reader, pages: Sequence[tuple[Page, list[TierImage]]]) -> list[TierScore]:
    """Read every text row of every tier image; one TierScore per tier."""
    scores: list[TierScore] = []
    for page, faded in pages:
        rows = sorted(page.rows)
        groups = _line_groups(page.rows, faded[0].geometry.columns)
        for t, image in enumerate(faded):
            if len(scores) <= t:
                scores.append(TierScore(image.tier))
            s = scores[t]
            g = image.geometry
            read = reader.read_rows(image.image, g, rows)
            for index, got in zip(rows, read, strict=True):
                want = page.rows[index]
                width = max(len(want), len(got))
                wrong = [(a, b) for a, b in zip(want.ljust(width), got.ljust(width), strict=True) if a != b]
                for pair in wrong:
                    s.confusions[pair] = s.confusions.get(pair, 0) + 1
                s.errors += len(wrong)
                s.chars += len(want)
                s.rows += 1
                s.rows_exact += not wrong
            got_rows = dict(zip(rows, read, strict=True))
            truth_lines = [decode(join_row_cells([page.rows[i] for i in group], g.columns)) for group in groups]
            got_lines = [decode(join_row_cells([got_rows[i] for i in group], g.columns)) for group in groups]
            s.lines += len(truth_lines)
            s.lines_exact += sum(a == b for a, b in zip(truth_lines, got_lines, strict=True))
            s.text_tokens += sum(estimate_text_tokens(line) for line in truth_lines)
            s.deepseek_tokens += deepseek_vision_tokens(g.width, g.height)
            s.claude_tokens += claude_image_tokens(g.width, g.height)
            s.nbytes += image.nbytes
            s.px_per_char = g.px_per_char
    return scores


def top_confusions(s: TierScore, n: int = 8) -> str:
    pairs = sorted(s.confusions.items(), key=lambda kv: -kv[1])[:n]
    return ", ".join(f"{a!r}->{b!r}:{k}" for (a, b), k in pairs)


def figures(scores: Sequence[TierScore]) -> dict[str, dict[str, object]]:
    """Per tier, what reader.json records."""
    return {
        s.tier.name: {
            "scale": s.tier.scale,
            "codec": codec_label(s.tier),
            "px_per_char": round(s.px_per_char, 2),
            "cer": round(s.cer, 6),
            "errors": s.errors,
            "chars": s.chars,
            "lines_exact": round(s.line_rate, 4),
        }
        for s in scores
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="reader.onnx (default: the shipped one)")
    parser.add_argument("--chain", choices=sorted(CHAINS), default="config")
    parser.add_argument("--mix", choices=sorted(MIXES), default="realistic")
    parser.add_argument("--pages", type=int, default=16)
    parser.add_argument("--seed", type=int, default=HELDOUT_SEED + 5000)
    parser.add_argument("--json", default=None, help="write {'evaluation': ...} here, for export --meta")
    parser.add_argument("--json-key", default="evaluation", help="the key of that record (e.g. evaluation_identifiers)")
    args = parser.parse_args()
    from optical_memory.readers.trained import TrainedReader

    scores = score(TrainedReader(args.model), sample(args.pages, CHAINS[args.chain], args.seed, mix=MIXES[args.mix]))
    for s in scores:
        print(s.row())
        if s.errors:
            print("        ", top_confusions(s))
    if args.json:
        record = {
            args.json_key: {
                "command": "python -m optical_memory.training.evaluate " + shlex.join(sys.argv[1:]),
                "pages": args.pages,
                "seed": args.seed,
                "chain": args.chain,
                "mix": args.mix,
                "tiers": figures(scores),
            }
        }
        Path(args.json).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
