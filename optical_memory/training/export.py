"""Export a checkpoint to the ONNX file the trained reader serves, with its JSON beside it.

    python -m optical_memory.training.export --checkpoint runs/reader/ckpt.pt --out optical_memory/models/reader.onnx

The graph takes uint8 row strips (rows, cell_height, columns * cell_width), any number of rows and
columns, and returns for each cell:

    classes       int64   (rows, cells)      the most probable class
    confidence    float32 (rows, cells)      its softmax probability
    topk_classes  int64   (rows, cells, K)   the K most probable classes, most probable first
    topk_probs    float32 (rows, cells, K)   their softmax probabilities

The top K feed verified decoding (`optical_memory.verify`): when a line's argmax reading fails its
check code, the next most probable classes of its least certain cells are tried. Batch norms are
folded by the exporter's constant folding. The JSON carries the model arguments, the alphabet hash,
K (`topk`), and whatever the training run recorded (command, seed, figures).

A version-2 reader is written as `serving_graph.ServingGraph` (the same function laid out for a
CPU). The shipped weights are that graph with `--int8`: its per-cell matrix products in 8 bits,
a quarter less read time a page on 2 cores (`python -m bench.bench_read_speed`) at the same lines
verified (`python -m bench.bench_verify`). Re-export a checkpoint keeping the figures of the JSON
already shipped beside it:

    python -m optical_memory.training.export --checkpoint optical_memory/models/reader.pt \
        --out optical_memory/models/reader.onnx --meta optical_memory/models/reader.json --int8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optical_memory.readers.trained import alphabet_hash
from optical_memory.training.checkpoint import load_checkpoint
from optical_memory.training.model import CellReader, ink
from optical_memory.training.serving_graph import ServingGraph

__all__ = ["OUTPUTS", "TOPK", "TopKPredictor", "export_onnx", "quantize_int8"]

# 8 choices per cell: on held-out identifier-heavy frost pages, 95 % of the lines read wrong have every
# wrong cell's truth in the top 4 and 99.3 % in the top 8; K = 8 verifies 95.3 % of those pages' lines
# against 94.2 % with K = 4, at the same read time (the search tries the costlier choices last).
TOPK = 8
OUTPUTS = ("classes", "confidence", "topk_classes", "topk_probs")
# Fields export computes itself: a --meta file (e.g. the JSON shipped beside older weights) never overrides them.
_COMPUTED = ("model", "alphabet_sha256", "onnx_sha256", "onnx_bytes", "parameters", "topk", "graph", "int8")


class TopKPredictor(nn.Module):
    """What is exported: uint8 strips (B, H, W) in; per cell the argmax class, its probability, and the top K."""

    def __init__(self, model: CellReader, k: int = TOPK) -> None:
        super().__init__()
        self.model = model
        self.k = k

    def forward(self, strips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, _ = self.model(ink(strips))  # (B, C, n_classes)
        probs = logits.softmax(-1)
        topk_probs, topk_classes = probs.topk(self.k, dim=-1)  # (B, C, K), most probable first
        return topk_classes[..., 0], topk_probs[..., 0], topk_classes, topk_probs


def export_onnx(
    model: CellReader, out: str | Path, meta: dict[str, Any] | None = None, int8: bool = False
) -> dict[str, Any]:
    """Write `out` (.onnx) and `out` with .json; returns the metadata written.

    A version-2 reader is written as `ServingGraph` (same function, laid out for a CPU); `int8` then
    stores its per-cell products in 8 bits (`quantize_int8`). Version 1 keeps the graph it always had.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    model = model.cpu().eval()
    if int8 and cfg.version != 2:
        raise ValueError("int8 export needs a version-2 reader (the serving graph)")
    graph: nn.Module = ServingGraph(model, TOPK) if cfg.version == 2 else TopKPredictor(model)
    example = torch.full((2, cfg.cell_height, cfg.columns * cfg.cell_width), 255, dtype=torch.uint8)
    with warnings.catch_warnings(), torch.no_grad():  # the TorchScript exporter announces its own deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (example,),
            str(out),
            input_names=["strips"],
            output_names=list(OUTPUTS),
            dynamic_axes={
                "strips": {0: "rows", 2: "width"},  # any number of columns: the model is convolutional along a row
                **{name: {0: "rows", 1: "cells"} for name in OUTPUTS},
            },
            opset_version=17,
            dynamo=False,
        )
    if int8:
        quantize_int8(out)
    data = out.read_bytes()
    full: dict[str, Any] = {
        "model": cfg.to_dict(),
        "alphabet_sha256": alphabet_hash(),
        "onnx_sha256": hashlib.sha256(data).hexdigest(),
        "onnx_bytes": len(data),
        "parameters": model.n_params(),
        "topk": TOPK,
        "graph": "serving" if cfg.version == 2 else "training",
        "int8": int8,
    }
    full.update({k: v for k, v in (meta or {}).items() if k not in _COMPUTED})
    out.with_suffix(".json").write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return full


def quantize_int8(path: Path) -> None:
    """Store the per-cell matrix products of the ONNX at `path` in 8 bits, in place.

    onnxruntime's dynamic quantization: int8 weights, each call's activations quantized to 8 bits
    per tensor, the products run on integer kernels (about a quarter less read time a page on 2 cores,
    `bench_read_speed`). Products
    of two activations (attention's q.k and weights.v) stay float: they have no weights to store.
    """
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = onnx.load(str(path))
    weights = {init.name for init in proto.graph.initializer}
    activations_only = [
        node.name
        for node in proto.graph.node
        if node.op_type in ("MatMul", "Gemm") and not any(name in weights for name in node.input[:2])
    ]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic advises a pre-processing step this graph does not need
    try:
        quantize_dynamic(
            str(path),
            str(path),
            op_types_to_quantize=["MatMul", "Gemm"],
            weight_type=QuantType.QInt8,
            nodes_to_exclude=activations_only,
        )
    finally:
        root.setLevel(level)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--out", default="optical_memory/models/reader.onnx")
    parser.add_argument("--int8", action="store_true", help="store the per-cell products in 8 bits (quantize_int8)")
    parser.add_argument(
        "--meta", action="append", default=[], help="JSON file whose fields join the metadata (repeatable)"
    )
    args = parser.parse_args()
    model, checkpoint = load_checkpoint(args.checkpoint)
    meta: dict[str, Any] = {k: checkpoint[k] for k in ("seed", "step", "command", "minutes") if k in checkpoint}
    for path in args.meta:
        meta.update(json.loads(Path(path).read_text(encoding="utf-8")))
    written = export_onnx(model, args.out, meta, int8=args.int8)
    print(f"wrote {args.out} ({written['onnx_bytes'] / 1e6:.2f} MB, {written['parameters']} parameters)")


if __name__ == "__main__":
    main()
