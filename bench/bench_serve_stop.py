"""How long `optical-memory serve` takes to stop, with a fading backlog it must not wait for.

    python -m bench.bench_serve_stop [--pages 16] [--runs 3]

An archive of `--pages` full pages in one session, under tiers that fade a page one tier for every
newer page, leaves a backlog of about 2.6 demotion steps a page (measured here: `fade()` of a copy,
start to end). The server is started on it (stdio, then HTTP), left fading for half a second, and
stopped by SIGTERM, SIGINT or (stdio) the end of stdin: the figure is the time from the signal to
the process's exit, and the steps left undone show that the stop did not wait for the backlog.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from optical_memory.config import load_config
from optical_memory.memory import Memory

TIERS = [("hot", 1.0, "png", 0), ("warm", 0.75, "webp", 1), ("cool", 0.5, "webp", 2), ("cold", 0.35, "webp", 3)]
CONFIG = '[archive]\nmap_size_mib = 256\n\n[reader]\nname = "template"\n' + "".join(
    f'\n[[tiers]]\nname = "{name}"\nscale = {scale}\ncodec = "{codec}"\n'
    + (f"lossless = true\nafter_pages = {after}\n" if after else "")
    for name, scale, codec, after in TIERS
)
TOKEN = "bench-token-0123456789"


def backlog(config_path: Path, archive: Path, pages: int) -> None:
    memory = Memory(load_config(config_path, archive=archive, environ={}))
    lines = (f"line {i} " + "lorem ipsum dolor sit amet " * 3 for i in range(63 * pages))
    memory.remember("\n".join(lines), fade=False)
    memory.close()


def left_to_fade(config_path: Path, archive: Path) -> int:
    memory = Memory(load_config(config_path, archive=archive, environ={}))
    try:
        return memory.fade()
    finally:
        memory.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(config_path: Path, archive: Path, http: bool) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTICAL_MEMORY_")} | {"OPTICAL_MEMORY_TOKEN": TOKEN}
    args = [sys.executable, "-m", "optical_memory_mcp", "serve", "--archive", str(archive)]
    args += ["--config", str(config_path)]
    port = free_port()
    if http:
        args += ["--http", "--port", str(port)]
    proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    for line in proc.stderr:  # the lifespan logs this once the archive is open and fading has begun
        if b"archive open at" in line:
            break
    if http:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen[bytes], how: str) -> float:
    started = time.monotonic()
    if how == "close-stdin":
        assert proc.stdin is not None
        proc.stdin.close()
    else:
        proc.send_signal(getattr(signal, how))
    proc.wait(timeout=120)
    took = time.monotonic() - started
    for pipe in (proc.stdin, proc.stderr):
        if pipe is not None:
            pipe.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=16, help="full pages in the archive (default 16)")
    parser.add_argument("--runs", type=int, default=3, help="stops timed per transport and signal (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config_path = root / "backlog.toml"
        config_path.write_text(CONFIG, encoding="utf-8")
        template = root / "template"
        backlog(config_path, template, args.pages)
        probe = root / "probe"
        shutil.copytree(template, probe)
        started = time.monotonic()
        steps = left_to_fade(config_path, probe)
        print(f"backlog: {steps} demotion steps, {time.monotonic() - started:.1f} s to fade them all")
        for transport, ways in (("stdio", ["SIGTERM", "SIGINT", "close-stdin"]), ("http", ["SIGTERM", "SIGINT"])):
            for how in ways:
                times, left = [], []
                for run in range(args.runs):
                    archive = root / f"{transport}-{how}-{run}"
                    shutil.copytree(template, archive)
                    proc = start(config_path, archive, transport == "http")
                    time.sleep(0.5)
                    times.append(stop(proc, how))
                    left.append(left_to_fade(config_path, archive))
                print(
                    f"{transport:5} {how:11} stop p50 {statistics.median(times):.2f} s, max {max(times):.2f} s; "
                    f"steps left for the next start: {min(left)}..{max(left)} of {steps}"
                )


if __name__ == "__main__":
    main()
