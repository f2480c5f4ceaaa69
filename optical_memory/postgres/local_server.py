"""A private PostgreSQL server in a temporary folder, for the tests and the benchmarks: Debian's `postgresql`.

`local_server()` runs initdb into a temporary folder and `pg_ctl start` on a free port, listening on
127.0.0.1 only with trust auth (initdb's pg_hba trusts local connections only), and stops it and
removes the folder after. initdb refuses to run as root: then the server runs as the `postgres`
system user the package creates, through runuser. fsync is off: what it holds is thrown away.
`schema_url` names an archive of its own in that server (a schema, in the URL's libpq options).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ServerMissing", "local_server", "schema_url"]

INSTALL = "apt-get install -y postgresql (Debian/Ubuntu; .ci/run does it)"
SUPERUSER = "om_test"


class ServerMissing(RuntimeError):
    """PostgreSQL's binaries are not installed, or the server would not start."""


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise ServerMissing(
        f"PostgreSQL's initdb and pg_ctl are not installed, and the PostgreSQL tests need them: {INSTALL}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _runner(folder: Path) -> list[str]:
    """How to run the server's commands: as ourselves, or (root) as the postgres system user."""
    if os.geteuid() != 0:
        return []
    try:
        shutil.chown(folder, "postgres", "postgres")
    except LookupError:
        raise ServerMissing(f"running as root, PostgreSQL needs the 'postgres' system user: {INSTALL}") from None
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ServerMissing(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@contextmanager
def local_server() -> Iterator[str]:
    """A fresh cluster in a temporary folder (see the module docstring); yields its superuser's URL."""
    bin_dir = _bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="om-pg-"))
    as_postgres = _runner(folder)
    data, port = folder / "data", _free_port()
    try:
        _run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "--no-sync"])
        # fsync off: the tests kill clients, never the server, so what a client saw committed stays committed
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        log = folder / "server.log"
        _run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
        yield f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


def schema_url(server_url: str, schema: str) -> str:
    """`server_url` with `schema` (created now if missing) as its archive's schema."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return f"{server_url}?options=-csearch_path%3D{schema}"
