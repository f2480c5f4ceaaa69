"""The MCP adapter for optical-memory: `server.app.build_server` wires the tools to the `Memory`
facade, and `server.cli` is the `optical-memory` command (`serve` and the tools as subcommands).

Kept free of imports so that the CLI's non-serving commands do not load the MCP SDK.
"""

__all__: list[str] = []
