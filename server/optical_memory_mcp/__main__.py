"""`python -m optical_memory_mcp`: the `optical-memory` command without its console script on PATH."""

from optical_memory_mcp.cli import main

raise SystemExit(main())
