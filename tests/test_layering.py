"""The core library knows nothing about MCP: no module under optical_memory/ imports mcp or server."""

from __future__ import annotations

import ast
from pathlib import Path

import optical_memory

FORBIDDEN = {"mcp", "mcp_types", "server", "optical_memory_mcp"}
PACKAGE = Path(optical_memory.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_optical_memory_does_not_import_the_adapter() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 5
    offenders = {
        f"{path.relative_to(PACKAGE.parent)}: {name}"
        for path in sources
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    }
    assert not offenders
