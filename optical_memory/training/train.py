"""Train the cell reader on pages made by our own renderer and faded by our own tier code.

The runs that made the shipped weights (one H100, 15 processes making pages; 3.5 minutes from scratch
with seed 3, then 7.5 minutes from that checkpoint with seed 4; README.md beside this has both):

    python -m optical_memory.training.train --device cuda --workers 15 --minutes 7.5 --seed 4 --version 2 \
        --d-embed 176 --n-blocks 4 --attn-dim 64 --expand 1 --exact-share 0.35 --low-share 0.25 --mix recall \
        --eval-pages 4 --init runs/calib/ckpt.pt --out runs/reader

A small run that works on a laptop CPU (2 cores, about 10 minutes in all; see the README for what it reads):

    python -m optical_memory.training.train --device cpu --workers 1 --minutes 8 --batch 32 --d-embed 128 --out runs/cpu

Read top to bottom: data (worker processes render and fade random pages into a ring buffer of
labelled row strips), model, a time-based schedule (warm-up then cosine, so a run fits its minutes),
the loop with held-out checks, then checkpoint, ONNX export and evaluation of the exported file.
Page seeds are `seed * 1e6 + k`; the held-out pages that evaluation reads start at 7e6.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import random
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optical_memory.alphabet import ALPHABET
from optical_memory.readers.trained import TrainedReader
from optical_memory.tiers import Tier
from optical_memory.training.checkpoint import TorchReader, load_checkpoint, save_checkpoint
from optical_memory.training.corpus import MIXES_FOR_TRAINING
from optical_memory.training.evaluate import HELDOUT_SEED, IDENTIFIER_MIX, figures, sample, score, top_confusions
from optical_memory.training.export import export_onnx
from optical_memory.training.generate import (
    LOSSLESS_TIERS,
    Page,
    TierImage,
    configured_tiers,
    row_samples,
    with_tail,
)
from optical_memory.training.model import CellReader, ReaderConfig, ink

# -----------------------------------------------------------------------------------------------
# arguments

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", default="runs/reader", help="folder for ckpt.pt, reader.onnx, reader.json, log")
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
parser.add_argument("--workers", type=int, default=max(1, (mp.cpu_count() or 2) - 1), help="page-making processes")
parser.add_argument("--minutes", type=float, default=8.0, help="wall time of the training loop")
parser.add_argument("--batch", type=int, default=256, help="rows per step (100 cells each)")
parser.add_argument("--lr", type=float, default=3e-3)
parser.add_argument("--weight-decay", type=float, default=0.01)
parser.add_argument("--buffer", type=int, default=60_000, help="rows kept for sampling (ring buffer)")
parser.add_argument("--hot-share", type=float, default=0.3, help="chance a page's hot rows enter the buffer")
parser.add_argument("--low-share", type=float, default=0.0, help="share of tier chains ending at scale 0.19..0.32")
parser.add_argument(
    "--exact-share", type=float, default=0.0, help="share of pages faded through config's tiers exactly"
)
parser.add_argument(
    "--chain",
    action="append",
    default=[],
    help="another chain for --exact-share, as the configured one with its last tiers changed: SCALE/LEVELS[:...] "
    "(e.g. 0.35/8:0.28/4 sets cold and frost; generate.with_tail), or with tiers below its last: +SCALE/LEVELS "
    "(e.g. +0.19/16); repeat for several",
)
parser.add_argument(
    "--max-scale",
    type=float,
    default=1.0,
    help="keep only rows of tiers at this scale or smaller: a reader for the small tiers alone (serving reads pages "
    "at or below its metadata's max_scale with it; e.g. 0.36 for cold and frost)",
)
parser.add_argument(
    "--cells-share",
    type=float,
    default=0.0,
    help="share of the random chains that end in tiers of whole-pixel cells (generate.random_cells)",
)
parser.add_argument("--mix", choices=sorted(MIXES_FOR_TRAINING), default="training", help="what the pages hold")
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--eval-pages", type=int, default=8)
parser.add_argument("--d-embed", type=int, default=ReaderConfig.d_embed)
parser.add_argument("--n-blocks", type=int, default=ReaderConfig.n_blocks)
parser.add_argument("--context", type=int, default=ReaderConfig.context)
parser.add_argument("--version", type=int, default=ReaderConfig.version, help="model version (2: dilated + attention)")
parser.add_argument("--expand", type=int, default=ReaderConfig.expand)
parser.add_argument("--attn-dim", type=int, default=ReaderConfig.attn_dim)
parser.add_argument("--kernel", type=int, default=ReaderConfig.kernel)
parser.add_argument("--init", default=None, help="checkpoint to start from (same model arguments)")
parser.add_argument(
    "--init-matching", default=None, help="checkpoint whose tensors of the same name and shape start the model"
)
parser.add_argument(
    "--teacher", default=None, help="checkpoint of a reader to distil from (any model arguments, same alphabet)"
)
parser.add_argument("--distill", type=float, default=0.7, help="with --teacher: weight of the teacher's soft targets")
parser.add_argument("--temperature", type=float, default=2.0, help="with --teacher: softmax temperature of both")

# Held-out checks during training: the configured chain, one colder candidate, and (from a second
# page set) the lossless chain of older archives.
EVAL_TIERS = (*configured_tiers(), Tier("c18", 0.18, "webp", lossless=True, levels=16, after_pages=1024))


def produce(job: tuple[int, float, float, float, str, tuple[str, ...], float, float]) -> tuple[np.ndarray, np.ndarray]:
    """One random page through one random tier chain -> (strips (n, H, W) uint8, labels (n, C) int16)."""
    seed, hot_share, low_share, exact_share, mix, chains, max_scale, cells_share = job
    assert seed < HELDOUT_SEED, "training seeds must stay below the held-out ones"
    samples = row_samples(
        seed,
        ReaderConfig.cell_height,
        ReaderConfig.cell_width,
        low_share=low_share,
        exact_share=exact_share,
        mix=MIXES_FOR_TRAINING[mix],
        extra=[with_tail(spec) for spec in chains],
        cells_share=cells_share,
    )
    keep = samples if random.Random(seed).random() < hot_share else samples[1:]
    keep = keep or samples
    if max_scale < 1.0:  # a small-tier reader learns from the small tiers only (the hot image never)
        keep = [s for s in samples if s[2] <= max_scale]
        if not keep:
            width = ReaderConfig.columns * ReaderConfig.cell_width
            empty = np.zeros((0, ReaderConfig.cell_height, width), dtype=np.uint8)
            return empty, np.zeros((0, ReaderConfig.columns), dtype=np.int16)
    return np.concatenate([s for s, _, _ in keep]), np.concatenate([y for _, y, _ in keep])


class RowBuffer:
    """Labelled row strips on the device, a ring buffer that worker processes keep filling with new pages."""

    def __init__(self, stream: Any, size: int, cfg: ReaderConfig, device: torch.device) -> None:
        width = cfg.columns * cfg.cell_width
        self.stream, self.size, self.device = stream, size, device
        self.strips = torch.empty((size, cfg.cell_height, width), dtype=torch.uint8, device=device)
        self.labels = torch.empty((size, cfg.columns), dtype=torch.long, device=device)
        self.filled, self.cursor, self.pages_seen = 0, 0, 0

    def take(self, block: int, wait: bool = True) -> None:
        """Move up to `block` finished pages' rows from the workers into the buffer."""
        for _ in range(block):
            try:
                strips, labels = self.stream.next(timeout=None if wait else 0.0)
            except mp.TimeoutError:
                return  # nothing ready: train on what the buffer holds
            n = len(strips)
            idx = ((torch.arange(n) + self.cursor) % self.size).to(self.device)
            self.strips[idx] = torch.from_numpy(strips).to(self.device)
            self.labels[idx] = torch.from_numpy(labels.astype(np.int64)).to(self.device)
            self.cursor = (self.cursor + n) % self.size
            self.filled = min(self.size, self.filled + n)
            self.pages_seen += 1

    def batch(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`rows` random rows: inked strips (B, 1, H, W) and their labels (B, C)."""
        idx = torch.randint(0, self.filled, (rows,), device=self.device)
        return ink(self.strips[idx]), self.labels[idx]


# (label, pages) of each held-out set: configured chain, identifiers, the lossless chain of older archives
HeldOut = list[tuple[str, list[tuple[Page, list[TierImage]]]]]


def open_log(out: Path) -> Callable[[str], None]:
    """A log function that prints each message and appends it to OUT/train.log."""
    log_file = (out / "train.log").open("a", encoding="utf-8")

    def log(message: str) -> None:
        print(message, flush=True)
        log_file.write(message + "\n")
        log_file.flush()

    return log


def model_config(args: argparse.Namespace) -> ReaderConfig:
    return ReaderConfig(
        d_embed=args.d_embed,
        n_blocks=args.n_blocks,
        context=args.context,
        n_classes=len(ALPHABET),
        version=args.version,
        expand=args.expand,
        attn_dim=args.attn_dim,
        kernel=args.kernel,
    )


def start_workers(args: argparse.Namespace) -> tuple[Any, Any]:
    """Worker processes that make pages: (pool, stream of (strips, labels) per page, in no fixed order)."""
    # Page seeds: seed * 1e6 + k, all below HELDOUT_SEED, so no training page is a held-out page.
    pool = mp.get_context("spawn").Pool(args.workers)
    jobs = (
        (
            args.seed * 1_000_000 + k,
            args.hot_share,
            args.low_share,
            args.exact_share,
            args.mix,
            tuple(args.chain),
            args.max_scale,
            args.cells_share,
        )
        for k in range(1_000_000)
    )
    return pool, pool.imap_unordered(produce, jobs, chunksize=1)


def held_out_pages(eval_pages: int) -> HeldOut:
    return [
        ("config", sample(eval_pages, EVAL_TIERS)),
        ("ids", sample(eval_pages, configured_tiers(), HELDOUT_SEED + 3000, mix=IDENTIFIER_MIX)),
        ("lossless", sample(eval_pages, LOSSLESS_TIERS, HELDOUT_SEED + 2000)),
    ]


def build_model(
    cfg: ReaderConfig, args: argparse.Namespace, device: torch.device
) -> tuple[CellReader, torch.optim.Optimizer]:
    """The model (from --init if given) and AdamW, with no weight decay on biases and norms."""
    model = CellReader(cfg).to(device)
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location=device, weights_only=True)["state_dict"])
    elif args.init_matching:
        copied = init_matching(model, torch.load(args.init_matching, map_location=device, weights_only=True))
        print(f"--init-matching: {copied} of {len(model.state_dict())} tensors from {args.init_matching}", flush=True)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
    )
    return model, optimizer


def init_matching(model: CellReader, checkpoint: dict[str, Any]) -> int:
    """Copy into `model` each tensor of `checkpoint` whose name and shape are the model's (a reader with a
    block fewer starts as its teacher without that block); returns how many were copied."""
    own = model.state_dict()
    matching = {
        name: tensor
        for name, tensor in checkpoint["state_dict"].items()
        if name in own and own[name].shape == tensor.shape
    }
    model.load_state_dict(matching, strict=False)
    return len(matching)


def lr_at(progress: float, peak: float) -> float:
    """Linear warm-up over the first 3 % of the time, then cosine to 2 % of the peak."""
    if progress < 0.03:
        return peak * progress / 0.03
    p = min(1.0, (progress - 0.03) / 0.97)
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * p)))


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL divergence of the student's softened class distribution from the teacher's, per cell, times T^2
    (Hinton et al.: keeps its gradients on the scale of the labels' cross-entropy)."""
    classes = student.size(-1)
    log_student = (student.reshape(-1, classes) / temperature).log_softmax(-1)
    log_teacher = (teacher.reshape(-1, classes).detach() / temperature).log_softmax(-1)
    kl = torch.nn.functional.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
    return kl * temperature**2


