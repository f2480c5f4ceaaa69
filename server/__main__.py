"""`python -m server`: the `optical-memory` command without its console script on PATH."""

from server.cli import main

raise SystemExit(main())
