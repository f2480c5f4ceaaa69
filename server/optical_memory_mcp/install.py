"""`optical-memory install|uninstall CLIENT`: write (or remove) the server entry and the capture hooks.

    optical-memory install claude-code [--scope user|project] [--dry-run]
    optical-memory install claude-desktop [--dry-run]
    optical-memory uninstall claude-code|claude-desktop [--scope user|project] [--dry-run]

What is written where:

    claude-code, --scope user     ~/.claude.json            mcpServers["optical-memory"]
                                  ~/.claude/settings.json   hooks Stop, PreCompact (in the background,
                                                            "async"), SessionEnd -> capture
    claude-code, --scope project  ./.mcp.json               mcpServers["optical-memory"]
                                  ./.claude/settings.json   the same hooks
    claude-desktop                claude_desktop_config.json (macOS: ~/Library/Application Support/Claude,
                                  Windows: %APPDATA%\\Claude, Linux: ~/.config/Claude)  mcpServers["optical-memory"]

Commands name the executable by its absolute path (next to this Python, else found on PATH, else
`python -m optical_memory_mcp`), because a client started from a desktop launcher often has a
PATH without the virtual environment. Every file is merged, never replaced: other servers and
hooks stay as they are, key order included. Before a file is changed it is copied to
`<file>.optical-memory.bak`, and what changed is printed as a unified diff. Installing twice
changes nothing. `uninstall` removes exactly the entry and the hooks `install` wrote (a hook whose
command was edited since is left alone, and said so); when what remains equals the backup, the
backup's bytes are put back, so the file is restored exactly (deleted if install created it).
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CLIENTS", "FileChange", "Plan", "executable", "install", "uninstall"]

SERVER_NAME = "optical-memory"
HOOK_EVENTS = ("Stop", "PreCompact", "SessionEnd")
# Stop and PreCompact hooks run in the background ("async"): the agent never waits for a capture,
# which costs a fresh Python process loading the package (about half a second of CPU). SessionEnd
# runs in the foreground: Claude Code is exiting and would not wait for a background hook.
ASYNC_EVENTS = frozenset({"Stop", "PreCompact"})
HOOK_TIMEOUT_S = 60  # seconds; a capture of a few turns takes well under one
BACKUP_SUFFIX = ".optical-memory.bak"
CLIENTS = ("claude-code", "claude-desktop")


@dataclass
class FileChange:
    """One client file: its text before and after (None: absent), and notes on what was kept."""

    path: Path
    before: str | None
    after: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        old = (self.before or "").splitlines(keepends=True)
        new = (self.after or "").splitlines(keepends=True)
        lines = difflib.unified_diff(old, new, f"{self.path} (before)", f"{self.path} (after)", n=2)
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass
class Plan:
    """Every file an install or uninstall changes."""

    changes: list[FileChange]

    def report(self, dry_run: bool) -> str:
        out: list[str] = []
        for change in self.changes:
            if not change.changed:
                state = "unchanged"
            elif change.after is None:
                state = "would be deleted" if dry_run else "deleted"
            elif change.before is None:
                state = "would be created" if dry_run else "created"
            else:
                state = "would change" if dry_run else f"changed (backup: {change.path}{BACKUP_SUFFIX})"
            out.append(f"{change.path}: {state}")
            out.extend(f"  {note}" for note in change.notes)
            if change.changed:
                out.append(change.diff().rstrip("\n"))
        if dry_run:
            out.append("dry run: nothing was written")
        return "\n".join(out)


def executable() -> list[str]:
    """The absolute command that runs `optical-memory`, whatever PATH the client has."""
    folder = Path(sys.executable).absolute().parent  # not resolved: a venv's python is a symlink out of it
    name = "optical-memory.exe" if sys.platform == "win32" else "optical-memory"
    for candidate in (folder / name, folder / "Scripts" / name):
        if candidate.is_file():
            return [str(candidate)]
    found = shutil.which("optical-memory")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "optical_memory_mcp"]


def _global_args(archive: str | None, config: str | None) -> list[str]:
    args: list[str] = []
    if archive:
        args += ["--archive", str(Path(archive).expanduser().absolute())]
    if config:
        args += ["--config", str(Path(config).expanduser().absolute())]
    return args


def _shell_command(argv: list[str]) -> str:
    """A hook runs through a shell: quote each word for it."""
    return subprocess.list2cmdline(argv) if sys.platform == "win32" else shlex.join(argv)


def _server_entry(client: str, base: list[str], options: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"command": base[0], "args": [*base[1:], *options, "serve"]}
    if client == "claude-code":
        entry = {"type": "stdio", **entry}
    return entry


def desktop_config_path(home: Path) -> Path:
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming") / "Claude" / "claude_desktop_config.json"
    return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "Claude" / "claude_desktop_config.json"


def _targets(client: str, scope: str, home: Path, project: Path) -> tuple[Path, Path | None]:
    """(file of the server entry, file of the hooks or None) for a client and scope."""
    if client == "claude-desktop":
        return desktop_config_path(home), None
    if scope == "project":
        return project / ".mcp.json", project / ".claude" / "settings.json"
    return home / ".claude.json", home / ".claude" / "settings.json"


def install(
    client: str,
    *,
    scope: str = "user",
    home: Path | None = None,
    project: Path | None = None,
    archive: str | None = None,
    config: str | None = None,
    dry_run: bool = False,
    command: list[str] | None = None,
) -> Plan:
    """Write the server entry (and for Claude Code the capture hooks); returns what changed."""
    return _change(client, scope, home, project, archive, config, dry_run, command, adding=True)


def uninstall(
    client: str,
    *,
    scope: str = "user",
    home: Path | None = None,
    project: Path | None = None,
    archive: str | None = None,
    config: str | None = None,
    dry_run: bool = False,
    command: list[str] | None = None,
) -> Plan:
    """Remove the server entry and hooks `install` wrote with the same options; returns what changed."""
    return _change(client, scope, home, project, archive, config, dry_run, command, adding=False)


def _change(
    client: str,
    scope: str,
    home: Path | None,
    project: Path | None,
    archive: str | None,
    config: str | None,
    dry_run: bool,
    command: list[str] | None,
    *,
    adding: bool,
) -> Plan:
    """The server entry and hooks for these options, added to or removed from the client's files."""
    base = command or executable()
    options = _global_args(archive, config)
    entry = _server_entry(client, base, options)
    hook = _shell_command([*base, *options, "capture"])
    server_file, hooks_file = _targets(client, scope, home or Path.home(), project or Path.cwd())
    server_edit, hooks_edit = (_add_server, _add_hooks) if adding else (_remove_server, _remove_hooks)
    changes = [_edit(server_file, lambda data, notes: server_edit(data, entry, notes))]
    if hooks_file is not None:
        changes.append(_edit(hooks_file, lambda data, notes: hooks_edit(data, hook, notes)))
    return _apply(changes, dry_run, restoring=not adding)


