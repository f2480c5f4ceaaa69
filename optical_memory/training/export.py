"""Export a checkpoint to the ONNX file the trained reader serves, with its JSON beside it.

    python -m optical_memory.training.export --checkpoint runs/reader/ckpt.pt --out optical_memory/models/reader.onnx

The graph takes uint8 row strips (rows, cell_height, columns * cell_width), any number of rows and
columns, and returns each cell's class and confidence; batch norms are folded by the exporter's
constant folding. The JSON carries the model arguments, the alphabet hash, and whatever the training
run recorded (command, seed, figures).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from optical_memory.readers.trained import alphabet_hash
from optical_memory.training.checkpoint import load_checkpoint
from optical_memory.training.model import CellReader, Predictor

__all__ = ["export_onnx"]


def export_onnx(model: CellReader, out: str | Path, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `out` (.onnx) and `out` with .json; returns the metadata written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    model = model.cpu().eval()
    example = torch.full((2, cfg.cell_height, cfg.columns * cfg.cell_width), 255, dtype=torch.uint8)
    with warnings.catch_warnings():  # the TorchScript exporter announces its own deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Predictor(model),
            (example,),
            str(out),
            input_names=["strips"],
            output_names=["classes", "confidence"],
            dynamic_axes={
                "strips": {0: "rows", 2: "width"},  # any number of columns: the model is convolutional along a row
                "classes": {0: "rows", 1: "cells"},
                "confidence": {0: "rows", 1: "cells"},
            },
            opset_version=17,
            dynamo=False,
        )
    data = out.read_bytes()
    full = {
        "model": cfg.to_dict(),
        "alphabet_sha256": alphabet_hash(),
        "onnx_sha256": hashlib.sha256(data).hexdigest(),
        "onnx_bytes": len(data),
        "parameters": model.n_params(),
        **(meta or {}),
    }
    out.with_suffix(".json").write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", default="optical_memory/models/reader.onnx")
    parser.add_argument(
        "--meta", action="append", default=[], help="JSON file whose fields join the metadata (repeatable)"
    )
    args = parser.parse_args()
    model, checkpoint = load_checkpoint(args.checkpoint)
    meta: dict[str, Any] = {k: checkpoint[k] for k in ("seed", "step", "command", "minutes") if k in checkpoint}
    for path in args.meta:
        meta.update(json.loads(Path(path).read_text(encoding="utf-8")))
    written = export_onnx(model, args.out, meta)
    print(f"wrote {args.out} ({written['onnx_bytes'] / 1e6:.2f} MB, {written['parameters']} parameters)")


if __name__ == "__main__":
    main()
