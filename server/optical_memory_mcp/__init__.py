"""The MCP adapter for optical-memory: `optical_memory_mcp.app.build_server` wires the tools to the `Memory`
facade, and `optical_memory_mcp.cli` is the `optical-memory` command (`serve` and the tools as subcommands).

Kept free of imports so that the CLI's non-serving commands do not load the MCP SDK.
"""

__all__: list[str] = []
