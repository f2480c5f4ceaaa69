"""Capture speed, as a Claude Code hook sees it: the `optical-memory capture` process, start to exit,
and the time until the turns it took are searchable (its detached drainer has remembered them).

    python -m bench.bench_capture [--turns 1000] [--runs 15]

1. A Claude Code transcript of `--turns` turns (prompt, a reply written as two lines, a tool
   result: four records, three messages a turn) is captured whole by hand (`--transcript`, which
   remembers before it exits), from a fresh archive; then the same transcript, into a second
   archive, through the hook: the hook's exit, and the drain.
2. Then, `--runs` times, two more turns are appended and the hook runs with its payload on stdin:
   the incremental capture, timed from process start to exit (p50, p90: what the agent waits), and
   from process start until the spool is empty (the turns are on pages and in the search index).
   Between runs the bench waits for the drainer to end, as turns come seconds apart.
3. The same hook again with nothing new (the rerun of a Stop hook), and `python -c pass` for what
   process start alone costs on this machine.

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


# As a pip install leaves it: bytecode compiled once and kept. (A dev shell's PYTHONDONTWRITEBYTECODE
# would have every process compile each module edited since its .pyc was written, ~2 ms apiece.)
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def compile_bytecode() -> None:
    import optical_memory
    import optical_memory_mcp

    folders = [str(Path(package.__file__).parent) for package in (optical_memory, optical_memory_mcp)]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], check=True, capture_output=True)


def timed(argv: list[str], stdin: bytes = b"") -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, check=False, env=ENV)
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode != 0 or (done.stdout.strip() and b"{" not in done.stdout[:1]):
        raise SystemExit(f"{argv} failed: {done.returncode} {done.stderr[-500:]!r}")
    return took


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Spool:
    """Watches an archive's spool from this process: drained once nothing waits in it."""

    def __init__(self, folder: Path) -> None:
        from optical_memory.archive import Archive

        self.folder = folder
        self.archive = Archive(folder)

    def wait_drained(self, started: float, timeout_s: float = 60.0) -> float:
        """Seconds from `started` (perf_counter) until the spool is empty; then lets the drainer exit."""
        from optical_memory.spool import has_spooled

        while has_spooled(self.archive):
            if time.perf_counter() - started > timeout_s:
                log = (self.folder / "capture.log").read_text(encoding="utf-8")[-2000:]
                raise SystemExit(f"the spool was not drained within {timeout_s:g} s; capture.log ends:\n{log}")
            time.sleep(0.002)
        took = time.perf_counter() - started
        time.sleep(0.3)  # the drainer logs, closes and exits: the next turn of an agent comes later still
        return took

    def close(self) -> None:
        self.archive.close()


def hook_and_drain(hook: list[str], payload: bytes, spool: Spool) -> tuple[float, float]:
    """(seconds from start to exit of the hook process, seconds from its start until the spool is drained)."""
    started = time.perf_counter()
    took = timed(hook, payload)
    return took, spool.wait_drained(started)


def payload_for(transcript: Transcript) -> bytes:
    data = {"session_id": SID, "transcript_path": str(transcript.path), "cwd": CWD, "hook_event_name": "Stop"}
    return json.dumps(data).encode()


def searchable(archive: Path, token: str) -> bool:
    """Whether a search finds `token` (the last turn's): drained means on pages and in the index."""
    from optical_memory.config import default_config
    from optical_memory.memory import Memory

    memory = Memory(default_config(archive))
    try:
        return any(token in line.text for hit in memory.search(token).hits for line in hit.lines)
    finally:
        memory.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--turns", type=int, default=1000, help="turns in the transcript before the timed runs")
    parser.add_argument("--runs", type=int, default=15, help="incremental captures to time")
    args = parser.parse_args()
    command = [str(Path(sys.executable).parent / "optical-memory")]
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        archive, hooked = root / "archive", root / "hooked"
        transcript = Transcript(root / f"{SID}.jsonl")
        transcript.append_turns(0, args.turns)
        size = transcript.path.stat().st_size
        whole = timed([*command, "--archive", str(archive), "capture", "--transcript", str(transcript.path)])
        whole_cpu = CPU[-1]
        hooked.mkdir()
        spool = Spool(hooked)
        hook = [*command, "--archive", str(hooked), "capture"]
        whole_hook, whole_drained = hook_and_drain(hook, payload_for(transcript), spool)
        incremental, drained, rerun, cpu = [], [], [], []
        for run in range(args.runs):
            transcript.append_turns(args.turns + 2 * run, 2)
            took, until = hook_and_drain(hook, payload_for(transcript), spool)
            incremental.append(took)
            cpu.append(CPU[-1])
            drained.append(until)
            rerun.append(timed(hook, payload_for(transcript)))
        spool.close()
        last = f"test_checkout_{args.turns + 2 * args.runs - 1}"
        found = searchable(hooked, last)
        bare = [timed([sys.executable, "-c", "pass"]) for _ in range(5)]
        log = (hooked / "capture.log").read_text(encoding="utf-8").splitlines()
        first = (archive / "capture.log").read_text(encoding="utf-8").splitlines()[0]
    if f"{3 * args.turns} new turn(s)" not in first or f"{3 * args.turns} new turn(s)" not in log[0]:
        raise SystemExit(f"the whole capture did not take every turn: {first} / {log[0]}")
    if not found:
        raise SystemExit(f"{last}, the last turn captured, is not found by search after the drain")
    hook_ms = [float(line.rsplit(", ", 1)[1].removesuffix(" ms")) for line in log[1:] if " spooled for " in line]
    drain_ms = [float(line.split("), ")[-1].split(" ms")[0]) for line in log[1:] if " drain: " in line]
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (wall-clock grows with load)")
    print("bytecode compiled beforehand, as a pip install leaves it")
    print(f"transcript: {args.turns} turns ({3 * args.turns} messages, {size / 1e6:.1f} MB)")
    print(f"whole capture by hand (start to exit, remembered): {whole:.2f} s wall, {whole_cpu:.2f} s CPU")
    print(f"whole capture by the hook: exits after {whole_hook * 1000:.0f} ms, searchable after {whole_drained:.2f} s")
    print(f"incremental capture of 2 turns by the hook, {args.runs} runs:")
    print(
        f"  hook process, start to exit:     p50 {1000 * statistics.median(incremental):.0f} ms, "
        f"p90 {1000 * p(incremental, 0.9):.0f} ms (CPU p50 {1000 * statistics.median(cpu):.0f} ms)"
    )
    print(
        f"  start until searchable (drained): p50 {1000 * statistics.median(drained):.0f} ms, "
        f"p90 {1000 * p(drained, 0.9):.0f} ms"
    )
    print(f"  time inside the hook (its log):   p50 {statistics.median(hook_ms):.0f} ms")
    print(f"  time inside the drain (its log):  p50 {statistics.median(drain_ms):.0f} ms")
    print(
        f"rerun with nothing new:             p50 {1000 * statistics.median(rerun):.0f} ms, "
        f"p90 {1000 * p(rerun, 0.9):.0f} ms"
    )
    print(f"python -c pass:                     p50 {1000 * statistics.median(bare):.0f} ms")
    print(f"last turn found by search after the drain: {found}")


if __name__ == "__main__":
    main()
