"""The graph the reader is served as: the trained CellReader rewritten for a CPU, computing the same function.

CellReader runs along a row in (rows, channels, cells) layout with 1x1 convolutions, as training
wants. Served, the same arithmetic is cheaper as (rows, cells, channels): every per-cell layer is
one matrix product over all the cells of a call, each batch norm becomes a multiply-add (or is
folded into the product after it, where no padding sits between them), and the head's logits come
out already in (cells, classes) order instead of through a transpose of every cell's 759 logits.
In float the outputs match CellReader's to float rounding (tests/test_trained_reader.py).

`export.py` writes this graph and, for the shipped weights, then stores its per-cell matrix products
in 8 bits (`export.quantize_int8`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from optical_memory.training.model import CellReader, ink

__all__ = ["ServingGraph"]


def _affine(norm: Any) -> tuple[nn.Parameter, nn.Parameter]:
    """An eval-mode BatchNorm1d as a fixed scale and shift per channel."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return _fixed(scale), _fixed(norm.bias - norm.running_mean * scale)


def _linear(conv: Any) -> tuple[nn.Parameter, nn.Parameter]:
    """A 1x1 Conv1d as a fixed linear layer: weight (out, in), bias (out,)."""
    return _fixed(conv.weight.squeeze(-1)), _fixed(conv.bias)


def _fixed(tensor: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(tensor.detach().clone(), requires_grad=False)


class _Mixer(nn.Module):
    """One DilatedBlock in (rows, cells, channels): norm, depthwise taps `dilation` cells apart, MLP."""

    def __init__(self, block: Any) -> None:
        super().__init__()
        self.scale, self.shift = _affine(block.norm)
        # Depthwise along the row, as a 2-D convolution over (rows, channels, 1, cells) whose input and
        # output are permuted from and to channels last: onnxruntime runs it in its blocked layout and
        # takes both permutations into the reorders, where a 1-D convolution needs a transpose each way
        # (2.5x the time of the mixing; the same arithmetic, to float rounding).
        self.mix_w = _fixed(block.mix.weight.unsqueeze(2))  # (D, 1, 1, kernel)
        self.mix_b = _fixed(block.mix.bias)
        self.padding = (0, block.mix.padding[0])
        self.dilation = (1, block.mix.dilation[0])
        self.groups = block.mix.groups
        self.up_w, self.up_b = _linear(block.up)
        self.down_w, self.down_b = _linear(block.down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, D)
        normed = (x * self.scale + self.shift).unsqueeze(1).permute(0, 3, 1, 2)  # (B, D, 1, C)
        mixed = F.conv2d(
            normed, self.mix_w, self.mix_b, padding=self.padding, dilation=self.dilation, groups=self.groups
        )
        mixed = mixed.permute(0, 2, 3, 1).squeeze(1)  # (B, C, D)
        return x + F.linear(F.gelu(F.linear(mixed, self.up_w, self.up_b)), self.down_w, self.down_b)


class ServingGraph(nn.Module):
    """uint8 strips (B, H, W) in; per cell the argmax class, its probability and the top K (export's outputs)."""

    def __init__(self, model: CellReader, k: int) -> None:
        super().__init__()
        cfg = model.cfg
        if cfg.version != 2:
            raise ValueError(f"the serving graph is for version-2 readers, got version {cfg.version}")
        self.k = k
        self.embed = model.embed  # one window per cell: ORT's convolution does this well as it is
        self.embed_scale, self.embed_shift = _affine(model.embed_norm)
        self.glyph_in_w, self.glyph_in_b = _linear(model.glyph[0])
        self.glyph_out_w, self.glyph_out_b = _linear(model.glyph[2])
        self.mixers = nn.ModuleList(_Mixer(block) for block in model.blocks)
        self.attention = model.attention is not None
        if model.attention is not None:
            scale, shift = _affine(model.attention.norm)
            qk_w, qk_b = _linear(model.attention.qk)
            v_w, v_b = _linear(model.attention.v)
            # The norm folds into q, k and v exactly: nothing pads between it and them.
            self.qk_w, self.qk_b = _fixed(qk_w * scale), _fixed(qk_b + qk_w @ shift)
            self.v_w, self.v_b = _fixed(v_w * scale), _fixed(v_b + v_w @ shift)
            self.out_w, self.out_b = _linear(model.attention.out)
            self.attn_dim = cfg.attn_dim
            self.attn_scale = model.attention.scale
        self.norm_scale, self.norm_shift = _affine(model.norm)
        self.head_w, self.head_b = _linear(model.head)

    def forward(self, strips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.embed(ink(strips)).permute(0, 2, 3, 1).squeeze(1)  # (B, C, D)
        x = F.gelu(x * self.embed_scale + self.embed_shift)
        x = x + F.linear(F.gelu(F.linear(x, self.glyph_in_w, self.glyph_in_b)), self.glyph_out_w, self.glyph_out_b)
        for mixer in self.mixers:
            x = mixer(x)
        if self.attention:
            qk = F.linear(x, self.qk_w, self.qk_b)
            q, k = qk[..., : self.attn_dim], qk[..., self.attn_dim :]
            weights = (q @ k.transpose(1, 2) * self.attn_scale).softmax(-1)  # (B, C, C)
            x = x + F.linear(weights @ F.linear(x, self.v_w, self.v_b), self.out_w, self.out_b)
        h = F.gelu(x * self.norm_scale + self.norm_shift)
        rows, cells, width = h.shape
        # One product for every cell of the call: logits come out (cells, classes), the layout top-k wants.
        probs = F.linear(h.reshape(-1, width), self.head_w, self.head_b).softmax(-1)
        top_probs, top_classes = probs.topk(self.k, dim=-1)
        top_probs = top_probs.reshape(rows, cells, self.k)
        top_classes = top_classes.reshape(rows, cells, self.k)
        return top_classes[..., 0], top_probs[..., 0], top_classes, top_probs
