"""The cell reader: a small per-cell classifier over a row strip whose cells are known.

A row of a stored page is cropped by its geometry and resampled to a canonical strip of
`columns` cells of `cell_height` x `cell_width` pixels (the hot cell size, so a hot row is read
pixel for pixel). Each cell is embedded from a window that covers it and `context` cells either side
(at cold tiers a glyph's blur reaches into its neighbours), mixed with its neighbours by a few
residual 1-D convolutions along the row, and classified into the alphabet. No CTC, no detection:
the cell grid is known, so cell i of the output is cell i of the row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CellReader", "Predictor", "ReaderConfig", "ink"]


def ink(strips: torch.Tensor) -> torch.Tensor:
    """uint8 page pixels (B, H, W), 255 = paper -> model input (B, 1, H, W), 0 = paper, 1 = full ink."""
    return (255.0 - strips.float()).unsqueeze(1) * (1.0 / 255.0)


@dataclass(frozen=True)
class ReaderConfig:
    n_classes: int = 759  # len(ALPHABET): index 0 is space
    columns: int = 100  # cells per training row (the model reads rows of any length: it is convolutional)
    cell_height: int = 19  # canonical cell, in pixels (the hot cell of the 16 px font)
    cell_width: int = 10
    context: int = 1  # cells either side that the embedding window sees
    d_embed: int = 192  # width of the embedding and of the blocks
    n_blocks: int = 2  # residual 1-D conv blocks along the row
    kernel: int = 3  # cells each block mixes

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class Block(nn.Module):
    """Residual mixing along the row: norm -> conv over `kernel` cells -> GELU -> 1x1 conv."""

    def __init__(self, cfg: ReaderConfig) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(cfg.d_embed)  # folds into the convolution at export
        self.mix = nn.Conv1d(cfg.d_embed, cfg.d_embed, cfg.kernel, padding=cfg.kernel // 2)
        self.proj = nn.Conv1d(cfg.d_embed, cfg.d_embed, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, C) -> (B, D, C)
        return x + self.proj(F.gelu(self.mix(self.norm(x))))


class CellReader(nn.Module):
    def __init__(self, cfg: ReaderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        window = (2 * cfg.context + 1) * cfg.cell_width
        # One window per cell: kernel spans the cell and its context, stride is one cell.
        self.embed = nn.Conv2d(
            1,
            cfg.d_embed,
            (cfg.cell_height, window),
            stride=(cfg.cell_height, cfg.cell_width),
            padding=(0, cfg.context * cfg.cell_width),
        )
        self.embed_norm = nn.BatchNorm1d(cfg.d_embed)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_blocks))
        self.norm = nn.BatchNorm1d(cfg.d_embed)
        self.head = nn.Conv1d(cfg.d_embed, cfg.n_classes, 1)

    def forward(
        self, strips: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """strips: (B, 1, H, C*W) ink in [0, 1] (0 = paper); targets: (B, C) class indices."""
        x = self.embed(strips).squeeze(2)  # (B, D, C)
        x = F.gelu(self.embed_norm(x))
        for block in self.blocks:
            x = block(x)  # (B, D, C)
        logits = self.head(F.gelu(self.norm(x))).transpose(1, 2)  # (B, C, n_classes)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class Predictor(nn.Module):
    """What is exported: uint8 strips (B, H, W) in, (class, confidence) per cell out; no logits leave the graph."""

    def __init__(self, model: CellReader) -> None:
        super().__init__()
        self.model = model

    def forward(self, strips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, _ = self.model(ink(strips))  # (B, C, n_classes)
        probs = logits.softmax(-1)
        confidence, classes = probs.max(-1)  # (B, C), (B, C)
        return classes, confidence
