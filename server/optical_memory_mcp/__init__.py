"""The MCP adapter for optical-memory: `optical_memory_mcp.app.build_server` wires the tools to the `Memory`
facade, and `optical_memory_mcp.cli` is the `optical-memory` command (`serve` and the tools as subcommands).

Kept free of heavy imports so that the CLI's non-serving commands do not load the MCP SDK, and free of
`importlib.metadata` (40 ms to import) so that a capture hook, which never asks for the version, does
not load it either.
"""

__all__ = ["package_version"]


def package_version() -> str:
    """The installed distribution's version (what `optical-memory --version` prints and MCP reports)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("optical-memory")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+source"
