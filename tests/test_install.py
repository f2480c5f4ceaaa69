"""install / uninstall: merged into the client's files, shown before written, and undone exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from optical_memory_mcp.cli import main
from optical_memory_mcp.install import BACKUP_SUFFIX, executable, install, uninstall

EXE = ["/opt/venvs/om/bin/optical-memory"]
# A user's settings as they might be: their own hook, their own formatting (4 spaces, a key order).
USER_SETTINGS = """{
    "model": "opus",
    "hooks": {
        "Stop": [
            {"hooks": [{"type": "command", "command": "notify-send done"}]}
        ]
    },
    "permissions": {"allow": ["Bash(ls:*)"]}
}
"""
USER_CLAUDE_JSON = '{"numStartups": 12, "mcpServers": {"git": {"command": "uvx", "args": ["mcp-server-git"]}}}'


def files(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): p.read_text(encoding="utf-8") for p in sorted(home.rglob("*")) if p.is_file()}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(USER_SETTINGS, encoding="utf-8")
    (home / ".claude.json").write_text(USER_CLAUDE_JSON, encoding="utf-8")
    return home


def test_dry_run_shows_the_change_and_writes_nothing(home: Path) -> None:
    before = files(home)
    plan = install("claude-code", home=home, dry_run=True, command=EXE)
    report = plan.report(dry_run=True)
    assert files(home) == before
    assert "would change" in report and "dry run: nothing was written" in report
    added = [line for line in report.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert any('"optical-memory": {' in line for line in added)
    assert sum('"command": "/opt/venvs/om/bin/optical-memory capture"' in line for line in added) == 3


def test_install_merges_and_uninstall_restores_exactly(home: Path) -> None:
    before = files(home)
    install("claude-code", home=home, command=EXE)
    settings = json.loads((home / ".claude" / "settings.json").read_text(encoding="utf-8"))
    assert settings["model"] == "opus" and settings["permissions"] == {"allow": ["Bash(ls:*)"]}
    stop = settings["hooks"]["Stop"]
    assert stop[0] == {"hooks": [{"type": "command", "command": "notify-send done"}]}  # theirs, kept first
    assert stop[1]["hooks"][0] == {
        "type": "command",
        "command": "/opt/venvs/om/bin/optical-memory capture",
        "timeout": 60,
        "async": True,  # the agent does not wait for it
    }
    assert "async" not in settings["hooks"]["SessionEnd"][0]["hooks"][0]  # Claude Code is exiting: it must run now
    assert set(settings["hooks"]) == {"Stop", "PreCompact", "SessionEnd"}
    claude = json.loads((home / ".claude.json").read_text(encoding="utf-8"))
    assert claude["numStartups"] == 12 and "git" in claude["mcpServers"]
    assert claude["mcpServers"]["optical-memory"] == {"type": "stdio", "command": EXE[0], "args": ["serve"]}
    assert (home / ".claude" / ("settings.json" + BACKUP_SUFFIX)).read_text(encoding="utf-8") == USER_SETTINGS

    installed = files(home)
    assert not any(change.changed for change in install("claude-code", home=home, command=EXE).changes)
    assert files(home) == installed  # installing twice changes nothing

    uninstall("claude-code", home=home, command=EXE)
    assert files(home) == before  # byte for byte, backups gone


def test_uninstall_keeps_what_the_user_added_since(home: Path) -> None:
    install("claude-code", home=home, command=EXE)
    path = home / ".claude" / "settings.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["theme"] = "dark"
    path.write_text(json.dumps(settings), encoding="utf-8")
    uninstall("claude-code", home=home, command=EXE)
    after = json.loads(path.read_text(encoding="utf-8"))
    assert after["theme"] == "dark" and after["hooks"] == json.loads(USER_SETTINGS)["hooks"]


def test_project_scope_creates_and_uninstall_deletes(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    install("claude-code", scope="project", project=project, home=tmp_path / "nohome", command=EXE, archive="~/mem")
    mcp = json.loads((project / ".mcp.json").read_text(encoding="utf-8"))
    archive = str(Path("~/mem").expanduser())
    assert mcp["mcpServers"]["optical-memory"]["args"] == ["--archive", archive, "serve"]
    hooks = json.loads((project / ".claude" / "settings.json").read_text(encoding="utf-8"))["hooks"]
    assert hooks["SessionEnd"][0]["hooks"][0]["command"].endswith(f"--archive {archive} capture")
    uninstall("claude-code", scope="project", project=project, home=tmp_path / "nohome", command=EXE, archive="~/mem")
    assert not (project / ".mcp.json").exists() and not (project / ".claude" / "settings.json").exists()
    assert not list(project.rglob("*.bak"))


def test_claude_desktop_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    install("claude-desktop", home=tmp_path, command=EXE)
    config = json.loads((tmp_path / "config" / "Claude" / "claude_desktop_config.json").read_text(encoding="utf-8"))
    assert config == {"mcpServers": {"optical-memory": {"command": EXE[0], "args": ["serve"]}}}


def test_cli_dry_run_on_a_fresh_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["install", "claude-code", "--scope", "project", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would be created" in out and "serve" in out and "capture" in out
    assert list(tmp_path.iterdir()) == []
    command = executable()
    assert Path(command[0]).is_absolute()


def test_a_broken_settings_file_is_reported_not_overwritten(home: Path) -> None:
    from optical_memory.errors import InvalidArgument

    (home / ".claude" / "settings.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        install("claude-code", home=home, command=EXE)
    assert (home / ".claude" / "settings.json").read_text(encoding="utf-8") == "{not json"