# editing the JSON ---------------------------------------------------------------------------------


def _edit(path: Path, change: Callable[[dict[str, Any], list[str]], None]) -> FileChange:
    from optical_memory.errors import InvalidArgument

    before = path.read_text(encoding="utf-8") if path.is_file() else None
    try:
        data = json.loads(before) if before and before.strip() else {}
    except ValueError as exc:
        raise InvalidArgument(f"{path} is not valid JSON ({exc}); fix or move it, then install again") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path} holds a JSON {type(data).__name__}, not an object; fix or move it")
    notes: list[str] = []
    change(data, notes)
    after = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if before is not None and json.loads(before or "{}") == data:
        after = before  # nothing to do: keep the file byte for byte, formatting included
    return FileChange(path, before, after, notes)


def _add_server(data: dict[str, Any], entry: dict[str, Any], notes: list[str]) -> None:
    servers = data.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise _bad("mcpServers", servers)
    old = servers.get(SERVER_NAME)
    if old is not None and old != entry:
        notes.append(f"replaced the existing {SERVER_NAME!r} server entry {json.dumps(old)}")
    servers[SERVER_NAME] = entry


def _remove_server(data: dict[str, Any], entry: dict[str, Any], notes: list[str]) -> None:
    servers = data.get("mcpServers")
    if not isinstance(servers, dict) or SERVER_NAME not in servers:
        notes.append(f"no {SERVER_NAME!r} server entry to remove")
        return
    if servers[SERVER_NAME] != entry:
        changed = json.dumps(servers[SERVER_NAME])
        notes.append(f"kept the {SERVER_NAME!r} server entry: it was changed since install ({changed})")
        return
    del servers[SERVER_NAME]
    if not servers:
        del data["mcpServers"]


