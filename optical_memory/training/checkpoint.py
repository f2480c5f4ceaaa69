"""Checkpoints that rebuild exactly (model arguments beside the weights), and a torch-backed Reader.

A checkpoint is one `torch.save` dict: `model_args` (ReaderConfig fields), `state_dict`, and the
run's `seed`, `step` and `command`, so export and evaluation never guess the architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from optical_memory.readers.trained import cells_text, row_strips
from optical_memory.render import Geometry
from optical_memory.training.model import CellReader, ReaderConfig, ink

__all__ = ["TorchReader", "load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | Path, model: CellReader, **extra: Any) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"model_args": model.cfg.to_dict(), "state_dict": state, **extra}, path)


def load_checkpoint(path: str | Path) -> tuple[CellReader, dict[str, Any]]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = CellReader(ReaderConfig(**checkpoint["model_args"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint


class TorchReader:
    """The `Reader` protocol over a torch model: for evaluation during training and for parity tests."""

    name = "trained-torch"

    def __init__(self, model: CellReader) -> None:
        self.model = model

    @torch.no_grad()
    def classify(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> np.ndarray:
        cfg = self.model.cfg
        strips = row_strips(image, geometry, rows, cfg.cell_height, cfg.cell_width)
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        logits, _ = self.model(ink(torch.from_numpy(strips).to(device)))
        self.model.train(was_training)
        return logits.argmax(-1).cpu().numpy()

    def read_rows(self, image: Image.Image, geometry: Geometry, rows: Sequence[int]) -> list[str]:
        return cells_text(self.classify(image, geometry, rows))
