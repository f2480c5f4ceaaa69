"""Labelled rows made by the archive's own code: text -> page rows -> hot image -> tier after tier.

A page is planned with `pages.plan_entry` (entries with headers, wrapping, escape forms), drawn by
`render.Renderer`, stored as the hot tier stores it (`tiers.encode_image`) and faded with
`tiers.demote`, one tier at a time, exactly as the archive fades a page. The labels are the planned
rows' cells, known by construction. Training draws a random chain of tiers around the configured
ones (`random_chain`), so the reader learns every scale and codec setting, not one.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from optical_memory.pages import HEADER, PageFormat, PlannedRow, plan_entry
from optical_memory.readers.trained import row_strips
from optical_memory.render import Geometry, Renderer
from optical_memory.tiers import Tier, decode_image, demote, encode_image
from optical_memory.training.corpus import Mix, Split, mixed_lines

__all__ = ["DRAFT_TIERS", "Page", "TierImage", "fade", "labels", "random_chain", "random_page", "row_samples"]

HOT = Tier("hot", 1.0, "png")
# The draft tier chain of config/: where the generator centres its random chains.
DRAFT_TIERS = (
    HOT,
    Tier("warm", 0.75, "webp", 90, after_pages=4),
    Tier("cool", 0.5, "webp", 80, after_pages=16),
    Tier("cold", 0.35, "webp", 70, after_pages=64),
)
_ROLES = ("user", "assistant", "tool", "system", "note")


@dataclass
class Page:
    hot: np.ndarray  # (height, width) uint8, as rendered
    rows: dict[int, str]  # physical row -> its cells, for text rows (headers are chrome, never read)


@dataclass
class TierImage:
    tier: Tier
    image: Image.Image  # as decoded from the stored bytes
    geometry: Geometry
    nbytes: int


def random_page(rng: random.Random, renderer: Renderer, split: Split = "train", mix: Mix | None = None) -> Page:
    """A full page of entries from mixed sources, laid out as `Memory.remember` lays them."""
    fmt = renderer.format
    planned: list[PlannedRow] = []
    open_rows: int | None = None
    open_lines = 0
    while True:
        lines = mixed_lines(rng, split, min_lines=rng.choice([1, 3, 10, 40, 80]), mix=mix)
        lines = lines[: rng.randint(1, len(lines))]
        when = (
            f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        )
        role, session = rng.choice(_ROLES), rng.choice(["default", "work", "p-" + str(rng.randint(1, 999))])
        plans = plan_entry(
            lines, functools.partial(_header, f"{role} · {session} · {when}"), fmt, open_rows, open_lines
        )
        first = plans[0]
        planned.extend(first.rows)
        open_rows = len(planned)
        open_lines = first.last_line or open_lines
        if first.sealed or len(plans) > 1:
            break
    rows = {index: row.cells for index, row in enumerate(planned) if row.code != HEADER}
    return Page(renderer.render(planned), rows)


def _header(text: str, continued: bool) -> str:
    return text + (" · cont." if continued else "")


def random_chain(rng: random.Random, low_share: float = 0.0) -> list[Tier]:
    """Tiers below hot with random scales and codec settings around the draft ones, 1 to 4 steps.

    Scales cover 0.19 .. 1.0; a quarter of the chains jump straight from hot to one scale, so any
    single tier setting is seen as well as the cumulative fading of several. With `low_share`,
    that share of chains ends at 0.19 .. 0.32, where the coldest tier lives and reading is hardest.
    """
    if rng.random() < 0.25:
        scales = [rng.uniform(0.19, 1.0)]
    else:
        scales, scale = [], 1.0
        for _ in range(rng.randint(2, 4)):
            scale *= rng.uniform(0.5, 0.9)
            scales.append(max(0.19, scale))
            if scale < 0.2:
                break
    if rng.random() < low_share:
        scales = [s for s in scales if s > 0.33] + [rng.uniform(0.19, 0.32)]
    chain = []
    for i, scale in enumerate(scales):
        kind = rng.random()
        if kind < 0.8 - 0.75 * low_share:  # lossy webp; the rest mostly lossless, as colder tiers should be
            tier = Tier(f"t{i + 1}", scale, "webp", rng.randint(60, 95))
        elif kind < 0.88:
            tier = Tier(f"t{i + 1}", scale, "webp", lossless=True)
        elif kind < 0.95:
            tier = Tier(f"t{i + 1}", scale, "png")
        else:
            tier = Tier(f"t{i + 1}", scale, "jpeg", rng.randint(75, 95))
        chain.append(tier)
    return chain


def fade(page: Page, geometry: Geometry, chain: Sequence[Tier]) -> Iterator[TierImage]:
    """The page as each tier of `chain` stores it, hot first: `tiers.demote`, one step at a time."""
    data = encode_image(page.hot, HOT)
    yield TierImage(HOT, decode_image(data), geometry, len(data))
    for tier in chain:
        data, geometry = demote(data, geometry, tier)
        yield TierImage(tier, decode_image(data), geometry, len(data))


def labels(cells: Sequence[str], columns: int) -> np.ndarray:
    """Class indices (len(cells), columns), trailing cells blank (class 0 = space)."""
    from optical_memory.alphabet import ALPHABET

    index = {ch: i for i, ch in enumerate(ALPHABET)}
    out = np.zeros((len(cells), columns), dtype=np.int16)
    for r, text in enumerate(cells):
        out[r, : len(text)] = [index[ch] for ch in text]
    return out


def row_samples(
    seed: int,
    cell_height: int,
    cell_width: int,
    split: Split = "train",
    fmt: PageFormat | None = None,
    low_share: float = 0.0,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """One random page through one random chain: (strips, labels, scale) for the hot image and each tier."""
    rng = random.Random(seed)
    renderer = _renderer(fmt or PageFormat())
    page = random_page(rng, renderer, split)
    rows = sorted(page.rows)
    target = labels([page.rows[r] for r in rows], renderer.format.columns)
    out = []
    for faded in fade(page, renderer.geometry, random_chain(rng, low_share)):
        strips = row_strips(faded.image, faded.geometry, rows, cell_height, cell_width)
        out.append((strips, target, faded.geometry.scale))
    return out


_RENDERERS: dict[PageFormat, Renderer] = {}


def _renderer(fmt: PageFormat) -> Renderer:
    if fmt not in _RENDERERS:
        _RENDERERS[fmt] = Renderer(fmt)
    return _RENDERERS[fmt]
