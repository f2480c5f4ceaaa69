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
import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from optical_memory.config import load_config
from optical_memory.errors import InvalidArgument, OpticalMemoryError
from optical_memory.importers import FORMATS
from optical_memory.memory import Memory
from optical_memory_mcp import package_version

__all__ = ["build_parser", "main"]

PROG = "optical-memory"
EXIT_ERROR = 2  # as argparse exits for a bad command line: the caller has to change something
REQUEST_TIMEOUT_S = 15.0  # HTTP: a request's headers and body must arrive within this (slowloris)
SESSION_IDLE_S = 1800.0  # HTTP: an MCP session with no request for this long is closed


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds between 0 and 1000000")
    return value


def _add_global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--archive",
        metavar="PATH",
        default=default,
        help="archive folder (default: $OPTICAL_MEMORY_ARCHIVE, the config, or the user's data dir)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="TOML file over the defaults (default: $OPTICAL_MEMORY_CONFIG)",
    )
    parser.add_argument(
        "--archive-url",
        metavar="URL",
        default=default,
        help="a PostgreSQL archive, postgresql://user@host/db, instead of a folder (default: "
        "$OPTICAL_MEMORY_ARCHIVE_URL or the config's [archive] url); the password is best left to "
        "$PGPASSWORD or ~/.pgpass",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Long-term memory for agents, kept as page images that fade by tier.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    _add_global_options(parser, None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        # The global options also work after the command; SUPPRESS keeps an absent one from
        # overwriting one given before it. (Own actions: argparse `parents` would share defaults.)
        _add_global_options(sub, argparse.SUPPRESS)
        return sub

    _add_serve_command(command)

    web = command("web", "serve a web page to look through the archive (sessions, pages, search, fading)")
    web.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    web.add_argument("--port", type=int, default=8766, help="port (default 8766)")
    web.add_argument("--open", action="store_true", help="open it in the default browser, logged in")

    _add_tool_commands(command)

    _add_transfer_commands(command)
    migrate = command("migrate", "copy an archive between an LMDB folder and PostgreSQL, byte-identical, verified")
    migrate.add_argument("--from-archive", metavar="PATH", help="the LMDB archive folder to copy")
    migrate.add_argument("--from-url", metavar="URL", help="the PostgreSQL archive to copy")
    migrate.add_argument("--to-archive", metavar="PATH", help="a new LMDB archive folder to copy into")
    migrate.add_argument("--to-url", metavar="URL", help="an empty PostgreSQL database (or schema) to copy into")
    _add_capture_commands(command)
    command("compact", "give space freed by fading and forgetting back to the disk (no other process may have it open)")
    command("stats", "file size, used and free bytes, pages and bytes per tier, token totals (JSON)")
    return parser


def _add_serve_command(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """serve: the MCP server over stdio, or streamable HTTP with its guards."""
    serve = command("serve", "run the MCP server (stdio, or streamable HTTP with --http)")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP at http://HOST:PORT/mcp")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    serve.add_argument(
        "--request-timeout",
        type=_seconds,
        default=REQUEST_TIMEOUT_S,
        metavar="S",
        help=f"HTTP: close a connection whose request headers and body take longer than S seconds to "
        f"arrive (default {REQUEST_TIMEOUT_S:g})",
    )
    serve.add_argument(
        "--session-idle",
        type=_seconds,
        default=SESSION_IDLE_S,
        metavar="S",
        help=f"HTTP: close an MCP session after S seconds without a request (default {SESSION_IDLE_S:g})",
    )


def _add_tool_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The commands that mirror the MCP tools, each printing the tool's result as JSON."""
    remember = command("remember", "remember text (as the remember tool)")
    remember.add_argument(
        "text",
        nargs="?",
        default="-",
        metavar="TEXT",
        help="the text; '-' or absent reads UTF-8 from stdin, exactly (no newline is stripped)",
    )
    remember.add_argument("--session", default="default", help="session to write on (default: 'default')")
    remember.add_argument("--role", help="who said it (e.g. user, assistant), shown in the entry header")
    remember.add_argument("--title", help="a short title shown in the entry header")

    listing = command("list", "list pages newest first (as list_pages)")
    listing.add_argument("--session", help="only this session's pages (default: all sessions)")
    listing.add_argument("--limit", type=int, default=20, help="how many pages (default 20)")
    listing.add_argument("--cursor", help="a next_cursor from an earlier list")

    view = command("view", "write a page's stored image to a file (as view_page)")
    view.add_argument("page_id", metavar="PAGE_ID", help="a page id such as p12")
    view.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the image, in the format its extension names (.png, .webp, .jpeg, ...; "
        "converted when the page is stored otherwise); default PAGE_ID.<stored format>, unconverted",
    )

    read = command("read", "read lines of a page by OCR (as read_lines)")
    read.add_argument("page_id", metavar="PAGE_ID", help="a page id such as p12")
    read.add_argument("--start", type=int, default=1, help="first line number (default 1)")
    read.add_argument("--end", type=int, help="last line number, inclusive (default: the page's last)")

    search = command("search", "find lines by words and identifiers (as search)")
    search.add_argument("query", help="words, identifiers, paths, numbers or error codes")
    search.add_argument("--session", help="only this session (default: all sessions)")
    search.add_argument("--limit", type=int, default=10, help="how many hits (default 10)")
    search.add_argument("--context", type=int, default=2, help="lines shown around each matching line (default 2)")

    command("sessions", "list sessions (as list_sessions)")

    forget = command("forget", "forget a page or a whole session (as forget)")
    forget.add_argument("--page", dest="page_id", metavar="PAGE_ID", help="forget this one page")
    forget.add_argument("--session", help="forget every page of this session, and the session")


def _add_transfer_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """export and import: pages to and from a folder or a .zip; conversations from other tools."""
    export = command("export", "export pages (images + metadata) to a folder or a .zip")
    export.add_argument("destination", metavar="PATH", help="a new folder, or a path ending in .zip")
    export.add_argument("--session", help="only this session's pages (default: all)")

    importing = command(
        "import", "import an export (folder or .zip), or remember a conversation file (transcripts, chat exports)"
    )
    importing.add_argument(
        "source", metavar="PATH", help="an export folder or .zip, or a conversation file (transcript, chat export)"
    )
    importing.add_argument(
        "--format",
        default="auto",
        choices=["auto", *FORMATS],
        help="conversation format (default: detected from the file)",
    )
    importing.add_argument("--session", help="remember every message in this session (default: the file's own)")


def _print_json(data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2)
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except UnicodeEncodeError:  # a lone surrogate, or a terminal that is not UTF-8: JSON escapes still parse
        text = json.dumps(data, ensure_ascii=True, indent=2)
    print(text)


def _stdin_text() -> str:
    binary = getattr(sys.stdin, "buffer", None)
    if binary is None:  # stdin replaced by a text stream (an embedding program, a test)
        return sys.stdin.read()
    try:
        return binary.read().decode("utf-8")  # bytes: text mode would turn "\r\n" into "\n"
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"stdin is not UTF-8 ({exc}); pass UTF-8 text") from exc


def _serve(args: argparse.Namespace) -> None:
    # The protocol owns stdout: everything else, the SDK's logging included, goes to stderr.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
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


def _web(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from optical_memory_mcp.web.serve import serve_web

    serve_web(load_config(args.config, args.archive), args.host, args.port, args.open)


def _remember(memory: Memory, args: argparse.Namespace) -> Any:
    text = _stdin_text() if args.text == "-" else args.text
    return memory.remember(text, session=args.session, role=args.role, title=args.title)


def _list(memory: Memory, args: argparse.Namespace) -> Any:
    return memory.list_pages(session=args.session, cursor=args.cursor, limit=args.limit)


def _image_format(path: Path) -> str:
    """The Pillow format that `path`'s extension names (PNG, WEBP, JPEG, ...)."""
    from PIL import Image

    known = Image.registered_extensions()
    fmt = known.get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        writable = sorted(ext for ext, name in known.items() if name in ("PNG", "WEBP", "JPEG", "BMP", "TIFF", "GIF"))
        raise InvalidArgument(
            f"cannot tell an image format from {path.name!r}; name the file with one of {', '.join(writable)}"
        )
    return fmt


def _converted(data: bytes, fmt: str) -> bytes:
    """The stored image re-encoded as `fmt`, without loss where the format allows."""
    import io

    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        options: dict[str, Any] = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
        image.save(out, format=fmt, **options)
    return out.getvalue()


def _view(memory: Memory, args: argparse.Namespace) -> Any:
    from PIL import Image

    page = memory.view_page(args.page_id)
    stored = page.info.image_format  # the codec: png, webp, jpeg
    path = Path(args.output or f"{page.page_id}.{stored}")
    fmt = _image_format(path)
    data = page.data if fmt == Image.registered_extensions().get(f".{stored}") else _converted(page.data, fmt)
    path.write_bytes(data)
    return {
        "page_id": page.page_id,
        "file": str(path),
        "format": fmt.lower(),
        "mime_type": Image.MIME.get(fmt, page.mime_type),
        "bytes": len(data),
        "converted_from": None if data is page.data else stored,
        "caption": page.caption,
        "info": page.info.model_dump(mode="json"),
    }


def _read(memory: Memory, args: argparse.Namespace) -> Any:
    return memory.read_lines(args.page_id, start=args.start, end=args.end)


def _search(memory: Memory, args: argparse.Namespace) -> Any:
    return memory.search(args.query, session=args.session, limit=args.limit, context=args.context)


def _sessions(memory: Memory, args: argparse.Namespace) -> Any:
    return memory.list_sessions()


def _forget(memory: Memory, args: argparse.Namespace) -> Any:
    return memory.forget(page_id=args.page_id, session=args.session)


def _export(memory: Memory, args: argparse.Namespace) -> Any:
    return memory.export_pages(args.destination, session=args.session)


def _import(memory: Memory, args: argparse.Namespace) -> Any:
    source = Path(args.source)
    if (source / "manifest.json").is_file() or (source.suffix == ".zip" and source.is_file()):
        return memory.import_pages(source)
    from optical_memory.ingest import ProgressBar, import_conversations, import_folder

    run = import_folder if source.is_dir() else import_conversations  # a folder: ~/.codex/sessions, ~/.claude/projects
    with ProgressBar(sys.stderr, "messages") as bar:
        report = run(memory, source, args.format, args.session, progress=bar.update, fade=False)
    for problem in report.problems:
        where = f"line {problem.line}: " if problem.line is not None else ""
        print(f"{PROG}: skipped {where}{problem.message}", file=sys.stderr)
    if report.interrupted:  # Ctrl-C: say what was imported before stopping, then exit 130
        print(f"{PROG}: stopped; {report.messages} message(s) were imported and are kept", file=sys.stderr)
        _print_json(dataclasses.asdict(report))
        raise KeyboardInterrupt
    _fade_imported(memory, report.sessions)
    return dataclasses.asdict(report)


def _fade_imported(memory: Memory, sessions: list[str]) -> None:
    """Fade the pages the import sealed, saying so: it can take minutes, and a server would do it anyway."""
    if not sessions:
        return
    print(f"{PROG}: fading the imported pages (Ctrl-C leaves that to the server's next start)", file=sys.stderr)
    try:
        for name in sessions:
            memory.fade(name)
    except KeyboardInterrupt:
        print(f"{PROG}: fading left for later; everything imported is kept", file=sys.stderr)
    except OpticalMemoryError as exc:
        print(f"{PROG}: fading left for later ({exc}); everything imported is kept", file=sys.stderr)


def _compact(memory: Memory, args: argparse.Namespace) -> Any:
    return memory.archive.compact()


def _stats(memory: Memory, args: argparse.Namespace) -> Any:
    from optical_memory.maintenance import stats

    return stats(memory.archive, [tier.name for tier in memory.tiers])


def _add_capture_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """capture, install and uninstall: the commands that hook optical-memory into agents."""
    capture = command(
        "capture",
        "remember the new turns of a Claude Code transcript or Codex rollout (as a hook: payload on stdin)",
    )
    capture.add_argument("--transcript", metavar="PATH", help="the transcript to capture (default: the hook payload's)")
    capture.add_argument("--session", help="remember the turns in this session (default: the project's folder)")
    capture.add_argument("--format", choices=["claude-code", "codex"], help="transcript format (default: detected)")
    for name, summary in (
        ("install", "add the MCP server and the capture hooks to a client's config (merged, with a backup)"),
        ("uninstall", "remove exactly what install added to a client's config"),
    ):
        sub = command(name, summary)
        sub.add_argument("client", choices=["claude-code", "claude-desktop"], help="the client to configure")
        sub.add_argument(
            "--scope",
            choices=["user", "project"],
            default="user",
            help="claude-code: user (~/.claude.json, ~/.claude/settings.json) or project (./.mcp.json, "
            "./.claude/settings.json); default user",
        )
        sub.add_argument("--dry-run", action="store_true", help="show the change as a diff and write nothing")


def _capture(args: argparse.Namespace) -> int:
    """Never fails the agent: errors go to capture.log, the status is 0, stdout stays empty for a hook."""
    from optical_memory.capture import run_hook

    result = run_hook(args.config, args.archive, args.transcript, args.session, args.format)
    if args.transcript and result is not None:  # run by hand: say what happened
        _print_json(dataclasses.asdict(result))
    return 0


def _install(args: argparse.Namespace) -> int:
    from optical_memory_mcp.install import install, uninstall

    run = install if args.command == "install" else uninstall
    plan = run(args.client, scope=args.scope, archive=args.archive, config=args.config, dry_run=args.dry_run)
    print(plan.report(args.dry_run))
    return 0


_COMMANDS: dict[str, Callable[[Memory, argparse.Namespace], Any]] = {
    "remember": _remember,
    "list": _list,
    "view": _view,
    "read": _read,
    "search": _search,
    "sessions": _sessions,
    "forget": _forget,
    "export": _export,
    "import": _import,
    "compact": _compact,
    "stats": _stats,
}


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _use_archive_url(args)
        if args.command == "migrate":
            from optical_memory.migrate import migrate

            _print_json(migrate(args.from_archive, args.from_url, args.to_archive, args.to_url))
            return 0
        if args.command == "serve":
            _serve(args)
            return 0
        if args.command == "web":
            _web(args)
            return 0
        if args.command == "capture":
            return _capture(args)
        if args.command in ("install", "uninstall"):
            return _install(args)
        memory = Memory(load_config(args.config, args.archive))
        try:
            result = _COMMANDS[args.command](memory, args)
        finally:
            memory.close()
    except BaseException as raised:
        exc = _unwrap(raised)
        if isinstance(exc, OpticalMemoryError | OSError):  # OSError: an archive or output path we cannot use
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR
        if isinstance(exc, KeyboardInterrupt):
            return 130  # the shell's code for SIGINT, without a traceback
        raise
    _print_json(result if isinstance(result, dict) else result.model_dump(mode="json"))
    return 0
