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
    # Version 2 (issue 16): a deeper glyph encoder (a per-cell MLP after the window embedding),
    # blocks that mix along the row with dilated depthwise convolutions (dilation 1, 2, 4, 8, ...:
    # the receptive field grows to about the whole row) and a per-cell MLP, and one attention layer
    # over all cells of the row (what kind of text this row is: hex, Cyrillic, code). Version 1 is
    # the shipped reader of before; its checkpoints load unchanged.
    version: int = 1
    expand: int = 2  # version 2: hidden width of each MLP, in multiples of d_embed
    attn_dim: int = 0  # version 2: width of the row attention's queries and keys (0 = no attention)

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


class DilatedBlock(nn.Module):
    """Version 2 mixing: norm -> depthwise conv over `kernel` cells `dilation` apart -> per-cell MLP, residual."""

    def __init__(self, cfg: ReaderConfig, dilation: int) -> None:
        super().__init__()
        pad = dilation * (cfg.kernel // 2)
        self.norm = nn.BatchNorm1d(cfg.d_embed)
        self.mix = nn.Conv1d(cfg.d_embed, cfg.d_embed, cfg.kernel, padding=pad, dilation=dilation, groups=cfg.d_embed)
        self.up = nn.Conv1d(cfg.d_embed, cfg.expand * cfg.d_embed, 1)
        self.down = nn.Conv1d(cfg.expand * cfg.d_embed, cfg.d_embed, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, C) -> (B, D, C)
        return x + self.down(F.gelu(self.up(self.mix(self.norm(x)))))


class RowAttention(nn.Module):
    """One head over every cell of the row: each cell sees what kind of text the whole row holds."""

    def __init__(self, cfg: ReaderConfig) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(cfg.d_embed)
        self.qk = nn.Conv1d(cfg.d_embed, 2 * cfg.attn_dim, 1)
        self.v = nn.Conv1d(cfg.d_embed, cfg.attn_dim, 1)
        self.out = nn.Conv1d(cfg.attn_dim, cfg.d_embed, 1)
        self.scale = cfg.attn_dim**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, C) -> (B, D, C)
        h = self.norm(x)
        q, k = self.qk(h).chunk(2, dim=1)  # (B, A, C) each
        weights = (q.transpose(1, 2) @ k * self.scale).softmax(-1)  # (B, C, C)
        return x + self.out(self.v(h) @ weights.transpose(1, 2))  # (B, A, C) -> (B, D, C)


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
        if cfg.version == 1:
            self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_blocks))
        elif cfg.version == 2:
            self.glyph = nn.Sequential(
                nn.Conv1d(cfg.d_embed, cfg.expand * cfg.d_embed, 1),
                nn.GELU(),
                nn.Conv1d(cfg.expand * cfg.d_embed, cfg.d_embed, 1),
            )
            self.blocks = nn.ModuleList(DilatedBlock(cfg, 2 ** (i % 4)) for i in range(cfg.n_blocks))
            self.attention = RowAttention(cfg) if cfg.attn_dim else None
        else:
            raise ValueError(f"reader version must be 1 or 2, got {cfg.version}")
        self.norm = nn.BatchNorm1d(cfg.d_embed)
        self.head = nn.Conv1d(cfg.d_embed, cfg.n_classes, 1)

    def forward(
        self, strips: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """strips: (B, 1, H, C*W) ink in [0, 1] (0 = paper); targets: (B, C) class indices."""
        x = self.embed(strips).squeeze(2)  # (B, D, C)
        x = F.gelu(self.embed_norm(x))
        if self.cfg.version == 2:
            x = x + self.glyph(x)
        for block in self.blocks:
            x = block(x)  # (B, D, C)
        if self.cfg.version == 2 and self.attention is not None:
            x = self.attention(x)
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
