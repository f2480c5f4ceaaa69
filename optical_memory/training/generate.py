"""Labelled rows made by the archive's own code: text -> page rows -> hot image -> tier after tier.

A page is planned with `pages.plan_entry` (entries with headers, wrapping, escape forms), drawn by
`render.Renderer`, stored as the hot tier stores it (`tiers.encode_image`) and faded with
`tiers.demote`, one tier at a time, exactly as the archive fades a page. The labels are the planned
rows' cells, known by construction. Training draws a chain per page (`random_chain`): the configured
tiers of config/default.toml exactly (the one source of tier defaults), the lossless chain that
archives made before issue 13 hold, or a random chain of scales, codecs and grey levels around them,
so the reader reads every tier it will meet, old pages included.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from optical_memory.config import load_config
from optical_memory.pages import HEADER, PageFormat, PlannedRow, plan_entry
from optical_memory.readers.trained import row_strips
from optical_memory.render import Geometry, Renderer
from optical_memory.tiers import Tier, decode_image, demote, encode_image
from optical_memory.training.corpus import Mix, Split, mixed_lines

__all__ = [
    "LOSSLESS_TIERS",
    "PREVIOUS_TIERS",
    "Page",
    "TierImage",
    "configured_tiers",
    "fade",
    "labels",
    "random_chain",
    "random_page",
    "row_samples",
    "with_tail",
]

HOT = Tier("hot", 1.0, "png")
# What archives written before issue 13 hold (8-bit PNG, then lossless WebP at these scales): the
# reader must keep reading them, and bench_storage measures the new encodings against them.
LOSSLESS_TIERS = (
    HOT,
    Tier("warm", 0.75, "webp", lossless=True, after_pages=8),
    Tier("cool", 0.5, "webp", lossless=True, after_pages=32),
    Tier("cold", 0.35, "webp", lossless=True, after_pages=128),
    Tier("frost", 0.21, "webp", lossless=True, after_pages=512),
)
# The default tiers before the fewer-levels-at-a-larger-scale encodings (cold 0.35 / 20 levels, frost
# 0.21 / 24): what archives written between the two hold, so training keeps a share of it.
PREVIOUS_TIERS = (
    Tier("hot", 1.0, "png", levels=16),
    Tier("warm", 0.75, "webp", lossless=True, levels=8, after_pages=8, after_days=2),
    Tier("cool", 0.5, "webp", lossless=True, levels=16, after_pages=32, after_days=14),
    Tier("cold", 0.35, "webp", lossless=True, levels=20, after_pages=128, after_days=60),
    Tier("frost", 0.21, "webp", lossless=True, levels=24, after_pages=512, after_days=180),
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


@functools.cache
def configured_tiers() -> tuple[Tier, ...]:
    """The default tier chain: config/default.toml's [[tiers]], read by the archive's own config code."""
    return load_config(environ={}).tiers


def random_chain(
    rng: random.Random,
    low_share: float = 0.0,
    exact_share: float = 0.0,
    extra: Sequence[Sequence[Tier]] = (),
    cells_share: float = 0.0,
) -> list[Tier]:
    """A tier chain, hot first: the configured one (or one of `extra`), an older one, or a random one.

    With `exact_share`, that share of pages fades exactly through the configured tiers or one of the
    `extra` chains (candidates being measured), drawn evenly; a fifth as much through the chains
    that older archives hold (`PREVIOUS_TIERS` and `LOSSLESS_TIERS`, evenly). The rest: 1 to 4
    random steps, scales 0.19 .. 1.0 (a quarter jump straight from hot to one scale), codecs and grey
    levels around the configured ones. With `low_share`, that share of the random chains ends at
    0.19 .. 0.32, where the coldest tier lives and reading is hardest. With `cells_share`, that share
    of the random chains is the configured hot tier, then tiers of whole-pixel cells (`random_cells`).
    """
    draw = rng.random()
    if draw < exact_share:
        return list(rng.choice([configured_tiers(), *extra]))
    if draw < 1.2 * exact_share:
        return list(rng.choice([PREVIOUS_TIERS, LOSSLESS_TIERS]))
    if rng.random() < cells_share:
        return [configured_tiers()[0], *random_cells(rng)]
    hot = configured_tiers()[0] if rng.random() < 0.6 else HOT
    return [hot, *_random_steps(rng, low_share)]


def with_tail(spec: str, chain: Sequence[Tier] | None = None) -> tuple[Tier, ...]:
    """`chain` (default: the configured one) with its last tiers re-encoded: "0.35/8:0.28/4" sets the
    last two tiers to lossless WebP at scale 0.35 with 8 grey levels, then 0.28 with 4 (names and
    fading times kept); "4x8/12:2x4/24" gives them cells of whole pixels instead (`Tier.cell`). A leading
    '+' appends instead: "+0.19/16" is the chain and one tier more below its last (named "colder", then
    "colder2", ...), made from the last tier's image as fading would."""
    base = tuple(chain or configured_tiers())
    if spec.startswith("+"):
        return (*base, *_colder_tiers(spec, base))
    parts = [p for p in spec.split(":") if p]
    if not 1 <= len(parts) < len(base):
        raise ValueError(f"chain tail {spec!r}: give 1 to {len(base) - 1} SCALE/LEVELS parts joined by ':'")
    tail = [_tail_tier(tier, part) for tier, part in zip(base[len(base) - len(parts) :], parts, strict=True)]
    return (*base[: len(base) - len(parts)], *tail)


