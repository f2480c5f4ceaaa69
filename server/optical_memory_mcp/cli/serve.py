"""`serve` (the MCP server over stdio or HTTP) and `web` (the archive's web page): the long-running commands."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import NoReturn

from optical_memory.config import load_config

__all__ = ["run_serve", "run_web"]


def _log_to_stderr() -> None:
    # The protocol owns stdout: everything else, the SDK's logging included, goes to stderr.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def run_serve(args: argparse.Namespace) -> None:
    _log_to_stderr()
    config = load_config(args.config, args.archive)
    try:
        if args.http:
            from optical_memory_mcp.http import serve_http

            serve_http(
                config, args.host, args.port, request_timeout_s=args.request_timeout, session_idle_s=args.session_idle
            )
        else:
            from optical_memory_mcp.app import build_server, max_request_bytes  # the MCP SDK is loaded only to serve
            from optical_memory_mcp.stdio import serve_stdio

            serve_stdio(build_server(config), max_request_bytes(config))
    except KeyboardInterrupt:  # uvicorn stops on SIGINT, then raises it again
        _exit_at_once(130)
    _exit_at_once(0)


def _exit_at_once(code: int) -> NoReturn:
    """End the process once serving has stopped and closed what it opened (archive, fader, streams).

    The interpreter's own teardown of the libraries loaded to serve (numpy, pydantic, the MCP SDK,
    onnxruntime) takes another 0.1 to 0.7 s (0.65 s measured on a loaded 2-core machine, in a process
    that only imported them): long enough for a stop to miss its second. Nothing of ours is left to
    tear down, so the streams are flushed and the process ends here.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def run_web(args: argparse.Namespace) -> None:
    _log_to_stderr()
    from optical_memory_mcp.web.serve import serve_web

    serve_web(load_config(args.config, args.archive), args.host, args.port, args.open)
