"""A real PostgreSQL for the tests, started by the suite itself: Debian's `postgresql` package.

`postgres_server` (session scope) runs initdb into a temporary folder and `pg_ctl start` on a free
port, listening on 127.0.0.1 only with trust auth (initdb's pg_hba trusts local connections only),
and stops it after the session. initdb refuses to run as root (CI runs as root): then the server
runs as the `postgres` system user the package creates, through runuser. `pg_url` gives each test
an archive of its own: a fresh schema, named in the URL's libpq options.

Missing binaries FAIL the tests (CI installs them: .ci/run), they are never skipped.
Use in a test module: ``pytest_plugins = ["tests.pg"]`` (and import nothing else from here, so
pytest can still rewrite its asserts).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from optical_memory.postgres.local_server import ServerMissing, local_server, schema_url

__all__ = ["ServerMissing", "local_server", "named_schema_url", "pg_url", "postgres_server", "schema_url"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a fresh PostgreSQL cluster's `postgres` database, as its superuser (FAILS without one)."""
    try:
        with local_server() as url:
            yield url
    except ServerMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def named_schema_url(postgres_server: str) -> Callable[[str], str]:
    """A URL for the archive in schema NAME (made if missing) of the session's cluster."""
    return lambda name: schema_url(postgres_server, name)


@pytest.fixture
def pg_url(postgres_server: str) -> str:
    """An empty archive of this test's own: a new schema in the session's cluster."""
    return schema_url(postgres_server, f"t_{uuid.uuid4().hex[:12]}")
