"""The commands that open the archive and print a result as JSON: the tools' mirrors, capture and install."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optical_memory.errors import InvalidArgument, OpticalMemoryError
from optical_memory_mcp.cli.parser import PROG

if TYPE_CHECKING:  # `capture` runs from this module too, as a hook at every turn: it must not load the facade
    from optical_memory.memory import Memory
    from optical_memory.results import Line

__all__ = ["COMMANDS", "print_json", "run_capture", "run_install"]


def print_json(data: Any) -> None:
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


def warn_unverified(page_id: str, lines: Sequence[Line]) -> None:
    """One line on stderr for each line read that did not verify, or has no code and doubtful characters, marked.

    The JSON on stdout says the same (`verified`, `uncertain`); this is for the person at the terminal.
    """
    for line in lines:
        if line.verified is True or (line.verified is None and not line.uncertain):
            continue
        marks = "".join("^" if i in line.uncertain else " " for i in range(len(line.text) + 1)).rstrip()
        where = ", ".join(str(i) for i in line.uncertain) or "unknown"
        what = "is NOT verified" if line.verified is False else "has no check code and the reader is unsure"
        print(
            f"{PROG}: ? {page_id} line {line.number} {what} (doubtful characters at {where}); "
            f"it may not be what was remembered:\n    {line.text}\n    {marks}",
            file=sys.stderr,
        )


def _read(memory: Memory, args: argparse.Namespace) -> Any:
    read = memory.read_lines(args.page_id, start=args.start, end=args.end)
    warn_unverified(read.page_id, read.lines)
    return read


def _search(memory: Memory, args: argparse.Namespace) -> Any:
    found = memory.search(args.query, session=args.session, limit=args.limit, context=args.context)
    for hit in found.hits:
        warn_unverified(hit.page_id, hit.lines)
    return found


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
        print_json(dataclasses.asdict(report))
        raise KeyboardInterrupt
    _fade_imported(memory, report.sessions)
    return dataclasses.asdict(report)


def _fade_imported(memory: Memory, sessions: list[str]) -> None:
    """Fade the pages the import sealed, saying so: it can take minutes, and a server would do it anyway."""
    if not sessions:
        return
    from optical_memory.ingest import ProgressBar

    print(f"{PROG}: fading the imported pages (Ctrl-C leaves that to the server's next start)", file=sys.stderr)
    try:  # fading takes longer than the import: its own bar, in tier steps, with its rate and time
        with ProgressBar(sys.stderr, "tier steps") as bar:
            steps, one = 0, len(sessions) == 1  # the total is known per session: shown when there is one

            def show(done: int, total: int | None) -> None:
                bar.update(steps + done, total if one else None)

            for name in sessions:
                steps += memory.fade(name, progress=show)
    except KeyboardInterrupt:
        print(f"{PROG}: fading left for later; everything imported is kept", file=sys.stderr)
    except OpticalMemoryError as exc:
        print(f"{PROG}: fading left for later ({exc}); everything imported is kept", file=sys.stderr)


def _compact(memory: Memory, args: argparse.Namespace) -> Any:
    return memory.archive.compact()


def _check(memory: Memory, args: argparse.Namespace) -> Any:
    problems = memory.archive.check()
    return {"ok": not problems, "problems": problems}


def _stats(memory: Memory, args: argparse.Namespace) -> Any:
    from optical_memory.maintenance import stats

    return stats(memory.archive, [tier.name for tier in memory.tiers])


def run_capture(args: argparse.Namespace) -> int:
    """Never fails the agent: errors go to capture.log, the status is 0, stdout stays empty for a hook."""
    if args.drain:  # by hand: the drain a hook starts in the background, waited for and reported
        return _drain(args)
    from optical_memory.capture_hook import run_hook

    # A hook spools its turns and starts a drainer; by hand (--transcript), the turns are remembered
    # before the result is printed, so it says what was remembered.
    result = run_hook(args.config, args.archive, args.transcript, args.session, args.format, spool=not args.transcript)
    if args.transcript and result is not None:  # run by hand: say what happened
        print_json(dataclasses.asdict(result))
    return 0


def _drain(args: argparse.Namespace) -> int:
    from optical_memory.config import load_config
    from optical_memory.memory import Memory

    memory = Memory(load_config(args.config, args.archive))
    try:
        result = memory.drain()
    finally:
        memory.close()
    print_json(dataclasses.asdict(result))
    return 0


def run_install(args: argparse.Namespace) -> int:
    from optical_memory_mcp.install import install, uninstall

    run = install if args.command == "install" else uninstall
    plan = run(args.client, scope=args.scope, archive=args.archive, config=args.config, dry_run=args.dry_run)
    print(plan.report(args.dry_run))
    return 0


COMMANDS: dict[str, Callable[[Memory, argparse.Namespace], Any]] = {
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
    "check": _check,
}
