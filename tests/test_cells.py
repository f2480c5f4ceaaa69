"""Tiers of whole-pixel cells (`Tier.cell`): every glyph at one phase, exact factors, the reader made for them."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from optical_memory.config import default_config
from optical_memory.errors import InvalidArgument, ReaderUnavailable
from optical_memory.pages import PageFormat, PlannedRow
from optical_memory.readers.trained import CELLS_MODEL_FILE, TrainedReader, default_model_path
from optical_memory.records import PageRecord
from optical_memory.render import Renderer
from optical_memory.tiers import Tier, applied, decode_image, demote, demote_through, encode_image
from optical_memory.training.generate import PREVIOUS_TIERS
from optical_memory.transfer_checks import check_page

TIERS = default_config(Path("unused")).tiers


def _page(text: str) -> tuple[np.ndarray, Renderer]:
    renderer = Renderer(PageFormat())
    rows = [PlannedRow(n + 1, text) for n in range(renderer.format.rows)]
    return renderer.render(rows), renderer


def _faded(chain: tuple[Tier, ...], text: str) -> tuple[Image.Image, object]:
    hot, renderer = _page(text)
    data, geometry = encode_image(Image.fromarray(hot), chain[0]), renderer.geometry
    for tier in chain[1:]:
        data, geometry = demote(data, geometry, tier)
    return decode_image(data), geometry


def _cell_windows(image: Image.Image, geometry: object, row: int) -> list[bytes]:
    """The pixels around each interior cell of a row, each window at the same offset from its cell."""
    left, top, right, bottom = geometry.row_box(row)  # type: ignore[attr-defined]
    width = (right - left) / geometry.columns  # type: ignore[attr-defined]
    pixels = np.asarray(image)
    rows = slice(int(top), int(np.ceil(bottom)))
    return [
        pixels[rows, int(left + k * width) : int(left + k * width) + 3].tobytes()
        for k in range(10, geometry.columns - 10)  # type: ignore[attr-defined]
    ]


def test_the_default_cold_and_frost_have_whole_pixel_cells() -> None:
    cells = {tier.name: tier.cell for tier in TIERS}
    assert cells["cold"] == (4, 7) and cells["frost"] == (2, 4)
    _, geometry = _faded(TIERS, "x")
    assert geometry.factors == (2 / 10, 4 / 19)  # type: ignore[attr-defined]
    left, _, right, _ = geometry.row_box(3)  # type: ignore[attr-defined]
    assert right - left == pytest.approx(2 * geometry.columns)  # type: ignore[attr-defined]


def test_equal_characters_store_equal_pixels_at_every_cell() -> None:
    """What whole-pixel cells are for: a row of one character stores one picture of it, cell after cell,
    which lossless WebP finds again; at a scale alone (0.21) the glyph lands on ten different phases."""
    for chain in (TIERS, TIERS[:4]):
        image, geometry = _faded(chain, "m" * 100)
        windows = _cell_windows(image, geometry, 5)
        assert len(set(windows)) == 1, (chain[-1].name, len(set(windows)))
    by_scale = (*TIERS[:1], Tier("frost", 0.21, "webp", lossless=True, levels=20, after_pages=1))
    image, geometry = _faded(by_scale, "m" * 100)
    assert len(set(_cell_windows(image, geometry, 5))) > 3


def test_demote_through_stores_what_fading_tier_by_tier_stores() -> None:
    hot, renderer = _page("def f(x): return x ** 2  # Dröge 0O8B")
    data = encode_image(Image.fromarray(hot), TIERS[0])
    step, geometry = data, renderer.geometry
    for tier in TIERS[1:]:
        step, geometry = demote(step, geometry, tier)
    through, through_geometry = demote_through(data, renderer.geometry, TIERS[1:])
    assert through_geometry == geometry
    assert np.array_equal(np.asarray(decode_image(through)), np.asarray(decode_image(step)))


def test_a_page_by_scale_keeps_its_geometry_format() -> None:
    """Pages of tiers by scale alone (every archive before whole-pixel cells) store no scale_y."""
    _, geometry = _faded((*TIERS[:1], Tier("cold", 0.35, "webp", lossless=True, levels=20, after_pages=1)), "x")
    assert "scale_y" not in geometry.to_dict()  # type: ignore[attr-defined]
    _, cells = _faded(TIERS, "x")
    assert cells.to_dict()["scale_y"] == 4 / 19  # type: ignore[attr-defined]


def test_the_cells_reader_reads_pages_of_cells_and_the_main_reader_the_rest() -> None:
    reader = TrainedReader()
    assert reader.cells is not None and reader.cells.model_path.name == CELLS_MODEL_FILE
    geometries = {}
    for end in range(1, len(TIERS)):
        _, geometries[TIERS[end].name] = _faded(TIERS[: end + 1], "x")
    for name in ("cool", "cold", "frost"):
        assert reader.reader_for(geometries[name]) is reader.cells, name  # type: ignore[arg-type]
    assert reader.reader_for(geometries["warm"]) is reader  # type: ignore[arg-type]  # cells, above its max_scale
    _, old_frost = _faded((*TIERS[:1], Tier("frost", 0.21, "webp", lossless=True, levels=24, after_pages=1)), "x")
    assert reader.reader_for(old_frost) is reader  # type: ignore[arg-type]
    assert TrainedReader(default_model_path()).cells is None  # a model named alone reads every page


def test_a_cells_model_without_its_scale_is_refused_clearly(tmp_path: Path) -> None:
    shutil.copy(default_model_path(), tmp_path / "main.onnx")
    shutil.copy(default_model_path().with_suffix(".json"), tmp_path / "main.json")
    shutil.copy(default_model_path(CELLS_MODEL_FILE), tmp_path / "cells.onnx")
    meta = json.loads(default_model_path(CELLS_MODEL_FILE).with_suffix(".json").read_text(encoding="utf-8"))
    meta["max_scale"] = "small"
    (tmp_path / "cells.json").write_text(json.dumps(meta), encoding="utf-8")
    reader = TrainedReader(tmp_path / "main.onnx", cells_model_path=tmp_path / "cells.onnx")
    image, geometry = _faded(TIERS, "x")
    with pytest.raises(ReaderUnavailable, match=r"cells.json gives max_scale 'small'; it must be the largest tier"):
        reader.read_rows(image, geometry, [2])  # type: ignore[arg-type]


def _record(geometry: object) -> dict[str, object]:
    record = PageRecord.new("p1", 1, "s", "2026-11-27T10:00:00Z", geometry, TIERS[0])  # type: ignore[arg-type]
    data = record.to_json()
    data["id"] = "p1"
    return data


def test_an_export_keeps_and_checks_the_exact_factor() -> None:
    _, geometry = _faded(TIERS, "x")
    assert check_page("page 1", _record(geometry)).geometry == geometry
    bad = _record(geometry)
    bad["geometry"] = {**bad["geometry"], "scale_y": 7}  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument, match=r"geometry scale_y must be a number in \(0, 1\] or absent, got 7"):
        check_page("page 1", bad)
    # a crafted size: rows far past the image would make a reader pad it with gigabytes of white
    bad["geometry"] = {**_record(geometry)["geometry"], "rows": 1000, "cell_height": 1000}  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument, match=r"geometry width and height must be the hot page \(1056 x 1000016\)"):
        check_page("page 1", bad)


def test_a_geometry_far_larger_than_its_image_is_refused_not_padded() -> None:
    image, geometry = _faded(TIERS, "x")
    huge = dataclasses.replace(geometry, rows=1000, cell_height=1000)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="geometry and image do not match"):
        TrainedReader().read_rows(image, huge, [999])  # type: ignore[arg-type]


def test_whole_pixel_cells_fewer_bytes_than_the_scale_they_replace() -> None:
    """The bytes of a frost of cells against the frost by scale it replaced, from the same text."""
    text = "import os; path = os.path.join(root, 'a1b2c3d4e5f6') + ' Dvořák Łukasiewicz'"
    hot, renderer = _page(text)
    data = encode_image(Image.fromarray(hot), TIERS[0])
    cells, _ = demote_through(data, renderer.geometry, TIERS[1:])
    old = [t.by_scale() for t in TIERS[1:]]
    by_scale, _ = demote_through(data, renderer.geometry, old)
    assert len(cells) < 0.9 * len(by_scale)


def test_a_page_stored_by_scale_alone_keeps_fading_as_it_would_have_before() -> None:
    """Older archives' pages below hot sit at many phases; a frost of cells made from such a cold reads about
    twice the errors, so they keep fading by scale, with the tier's scale_levels: the bytes they would
    have had under the tiers before cells, exactly."""
    before = PREVIOUS_TIERS
    hot, renderer = _page("def f(x): return x ** 2  # Dröge 0O8B")
    data = encode_image(Image.fromarray(hot), before[0])
    old_warm, warm_geometry = demote(data, renderer.geometry, before[1])
    now, now_geometry = demote_through(old_warm, warm_geometry, TIERS[2:])
    then, then_geometry = demote_through(old_warm, warm_geometry, before[2:])
    assert now == then and now_geometry == then_geometry and now_geometry.scale_y is None
    step, geometry = old_warm, warm_geometry
    for tier, old in zip(TIERS[2:], before[2:], strict=True):
        assert applied(tier, geometry) == dataclasses.replace(old, name=tier.name, after_pages=tier.after_pages)
        step, geometry = demote(step, geometry, tier)
    assert step == then
    assert applied(TIERS[4], renderer.geometry) is TIERS[4]  # a hot page takes the cells


def test_scale_levels_belong_to_tiers_of_cells() -> None:
    with pytest.raises(ValueError, match="scale_levels applies to a tier with cell only"):
        Tier("x", 0.2, "webp", lossless=True, levels=20, scale_levels=24)
    with pytest.raises(ValueError, match=r"scale_levels must be an integer in 2..256, got 300"):
        Tier("x", 0.2, "webp", lossless=True, levels=20, cell=(2, 4), scale_levels=300)
