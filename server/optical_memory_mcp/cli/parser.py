"""The `optical-memory` command line: its commands, options and help texts (argparse)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from optical_memory.importers import FORMATS
from optical_memory_mcp import package_version

__all__ = ["EXIT_ERROR", "EXIT_PROBLEMS", "PROG", "build_parser"]

PROG = "optical-memory"
EXIT_ERROR = 2  # as argparse exits for a bad command line: the caller has to change something
EXIT_PROBLEMS = 1  # `check` found the archive inconsistent or damaged (its problems are on stdout)
REQUEST_TIMEOUT_S = 15.0  # HTTP: a request's headers and body must arrive within this (slowloris)
SESSION_IDLE_S = 1800.0  # HTTP: an MCP session with no request for this long is closed


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """--version, looked up only when asked for: the lookup loads importlib.metadata, which every
    other command (a capture hook above all) would pay for at each start."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        print(f"{parser.prog} {package_version()}")  # on stdout, as argparse's own version action prints it
        parser.exit()


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
    parser.add_argument("--version", action=_Version, help="show the version and exit")
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
    command("check", "check the archive's invariants and every image's checksum; exit status 1 if a problem is found")
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


def _add_capture_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """capture, install and uninstall: the commands that hook optical-memory into agents."""
    capture = command(
        "capture",
        "remember the new turns of a Claude Code transcript or Codex rollout (as a hook: payload on stdin)",
    )
    capture.add_argument("--transcript", metavar="PATH", help="the transcript to capture (default: the hook payload's)")
    capture.add_argument("--session", help="remember the turns in this session (default: the project's folder)")
    capture.add_argument("--format", choices=["claude-code", "codex"], help="transcript format (default: detected)")
    capture.add_argument(
        "--drain",
        action="store_true",
        help="remember the turns captures left in the archive's spool, now (a hook starts this in the background)",
    )
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
