"""Bulk import speed: chat-sized messages remembered per second, and what a rerun costs.

    python -m bench.bench_import [--messages 5000] [--skip-fading]

A JSONL file of `--messages` chat messages (user and assistant in turn, 80 to 400 characters,
timestamps one second apart) is imported into a fresh archive with the default config, batched
(`ingest.BATCH_MESSAGES` a transaction), without fading; fading the sessions afterwards is timed
on its own (the server's fader does it in the background; `--skip-fading` leaves it out: on a
shared machine the import alone is measured in seconds, fading takes several times as long). Then
the same file is imported again: every message is found by its content key and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from optical_memory.config import load_config
from optical_memory.ingest import BATCH_MESSAGES, import_conversations
from optical_memory.memory import Memory

SENTENCE = (
    "the deploy failed because the migration locked the orders table for ninety seconds while checkout "
    "retried with backoff and the cache warmed slowly so we moved the index build to a background job "
    "and added a health check that reads replica lag before routing traffic"
)
WORDS = SENTENCE.split(" ")


def chat_file(path: Path, messages: int, seed: int = 3) -> int:
    rng = random.Random(seed)
    characters = 0
    with path.open("w", encoding="utf-8") as file:
        for n in range(messages):
            words: list[str] = []
            target = rng.randint(80, 400)
            while sum(len(word) + 1 for word in words) < target:
                words.append(rng.choice(WORDS))
            text = " ".join(words) + f" (#{n})"
            characters += len(text)
            role = "user" if n % 2 == 0 else "assistant"
            file.write(json.dumps({"role": role, "content": text, "timestamp": 1_767_000_000 + n}) + "\n")
    return characters


def _cpu() -> float:
    """CPU seconds this process has used, all threads: on a shared machine, steadier than the wall clock."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages in the file")
    parser.add_argument("--skip-fading", action="store_true", help="measure the import alone, not fading after it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "chat.jsonl"
        characters = chat_file(source, args.messages)
        memory = Memory(load_config(None, root / "archive"))
        try:
            started, cpu = time.perf_counter(), _cpu()
            first = import_conversations(memory, source, fade=False)
            took, cpu = time.perf_counter() - started, _cpu() - cpu
            started, fading_cpu = time.perf_counter(), _cpu()
            steps = 0 if args.skip_fading else sum(memory.fade(session) for session in first.sessions)
            fading, fading_cpu = time.perf_counter() - started, _cpu() - fading_cpu
            started = time.perf_counter()
            again = import_conversations(memory, source, fade=False)
            rerun = time.perf_counter() - started
        finally:
            memory.close()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"file: {args.messages} messages, {characters / args.messages:.0f} characters each on average")
    print(
        f"import ({BATCH_MESSAGES} messages a transaction, no fading): {first.messages / took:,.0f} messages/s "
        f"({took:.1f} s, {len(first.pages)} pages); {first.messages / cpu:,.0f} messages per CPU-second"
    )
    if not args.skip_fading:
        print(
            f"fading afterwards: {fading:.1f} s ({steps} tier steps, {len(first.pages)} pages); "
            f"{fading_cpu:.1f} CPU-s, {1000 * fading_cpu / max(steps, 1):.0f} CPU-ms a step"
        )
    print(
        f"import again: {again.messages} new, {again.already_remembered} already remembered, "
        f"{args.messages / rerun:,.0f} messages/s checked"
    )


if __name__ == "__main__":
    main()
