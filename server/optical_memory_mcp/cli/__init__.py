"""The `optical-memory` command: `serve` runs the MCP server; the other commands mirror its tools.

::

    optical-memory --version
    optical-memory [--archive PATH] [--config FILE] serve [--http [--host H] [--port N] [--request-timeout S]
                                                          [--session-idle S]]
    optical-memory remember [--session S] [--role R] [--title T] [TEXT | -]   # stdin when - or absent
    optical-memory list [--session S] [--limit N] [--cursor C]
    optical-memory view PAGE_ID [-o FILE]           # FILE's extension picks the format; default PAGE_ID.<codec>
    optical-memory read PAGE_ID [--start N] [--end N]
    optical-memory search QUERY [--session S] [--limit N] [--context N]
    optical-memory sessions
    optical-memory forget [--page PAGE_ID] [--session S]
    optical-memory export PATH [--session S]                                 # a folder, or PATH.zip
    optical-memory import PATH                                               # an export folder or zip
    optical-memory web [--host H] [--port N] [--open]                        # the web page, http://127.0.0.1:8766/
    optical-memory [--archive-url postgresql://...] serve                    # a shared archive on PostgreSQL
    optical-memory migrate --from-archive PATH --to-url URL                  # LMDB -> PostgreSQL (or back:
                           # --from-url URL --to-archive PATH); lossless, verified

`--archive` and `--config` go before or after the command. Every command but `serve` prints its
result as JSON on stdout (the tools' structured results); `serve` keeps stdout for the protocol and
logs to stderr and stops within a second on SIGINT, SIGTERM or (stdio) the end of stdin. Errors, bad
command lines included, print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from optical_memory.errors import InvalidArgument, OpticalMemoryError
from optical_memory_mcp.cli.parser import EXIT_ERROR, EXIT_PROBLEMS, PROG, build_parser

__all__ = ["build_parser", "main"]


def _use_archive_url(args: argparse.Namespace) -> None:
    """--archive-url: handed to load_config as OPTICAL_MEMORY_ARCHIVE_URL (so every command, and serve, get it)."""
    url = getattr(args, "archive_url", None)
    if url is None:
        return
    if getattr(args, "archive", None):
        raise InvalidArgument("give --archive PATH or --archive-url URL, not both")
    os.environ["OPTICAL_MEMORY_ARCHIVE_URL"] = url


def _unwrap(exc: BaseException) -> BaseException:
    """The one error inside task-group wrappers: `serve` runs the lifespan, which opens the archive, in one."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _run(args: argparse.Namespace) -> Any:
    """Run every command but capture; the result to print, or None when the command printed its own."""
    # Each command imports what it needs: pydantic, numpy and Pillow load with the config and the facade.
    if args.command == "migrate":
        from optical_memory.migrate import migrate
        from optical_memory_mcp.cli.commands import print_json

        print_json(migrate(args.from_archive, args.from_url, args.to_archive, args.to_url))
        return None
    if args.command in ("serve", "web"):
        from optical_memory_mcp.cli.serve import run_serve, run_web

        (run_serve if args.command == "serve" else run_web)(args)
        return None
    if args.command in ("install", "uninstall"):
        from optical_memory_mcp.cli.commands import run_install

        run_install(args)
        return None
    from optical_memory.config import load_config
    from optical_memory.memory import Memory
    from optical_memory_mcp.cli.commands import COMMANDS

    memory = Memory(load_config(args.config, args.archive))
    try:
        return COMMANDS[args.command](memory, args)
    finally:
        memory.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _use_archive_url(args)
        if args.command == "capture":  # a hook, started at every turn: it loads only what it uses
            from optical_memory_mcp.cli.commands import run_capture

            return run_capture(args)
        result = _run(args)
        if result is None:
            return 0
    except BaseException as raised:
        exc = _unwrap(raised)
        if isinstance(exc, OpticalMemoryError | OSError):  # OSError: an archive or output path we cannot use
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        if isinstance(exc, KeyboardInterrupt):
            return 130  # the shell's code for SIGINT, without a traceback
        raise
    from optical_memory_mcp.cli.commands import print_json

    try:
        print_json(result if isinstance(result, dict) else result.model_dump(mode="json"))
        sys.stdout.flush()
    except BrokenPipeError:  # `optical-memory read p1 | head`: the reader left; that is no error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
    if args.command == "check" and result["problems"]:
        return EXIT_PROBLEMS
    return 0