def _add_hooks(data: dict[str, Any], command: str, notes: list[str]) -> None:
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise _bad("hooks", hooks)
    for event in HOOK_EVENTS:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise _bad(f"hooks.{event}", groups)
        if any(_ours(hook, command) for group in groups if isinstance(group, dict) for hook in _hooks_of(group)):
            continue  # installed before: installing twice changes nothing
        hook: dict[str, Any] = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}
        if event in ASYNC_EVENTS:
            hook["async"] = True
        groups.append({"hooks": [hook]})


def _remove_hooks(data: dict[str, Any], command: str, notes: list[str]) -> None:
    hooks = data.get("hooks")
    if not isinstance(hooks, dict):
        notes.append("no hooks to remove")
        return
    for event in HOOK_EVENTS:
        groups = hooks.get(event)
        if not isinstance(groups, list):
            continue
        kept_groups = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                left = [hook for hook in group["hooks"] if not _ours(hook, command)]
                if not left and group["hooks"]:
                    continue  # the group held only our hook: it goes with it
                group["hooks"] = left
            kept_groups.append(group)
        if kept_groups:
            hooks[event] = kept_groups
        else:
            del hooks[event]
    if not hooks:
        del data["hooks"]


def _hooks_of(group: dict[str, Any]) -> list[Any]:
    hooks = group.get("hooks")
    return hooks if isinstance(hooks, list) else []


def _ours(hook: object, command: str) -> bool:
    return isinstance(hook, dict) and hook.get("type") == "command" and hook.get("command") == command


def _bad(key: str, value: object) -> Exception:
    from optical_memory.errors import InvalidArgument

    return InvalidArgument(f"{key} is a JSON {type(value).__name__}, not what the client expects; fix it by hand")


# writing --------------------------------------------------------------------------------------


def _apply(changes: list[FileChange], dry_run: bool, restoring: bool) -> Plan:
    for change in changes:
        backup = change.path.with_name(change.path.name + BACKUP_SUFFIX)
        if restoring and change.changed and backup.is_file():
            kept = backup.read_text(encoding="utf-8")
            if _same_json(kept, change.after):
                change.after = kept if kept else None  # an empty backup: install created the file
        if dry_run or not change.changed:
            continue
        if change.after is None:
            change.path.unlink()
            backup.unlink(missing_ok=True)
            continue
        change.path.parent.mkdir(parents=True, exist_ok=True)
        if not restoring:
            backup.write_text(change.before or "", encoding="utf-8")
        _write_atomically(change.path, change.after)
        if restoring and backup.is_file() and change.after == backup.read_text(encoding="utf-8"):
            backup.unlink()
    return Plan(changes)


def _same_json(text: str, other: str | None) -> bool:
    try:
        return json.loads(text or "{}") == json.loads(other or "{}")
    except ValueError:
        return False


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and a rename: a client reading the file never sees half of it."""
    temporary = path.with_name(f".{path.name}.optical-memory.tmp")
    temporary.write_text(text, encoding="utf-8")
    if path.exists():
        shutil.copymode(path, temporary)
    os.replace(temporary, path)