def load_teacher(path: str, device: torch.device, student: ReaderConfig) -> CellReader:
    """A frozen reader to distil from (its own model arguments, from its checkpoint). It must read the
    student's strips into the student's classes: the same alphabet and cell size."""
    teacher, _ = load_checkpoint(path)
    for name in ("n_classes", "cell_height", "cell_width"):
        if getattr(teacher.cfg, name) != getattr(student, name):
            raise SystemExit(
                f"--teacher {path}: its {name} is {getattr(teacher.cfg, name)}, the student's "
                f"{getattr(student, name)}; a teacher must have the student's alphabet and cell size"
            )
    teacher = teacher.to(device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def check(model: CellReader, heldout: HeldOut) -> str:
    """CER per tier on each held-out set, as one log line."""
    model.eval()
    reader = TorchReader(model)
    parts = []
    for label, pages in heldout:
        scores = score(reader, pages)
        parts.append(label + " " + " ".join(f"{s.tier.name} {100 * s.cer:.3f}%" for s in scores))
    model.train()
    return " | ".join(parts)


def train(
    model: CellReader,
    optimizer: torch.optim.Optimizer,
    rows: RowBuffer,
    heldout: HeldOut,
    args: argparse.Namespace,
    log: Callable[[str], None],
    command: str,
    teacher: CellReader | None = None,
) -> tuple[int, float]:
    """The loop, for --minutes of wall time; a checkpoint every 2,000 steps. Returns (steps, start time).

    With a `teacher` (--teacher), the loss mixes the labels' cross-entropy with the teacher's soft
    targets (`soft_loss`): a smaller student learns from the teacher's doubts (which look-alikes a
    faded cell could be) as well as from the truth, in a fraction of the steps the teacher took."""
    out = Path(args.out)
    start = time.time()
    budget = args.minutes * 60
    step, last_log, seen_rows = 0, start, 0
    model.train()
    while (elapsed := time.time() - start) < budget:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(elapsed / budget, args.lr)
        x, y = rows.batch(args.batch)
        logits, loss = model(x, y)
        if teacher is not None:
            loss = (1 - args.distill) * loss + args.distill * soft_loss(logits, teacher(x)[0], args.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        seen_rows += args.batch
        if step % 10 == 0:
            rows.take(64, wait=False)  # whatever pages are ready; the workers never wait on the trainer for long
        if step % 2000 == 0:
            save_checkpoint(out / "ckpt.pt", model, seed=args.seed, step=step, command=command, minutes=args.minutes)
        if time.time() - last_log > 60 or step == 1:
            last_log = time.time()
            log(
                f"step {step} {elapsed:6.0f}s loss {loss.item():.4f} lr {lr_at(elapsed / budget, args.lr):.2e} "
                f"pages {rows.pages_seen} rows/s {seen_rows / max(1, elapsed):.0f} | {check(model, heldout)}"
            )
    return step, start


def finish(
    model: CellReader, heldout: HeldOut, args: argparse.Namespace, log: Callable[[str], None], command: str, step: int
) -> None:
    """Checkpoint, ONNX export, and the exported file's figures on the held-out pages (in its metadata too)."""
    out = Path(args.out)
    model.eval()
    save_checkpoint(out / "ckpt.pt", model, seed=args.seed, step=step, command=command, minutes=args.minutes)
    meta: dict[str, Any] = {"seed": args.seed, "step": step, "command": command, "minutes": args.minutes}
    if args.max_scale < 1.0:
        meta["max_scale"] = args.max_scale  # the pages this reader is for: TrainedReader's small-tier choice
    export_onnx(model, out / "reader.onnx", meta)
    evaluation: dict[str, object] = {"pages": args.eval_pages}
    names = {"ids": "identifiers"}  # check() logs the identifier set as ids; the figures name it in full
    for label, pages in heldout:
        label = names.get(label, label)
        scores = score(TrainedReader(out / "reader.onnx"), pages)
        log(label)
        for s in scores:
            log(s.row() + ("  | " + top_confusions(s) if s.errors else ""))
        evaluation[label] = figures(scores)
    meta["evaluation_during_training"] = evaluation
    export_onnx(model, out / "reader.onnx", meta)
    (out / "figures.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    args = parser.parse_args()
    command = "python -m optical_memory.training.train " + shlex.join(sys.argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open_log(out)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    pool, stream = start_workers(args)
    cfg = model_config(args)
    rows = RowBuffer(stream, args.buffer, cfg, device)
    log(f"{command}\nfilling buffer with {args.workers} workers ...")
    while rows.filled < min(args.buffer, 20 * args.batch):
        rows.take(1)
    heldout = held_out_pages(args.eval_pages)

    model, optimizer = build_model(cfg, args, device)
    log(f"model: {cfg} -> {model.n_params():,} parameters")
    teacher = load_teacher(args.teacher, device, cfg) if args.teacher else None
    if teacher is not None:
        log(f"distilling from {args.teacher} ({teacher.n_params():,} parameters), weight {args.distill}")
    step, start = train(model, optimizer, rows, heldout, args, log, command, teacher)
    # The weights first: a pool that is slow to stop (seen once on the device machine) must not cost them.
    save_checkpoint(out / "ckpt.pt", model, seed=args.seed, step=step, command=command, minutes=args.minutes)
    pool.terminate()

    log(f"done: {step} steps, {rows.pages_seen} pages, {time.time() - start:.0f}s | {check(model, heldout)}")
    finish(model, heldout, args, log, command, step)


if __name__ == "__main__":
    main()
