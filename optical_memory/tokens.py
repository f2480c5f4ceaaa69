"""Token estimates: how many text tokens a piece of text costs, and how many image tokens a page does.

Text: a byte-based estimate (UTF-8 bytes / 4, rounded up), close to what BPE tokenisers give for
English prose and code, and heavier for non-Latin scripts as they are. It is an estimate and the
results say so; the benchmarks count with a real BPE tokenizer.

Images, in two units:
* Claude image tokens: width * height / 750 (Anthropic's published rule of thumb).
* DeepSeek-OCR vision tokens: one per 64 x 64 = 4,096 px (16 x 16 patches, 4x token compression).
"""

from __future__ import annotations

import math

__all__ = ["claude_image_tokens", "deepseek_vision_tokens", "estimate_text_tokens"]


def estimate_text_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / 4)


def claude_image_tokens(width: int, height: int) -> int:
    return math.ceil(width * height / 750)


def deepseek_vision_tokens(width: int, height: int) -> int:
    return math.ceil(width * height / 4096)
