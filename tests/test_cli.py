"""The `optical-memory` command: each subcommand through `main(argv)`, and the module entry point once."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from optical_memory.archive import ArchiveTxn
from optical_memory.checkcode import CODE_BYTES
from optical_memory.config import Config
from optical_memory.memory import Memory
from optical_memory_mcp.cli import build_parser, main

Run = Callable[..., tuple[int, Any, str]]


@pytest.fixture
def run(archive_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run the CLI on the test archive; returns (exit code, parsed JSON stdout or None, stderr)."""

    def run(*argv: str, stdin: bytes | None = None) -> tuple[int, Any, str]:
        if stdin is not None:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
                code = main([*argv, "--archive", str(archive_path), "--config", str(config_file)])
        else:
            code = main([*argv, "--archive", str(archive_path), "--config", str(config_file)])
        out, err = capsys.readouterr()
        return code, json.loads(out) if out else None, err

    return run


def test_remember_list_view_read(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, remembered, _ = run("remember", "--session", "cli", "--role", "user", "--title", "t", "hello\nworld")
    assert code == 0
    assert remembered["spans"] == [{"page_id": "p1", "start": 1, "end": 2, "continues": False}]

    code, listing, _ = run("list", "--session", "cli", "--limit", "1")
    assert code == 0
    assert [page["id"] for page in listing["pages"]] == ["p1"] and listing["next_cursor"] is None

    monkeypatch.chdir(tmp_path)
    code, viewed, _ = run("view", "p1")
    assert code == 0
    assert viewed["file"] == "p1.png" and viewed["mime_type"] == "image/png"
    with Image.open(tmp_path / "p1.png") as image:
        assert image.format == "PNG" and image.size == (viewed["info"]["image_width"], viewed["info"]["image_height"])
    code, viewed, _ = run("view", "p1", "-o", str(tmp_path / "page.png"))
    assert code == 0 and (tmp_path / "page.png").read_bytes() == (tmp_path / "p1.png").read_bytes()
    assert (viewed["bytes"], viewed["converted_from"]) == ((tmp_path / "page.png").stat().st_size, None)

    code, read, _ = run("read", "p1", "--start", "2", "--end", "2")
    assert code == 0
    assert [(line["number"], line["text"], line["role"]) for line in read["lines"]] == [(2, "world", "user")]
    assert read["total_lines"] == 2


@pytest.mark.parametrize("argv", [("remember", "-"), ("remember",)], ids=["dash", "absent"])
def test_remember_reads_stdin_exactly(run: Run, argv: tuple[str, ...]) -> None:
    text = "crlf\r\nkept, 日本語 🙂\ttab\nand the final newline\n"
    code, remembered, _ = run(*argv, stdin=text.encode("utf-8"))
    assert code == 0 and remembered["characters"] == len(text)
    [span] = remembered["spans"]
    code, read, _ = run("read", span["page_id"], "--start", str(span["start"]), "--end", str(span["end"]))
    assert "\n".join(line["text"] for line in read["lines"]) == text


def test_view_names_the_file_after_the_stored_format(
    run: Run, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = Memory(config)
    try:
        memory.remember("\n".join(f"line {i}" for i in range(30)))
        assert memory.fade(now=datetime.now(UTC) + timedelta(days=3)) > 0  # p1 is sealed and now warm
    finally:
        memory.close()
    monkeypatch.chdir(tmp_path)
    code, viewed, _ = run("view", "p1")
    assert (code, viewed["file"], viewed["mime_type"]) == (0, "p1.webp", "image/webp")
    with Image.open(tmp_path / "p1.webp") as image:
        assert image.format == "WEBP"


@pytest.mark.parametrize(
    ("name", "pillow_format", "mime_type"),
    [("x.png", "PNG", "image/png"), ("x.jpg", "JPEG", "image/jpeg"), ("x.JPEG", "JPEG", "image/jpeg")],
)
def test_view_writes_the_format_the_file_name_asks_for(
    run: Run, config: Config, tmp_path: Path, name: str, pillow_format: str, mime_type: str
) -> None:
    memory = Memory(config)
    try:
        memory.remember("\n".join(f"line {i}" for i in range(30)))
        assert memory.fade(now=datetime.now(UTC) + timedelta(days=3)) > 0  # p1 is stored as WebP now
        stored = memory.view_page("p1")
    finally:
        memory.close()
    code, viewed, _ = run("view", "p1", "-o", str(tmp_path / name))
    assert code == 0
    assert (viewed["format"], viewed["mime_type"], viewed["converted_from"]) == (
        pillow_format.lower(),
        mime_type,
        "webp",
    )
    with Image.open(tmp_path / name) as written, Image.open(io.BytesIO(stored.data)) as original:
        assert written.format == pillow_format and written.size == original.size
        if pillow_format == "PNG":  # lossless: the very pixels kept at this tier
            assert written.tobytes() == original.tobytes()


def test_view_refuses_a_file_name_that_names_no_image_format(run: Run, tmp_path: Path) -> None:
    run("remember", "x")
    code, out, err = run("view", "p1", "-o", str(tmp_path / "page.img"))
    assert (code, out) == (2, None) and not (tmp_path / "page.img").exists()
    [line] = err.splitlines()
    assert "cannot tell an image format from 'page.img'" in line and ".png" in line and ".webp" in line


def test_version_and_help_on_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("optical-memory ")

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    undocumented = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in [("", parser), *commands.choices.items()]
        for action in sub._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction) and not (action.help or "").strip()
    ]
    assert undocumented == []


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["nonsense"], "invalid choice: 'nonsense'"),
        (["list", "--limit", "many"], "argument --limit: invalid int value: 'many'"),
        (["read"], "the following arguments are required: PAGE_ID"),
        (["serve", "--http", "--request-timeout", "-1"], "is not a number of seconds"),
    ],
)
def test_a_bad_command_line_is_one_line_on_stderr(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith("optical-memory") and "error: " in line and says in line and "--help" in line


def test_global_options_work_before_the_command(
    archive_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--archive", str(archive_path), "--config", str(config_file), "remember", "x"]) == 0
    capsys.readouterr()
    assert main(["--archive", str(archive_path), "--config", str(config_file), "list"]) == 0
    assert [page["id"] for page in json.loads(capsys.readouterr().out)["pages"]] == ["p1"]


@pytest.mark.parametrize(
    ("argv", "stdin", "expected"),
    [
        (("read", "p9"), None, "no page 'p9'; the archive has no pages yet"),
        (("view", "nonsense"), None, "page ids look like 'p12'"),
        (("list", "--limit", "0"), None, "limit must be between 1 and 200"),
        (("list", "--cursor", "zz"), None, "pass a next_cursor from list_pages"),
        (("list", "--session", "nope"), None, "no session 'nope'"),
        (("remember", ""), None, "text is empty"),
        (("remember",), b"\xff\xfe", "stdin is not UTF-8"),
    ],
)
def test_errors_go_to_stderr_with_exit_code_2(
    run: Run, argv: tuple[str, ...], stdin: bytes | None, expected: str
) -> None:
    code, out, err = run(*argv, stdin=stdin)
    assert (code, out) == (2, None)
    assert err.startswith("optical-memory: error: ") and expected in err


def test_an_unwritable_output_file_is_an_error(run: Run, tmp_path: Path) -> None:
    run("remember", "x")
    code, out, err = run("view", "p1", "-o", str(tmp_path / "missing" / "dir" / "p1.png"))
    assert (code, out) == (2, None) and str(tmp_path / "missing" / "dir" / "p1.png") in err


def test_python_dash_m_server(archive_path: Path, config_file: Path) -> None:
    common = ["--archive", str(archive_path), "--config", str(config_file)]
    done = subprocess.run(
        [sys.executable, "-m", "optical_memory_mcp", "remember", "via -m", *common],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["spans"][0]["page_id"] == "p1"

    failed = subprocess.run(
        [sys.executable, "-m", "optical_memory_mcp", "read", "p2", *common],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 2 and failed.stdout == ""
    assert "no page 'p2'" in failed.stderr


def test_serve_reports_an_unusable_archive_and_exits_2(tmp_path: Path, config_file: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "optical_memory_mcp",
            "serve",
            "--archive",
            str(blocker / "archive"),
            "--config",
            str(config_file),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("optical-memory: error: ") and str(blocker / "archive") in done.stderr


def test_a_line_that_does_not_verify_is_marked_for_the_person_reading(run: Run, config: Config) -> None:
    """The JSON says verified false; stderr says it in words and marks the doubtful characters."""
    run("remember", "--session", "cli", "first line\nsecond line")
    memory = Memory(config)
    try:  # a check code that no reading can match: what a misread frost line looks like to the reader

        def tamper(tx: ArchiveTxn) -> None:
            record = tx.page("p1")
            assert record is not None and record.codes is not None
            record.codes = record.codes[:CODE_BYTES] + b"\x01" * CODE_BYTES  # not all zeros: that is "no code"
            tx.put_page(record)

        memory.archive.write(tamper)
    finally:
        memory.close()
    code, read, err = run("read", "p1")
    assert code == 0
    assert [line["verified"] for line in read["lines"]] == [True, False]
    assert "p1 line 2 is NOT verified" in err and "p1 line 1" not in err
    code, found, err = run("search", "second")
    assert code == 0 and "p1 line 2 is NOT verified" in err
    assert found["hits"][0]["lines"][-1]["verified"] is False


def test_a_line_without_a_code_is_marked_only_where_the_reader_is_unsure(capsys: pytest.CaptureFixture[str]) -> None:
    """Old pages have no codes: the person sees the lines the reader doubts, not every line of the page."""
    from optical_memory.results import Line
    from optical_memory_mcp.cli.commands import warn_unverified

    warn_unverified(
        "p7",
        [
            Line(number=1, text="sure of every cell", verified=None),
            Line(number=2, text="kůñ at 7Θ km", verified=None, uncertain=[2, 7]),
            Line(number=3, text="exact", verified=True),
        ],
    )
    err = capsys.readouterr().err
    assert "p7 line 2 has no check code and the reader is unsure (doubtful characters at 2, 7)" in err
    assert "  ^    ^" in err  # the marks sit under the doubted characters
    assert "line 1" not in err and "line 3" not in err


def test_output_piped_into_a_reader_that_leaves_early_is_no_error(archive_path: Path, config_file: Path) -> None:
    """`optical-memory list | head -1`: the reader closes the pipe; the command must not print a traceback."""
    common = ["--archive", str(archive_path), "--config", str(config_file)]
    main(["remember", "\n".join(f"line {i}" for i in range(200)), *common])
    read, write = os.pipe()
    os.close(read)  # a reader that has already gone
    done = subprocess.run(
        [sys.executable, "-m", "optical_memory_mcp", "read", "p1", *common],
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    os.close(write)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