def random_cells(rng: random.Random) -> list[Tier]:
    """Tiers of whole-pixel cells below hot: warm around 8 x 14, cool around 5 x 10, cold around 4 x 8 and,
    mostly, a frost around 2 x 4, each made from the one above."""
    chain = [
        _cell_tier("c-warm", (rng.choice((7, 8, 8)), 14), rng.choice((8, 8, 16))),
        _cell_tier("c-cool", (5, rng.choice((9, 10, 10))), rng.choice((12, 16, 16))),
    ]
    cold_cell = (rng.choice((3, 4, 4, 4, 5)), rng.choice((6, 7, 7, 8, 8, 9)))
    chain.append(_cell_tier("c-cold", cold_cell, rng.choice((8, 10, 12, 12, 16, 16, 20, 24))))
    if rng.random() < 0.8:
        frost_cell = (2, rng.choice((3, 4, 4, 4, 5))) if rng.random() < 0.85 else (3, rng.choice((3, 4)))
        chain.append(_cell_tier("c-frost", frost_cell, rng.choice((12, 16, 16, 20, 24, 24, 32))))
    return chain


def _cell_tier(name: str, cell: tuple[int, int], levels: int, base: Tier | None = None) -> Tier:
    """A lossless WebP tier of whole-pixel cells; its scale (for ordering) is its cell width over the hot one's."""
    scale = cell[0] / _renderer(PageFormat()).geometry.cell_width
    if base is None:
        return Tier(name, scale, "webp", lossless=True, levels=levels, cell=cell)
    return dataclasses.replace(base, scale=scale, codec="webp", lossless=True, levels=levels, cell=cell)


def _tail_tier(tier: Tier, part: str) -> Tier:
    """`tier` re-encoded as "SCALE/LEVELS" (lossless WebP at that scale) or "WxH/LEVELS" (cells of W x H pixels)."""
    size, _, levels = part.partition("/")
    if "x" in size:
        width, _, height = size.partition("x")
        return _cell_tier(tier.name, (int(width), int(height)), int(levels), tier)
    return tier.by_scale(scale=float(size), codec="webp", lossless=True, levels=int(levels))


def _colder_tiers(spec: str, base: Sequence[Tier]) -> list[Tier]:
    """The tiers a "+SCALE/LEVELS[:...]" spec appends below `base`, each colder than the one above."""
    parts = [p for p in spec[1:].split(":") if p]
    if not parts:
        raise ValueError(f"chain tail {spec!r}: give '+' then SCALE/LEVELS parts joined by ':' (e.g. +0.19/16)")
    tiers, above = [], base[-1]
    for n, part in enumerate(parts, 1):
        scale, _, levels = part.partition("/")
        after = None if above.after_pages is None else 4 * above.after_pages  # when pages move there: a guess
        tier = Tier(f"colder{n if n > 1 else ''}", float(scale), "webp", lossless=True, levels=int(levels),
                    after_pages=after)  # fmt: skip
        if tier.scale > above.scale or (tier.scale == above.scale and tier.levels >= above.levels):
            raise ValueError(f"chain tail {spec!r}: {part} is not colder than {above.scale:g}/{above.levels}")
        tiers.append(tier)
        above = tier
    return tiers


def _random_steps(rng: random.Random, low_share: float) -> list[Tier]:
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
        kind, name = rng.random(), f"t{i + 1}"
        if kind < 0.25:
            tier = Tier(name, scale, "webp", rng.randint(60, 95))
        elif kind < 0.85:  # lossless WebP, mostly of few grey levels, as the configured tiers store
            levels = rng.choice((256, 24, 20, 16, 16, 12, 12, 10, 8, 8, 6))
            tier = Tier(name, scale, "webp", lossless=True, levels=levels)
        elif kind < 0.95:
            tier = Tier(name, scale, "png", levels=rng.choice((256, 16, 16)))
        else:
            tier = Tier(name, scale, "jpeg", rng.randint(75, 95))
        chain.append(tier)
    return chain


def fade(page: Page, geometry: Geometry, chain: Sequence[Tier]) -> Iterator[TierImage]:
    """The page as each tier of `chain` (hot first) stores it: `tiers.demote`, one step at a time."""
    hot = chain[0]
    data = encode_image(page.hot, hot)
    yield TierImage(hot, decode_image(data), geometry, len(data))
    for tier in chain[1:]:
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
    exact_share: float = 0.0,
    mix: Mix | None = None,
    extra: Sequence[Sequence[Tier]] = (),
    cells_share: float = 0.0,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """One random page through one random chain: (strips, labels, scale) for the hot image and each tier."""
    rng = random.Random(seed)
    renderer = _renderer(fmt or PageFormat())
    page = random_page(rng, renderer, split, mix)
    rows = sorted(page.rows)
    target = labels([page.rows[r] for r in rows], renderer.format.columns)
    out = []
    for faded in fade(page, renderer.geometry, random_chain(rng, low_share, exact_share, extra, cells_share)):
        strips = row_strips(faded.image, faded.geometry, rows, cell_height, cell_width)
        out.append((strips, target, faded.geometry.scale))
    return out


_RENDERERS: dict[PageFormat, Renderer] = {}


def _renderer(fmt: PageFormat) -> Renderer:
    if fmt not in _RENDERERS:
        _RENDERERS[fmt] = Renderer(fmt)
    return _RENDERERS[fmt]
