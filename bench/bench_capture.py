"""Capture speed, as a Claude Code hook sees it: the `optical-memory capture` process, start to exit.

    python -m bench.bench_capture [--turns 1000] [--runs 15]

1. A Claude Code transcript of `--turns` turns (prompt, a reply written as two lines, a tool
   result: four records, three messages a turn) is captured whole, from a fresh archive.
2. Then, `--runs` times, two more turns are appended and the hook runs with its payload on stdin:
   the incremental capture, timed from process start to exit (p50, p90).
3. The same hook again with nothing new (the rerun of a Stop hook), and `python -c pass` and the
   bare `import optical_memory` for what process start and imports alone cost on this machine.

The CPU is shared with whatever else runs: the figures are wall-clock, as the agent waits them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CWD = "/home/ada/shop"
SID = "5b0a7c9e-2f41-4d3b-8a61-0c2e9d7f1a35"


class Transcript:
    def __init__(self, path: Path) -> None:
        self.path, self.count = path, 0
        self.parent: str | None = None
        path.write_text("", encoding="utf-8")

    def _record(self, kind: str, message: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        uuid = f"{self.count:08d}-7c1e-4b0a-9d2f-{self.count:012d}"
        record = {
            "parentUuid": self.parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": CWD,
            "sessionId": SID,
            "version": "2.0.14",
            "type": kind,
            "uuid": uuid,
            "timestamp": f"2026-11-20T{9 + self.count // 3600:02d}:{self.count // 60 % 60:02d}:{self.count % 60:02d}Z",
            "message": message,
        }
        self.parent = uuid
        return record

    def append_turns(self, first: int, count: int) -> None:
        lines = []
        for n in range(first, first + count):
            reply = f"msg_{n:06d}"
            lines += [
                self._record("user", {"role": "user", "content": f"Turn {n}: why does test_checkout_{n} fail on CI?"}),
                self._record(
                    "assistant",
                    {
                        "id": reply,
                        "role": "assistant",
                        "content": [{"type": "text", "text": f"Let me look at checkout_{n}.py and run the test."}],
                    },
                ),
                self._record(
                    "assistant",
                    {
                        "id": reply,
                        "role": "assistant",
                        "content": [
                            {"type": "tool_use", "id": f"t{n}", "name": "Bash", "input": {"command": f"pytest -k {n}"}}
                        ],
                    },
                ),
                self._record(
                    "user",
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": f"t{n}", "content": f"E AssertionError: total {n}"}
                        ],
                    },
                ),
            ]
        with self.path.open("a", encoding="utf-8") as file:
            file.write("".join(json.dumps(line) + "\n" for line in lines))


CPU: list[float] = []  # CPU seconds (user + system) of each timed process, beside its wall-clock time


def timed(argv: list[str], stdin: bytes = b"") -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode != 0 or (done.stdout.strip() and b"{" not in done.stdout[:1]):
        raise SystemExit(f"{argv} failed: {done.returncode} {done.stderr[-500:]!r}")
    return took


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--turns", type=int, default=1000, help="turns in the transcript before the timed runs")
    parser.add_argument("--runs", type=int, default=15, help="incremental captures to time")
    args = parser.parse_args()
    command = [str(Path(sys.executable).parent / "optical-memory")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        archive = root / "archive"
        transcript = Transcript(root / f"{SID}.jsonl")
        transcript.append_turns(0, args.turns)
        size = transcript.path.stat().st_size
        whole = timed([*command, "--archive", str(archive), "capture", "--transcript", str(transcript.path)])
        whole_cpu = CPU[-1]
        payload = json.dumps(
            {"session_id": SID, "transcript_path": str(transcript.path), "cwd": CWD, "hook_event_name": "Stop"}
        ).encode()
        hook = [*command, "--archive", str(archive), "capture"]
        incremental, rerun, cpu = [], [], []
        for run in range(args.runs):
            transcript.append_turns(args.turns + 2 * run, 2)
            incremental.append(timed(hook, payload))
            cpu.append(CPU[-1])
            rerun.append(timed(hook, payload))
        bare = [timed([sys.executable, "-c", "pass"]) for _ in range(5)]
        imports = [timed([sys.executable, "-c", "import optical_memory"]) for _ in range(5)]
        log = (archive / "capture.log").read_text(encoding="utf-8").splitlines()
    if f"{3 * args.turns} new turn(s)" not in log[0]:
        raise SystemExit(f"the whole capture did not remember every turn: {log[0]}")
    in_process = [float(line.rsplit(", ", 1)[1].removesuffix(" ms")) for line in log[1:] if line.endswith(" ms")]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (wall-clock grows with load)")
    print(f"transcript: {args.turns} turns ({3 * args.turns} messages, {size / 1e6:.1f} MB)")
    print(f"whole capture (process start to exit):        {whole:.2f} s wall, {whole_cpu:.2f} s CPU")
    print(
        f"incremental capture of 2 turns, {args.runs} runs:    p50 {1000 * statistics.median(incremental):.0f} ms, "
        f"p90 {1000 * p(incremental, 0.9):.0f} ms"
    )
    print(f"  the same, CPU time of the process:           p50 {1000 * statistics.median(cpu):.0f} ms")
    print(f"rerun with nothing new:                        p50 {1000 * statistics.median(rerun):.0f} ms")
    print(f"  hook runs, time inside capture (its log):    p50 {statistics.median(in_process):.0f} ms")
    print(f"python -c pass:                                p50 {1000 * statistics.median(bare):.0f} ms")
    print(f"python -c 'import optical_memory':             p50 {1000 * statistics.median(imports):.0f} ms")


if __name__ == "__main__":
    main()
