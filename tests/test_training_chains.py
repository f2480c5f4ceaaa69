"""The tier chains training draws: the configured one, candidates given on the command line, older ones."""

from __future__ import annotations

import itertools
import random

import pytest

from optical_memory.training.generate import LOSSLESS_TIERS, PREVIOUS_TIERS, configured_tiers, random_chain, with_tail


def test_with_tail_reencodes_only_the_last_tiers() -> None:
    chain = with_tail("0.32/16:0.21/12")
    base = configured_tiers()
    assert chain[:-2] == base[:-2]
    assert [(t.name, t.scale, t.codec, t.lossless, t.levels) for t in chain[-2:]] == [
        (base[-2].name, 0.32, "webp", True, 16),
        (base[-1].name, 0.21, "webp", True, 12),
    ]
    assert chain[-1].after_pages == base[-1].after_pages  # fading times are kept


def test_a_plus_spec_appends_colder_tiers_below_the_configured_chain() -> None:
    base = configured_tiers()
    chain = with_tail("+0.19/16:0.17/12")
    assert chain[: len(base)] == base  # every stored page's chain is unchanged
    assert [(t.name, t.scale, t.codec, t.lossless, t.levels) for t in chain[len(base) :]] == [
        ("colder", 0.19, "webp", True, 16),
        ("colder2", 0.17, "webp", True, 12),
    ]
    assert chain[-2].after_pages is not None and base[-1].after_pages is not None
    assert chain[-2].after_pages > base[-1].after_pages  # pages reach it after the tier above


@pytest.mark.parametrize("spec", ["+", "+0.19", "+0.3/16", "+0.21/24", "+0.19/16:0.2/12"])
def test_a_plus_spec_that_is_not_colder_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        with_tail(spec)


@pytest.mark.parametrize(
    "spec", ["", "0.3", "0.3/x", ":".join(["1/16"] * len(configured_tiers())), "0.3/300", "4x/12", "0x4/12", "4x7/1"]
)
def test_with_tail_refuses_a_malformed_spec(spec: str) -> None:
    with pytest.raises(ValueError):
        with_tail(spec)


def test_exact_draws_come_from_the_configured_chain_and_the_candidates() -> None:
    extra = with_tail("0.3/16:0.21/24")
    rng = random.Random(3)
    drawn = {tuple(random_chain(rng, exact_share=1.0, extra=[extra])) for _ in range(200)}
    assert drawn == {tuple(configured_tiers()), extra}


def test_older_archives_chains_keep_a_share() -> None:
    rng = random.Random(4)
    drawn = [tuple(random_chain(rng, exact_share=0.5)) for _ in range(2000)]
    assert drawn.count(LOSSLESS_TIERS) > 50
    assert drawn.count(PREVIOUS_TIERS) > 50  # archives written with the grey levels of issue 13


def test_with_tail_gives_tiers_of_whole_pixel_cells() -> None:
    chain = with_tail("5x9/16:3x6/12:2x3/20")
    base = configured_tiers()
    assert chain[:2] == base[:2]
    assert [(t.name, t.cell, t.scale, t.levels, t.lossless) for t in chain[2:]] == [
        (base[2].name, (5, 9), 0.5, 16, True),
        (base[3].name, (3, 6), 0.3, 12, True),
        (base[4].name, (2, 3), 0.2, 20, True),
    ]
    assert with_tail("0.3/16")[-1].cell is None  # a tier by scale alone again


def test_random_chains_of_cells_shrink_tier_by_tier() -> None:
    rng = random.Random(5)
    for _ in range(200):
        chain = random_chain(rng, cells_share=1.0)
        assert chain[0] == configured_tiers()[0] and len(chain) >= 4
        cells = [tier.cell for tier in chain[1:]]
        assert all(cell is not None for cell in cells)
        for upper, lower in itertools.pairwise(cells):
            assert lower[0] <= upper[0] and lower[1] <= upper[1]  # type: ignore[index]
