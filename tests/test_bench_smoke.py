"""The benchmark runs end to end on a tiny setting: one page, 50 scale pages, the trained reader only.

The full bench (bench/run.py) is not part of the test run; this checks that every phase runs and
that the report and its plots come out with the expected rows. Needs the `bench` extra.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run
from bench.report import PLOTS


@pytest.mark.slow
def test_bench_writes_report_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = run.main(
        [
            "--pages", "1", "--slow-pages", "1", "--queries", "3", "--scale-pages", "50",
            "--readers", "trained", "--out", str(out), "--workdir", str(tmp_path),
        ]
    )  # fmt: skip
    markdown = (out / "results.md").read_text(encoding="utf-8")
    header = next(line for line in markdown.splitlines() if line.startswith("| reader | tier |"))
    rows = [line for line in markdown.splitlines() if line.startswith("| trained |")]
    assert len(rows) == len(results.tiers)
    assert all(row.count("|") == header.count("|") for row in rows)
    for tier in results.tiers:
        assert f"| trained | {tier.name} |" in markdown
        assert f"| {tier.name} | {tier.scale} |" in markdown  # the storage row
    hot = next(s for s in results.fidelity if s.reader == "trained" and s.tier.name == "hot")
    assert hot.lines > 0 and hot.cer < 0.01  # the trained reader is exact on hot pages
    assert "Machine:" in markdown and "onnxruntime" in markdown and "o200k_base" in markdown
    assert "| 50 |" in markdown  # the scale row
    assert results.scale["pages"] == 50
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_tesseract_is_reported_not_faked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("bench.common.shutil.which", lambda name: None)
    config = run.load_config(archive=tmp_path / "archive", environ={})
    assert run.open_readers(["tesseract"], config) == {"tesseract": "not installed"}
